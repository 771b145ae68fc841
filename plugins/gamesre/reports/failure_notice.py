"""The notice of a failed task, as its owning team reads it in Slack: which DAG and task, the error, the log, and what
the failure blocks (for the SLO DAGs: when the published error-budget policy state goes stale)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gamesre.core.time import KST, as_utc
from gamesre.reports.document import Code, Document, Facts, Link, Paragraph, Span, Strong, render_slack, safe_url

ERROR_MAX_CHARS = 600  # the error's first characters; the log has the rest
STALE_AFTER_SOURCE = "include/config/policies.yaml state.stale_after"


@dataclass(frozen=True)
class TaskFailure:
    """A task that failed for good (after its retries), as Airflow's failure callback sees it."""

    dag_id: str
    task_id: str
    run_id: str
    error: str  # "ExceptionType: message"
    log_url: str = ""
    try_number: int | None = None
    service: str | None = None  # the service a run is about (a deploy, an experiment); None: the SRE team's run


def _kst(at: datetime) -> str:
    return as_utc(at).astimezone(KST).strftime("%H:%M")


def staleness(published_at: datetime | None, stale_at: datetime | None, stale_after: str, now: datetime) -> str:
    """What a failure of the DAGs that keep the policy state fresh blocks, and from when (times in KST)."""
    if published_at is None or stale_at is None:
        return ("no error-budget policy state is published: every deploy and game-day is blocked until "
                "error_budget_report publishes one")
    source = f"published {_kst(published_at)} + {stale_after}, {STALE_AFTER_SOURCE}"
    if as_utc(stale_at) <= as_utc(now):
        return (f"the published policy state went stale at {_kst(stale_at)} KST ({source}): every deploy and "
                "game-day is blocked until a fresh one is published")
    left = int((as_utc(stale_at) - as_utc(now)).total_seconds() // 60)
    return (f"the published policy state goes stale at {_kst(stale_at)} KST ({source}), and then blocks every "
            f"deploy and game-day ({left} min from now)")


def failure_notice(failure: TaskFailure, *, blocks: str, paged: str = "") -> str:
    """Slack mrkdwn: the DAG and task, then the error, the log link, what it blocks and whether someone was paged."""
    run = f", try {failure.try_number}" if failure.try_number else ""
    head: tuple[Span, ...] = (":rotating_light: ", Strong(failure.dag_id), " failed: task ", Code(failure.task_id),
                              " of run ", Code(failure.run_id), run)
    error = failure.error if len(failure.error) <= ERROR_MAX_CHARS else failure.error[:ERROR_MAX_CHARS - 1] + "…"
    url = safe_url(failure.log_url)
    facts: list[tuple[str, tuple[Span, ...] | str]] = [
        ("Error", (Code(error),)),
        ("Log", (Link(f"{failure.task_id} log", url),) if url else "not available"),
        ("Blocks", blocks or "nothing else: the next run starts afresh"),
    ]
    if paged:
        facts.append(("Paged", paged))
    return render_slack(Document("", [Paragraph(head), Facts(facts)]))
