"""Series selectors of SLIs: the model, its plain PromQL, per-minute increases, and metric-contract checks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gamesre.core.contract import Contract, MetricDef

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def escape(value: str) -> str:
    """A PromQL double-quoted string body."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Selector(BaseModel):
    """One Prometheus series selector: a metric name and label matchers (exact and fully anchored regex)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    metric: str
    matchers: dict[str, str] = Field(default_factory=dict)
    matchers_regex: dict[str, str] = Field(default_factory=dict)

    @field_validator("metric")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        if not _METRIC_NAME.match(value):
            raise ValueError(f"{value!r} is not a valid Prometheus metric name")
        return value

    @field_validator("matchers", "matchers_regex")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        for label in value:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise ValueError(f"{label!r} is not a valid label name")
        return value

    @field_validator("matchers_regex")
    @classmethod
    def _regexes_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{label}: {pattern!r} is not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_matcher_per_label(self) -> Selector:
        both = sorted(set(self.matchers) & set(self.matchers_regex))
        if both:
            raise ValueError(f"matchers_regex: label(s) {', '.join(both)} also in matchers")
        return self

    def promql(self) -> str:
        """The plain PromQL selector, matchers sorted by label (exact first), e.g. `m{code="200"}`."""
        parts = [f'{k}="{escape(v)}"' for k, v in sorted(self.matchers.items())]
        parts += [f'{k}=~"{escape(v)}"' for k, v in sorted(self.matchers_regex.items())]
        return f"{self.metric}{{{','.join(parts)}}}" if parts else self.metric

    def equality_labels(self) -> dict[str, str]:
        return dict(self.matchers)


def minute_increase(selectors: Sequence[Selector]) -> str:
    """PromQL for the events the counters gained over the minute ending at the evaluation instant.

    `x - x offset 1m` per series: the value at the minute's end minus the value at its start, exactly as
    the ledger slices counters, and it needs only one sample per minute (backfilled history has 60 s
    resolution). A reset makes the difference negative; it is clamped to 0 (that minute undercounts).
    """
    return " + ".join(f"sum(clamp_min({s.promql()} - {s.promql()} offset 1m, 0))" for s in selectors)


def promql_number(value: float) -> str:
    """A float as a short, exact-looking PromQL literal (repr round-trips; ints lose the '.0')."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _counter_problem(series: str, metric: MetricDef, sel: Selector) -> str | None:
    """Why a series cannot be summed as an event counter, or None."""
    if metric.type == "counter":
        return None if series.endswith("_total") else f"counter {series!r} does not end in _total"
    if metric.type == "histogram":
        if series.endswith("_count"):
            return None
        if series.endswith("_bucket"):
            if "le" in sel.matchers_regex:
                return "a histogram bucket needs an exact le matcher, not a regex"
            if "le" not in sel.matchers:
                return "a histogram bucket needs an le matcher (events at or under one bucket boundary)"
            return None
        return f"{series!r} is a sum of observed values, not a count of events"
    return f"{series!r} is a {metric.type}, not a counter: a ratio SLI counts events"


def _value_problem(label: str, value: str, metric: MetricDef, contract: Contract, slo_service: str) -> str | None:
    if label == "service":
        if value not in contract.services:
            return f"value {value!r} is not a service in the contract"
        if value != slo_service:
            return f"value {value!r} is not the SLO's service {slo_service!r}"
        return None
    if label == "job":
        job = contract.services[slo_service].job if slo_service in contract.services else None
        return None if value == job else f"value {value!r} is not the job of service {slo_service!r} ({job!r})"
    if label == "le":
        if value == "+Inf":
            return None
        try:
            bound = float(value)
        except ValueError:
            return f"value {value!r} is not a number"
        return (
            None
            if bound in metric.buckets
            else f"value {value!r} is not a bucket of {metric.name} {list(metric.buckets)}"
        )
    allowed = contract.label_values.get(label)
    if allowed is not None and value not in allowed:
        return f"value {value!r} not in contract label_values.{label}"
    return None


def _regex_problem(label: str, pattern: str, contract: Contract, slo_service: str) -> str | None:
    if label == "le":
        return "le must be an exact matcher"
    if label == "service":
        return "service must be an exact matcher"
    allowed: Sequence[str] | None = contract.label_values.get(label)
    if label == "job":
        allowed = [s.job for s in contract.services.values()]
    if allowed is None:
        return None
    anchored = re.compile(f"^(?:{pattern})$")
    if not any(anchored.match(v) for v in allowed):
        return f"regex {pattern!r} matches no value in contract label_values.{label} {list(allowed)}"
    return None


def selector_problems(
    sel: Selector, contract: Contract, slo_service: str, *, need: Literal["counter", "gauge"]
) -> list[tuple[str, str]]:
    """(field path relative to the selector, message) for every way the selector breaks the contract."""
    series = contract.series_index().get(sel.metric)
    if series is None:
        return [("metric", f"metric {sel.metric!r} is not in the metric contract")]
    problems: list[tuple[str, str]] = []
    if series.service not in (slo_service, "any"):
        problems.append(("metric", f"metric {sel.metric!r} belongs to service {series.service!r}, not {slo_service!r}"))
    if need == "counter":
        why = _counter_problem(sel.metric, series, sel)
        if why:
            problems.append(("metric", why))
    elif series.type != "gauge":
        problems.append(("metric", f"{sel.metric!r} is a {series.type}, a gauge condition needs a gauge"))
    allowed_labels = set(contract.all_labels(series))
    if not sel.metric.endswith("_bucket"):
        allowed_labels.discard("le")
    for field, matchers in (("matchers", sel.matchers), ("matchers_regex", sel.matchers_regex)):
        for label, value in matchers.items():
            path = f"{field}.{label}"
            if label not in allowed_labels:
                problems.append(
                    (
                        path,
                        f"label {label!r} is not a label of {sel.metric} "
                        f"(allowed: {', '.join(sorted(allowed_labels))})",
                    )
                )
                continue
            why = (
                _value_problem(label, value, series, contract, slo_service)
                if field == "matchers"
                else _regex_problem(label, value, contract, slo_service)
            )
            if why:
                problems.append((path, why))
    if "service" not in sel.matchers and "service" not in sel.matchers_regex:
        problems.append(("matchers.service", f"missing: every selector pins service: {slo_service}"))
    return problems
