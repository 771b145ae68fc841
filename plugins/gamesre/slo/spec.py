"""SLO specs as code: validated models and loaders for include/config/slos.yaml and policies.yaml.

Every error raises SpecError naming the file, the SLO and the field path, e.g.
`include/config/slos.yaml: slo 'availability': sli.good[0].matchers.code: value '201' not in contract
label_values.code`. Validation has three layers: YAML syntax, the pydantic models (shape, types, ranges,
cross-field rules), and the metric contract (every metric, label and label value a selector uses).

Two SLI kinds, both evaluable from Prometheus by the ingest:
- `ratio`: counters summed over selectors, `good` + `total` or `bad` + `total`. The ingest fetches the raw
  samples of `selector.promql()` and computes exact per-minute deltas; the ledger row of a minute is
  (good, total), with good = total - bad for the bad form (`RatioSli.uses_bad`).
- `threshold` (timeslices only): conditions evaluated once per minute by a range query with a 60 s step.
  `ThresholdSli.promql()` is 1 when every condition holds in the minute, 0 when one fails, and has no
  value when a condition has no data. The value at instant m+60 is the slice (m, m+60]; the ledger row of
  the minute is (good=value, total=1).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from gamesre.core.config import SpecError, display_path, header_problems, read_yaml
from gamesre.core.contract import Contract, load_contract
from gamesre.core.durations import parse_duration
from gamesre.core.paths import CONFIG_DIR
from gamesre.slo.selectors import Selector, minute_increase, promql_number, selector_problems
from gamesre.slo.windows import WINDOWS, WindowName

SLOS_PATH = CONFIG_DIR / "slos.yaml"
POLICIES_PATH = CONFIG_DIR / "policies.yaml"

METHODS = ("occurrences", "timeslices", "ratio-timeslices")
BURN_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
Method = Literal["occurrences", "timeslices", "ratio-timeslices"]
NoDataPolicy = Literal["good", "bad", "skip"]
Op = Literal["<", "<=", ">", ">="]

_SLUG = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
_TAGS = {"ratio", "threshold", "gauge", "counter_share"}
_FIELD_PREFIX = re.compile(r"^([a-z_]+): (.+)$", re.S)


# Text for people. Control characters other than tab and newline, and U+2028/U+2029, are refused: YAML reads
# U+0085 and those two as line breaks, and every description must survive a YAML or OpenSLO round trip.
Description = Annotated[str, Field(pattern=r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]*$")]
# One line of text (an owner, a team): no control characters at all, no Unicode line separators. YAML would
# turn them into other characters (U+0085 is a line break to it), so a spec would not survive a round trip.
OneLine = Annotated[str, Field(min_length=1, pattern=r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RatioSli(_Model):
    """Good (or bad) events over total events; each side is the sum of its counter selectors."""

    kind: Literal["ratio"]
    good: Annotated[list[Selector], Field(min_length=1)] | None = None
    bad: Annotated[list[Selector], Field(min_length=1)] | None = None
    total: Annotated[list[Selector], Field(min_length=1)]

    @model_validator(mode="after")
    def _good_or_bad(self) -> RatioSli:
        if (self.good is None) == (self.bad is None):
            raise ValueError("good: a ratio SLI has exactly one of good or bad (with total)")
        return self

    @property
    def uses_bad(self) -> bool:
        """True for bad + total: the ingest stores good = total - bad."""
        return self.bad is not None

    def good_selectors(self) -> tuple[Selector, ...]:
        """The good selectors, or () for a bad + total SLI (see `uses_bad`)."""
        return tuple(self.good or ())

    def bad_selectors(self) -> tuple[Selector, ...]:
        """The bad selectors, or () for a good + total SLI."""
        return tuple(self.bad or ())

    def total_selectors(self) -> tuple[Selector, ...]:
        return tuple(self.total)

    def all_selectors(self) -> Iterator[tuple[str, Selector]]:
        """(field path, selector) for every selector."""
        for side in ("good", "bad", "total"):
            for i, sel in enumerate(getattr(self, side) or ()):
                yield f"{side}[{i}]", sel


class GaugeCondition(_Model):
    """`aggregate(over_time_over_time(selector[1m])) op threshold`: holds for the minute or not."""

    kind: Literal["gauge"]
    name: Annotated[str, Field(pattern=_SLUG)]
    description: Description = ""
    selector: Selector
    over_time: Literal["max", "min", "avg", "last"]
    aggregate: Literal["sum", "max", "min", "avg"]
    op: Op
    threshold: Annotated[float, Field(allow_inf_nan=False)]

    def promql(self) -> str:
        """The minute's value: one sample in the minute is enough for `*_over_time(...[1m])`."""
        return f"{self.aggregate}({self.over_time}_over_time({self.selector.promql()}[1m]))"

    @property
    def bound(self) -> float:
        return self.threshold

    def holds(self, value: float) -> bool:
        return _compare(value, self.op, self.threshold)

    def selectors(self) -> Iterator[tuple[str, Selector]]:
        yield "selector", self.selector


class CounterShareCondition(_Model):
    """The part counters gained at most `max_share` of what the whole counters gained in the minute.

    Evaluated without a division, as `part - max_share * whole <= 0`, so a minute with no events holds
    (nothing was rejected) and a minute where the whole has no series has no data.
    """

    kind: Literal["counter_share"]
    name: Annotated[str, Field(pattern=_SLUG)]
    description: Description = ""
    part: Annotated[list[Selector], Field(min_length=1)]
    whole: Annotated[list[Selector], Field(min_length=1)]
    max_share: Annotated[float, Field(ge=0, le=1)]

    @property
    def op(self) -> str:
        return "<="

    def promql(self) -> str:
        part = minute_increase(self.part)
        whole = minute_increase(self.whole)
        return f"(({part}) or vector(0)) - {promql_number(self.max_share)} * ({whole})"

    @property
    def bound(self) -> float:
        return 0.0

    def holds(self, value: float) -> bool:
        return _compare(value, "<=", 0.0)

    def selectors(self) -> Iterator[tuple[str, Selector]]:
        for side in ("part", "whole"):
            for i, sel in enumerate(getattr(self, side)):
                yield f"{side}[{i}]", sel


Condition = Annotated[GaugeCondition | CounterShareCondition, Field(discriminator="kind")]


class ThresholdSli(_Model):
    """A minute is good when every condition holds in it (timeslices only)."""

    kind: Literal["threshold"]
    conditions: Annotated[list[Condition], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_condition_names(self) -> ThresholdSli:
        names = [c.name for c in self.conditions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"conditions: duplicate condition name(s): {', '.join(duplicates)}")
        return self

    def promql(self) -> str:
        """1 when all conditions hold in the minute ending at the evaluation instant, else 0; no data if any
        condition has none."""
        return " * ".join(f"({c.promql()} {c.op} bool {promql_number(c.bound)})" for c in self.conditions)

    def all_selectors(self) -> Iterator[tuple[str, Selector]]:
        for i, condition in enumerate(self.conditions):
            for path, sel in condition.selectors():
                yield f"conditions[{i}].{path}", sel


Sli = Annotated[RatioSli | ThresholdSli, Field(discriminator="kind")]


class Slo(_Model):
    """One service level objective."""

    name: Annotated[str, Field(pattern=_SLUG, max_length=63)]
    service: str
    owner: OneLine
    description: Annotated[Description, Field(min_length=1)]
    sli: Sli
    target: Annotated[float, Field(gt=0, lt=1)]
    window: WindowName
    budgeting_method: Method
    timeslice_window: Literal["1m"] = "1m"
    timeslice_target: Annotated[float, Field(gt=0, le=1)] | None = None
    no_data: NoDataPolicy = "skip"
    min_events: Annotated[StrictInt, Field(ge=1)] = 1
    count_gamedays_against_budget: StrictBool = True
    runbook_url: Annotated[str, Field(pattern=r"^\S+$")] | None = None

    @model_validator(mode="after")
    def _method_rules(self) -> Slo:
        if self.budgeting_method == "timeslices" and self.timeslice_target is None:
            raise ValueError("timeslice_target: required for budgeting_method timeslices")
        if self.budgeting_method != "timeslices" and self.timeslice_target is not None:
            raise ValueError(f"timeslice_target: only applies to timeslices, not {self.budgeting_method}")
        if self.sli.kind == "threshold" and self.budgeting_method != "timeslices":
            raise ValueError("budgeting_method: a threshold SLI can only use timeslices")
        if self.sli.kind == "threshold" and self.min_events != 1:
            raise ValueError("min_events: must be 1 for a threshold SLI (each minute is one event)")
        if self.budgeting_method == "occurrences" and self.no_data != "skip":
            raise ValueError("no_data: must be skip for occurrences (a minute without data has no events to count)")
        return self

    @property
    def error_budget(self) -> float:
        """The allowed bad share, 1 - target, without float noise (0.001 for 0.999)."""
        return float(1 - Fraction(repr(self.target)))

    def selectors(self) -> Iterator[tuple[str, Selector]]:
        """(field path, selector) of every selector of the SLI."""
        for path, sel in self.sli.all_selectors():
            yield f"sli.{path}", sel


class BurnTier(_Model):
    """A multiwindow burn-rate rule: `budget_fraction` of the budget consumed over `long_window`."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    severity: Literal["page", "ticket"]
    state: Literal["fast_burn", "slow_burn", "ticket"]
    long_window: str
    short_window: str
    budget_fraction: Annotated[float, Field(gt=0, le=1)]

    @field_validator("long_window", "short_window")
    @classmethod
    def _known_window(cls, value: str) -> str:
        if value not in BURN_WINDOWS:
            raise ValueError(f"{value!r} is not one of the computed burn windows {', '.join(BURN_WINDOWS)}")
        return value

    @model_validator(mode="after")
    def _short_inside_long(self) -> BurnTier:
        if parse_duration(self.short_window) >= parse_duration(self.long_window):
            raise ValueError("short_window: must be shorter than long_window")
        return self

    def factor(self, window_seconds: int) -> float:
        """The burn-rate threshold for an SLO window of this length (see budget.burn_factor)."""
        return self.budget_fraction * window_seconds / parse_duration(self.long_window)


class BudgetThresholds(_Model):
    deploy_freeze: Annotated[float, Field(gt=0, le=1)]
    rollback: Annotated[float, Field(gt=0, le=1)]

    @model_validator(mode="after")
    def _ordered(self) -> BudgetThresholds:
        if self.rollback <= self.deploy_freeze:
            raise ValueError("rollback: must be above deploy_freeze")
        return self


class EveningPeak(_Model):
    """Local hours in which burn-rate thresholds are divided by `strictness`."""

    timezone: Literal["Asia/Seoul"]
    start: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    end: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    strictness: Annotated[float, Field(ge=1, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _not_empty(self) -> EveningPeak:
        if self.start == self.end:
            raise ValueError("end: equal to start, the peak would be empty")
        return self

    def minutes_of_day(self) -> tuple[int, int]:
        """Local start and end as minutes after midnight (end may be before start: the peak wraps)."""
        (h1, m1), (h2, m2) = (map(int, t.split(":")) for t in (self.start, self.end))
        return h1 * 60 + m1, h2 * 60 + m2


class StatePolicy(_Model):
    stale_after: str
    min_window_coverage: Annotated[float, Field(ge=0, le=1)]
    recent_window: str
    min_recent_coverage: Annotated[float, Field(ge=0, le=1)]

    @field_validator("stale_after")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("recent_window")
    @classmethod
    def _burn_window(cls, value: str) -> str:
        if value not in BURN_WINDOWS:
            raise ValueError(f"{value!r} is not one of the computed burn windows {', '.join(BURN_WINDOWS)}")
        return value


class MinTraffic(_Model):
    """Low traffic cannot page: a burn tier needs this much traffic in its long window."""

    events: Annotated[StrictInt, Field(ge=1)]
    timeslice_coverage: Annotated[float, Field(gt=0, le=1)]


class AbsentData(_Model):
    after: str
    for_: Annotated[str, Field(alias="for")]
    severity: Literal["page", "ticket"]

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    @field_validator("after", "for_")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class Enforcement(_Model):
    """How the budget policy acts on a spent budget (gamesre.slo.enforcement; docs/slo.md)."""

    mode: Literal["act", "propose", "notify"] = "propose"
    services: dict[str, Literal["act", "propose", "notify"]] = Field(default_factory=dict)  # per-service modes
    look_back: str = "6h"
    fast_burn_after_promotion: str = "2h"
    propose_timeout: str = "15m"
    propose_default: Literal["rollback", "keep"] = "keep"

    @field_validator("look_back", "fast_burn_after_promotion", "propose_timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError(f"{value!r} must be a positive duration")
        return value


class Policy(_Model):
    """The error-budget policy: burn tiers, budget thresholds, peak strictness, state rules, alert guards."""

    version: Literal[1]
    burn_alerts: Annotated[list[BurnTier], Field(min_length=1)]
    budget: BudgetThresholds
    evening_peak: EveningPeak
    state: StatePolicy
    min_traffic: MinTraffic
    absent_data: AbsentData
    enforcement: Enforcement = Field(default_factory=Enforcement)

    @model_validator(mode="after")
    def _unique_tiers(self) -> Policy:
        names = [t.name for t in self.burn_alerts]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"burn_alerts: duplicate burn tier name(s): {', '.join(duplicates)}")
        return self


class SloCatalog:
    """The validated SLOs of one file, in file order, addressable by name."""

    def __init__(self, slos: Sequence[Slo], source: str = "slos.yaml"):
        self.slos = tuple(slos)
        self.source = source
        self._by_name = {s.name: s for s in self.slos}

    def __iter__(self) -> Iterator[Slo]:
        return iter(self.slos)

    def __len__(self) -> int:
        return len(self.slos)

    def __getitem__(self, name: str) -> Slo:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no SLO named {name!r} in {self.source} (known: {', '.join(self._by_name)})") from None

    def names(self) -> list[str]:
        return [s.name for s in self.slos]

    def for_service(self, service: str) -> list[Slo]:
        return [s for s in self.slos if s.service == service]


# --- helpers -------------------------------------------------------------------------------------------


def _compare(value: float, op: str, bound: float) -> bool:
    return {"<": value < bound, "<=": value <= bound, ">": value > bound, ">=": value >= bound}[op]


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _TAGS and (previous == "sli" or isinstance(previous, int)):
            pass  # the discriminated union's tag, not a field of the file
        else:
            out += f".{part}" if out else str(part)
        previous = part
    return out or "(top level)"


def _pydantic_problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors(include_url=False):
        message = err["msg"].removeprefix("Value error, ")
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        field = _FIELD_PREFIX.match(message) if err["type"] == "value_error" else None
        if field:  # a cross-field rule names the field it is about: "no_data: must be skip ..."
            loc, message = (*loc, field.group(1)), field.group(2)
        problems.append((_format_loc(loc), message))
    return problems


def contract_problems(slo: Slo, contract: Contract) -> list[tuple[str, str]]:
    """(field path, message) for everything in the SLO the metric contract does not define."""
    problems: list[tuple[str, str]] = []
    if slo.service not in contract.services:
        problems.append(
            ("service", f"{slo.service!r} is not a service in the contract ({', '.join(contract.services)})")
        )
        return problems
    if slo.sli.kind == "ratio":
        for path, sel in slo.sli.all_selectors():
            problems += [
                (f"sli.{path}.{p}", m) for p, m in selector_problems(sel, contract, slo.service, need="counter")
            ]
    else:
        for i, condition in enumerate(slo.sli.conditions):
            need: Literal["counter", "gauge"] = "gauge" if condition.kind == "gauge" else "counter"
            for path, sel in condition.selectors():
                found = selector_problems(sel, contract, slo.service, need=need)
                problems += [(f"sli.conditions[{i}].{path}.{p}", m) for p, m in found]
    return problems


# --- loaders --------------------------------------------------------------------------------------------


def _item_label(item: object, index: int) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    return f"slo {name!r}" if isinstance(name, str) and name else f"slo #{index}"


def parse_slos(raw: object, source: str = "slos.yaml", contract: Contract | None = None) -> SloCatalog:
    """Validate a parsed slos.yaml document; collects every problem into one SpecError."""
    contract = contract if contract is not None else load_contract()
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: expected a mapping with 'version' and 'slos' at the top level")
    lines = header_problems(raw, source, "slos")
    items = raw.get("slos")
    if not isinstance(items, list) or not items:
        raise SpecError("\n".join([*lines, f"{source}: slos: expected a non-empty list of SLOs"]))
    slos: list[Slo] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        label = _item_label(item, index)
        try:
            slo = Slo.model_validate(item)
        except ValidationError as exc:
            lines += [f"{source}: {label}: {path}: {msg}" for path, msg in _pydantic_problems(exc)]
            continue
        if slo.name in first_index:
            lines.append(
                f"{source}: {label}: name: duplicate SLO name (first defined as item #{first_index[slo.name]})"
            )
            continue
        first_index[slo.name] = index
        lines += [f"{source}: {label}: {path}: {msg}" for path, msg in contract_problems(slo, contract)]
        slos.append(slo)
    if lines:
        raise SpecError("\n".join(lines))
    return SloCatalog(slos, source)


def load_slos(path: Path | str = SLOS_PATH, contract: Contract | None = None) -> SloCatalog:
    """Read and validate slos.yaml against the metric contract."""
    source = display_path(path)
    return parse_slos(read_yaml(path, source), source, contract)


def parse_policies(raw: object, source: str = "policies.yaml") -> Policy:
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: expected a mapping at the top level")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise SpecError("\n".join(f"{source}: {path}: {msg}" for path, msg in _pydantic_problems(exc))) from None


def load_policies(path: Path | str = POLICIES_PATH) -> Policy:
    """Read and validate policies.yaml."""
    source = display_path(path)
    return parse_policies(read_yaml(path, source), source)


__all__ = [
    "BURN_WINDOWS",
    "METHODS",
    "WINDOWS",
    "BurnTier",
    "CounterShareCondition",
    "GaugeCondition",
    "Policy",
    "RatioSli",
    "Selector",
    "Slo",
    "SloCatalog",
    "SpecError",
    "ThresholdSli",
    "contract_problems",
    "load_policies",
    "load_slos",
    "minute_increase",
    "parse_policies",
    "parse_slos",
]
