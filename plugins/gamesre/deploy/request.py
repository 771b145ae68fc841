"""A deploy request (the DAG run's conf or Params form), validated before anything is touched.

Pure. `parse_request` checks every field against services.yaml and deploy.yaml and raises one
`InvalidDeployRequest` listing every problem as `<field>: <reason>`; a valid request becomes a
`DeployRequest`, which is what every later task reads (never the raw conf).

Two kinds:
- `deploy` (the default): a new build, through the stages with the requested strategy, judged step by step;
- `rollback`: back to a version that served the service before (the `previous_version` of one of its promoted
  deploys, or one it promoted), e.g. the suspect change of an incident or of the budget policy. All traffic moves
  at once (one step at 100%; by default one rolling batch of every instance, so the old version has the fleet's
  whole capacity), the version's analysis is the verification, and its gates are only the deploy lock
  and the backend's health: a rollback is never blocked by the budget it is meant to save. `rollback_of` names the
  deployment it undoes; the version then defaults to that deployment's previous version.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from gamesre.core.services import ServiceCatalog
from gamesre.deploy.config import DeployConfig
from gamesre.deploy.plan import STRATEGIES, check_percentages

FIELDS = ("kind", "service", "version", "rollback_of", "strategy", "stages", "canary_steps", "change_ticket",
          "requested_by", "dry_run", "force", "force_reason", "cause")
KINDS = ("deploy", "rollback", "automatic-rollback")  # automatic-rollback: a rollback the budget policy started
_CAUSE_MAX = 20_000  # characters of JSON
INCIDENT_ID = re.compile(r"^INC-[0-9]{8}-[0-9]{3}$")
_TICKET = re.compile(r"^[A-Za-z][A-Za-z0-9]*-[0-9]+$|" + INCIDENT_ID.pattern)  # a ticket, or an incident's id
_TEXT_MAX = 500


class InvalidDeployRequest(ValueError):
    """The request is invalid; `problems` are (field, reason) pairs, the message lists them all."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("invalid deploy request: " + "; ".join(f"{f}: {r}" for f, r in problems))


@dataclass(frozen=True)
class DeployRequest:
    service: str
    version: str  # the image tag
    image: str  # the full image reference registry/repository:tag
    strategy: str
    stages: tuple[str, ...]
    canary_steps: tuple[int, ...]
    change_ticket: str
    requested_by: str
    dry_run: bool
    force: bool
    force_reason: str
    kind: str = "deploy"  # deploy | rollback | automatic-rollback
    rollback_of: str = ""  # rollback: the deployment (run id) it undoes, when given
    cause: Mapping[str, Any] | None = None  # rollback: what asked for it (the policy's decision and evidence)

    @property
    def is_rollback(self) -> bool:
        return self.kind != "deploy"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["stages"] = list(self.stages)
        out["canary_steps"] = list(self.canary_steps)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DeployRequest:
        return cls(**{**raw, "stages": tuple(raw["stages"]), "canary_steps": tuple(raw["canary_steps"])})


def _text(conf: Mapping[str, Any], name: str, problems: list[tuple[str, str]], *, required: bool) -> str:
    value = conf.get(name)
    if isinstance(value, str):
        value = value.strip()  # blanks are no value: a required field left blank must not pass as given
    if value is None or value == "":
        if required:
            problems.append((name, "required"))
        return ""
    if not isinstance(value, str):
        problems.append((name, f"expected a string, got {type(value).__name__}"))
        return ""
    if len(value) > _TEXT_MAX:
        problems.append((name, f"longer than {_TEXT_MAX} characters"))
        return ""
    return value


def _reported(problems: list[tuple[str, str]], name: str) -> bool:
    """Whether the field already has a problem (a text too long must not also be called missing)."""
    return any(field == name for field, _ in problems)


def _flag(conf: Mapping[str, Any], name: str, problems: list[tuple[str, str]]) -> bool:
    value = conf.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        problems.append((name, f"expected true or false, got {value!r}"))
        return False
    return value


def parse_version(raw: str, registry: str, repository: str, tag_pattern: str) -> tuple[str, str]:
    """(tag, full reference) from a tag or a full image reference; ValueError says what is wrong."""
    allowed = f"{registry}/{repository}"
    if ":" in raw or "/" in raw:
        if "@" in raw:
            raise ValueError(f"{raw!r}: give a tag, not a digest ({allowed}:<tag>)")
        name, sep, tag = raw.rpartition(":")
        if not sep or "/" in tag:
            raise ValueError(f"{raw!r} is not an image reference like {allowed}:<tag>")
        if name != allowed:
            raise ValueError(f"image {name!r} is not the service's allowed image {allowed!r}")
    else:
        tag = raw
    if not re.fullmatch(tag_pattern, tag):
        raise ValueError(f"tag {tag!r} does not match the service's tag pattern {tag_pattern!r}")
    return tag, f"{allowed}:{tag}"


def parse_request(conf: Mapping[str, Any] | None, services: ServiceCatalog, config: DeployConfig, *,
                  default_requester: str = "", history: Sequence[Mapping[str, Any]] = ()) -> DeployRequest:
    """Validate a run's conf; InvalidDeployRequest names every bad field, nothing is returned half-checked.

    `history`: the service's deployment records (the store's), which a rollback is checked against."""
    problems: list[tuple[str, str]] = []
    if not isinstance(conf, Mapping):
        raise InvalidDeployRequest([("conf", f"expected a JSON object, got {type(conf).__name__}")])
    unknown = sorted(set(conf) - set(FIELDS))
    if unknown:
        problems.append((", ".join(unknown), f"unknown field (known: {', '.join(FIELDS)})"))

    kind = _text(conf, "kind", problems, required=False) or "deploy"
    if kind not in KINDS:
        problems.append(("kind", f"{kind!r} is not one of {', '.join(KINDS)}"))
    rollback = kind in KINDS and kind != "deploy"
    service = _text(conf, "service", problems, required=True)
    spec = None
    if service:
        if service in services:
            spec = services.get(service)
        else:
            problems.append(("service", f"unknown service {service!r} (known: {', '.join(services.names)})"))

    rollback_of = _text(conf, "rollback_of", problems, required=False)
    undone = None
    if rollback_of and not rollback:
        problems.append(("rollback_of", "only for kind rollback"))
    elif rollback_of and spec is not None:
        undone = next((d for d in history if d.get("id") == rollback_of), None)
        if undone is None or undone.get("service") != service:
            problems.append(("rollback_of", f"no deployment {rollback_of!r} of {service} is recorded"))
            undone = None
        elif undone.get("outcome") != "promoted" or not undone.get("previous_version"):
            problems.append(("rollback_of", f"deployment {rollback_of!r} ({undone.get('version')}) was not promoted "
                                            f"over a known version (outcome {undone.get('outcome')}): nothing to undo"))
            undone = None

    tag = image = ""
    raw_version = _text(conf, "version", problems, required=not (rollback and rollback_of))
    if not raw_version and undone is not None:
        raw_version = str(undone["previous_version"])
    if raw_version and spec is not None:
        img = spec.deploy.image
        try:
            tag, image = parse_version(raw_version, img.registry, img.repository, img.tag_pattern)
        except ValueError as exc:
            problems.append(("version", str(exc)))
        if tag and rollback:
            problems.extend(_rollback_target_problems(tag, undone, history))

    strategy = _text(conf, "strategy", problems, required=False)
    if strategy and strategy not in STRATEGIES:
        problems.append(("strategy", f"{strategy!r} is not one of {', '.join(STRATEGIES)}"))
    if not strategy and spec is not None:
        # A rollback moves every instance back in one batch: the old version gets the whole fleet's capacity at
        # once (a canary or a blue-green preview of one instance cannot hold every player).
        strategy = "rolling" if rollback else spec.deploy.strategy

    stages: tuple[str, ...] = ()
    raw_stages = conf.get("stages")
    if raw_stages is None or raw_stages == []:
        stages = tuple(s for s in config.stage_order if spec is None or s in spec.deploy.environments)
        if rollback:
            stages = stages[-1:]  # the players' environment (prod); other stages only when asked for
    elif not isinstance(raw_stages, list) or not all(isinstance(s, str) for s in raw_stages):
        problems.append(("stages", f"expected a list of stage names, got {raw_stages!r}"))
    else:
        bad = [s for s in raw_stages if s not in config.stages]
        dup = sorted({s for s in raw_stages if raw_stages.count(s) > 1})
        if bad:
            problems.append(("stages", f"unknown stage(s) {', '.join(map(repr, bad))} (known: "
                                       f"{', '.join(config.stage_order)})"))
        elif dup:
            problems.append(("stages", f"listed more than once: {', '.join(dup)}"))
        else:
            stages = tuple(s for s in config.stage_order if s in raw_stages)  # always in deploy.yaml's order
            if spec is not None:
                missing = [s for s in stages if s not in spec.deploy.environments]
                if missing:
                    problems.append(("stages", f"{service} has no environment for {', '.join(missing)} "
                                               "(services.yaml deploy.environments)"))

    canary_steps: tuple[int, ...] = tuple(config.strategies.canary.steps)
    raw_steps = conf.get("canary_steps")
    if rollback:
        canary_steps = (100,)  # all traffic at once
        if raw_steps not in (None, []):
            problems.append(("canary_steps", "not for a rollback: it moves all traffic at once"))
    elif raw_steps not in (None, []):
        if not isinstance(raw_steps, list):
            problems.append(("canary_steps", f"expected a list of percentages, got {raw_steps!r}"))
        else:
            try:
                canary_steps = check_percentages(raw_steps, "canary_steps")
            except ValueError as exc:
                problems.append(("canary_steps", str(exc).removeprefix("canary_steps: ")))
            if raw_steps and strategy and strategy != "canary":
                problems.append(("canary_steps", f"only for the canary strategy, not {strategy}"))

    ticket = _text(conf, "change_ticket", problems, required=True)
    if ticket and not _TICKET.match(ticket):
        problems.append(("change_ticket", f"{ticket!r} is not a ticket id like CHG-1234 (or an incident id like "
                                          "INC-20261207-001)"))
    requested_by = _text(conf, "requested_by", problems, required=False) or default_requester
    if not requested_by and not _reported(problems, "requested_by"):
        problems.append(("requested_by", "required (who asks for this deploy)"))
    dry_run = _flag(conf, "dry_run", problems)
    force = _flag(conf, "force", problems)
    force_reason = _text(conf, "force_reason", problems, required=False)
    if force and len(force_reason) < 10 and not _reported(problems, "force_reason"):
        problems.append(("force_reason", "required with force: say why the budget freeze may be bypassed "
                                         "(at least 10 characters)"))
    if force_reason and not force:
        problems.append(("force_reason", "given without force: set force to true or drop the reason"))
    cause = conf.get("cause")
    if cause is not None and not rollback:
        problems.append(("cause", "only for a rollback"))
    elif cause is not None and (not isinstance(cause, Mapping) or len(json.dumps(cause, default=str)) > _CAUSE_MAX):
        problems.append(("cause", f"expected a JSON object of at most {_CAUSE_MAX} characters"))
    if rollback and force:
        problems.append(("force", "not for a rollback: its gates are the deploy lock and the backend's health, the "
                                  "budget never blocks it"))

    if problems:
        raise InvalidDeployRequest(problems)
    return DeployRequest(service, tag, image, strategy, stages, canary_steps, ticket, requested_by, dry_run, force,
                         force_reason, kind, rollback_of, dict(cause) if isinstance(cause, Mapping) else None)


def _rollback_target_problems(tag: str, undone: Mapping[str, Any] | None,
                              history: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """A rollback goes back to a version that served the service: the previous version of a promoted deploy, or a
    promoted version. With `rollback_of`, exactly the version that deployment replaced (anything else is ambiguous)."""
    if undone is not None:
        if tag != undone["previous_version"]:
            return [("version", f"{tag!r} is not the version deployment {undone['id']!r} replaced "
                                f"({undone['previous_version']!r}); give that one, or leave version empty")]
        return []
    promoted = [d for d in history if d.get("outcome") == "promoted" and not d.get("dry_run")]
    known = {str(v) for d in promoted for v in (d.get("version"), d.get("previous_version")) if v}
    if tag not in known:
        return [("version", f"{tag!r} never served the service (known good: "
                            f"{', '.join(sorted(known)) or 'none recorded'}); a rollback goes back to one of those")]
    return []
