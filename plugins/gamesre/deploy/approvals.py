"""Approvals before a deploy stage: which reviews it needs, who may give them, and what the reviewer is shown.

Pure. deploy.yaml `stages.<stage>.approvals` lists the reviews (technical, security, business), a service's
`deploy.environments.<stage>.approvals` in services.yaml replaces that list; `approvals.reviewers` names who may
give each (Airflow users or roles) and `approvals.timeout` how long the stage waits: no answer by then blocks it
(a deploy is never approved by silence). A rejection ends the deploy `rejected`, with the reviewer's reason.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gamesre.deploy.config import REVIEWS, DeployConfig, Reviewers

__all__ = ["REVIEWS", "ApprovalAsk", "ask_text", "describe_reviewers", "required_reviews", "reviewers_of"]

APPROVE, REJECT = "Approve", "Reject"
OPTIONS = [APPROVE, REJECT]


@dataclass(frozen=True)
class ApprovalAsk:
    """One review asked of people: the Required Action's subject and body, and who may answer."""

    review: str
    stage: str
    users: tuple[str, ...]
    roles: tuple[str, ...]
    timeout_s: int
    subject: str
    body: str


def required_reviews(config: DeployConfig, stage: str, service_override: Sequence[str] | None) -> tuple[str, ...]:
    """The reviews a stage needs for a service: the service's own list when it sets one, else deploy.yaml's."""
    if service_override is not None:
        return tuple(service_override)
    settings = config.stages.get(stage)
    return tuple(settings.approvals) if settings else ()


def reviewers_of(config: DeployConfig, review: str) -> Reviewers:
    """Who may give the review; ValueError naming the file when nobody is configured (a service's own list can
    name a review deploy.yaml has no reviewers for)."""
    named = config.approvals.reviewers if config.approvals else {}
    if review not in named:
        raise ValueError(f"include/config/deploy.yaml: approvals.reviewers: nobody may give the {review} review a "
                         "service asks for; name its users or roles")
    return named[review]  # type: ignore[index]


def _human(seconds: int) -> str:
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def describe_reviewers(users: Iterable[str], roles: Iterable[str]) -> str:
    who = [*users, *(f"role {r}" for r in roles)]
    return ", ".join(who) or "nobody"


def ask_text(request: Mapping[str, Any], stage: str, review: str, *, reviewers: str, timeout_s: int,
             plan: Sequence[str], gates: Sequence[Mapping[str, Any]], previous: str, run_url: str) -> tuple[str, str]:
    """(subject, body) of the review: the facts a reviewer decides on, in Markdown.

    `request`: the deploy request as a dict; `plan`: the stage's step labels; `gates`: the stage's gate results
    as they stand now (evaluated again, with fresh facts, once every review is given); `previous`: the earlier
    stages' verdicts and evidence in Markdown ("" for none).
    """
    service, version = request.get("service"), request.get("version")
    subject = f"{review.capitalize()} review: deploy {service} {version} to {stage}"
    lines = [
        f"**{service} {version}** to **{stage}**, {request.get('strategy')}: {' → '.join(plan)}",
        "",
        f"- Change ticket: {request.get('change_ticket') or '(none given)'}",
        f"- Requested by: {request.get('requested_by')}",
        f"- Image: `{request.get('image')}`",
        f"- This review ({review}) may be given by: {reviewers}. No answer within {_human(timeout_s)}: the "
        f"stage is blocked. **Reject** ends the deploy; say why in *reason*.",
        f"- Run: {run_url}",
        "",
        f"**Gates of {stage} now** (checked again once every review is given):",
        "",
    ]
    lines += [f"- {'✅' if g.get('passed') else '⛔'} `{g.get('gate')}`: {g.get('reason')}" for g in gates]
    lines += ["", previous.strip() if previous.strip() else "*No earlier stage in this deploy: no verdict yet.*"]
    return subject, "\n".join(lines)
