"""OpenSLO v1 export and import of the SLO specs, lossless through metadata annotations.

Mapping (OpenSLO v1, kind SLO with an inline indicator):
- name -> metadata.name; service, description -> spec.service, spec.description.
- ratio SLI -> spec.indicator.spec.ratioMetric {counter: true, good|bad, total}, each a metricSource of type
  Prometheus whose spec.query is the plain selector (several selectors: `sum(a) + sum(b)`).
- threshold SLI -> thresholdMetric whose query is 1 for a good minute and 0 for a bad one, with the
  objective `op: gte, value: 1`.
- window -> timeWindow: rolling {duration: 28d|30d, isRolling: true}; calendar-month {duration: 1M,
  isRolling: false, calendar: {startTime, timeZone: Asia/Seoul}}.
- budgeting_method -> budgetingMethod Occurrences | Timeslices | RatioTimeslices; target, timeslice_target,
  timeslice_window -> objectives[0].target, timeSliceTarget, timeSliceWindow.
- What OpenSLO cannot carry goes into metadata.annotations under `gamesre/`: owner, no-data, min-events,
  count-gamedays-against-budget, runbook-url, and `gamesre/sli`, the SLI's exact structure as JSON
  (selectors with exact and regex matchers, threshold conditions).

Import prefers `gamesre/sli` and checks that the OpenSLO queries are the ones it generates (an edited query
with a stale annotation is an error, never silently ignored). Without the annotation, plain-selector
ratio queries are parsed; other queries are rejected with the field named.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import yaml

from gamesre.core.config import SpecError, yaml_error
from gamesre.core.contract import Contract
from gamesre.slo.spec import RatioSli, Selector, Slo, SloCatalog, ThresholdSli, parse_slos

API_VERSION = "openslo/v1"
PREFIX = "gamesre/"
CALENDAR_START = "2020-01-01 00:00:00"
TIMEZONE = "Asia/Seoul"

_METHODS = {"occurrences": "Occurrences", "timeslices": "Timeslices", "ratio-timeslices": "RatioTimeslices"}
_METHODS_BACK = {v: k for k, v in _METHODS.items()}
_ROLLING = {"rolling-28d": "28d", "rolling-30d": "30d"}
_ROLLING_BACK = {v: k for k, v in _ROLLING.items()}


def _source(query: str) -> dict[str, Any]:
    return {"metricSource": {"type": "Prometheus", "spec": {"query": query}}}


def ratio_query(selectors: Iterable[Selector]) -> str:
    """One selector as is; several as the sum of their sums."""
    sels = list(selectors)
    if len(sels) == 1:
        return sels[0].promql()
    return " + ".join(f"sum({s.promql()})" for s in sels)


def _indicator(slo: Slo) -> dict[str, Any]:
    sli = slo.sli
    if isinstance(sli, ThresholdSli):
        spec: dict[str, Any] = {"thresholdMetric": _source(sli.promql())}
    else:
        ratio: dict[str, Any] = {"counter": True}
        if sli.uses_bad:
            ratio["bad"] = _source(ratio_query(sli.bad_selectors()))
        else:
            ratio["good"] = _source(ratio_query(sli.good_selectors()))
        ratio["total"] = _source(ratio_query(sli.total_selectors()))
        spec = {"ratioMetric": ratio}
    return {"metadata": {"name": f"{slo.name}-sli"}, "spec": spec}


def _time_window(slo: Slo) -> list[dict[str, Any]]:
    if slo.window == "calendar-month":
        return [{"duration": "1M", "isRolling": False, "calendar": {"startTime": CALENDAR_START, "timeZone": TIMEZONE}}]
    return [{"duration": _ROLLING[slo.window], "isRolling": True}]


def to_openslo(slo: Slo) -> dict[str, Any]:
    """The SLO as an OpenSLO v1 document (a dict ready for YAML)."""
    annotations = {
        f"{PREFIX}owner": slo.owner,
        f"{PREFIX}no-data": slo.no_data,
        f"{PREFIX}min-events": str(slo.min_events),
        f"{PREFIX}count-gamedays-against-budget": "true" if slo.count_gamedays_against_budget else "false",
        f"{PREFIX}sli": json.dumps(
            slo.sli.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":")
        ),
    }
    if slo.runbook_url is not None:
        annotations[f"{PREFIX}runbook-url"] = slo.runbook_url
    objective: dict[str, Any] = {"displayName": slo.name, "target": slo.target}
    if slo.budgeting_method != "occurrences":
        objective["timeSliceWindow"] = slo.timeslice_window
    if slo.timeslice_target is not None:
        objective["timeSliceTarget"] = slo.timeslice_target
    if slo.sli.kind == "threshold":
        objective["op"] = "gte"
        objective["value"] = 1
    return {
        "apiVersion": API_VERSION,
        "kind": "SLO",
        "metadata": {"name": slo.name, "displayName": slo.name, "annotations": annotations},
        "spec": {
            "description": slo.description,
            "service": slo.service,
            "indicator": _indicator(slo),
            "timeWindow": _time_window(slo),
            "budgetingMethod": _METHODS[slo.budgeting_method],
            "objectives": [objective],
        },
    }


def to_openslo_yaml(slos: Iterable[Slo]) -> str:
    """A multi-document OpenSLO YAML stream, one SLO per document."""
    return yaml.safe_dump_all([to_openslo(s) for s in slos], sort_keys=False, allow_unicode=True, width=10_000)


# --- import ---------------------------------------------------------------------------------------------

_SELECTOR = re.compile(r"^\s*(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(?P<body>.*)\})?\s*$", re.S)
_MATCHER = re.compile(
    r'\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*(?:,|$)', re.S
)
_SUM = re.compile(r"^\s*sum\((?P<inner>.*)\)\s*$", re.S)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def parse_selector(text: str) -> Selector:
    """A plain PromQL selector (`metric{a="x",b=~"y"}`) back into a Selector; ValueError otherwise."""
    match = _SELECTOR.match(text)
    if not match:
        raise ValueError(f'{text.strip()!r} is not a plain selector metric{{label="value"}}')
    exact: dict[str, str] = {}
    regex: dict[str, str] = {}
    body = match.group("body") or ""
    pos = 0
    while pos < len(body.rstrip()):
        m = _MATCHER.match(body, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot parse the matchers of {text.strip()!r} at {body[pos:]!r}")
        if m.group("op") in ("!=", "!~"):
            raise ValueError(f"negative matcher {m.group('label')}{m.group('op')} is not supported in an SLI selector")
        (regex if m.group("op") == "=~" else exact)[m.group("label")] = _unescape(m.group("value"))
        pos = m.end()
    return Selector(metric=match.group("name"), matchers=exact, matchers_regex=regex)


def parse_ratio_query(query: str) -> list[Selector]:
    """The selectors of a ratio query: one plain selector, or `sum(a) + sum(b) ...`."""
    parts = [p for p in re.split(r"\)\s*\+\s*sum\(", query)]
    if len(parts) == 1:
        inner = _SUM.match(query)
        return [parse_selector(inner.group("inner") if inner else query)]
    parts[0] = parts[0].strip().removeprefix("sum(")
    parts[-1] = parts[-1].strip().removesuffix(")")
    return [parse_selector(p) for p in parts]


def _get(doc: Any, path: str, source: str, name: str) -> Any:
    node = doc
    for key in path.split("."):
        if isinstance(node, list):
            node = node[int(key)] if key.isdigit() and int(key) < len(node) else None
        elif isinstance(node, dict):
            node = node.get(key)
        else:
            node = None
        if node is None:
            raise SpecError(f"{source}: slo {name!r}: {path}: missing")
    return node


def _query(doc: Any, side: str, source: str, name: str) -> tuple[str, str]:
    path = f"spec.indicator.spec.ratioMetric.{side}.metricSource"
    metric_source = _get(doc, path, source, name)
    if metric_source.get("type") != "Prometheus":
        raise SpecError(f"{source}: slo {name!r}: {path}.type: only Prometheus metric sources are supported")
    return f"{path}.spec.query", str(_get(doc, f"{path}.spec.query", source, name))


def _sli_from_doc(doc: dict[str, Any], annotations: dict[str, str], source: str, name: str) -> dict[str, Any]:
    indicator = _get(doc, "spec.indicator.spec", source, name)
    annotated = annotations.get(f"{PREFIX}sli")
    if annotated is not None:
        try:
            raw = json.loads(annotated)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{source}: slo {name!r}: metadata.annotations.{PREFIX}sli: not JSON: {exc}") from None
        _check_queries_match(doc, raw, indicator, source, name)
        return raw
    if "ratioMetric" not in indicator:
        raise SpecError(
            f"{source}: slo {name!r}: spec.indicator.spec: "
            f"only ratioMetric can be imported without the {PREFIX}sli annotation"
        )
    sides = [s for s in ("good", "bad", "total") if s in indicator["ratioMetric"]]
    sli: dict[str, Any] = {"kind": "ratio"}
    for side in sides:
        path, query = _query(doc, side, source, name)
        try:
            sli[side] = [s.model_dump() for s in parse_ratio_query(query)]
        except ValueError as exc:
            raise SpecError(f"{source}: slo {name!r}: {path}: {exc}") from None
    return sli


def _check_queries_match(doc: dict[str, Any], raw: Any, indicator: dict[str, Any], source: str, name: str) -> None:
    try:
        kind = raw.get("kind") if isinstance(raw, dict) else None
        sli: RatioSli | ThresholdSli = (ThresholdSli if kind == "threshold" else RatioSli).model_validate(raw)
    except ValueError:
        return  # the full validation reports the annotation's problems with field paths
    if isinstance(sli, ThresholdSli):
        path = "spec.indicator.spec.thresholdMetric.metricSource.spec.query"
        expected = {path: sli.promql()}
    else:
        expected = {
            f"spec.indicator.spec.ratioMetric.{side}.metricSource.spec.query": ratio_query(sels)
            for side, sels in (
                ("good", sli.good_selectors()),
                ("bad", sli.bad_selectors()),
                ("total", sli.total_selectors()),
            )
            if sels
        }
    for path, query in expected.items():
        actual = _get(doc, path, source, name)
        if str(actual).strip() != query:
            raise SpecError(
                f"{source}: slo {name!r}: {path}: "
                f"query {actual!r} does not match the {PREFIX}sli annotation ({query!r})"
            )


def _window(doc: dict[str, Any], source: str, name: str) -> str:
    windows = _get(doc, "spec.timeWindow", source, name)
    if not isinstance(windows, list) or len(windows) != 1:
        raise SpecError(f"{source}: slo {name!r}: spec.timeWindow: expected exactly one time window")
    w = windows[0]
    if w.get("isRolling") is True and w.get("duration") in _ROLLING_BACK:
        return _ROLLING_BACK[w["duration"]]
    if w.get("isRolling") is False and w.get("duration") == "1M":
        tz = (w.get("calendar") or {}).get("timeZone")
        if tz != TIMEZONE:
            raise SpecError(
                f"{source}: slo {name!r}: spec.timeWindow[0].calendar.timeZone: "
                f"{tz!r}, only {TIMEZONE} months are supported"
            )
        return "calendar-month"
    raise SpecError(
        f"{source}: slo {name!r}: spec.timeWindow[0]: {w!r} is not a rolling 28d/30d window or a calendar month (1M)"
    )


def from_openslo(doc: Any, source: str = "openslo.yaml", index: int = 0) -> dict[str, Any]:
    """One OpenSLO SLO document as a raw slos.yaml item (validate it with parse_slos)."""
    if not isinstance(doc, dict) or doc.get("apiVersion") != API_VERSION or doc.get("kind") != "SLO":
        raise SpecError(f"{source}: document #{index}: expected apiVersion {API_VERSION} and kind SLO")
    name = str(_get(doc, "metadata.name", source, f"#{index}"))
    annotations = {str(k): str(v) for k, v in (doc["metadata"].get("annotations") or {}).items()}
    method = _get(doc, "spec.budgetingMethod", source, name)
    if method not in _METHODS_BACK:
        raise SpecError(
            f"{source}: slo {name!r}: spec.budgetingMethod: {method!r} is not one of {', '.join(_METHODS_BACK)}"
        )
    objectives = _get(doc, "spec.objectives", source, name)
    if not isinstance(objectives, list) or len(objectives) != 1:
        raise SpecError(f"{source}: slo {name!r}: spec.objectives: expected exactly one objective")
    objective = objectives[0]
    service = _get(doc, "spec.service", source, name)
    raw: dict[str, Any] = {
        "name": name,
        "service": service,
        "owner": annotations.get(f"{PREFIX}owner", service),
        "description": doc["spec"].get("description") or name,
        "sli": _sli_from_doc(doc, annotations, source, name),
        "target": _get(doc, "spec.objectives.0.target", source, name),
        "window": _window(doc, source, name),
        "budgeting_method": _METHODS_BACK[method],
        "no_data": annotations.get(f"{PREFIX}no-data", "skip"),
        "count_gamedays_against_budget": annotations.get(f"{PREFIX}count-gamedays-against-budget", "true") == "true",
    }
    if "timeSliceWindow" in objective:
        raw["timeslice_window"] = objective["timeSliceWindow"]
    if "timeSliceTarget" in objective:
        raw["timeslice_target"] = objective["timeSliceTarget"]
    if f"{PREFIX}min-events" in annotations:
        try:
            raw["min_events"] = int(annotations[f"{PREFIX}min-events"])
        except ValueError:
            raise SpecError(
                f"{source}: slo {name!r}: metadata.annotations.{PREFIX}min-events: not an integer"
            ) from None
    if f"{PREFIX}runbook-url" in annotations:
        raw["runbook_url"] = annotations[f"{PREFIX}runbook-url"]
    return raw


def from_openslo_yaml(text: str, source: str = "openslo.yaml", contract: Contract | None = None) -> SloCatalog:
    """Validated SLOs from an OpenSLO YAML stream (documents of other kinds are ignored)."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise yaml_error(exc, source) from exc
    items = [from_openslo(d, source, i) for i, d in enumerate(docs) if isinstance(d, dict) and d.get("kind") == "SLO"]
    if not items:
        raise SpecError(f"{source}: no OpenSLO documents of kind SLO")
    return parse_slos({"version": 1, "slos": items}, source, contract)


__all__ = ["from_openslo", "from_openslo_yaml", "parse_ratio_query", "parse_selector", "to_openslo", "to_openslo_yaml"]
