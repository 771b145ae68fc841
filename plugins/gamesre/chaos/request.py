"""A request to run one experiment (the chaos_experiment Params form, a REST conf, or a game-day suite entry),
validated into an ExperimentRun before anything is touched. Pure.

Fields: `experiment` (required, an id of the catalog), `target` (optional: an instance/pod name, or a label
selector `key=value,key=value` that replaces the experiment's selector), `duration` (optional: 30s, 2m, or
seconds), `blast_radius` (optional: a count or a share like 50%), `environment` (optional, default the
policy's), `dry_run`, `requested_by`, `gameday_id` (set by chaos_gameday). Every problem is reported at once
in InvalidChaosRequest, which names the fields.
"""
from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gamesre.chaos.catalog import (
    ChaosCatalog,
    parse_blast_radius,
    radius_within_cap,
    resolve_blast_radius,
)
from gamesre.chaos.faults import FaultSpec
from gamesre.core.durations import parse_seconds

FIELDS = ("experiment", "target", "duration", "blast_radius", "environment", "dry_run", "requested_by",
          "gameday_id")
_SELECTOR_PART = re.compile(r"^([A-Za-z0-9./_-]{1,100})=([A-Za-z0-9._-]{0,63})$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,252}$")


class InvalidChaosRequest(ValueError):
    """A bad request; the message lists every bad field."""

    def __init__(self, problems: Sequence[str]):
        super().__init__("invalid chaos experiment request: " + "; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class ExperimentRun:
    """One validated experiment run (JSON-safe through to_dict), before its targets are resolved."""

    run_id: str
    experiment: str
    title: str
    service: str
    backend: str
    environment: str
    fault: FaultSpec
    selector: Mapping[str, str]
    blast_radius: int | str
    duration_s: int
    recovery_time_s: int
    budget_floor: float
    weight: float
    probe_interval_s: int
    dry_run: bool = False
    requested_by: str = ""
    gameday_id: str | None = None
    target_override: str | None = None  # what the request asked for, for the record
    targets: tuple[str, ...] = field(default=())  # filled in once resolved against the backend

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["fault"] = self.fault.to_dict()
        out["selector"] = dict(self.selector)
        out["targets"] = list(self.targets)
        return out

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ExperimentRun:
        values = dict(doc)
        values["fault"] = FaultSpec.from_dict(doc["fault"])
        values["selector"] = dict(doc.get("selector") or {})
        values["targets"] = tuple(doc.get("targets") or ())
        return cls(**values)


def parse_target(text: str) -> tuple[dict[str, str] | None, str | None]:
    """(selector, None) for `k=v,k=v`, ({"instance": name}, None) for a name, (None, why) otherwise."""
    text = text.strip()
    if "=" in text:
        selector: dict[str, str] = {}
        for part in text.split(","):
            match = _SELECTOR_PART.match(part.strip())
            if match is None:
                return None, f"{part.strip()!r} is not key=value"
            selector[match.group(1)] = match.group(2)
        return selector, None
    if _NAME.match(text):
        return {"instance": text}, None
    return None, f"{text!r} is neither an instance/pod name nor a selector like track=stable"


def build_run(conf: Mapping[str, Any], catalog: ChaosCatalog, *, run_id: str, requested_by: str,
              backends: Mapping[str, str]) -> ExperimentRun:
    """Validate a request; `backends` maps a service to its chaos backend (services.yaml chaos.backend)."""
    problems = [f"{k}: unknown field (known: {', '.join(FIELDS)})" for k in conf if k not in FIELDS]
    experiment_id = conf.get("experiment")
    if not isinstance(experiment_id, str) or experiment_id not in catalog.experiments:
        problems.append(f"experiment: unknown experiment {experiment_id!r} (known: "
                        f"{', '.join(sorted(catalog.experiments))})")
        raise InvalidChaosRequest(problems)
    experiment = catalog.experiments[experiment_id]
    policy = catalog.policy

    duration_s = experiment.duration_s
    raw_duration = conf.get("duration")
    if raw_duration not in (None, "", 0):
        try:
            duration_s = (raw_duration if isinstance(raw_duration, int) and not isinstance(raw_duration, bool)
                          else parse_seconds(raw_duration))
            if duration_s < 10:
                problems.append(f"duration: {raw_duration} is shorter than 10s")
            elif duration_s > policy.max_duration_s:
                problems.append(f"duration: {raw_duration} is longer than the policy's max_duration "
                                f"{policy.max_duration}")
        except ValueError as exc:
            problems.append(f"duration: {exc}")

    blast_radius: int | str = experiment.blast_radius
    raw_radius = conf.get("blast_radius")
    if raw_radius not in (None, ""):
        if isinstance(raw_radius, str) and raw_radius.strip().isdigit():
            raw_radius = int(raw_radius.strip())
        try:
            parse_blast_radius(raw_radius)
            why = radius_within_cap(raw_radius, policy.blast_radius_cap)  # type: ignore[arg-type]
            if why:
                problems.append(f"blast_radius: {why}")
            blast_radius = raw_radius  # type: ignore[assignment]
        except ValueError as exc:
            problems.append(f"blast_radius: {exc}")

    selector = dict(experiment.target.selector)
    target = conf.get("target")
    if target not in (None, ""):
        if not isinstance(target, str):
            problems.append(f"target: expected text, got {type(target).__name__}")
        else:
            parsed, why = parse_target(target)
            if parsed is None:
                problems.append(f"target: {why}")
            else:
                selector = parsed

    environment = conf.get("environment") or policy.environment
    if environment not in ("dev", "staging", "prod"):
        problems.append(f"environment: expected dev, staging or prod, got {environment!r}")
    else:
        why = catalog.environment_allowed(experiment, environment)
        if why:
            problems.append(f"environment: {why}")

    dry_run = conf.get("dry_run", False)
    if not isinstance(dry_run, bool):
        problems.append(f"dry_run: expected true or false, got {dry_run!r}")
    who = conf.get("requested_by") or requested_by
    if not isinstance(who, str) or len(who) > 128:
        problems.append("requested_by: expected text of at most 128 characters")
    gameday_id = conf.get("gameday_id")
    if gameday_id is not None and not isinstance(gameday_id, str):
        problems.append("gameday_id: expected text")
    service = experiment.target.service
    if service not in backends:
        problems.append(f"experiment: its target service {service!r} is not in services.yaml")
    if problems:
        raise InvalidChaosRequest(problems)
    return ExperimentRun(
        run_id=run_id, experiment=experiment.id, title=experiment.title, service=service,
        backend=backends[service], environment=str(environment), fault=experiment.fault_spec(duration_s),
        selector=selector, blast_radius=blast_radius, duration_s=int(duration_s),
        recovery_time_s=catalog.recovery_time_s(experiment), budget_floor=catalog.budget_floor(experiment),
        weight=experiment.weight, probe_interval_s=policy.probe_interval_s, dry_run=bool(dry_run),
        requested_by=str(who), gameday_id=gameday_id, target_override=target or None)


def pick_targets(run: ExperimentRun, candidates: Sequence[str], catalog: ChaosCatalog) -> list[str]:
    """The targets the run hits among the selector's matches; InvalidChaosRequest when none match or the
    resolved radius breaks the cap. The choice is random but reproducible from the run id."""
    candidates = sorted(candidates)
    if not candidates:
        raise InvalidChaosRequest([f"target: no {run.service} instance or pod matches {dict(run.selector)} "
                                   "(unknown target)"])
    why = radius_within_cap(run.blast_radius, catalog.policy.blast_radius_cap, len(candidates))
    if why:
        raise InvalidChaosRequest([f"blast_radius: {why}"])
    n = resolve_blast_radius(run.blast_radius, len(candidates))
    seed = int(hashlib.sha256(run.run_id.encode()).hexdigest()[:12], 16)
    return sorted(random.Random(seed).sample(candidates, n))


def overlaps(targets: Sequence[str], service: str, active: Sequence[Mapping[str, Any]],
             run_id: str) -> list[str]:
    """Why this run would overlap faults already injected (other runs' injections on the same targets)."""
    mine = set(targets)
    out = []
    for injection in active:
        if injection.get("run_id") == run_id or injection.get("service") != service:
            continue
        shared = mine & set(injection.get("targets") or ())
        if shared:
            fault = (injection.get("fault") or {}).get("kind")
            out.append(f"{', '.join(sorted(shared))} already has {fault} injected by {injection.get('experiment')} "
                       f"(run {injection.get('run_id')})")
    return out
