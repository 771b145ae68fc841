"""include/config/chaos/*.yaml: the chaos policy, the experiment catalog and the game-day suites, validated.

Every file has `version: 1` and a `kind`:
- `policy`       (exactly one file): blast-radius caps, production opt-in, probe interval, the kill-switch
                 Variable, the pool, the default budget floor and recovery time;
- `experiments`  any number of files: the experiments (ids unique across files);
- `suites`       the game-day suites (which experiments, in which order).

Pure: reads YAML files only. Every error raises ChaosConfigError naming the file, the experiment and the
field, e.g. `include/config/chaos/game-server.yaml: experiments[2] (gs-cpu-hog): blast_radius: 80% is over the
policy cap of 50%`. Problems of every file are reported together.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gamesre.chaos.faults import FAULT_KINDS, FaultSpec
from gamesre.core.config import SpecError, display_path, read_yaml
from gamesre.core.durations import Duration, parse_seconds
from gamesre.core.paths import CONFIG_DIR
from gamesre.core.services import validation_problems

CHAOS_DIR = CONFIG_DIR / "chaos"
ENVIRONMENTS = ("dev", "staging", "prod")
_ID = r"^[a-z][a-z0-9-]{1,62}$"
_PERCENT = re.compile(r"^([0-9]{1,3})%$")

# Parameters per fault kind: name -> (low, high, required). Units are in the names.
FAULT_PARAMS: dict[str, dict[str, tuple[float, float, bool]]] = {
    "pod_delete": {},
    "cpu_hog": {"cpu_load": (0.05, 1.0, False), "cpu_cores": (1, 16, False)},
    "memory_hog": {"memory_mb": (1, 1024, True)},
    "network_latency": {"latency_ms": (1, 60000, True), "jitter_ms": (0, 60000, False)},
    "network_loss": {"loss_percent": (1, 100, True)},
    "network_partition": {},
    "disk_fill": {"disk_fill_mb": (1, 512, True)},
    "db_failure": {"db_fail_rate": (0.01, 1.0, False)},
    "db_latency": {"db_latency_ms": (1, 60000, True)},
}
assert set(FAULT_PARAMS) == set(FAULT_KINDS), "every fault kind needs its parameter rules"


class ChaosConfigError(SpecError):
    """An invalid chaos catalog; the message names the file, the item and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


Number = Annotated[float, Field(allow_inf_nan=False)]


# --- the policy ------------------------------------------------------------------------------------------------

class BlastRadiusCap(_Model):
    """The most any experiment may hit: both limits hold (a count and a share of the matching targets)."""

    max_count: Annotated[int, Field(ge=1, le=1000)]
    max_percent: Annotated[int, Field(ge=1, le=100)]


class ChaosPolicy(_Model):
    blast_radius_cap: BlastRadiusCap
    production_enabled: bool  # prod in an experiment's allow-list only counts when this is true
    environment: Literal["dev", "staging", "prod"]  # the environment the local demo fleet stands for
    probe_interval: Duration
    kill_switch_variable: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,100}$")]
    pool: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,100}$")]
    default_budget_floor: Annotated[float, Field(ge=0, lt=1)]
    default_recovery_time: Duration
    recovery_confirmations: Annotated[int, Field(ge=1, le=20)]  # consecutive all-pass polls that confirm it
    max_duration: Duration
    lock_stale_after: Duration  # a game-day lock this old belongs to a crashed run and may be taken over
    oncall_channel_id: Annotated[str, Field(pattern=r"^[CG][A-Z0-9]{8,}$")]  # Slack channel paged when a recovery fails

    @property
    def probe_interval_s(self) -> int:
        return parse_seconds(self.probe_interval)

    @property
    def max_duration_s(self) -> int:
        return parse_seconds(self.max_duration)

    @property
    def default_recovery_time_s(self) -> int:
        return parse_seconds(self.default_recovery_time)

    @property
    def lock_stale_after_s(self) -> int:
        return parse_seconds(self.lock_stale_after)


# --- experiments -----------------------------------------------------------------------------------------------

class Fault(_Model):
    kind: Literal["pod_delete", "cpu_hog", "memory_hog", "network_latency", "network_loss", "network_partition",
                  "disk_fill", "db_failure", "db_latency"]
    params: dict[str, Number] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _params(self) -> Fault:
        rules = FAULT_PARAMS[self.kind]
        for name, value in self.params.items():
            if name not in rules:
                known = ", ".join(rules) or "none"
                raise ValueError(f"params.{name}: not a parameter of {self.kind} (known: {known})")
            low, high, _ = rules[name]
            if not low <= value <= high:
                raise ValueError(f"params.{name}: {value:g} is outside {low:g}..{high:g}")
        missing = [n for n, (_, _, required) in rules.items() if required and n not in self.params]
        if missing:
            raise ValueError(f"params: {self.kind} needs {', '.join(missing)}")
        return self


class Target(_Model):
    service: Annotated[str, Field(min_length=1)]
    # Label selector of the targets. local: `track` (stable | canary) and/or `instance`; kubernetes: pod
    # labels, added to the Deployment's own selector.
    selector: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9./_-]{1,100}$")],
                   Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{0,63}$")]] = Field(default_factory=dict)


class Tolerance(_Model):
    """How a probe value is judged.

    range      min <= value <= max (either bound may be left out: a one-sided threshold)
    baseline   compared with the value the steady-state check measured before injection: the value may not
               get worse than `max_change` (relative: 0.5 = 50% worse) in the direction `worse`
    """

    type: Literal["range", "baseline"]
    min: Number | None = None
    max: Number | None = None
    worse: Literal["higher", "lower"] | None = None
    max_change: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] | None = None
    # A baseline probe also needs an absolute floor/ceiling so a broken baseline cannot pass: optional bounds
    # (min/max) still apply.

    @model_validator(mode="after")
    def _shape(self) -> Tolerance:
        if self.type == "range":
            if self.min is None and self.max is None:
                raise ValueError("a range tolerance needs min, max or both")
            if self.worse is not None or self.max_change is not None:
                raise ValueError("worse and max_change belong to a baseline tolerance")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        else:
            if self.worse is None or self.max_change is None:
                raise ValueError("a baseline tolerance needs worse (higher | lower) and max_change")
        return self

    def describe(self) -> str:
        if self.type == "range":
            if self.min is not None and self.max is not None:
                return f"{self.min:g} <= value <= {self.max:g}"
            return f">= {self.min:g}" if self.min is not None else f"<= {self.max:g}"
        bound = "" if self.min is None and self.max is None else (
            f" and {'>= ' + format(self.min, 'g') if self.min is not None else '<= ' + format(self.max or 0, 'g')}")
        return f"at most {self.max_change:.0%} {self.worse} than the baseline{bound}"


class Probe(_Model):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
    query: Annotated[str, Field(min_length=1, max_length=4000)]
    tolerance: Tolerance
    weight: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] = 1.0


class SteadyState(_Model):
    probes: Annotated[list[Probe], Field(min_length=1)]

    @field_validator("probes")
    @classmethod
    def _unique(cls, probes: list[Probe]) -> list[Probe]:
        names = [p.name for p in probes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"probe names must be unique, repeated: {', '.join(dupes)}")
        return probes


class AbortRules(_Model):
    consecutive_failures: Annotated[int, Field(ge=1, le=100)]  # a probe failing this many polls in a row
    burn_rate: Annotated[float, Field(gt=1, le=1000, allow_inf_nan=False)] | None = None  # of burn_slos
    burn_slos: list[str] = Field(default_factory=list)
    burn_window: Duration = "1m"
    # A poll where a probe has no data (or Prometheus fails): `abort` counts it as a failure, `ignore` does
    # not count it either way (it lowers nothing and confirms nothing). Never a pass.
    no_data: Literal["abort", "ignore"] = "abort"

    @model_validator(mode="after")
    def _burn(self) -> AbortRules:
        if (self.burn_rate is None) != (not self.burn_slos):
            raise ValueError("burn_rate and burn_slos go together")
        return self

    @property
    def burn_window_s(self) -> int:
        return parse_seconds(self.burn_window)


class Experiment(_Model):
    id: Annotated[str, Field(pattern=_ID)]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    fault: Fault
    target: Target
    blast_radius: int | str  # a count (1) or a share of the matching targets ("50%")
    duration: Duration
    steady_state: SteadyState
    abort: AbortRules
    recovery_time: Duration | None = None  # default: the policy's
    budget_floor: Annotated[float, Field(ge=0, lt=1)] | None = None  # default: the policy's
    weight: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]
    environments: Annotated[list[Literal["dev", "staging", "prod"]], Field(min_length=1)]

    @field_validator("blast_radius")
    @classmethod
    def _radius(cls, value: int | str) -> int | str:
        parse_blast_radius(value)
        return value

    @property
    def duration_s(self) -> int:
        return parse_seconds(self.duration)

    def fault_spec(self, duration_s: float | None = None) -> FaultSpec:
        return FaultSpec(self.fault.kind, dict(self.fault.params), float(duration_s or self.duration_s))


def parse_blast_radius(value: object) -> tuple[str, int]:
    """("count", n) or ("percent", p); ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"expected a count like 1 or a share like 50%, got {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= 1000:
            raise ValueError(f"a count must be 1..1000, got {value}")
        return "count", value
    match = _PERCENT.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a count like 1 or a share like 50%, got {value!r}")
    percent = int(match.group(1))
    if not 1 <= percent <= 100:
        raise ValueError(f"a share must be 1%..100%, got {value}")
    return "percent", percent


def resolve_blast_radius(value: int | str, available: int) -> int:
    """How many of `available` matching targets the radius hits (a share rounds up, at least 1)."""
    kind, n = parse_blast_radius(value)
    wanted = n if kind == "count" else math.ceil(available * n / 100)
    return max(1, min(wanted, available)) if available else 0


def radius_within_cap(value: int | str, cap: BlastRadiusCap, available: int | None = None) -> str | None:
    """None when the radius respects the cap; else why not. With `available`, the resolved count is checked too."""
    kind, n = parse_blast_radius(value)
    if kind == "count" and n > cap.max_count:
        return f"blast radius {n} is over the policy cap of {cap.max_count} targets"
    if kind == "percent" and n > cap.max_percent:
        return f"blast radius {n}% is over the policy cap of {cap.max_percent}%"
    if available:
        hits = resolve_blast_radius(value, available)
        if hits * 100 > cap.max_percent * available:
            return (f"blast radius {value} hits {hits} of {available} targets ({hits / available:.0%}), over the "
                    f"policy cap of {cap.max_percent}%")
        if hits > cap.max_count:
            return f"blast radius {value} hits {hits} targets, over the policy cap of {cap.max_count}"
    return None


class Suite(_Model):
    description: str = ""
    # Run in this order, one at a time; each waits for the steady state before it injects anything.
    experiments: Annotated[list[Annotated[str, Field(pattern=_ID)]], Field(min_length=1)]


# --- the catalog ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChaosCatalog:
    policy: ChaosPolicy
    experiments: Mapping[str, Experiment]
    suites: Mapping[str, Suite]
    sources: Mapping[str, str]  # experiment id -> the file it came from

    def experiment(self, experiment_id: str) -> Experiment:
        try:
            return self.experiments[experiment_id]
        except KeyError:
            raise KeyError(f"unknown experiment {experiment_id!r} (known: {', '.join(sorted(self.experiments))})"
                           ) from None

    def suite(self, name: str) -> Suite:
        try:
            return self.suites[name]
        except KeyError:
            raise KeyError(f"unknown game-day suite {name!r} (known: {', '.join(sorted(self.suites))})") from None

    def recovery_time_s(self, experiment: Experiment) -> int:
        return parse_seconds(experiment.recovery_time or self.policy.default_recovery_time)

    def budget_floor(self, experiment: Experiment) -> float:
        return self.policy.default_budget_floor if experiment.budget_floor is None else experiment.budget_floor

    def environment_allowed(self, experiment: Experiment, environment: str) -> str | None:
        """None when the experiment may run in the environment; else why not."""
        if environment not in experiment.environments:
            return (f"{experiment.id} does not allow the {environment} environment (allowed: "
                    f"{', '.join(experiment.environments)})")
        if environment == "prod" and not self.policy.production_enabled:
            return ("production chaos is not enabled (include/config/chaos policy production_enabled: false)")
        return None


def _problems(exc: ValidationError, prefix: str) -> list[str]:
    return [f"{prefix}{path}: {msg}" for path, msg in validation_problems(exc)]


def parse_catalog(documents: Mapping[str, object], *, services: set[str] | None = None,
                  slos: Mapping[str, str] | None = None) -> ChaosCatalog:
    """Validate parsed chaos files ({source name: document}); all problems in one ChaosConfigError.

    `services` (known service names) and `slos` (SLO name -> service) enable the cross-checks: an experiment
    targets a known service, and its burn_slos are SLOs of that service.
    """
    lines: list[str] = []
    policies: list[tuple[str, ChaosPolicy]] = []
    experiments: dict[str, Experiment] = {}
    sources: dict[str, str] = {}
    invalid: set[str] = set()  # ids of experiments with their own errors: a suite listing one is not "unknown"
    suites: dict[str, Suite] = {}
    suite_sources: dict[str, str] = {}
    for source, raw in sorted(documents.items()):
        if not isinstance(raw, dict):
            lines.append(f"{source}: expected a mapping with version and kind at the top level")
            continue
        if raw.get("version") != 1:
            lines.append(f"{source}: version: must be 1, got {raw.get('version')!r}")
        kind = raw.get("kind")
        body = {k: v for k, v in raw.items() if k not in ("version", "kind")}
        if kind == "policy":
            try:
                policies.append((source, ChaosPolicy.model_validate(body.get("policy"))))
            except ValidationError as exc:
                lines += _problems(exc, f"{source}: policy.")
            extra = set(body) - {"policy"}
            lines += [f"{source}: {k}: unknown key (a policy file holds only `policy`)" for k in sorted(extra)]
        elif kind == "experiments":
            items = body.get("experiments")
            lines += [f"{source}: {k}: unknown key (an experiments file holds only `experiments`)"
                      for k in sorted(set(body) - {"experiments"})]
            if not isinstance(items, list) or not items:
                lines.append(f"{source}: experiments: expected a non-empty list")
                continue
            for index, item in enumerate(items):
                name = item.get("id") if isinstance(item, dict) else None
                where = f"{source}: experiments[{index}]" + (f" ({name})" if name else "")
                try:
                    experiment = Experiment.model_validate(item)
                except ValidationError as exc:
                    lines += _problems(exc, f"{where}: ")
                    if name:
                        invalid.add(str(name))
                    continue
                if experiment.id in experiments:
                    lines.append(f"{where}: id: {experiment.id} is already defined in {sources[experiment.id]}")
                    continue
                experiments[experiment.id] = experiment
                sources[experiment.id] = source
        elif kind == "suites":
            items = body.get("suites")
            lines += [f"{source}: {k}: unknown key (a suites file holds only `suites`)"
                      for k in sorted(set(body) - {"suites"})]
            if not isinstance(items, dict) or not items:
                lines.append(f"{source}: suites: expected a non-empty mapping of suite name -> suite")
                continue
            for name, item in items.items():
                if name in suites:
                    lines.append(f"{source}: suites.{name}: already defined in {suite_sources[name]}")
                    continue
                try:
                    suites[str(name)] = Suite.model_validate(item)
                    suite_sources[str(name)] = source
                except ValidationError as exc:
                    lines += _problems(exc, f"{source}: suites.{name}.")
        else:
            lines.append(f"{source}: kind: expected policy, experiments or suites, got {kind!r}")
    if len(policies) != 1:
        found = ", ".join(s for s, _ in policies) or "none"
        lines.append(f"chaos catalog: exactly one file of kind policy is needed (found: {found})")
    policy = policies[0][1] if policies else None
    for experiment_id, experiment in experiments.items():
        where = f"{sources[experiment_id]}: {experiment_id}"
        if policy is not None:
            why = radius_within_cap(experiment.blast_radius, policy.blast_radius_cap)
            if why:
                lines.append(f"{where}: blast_radius: {why}")
            if experiment.duration_s > policy.max_duration_s:
                lines.append(f"{where}: duration: {experiment.duration} is longer than the policy's max_duration "
                             f"{policy.max_duration}")
        if services is not None and experiment.target.service not in services:
            lines.append(f"{where}: target.service: unknown service {experiment.target.service!r} (known: "
                         f"{', '.join(sorted(services))})")
        if slos is not None:
            for slo in experiment.abort.burn_slos:
                if slos.get(slo) != experiment.target.service:
                    lines.append(f"{where}: abort.burn_slos: {slo!r} is not an SLO of {experiment.target.service}")
    for name, suite in suites.items():
        for experiment_id in suite.experiments:
            if experiment_id not in experiments and experiment_id not in invalid:
                lines.append(f"{suite_sources[name]}: suites.{name}.experiments: unknown experiment {experiment_id!r}")
        repeated = sorted({e for e in suite.experiments if suite.experiments.count(e) > 1})
        if repeated:
            lines.append(f"{suite_sources[name]}: suites.{name}.experiments: listed twice: {', '.join(repeated)}")
    if lines:
        raise ChaosConfigError("\n".join(lines))
    assert policy is not None
    return ChaosCatalog(policy=policy, experiments=experiments, suites=suites, sources=sources)


def load_catalog(directory: Path | str = CHAOS_DIR, *, cross_check: bool = True) -> ChaosCatalog:
    """Read and validate every *.yaml in the chaos folder (with the services and SLOs cross-checks)."""
    directory = Path(directory)
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ChaosConfigError(f"{display_path(directory)}: no *.yaml chaos catalog files")
    documents: dict[str, Any] = {}
    problems = []
    for path in files:
        source = display_path(path)
        try:
            documents[source] = read_yaml(path, source)
        except SpecError as exc:
            problems.append(str(exc))
    if problems:
        raise ChaosConfigError("\n".join(problems))
    services: set[str] | None = None
    slos: dict[str, str] | None = None
    if cross_check:
        from gamesre.core.services import load_services
        from gamesre.slo.spec import load_slos

        services = set(load_services().names)
        slos = {s.name: s.service for s in load_slos()}
    return parse_catalog(documents, services=services, slos=slos)
