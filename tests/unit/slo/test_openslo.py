"""OpenSLO v1 export and import: a lossless round trip, readable native fields, and loud mismatches."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gamesre.core.config import SpecError
from gamesre.core.contract import load_contract
from gamesre.slo.openslo import from_openslo_yaml, parse_ratio_query, parse_selector, to_openslo, to_openslo_yaml
from gamesre.slo.spec import Selector, Slo, load_slos, parse_slos

CONTRACT = load_contract()


def test_all_six_slos_round_trip_exactly() -> None:
    catalog = load_slos()
    back = from_openslo_yaml(to_openslo_yaml(catalog))
    assert back.names() == catalog.names()
    for original, imported in zip(catalog, back, strict=True):
        assert imported == original


def test_native_openslo_fields_carry_what_openslo_can() -> None:
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(to_openslo_yaml(load_slos()))}
    availability = docs["availability"]["spec"]
    assert availability["budgetingMethod"] == "Occurrences"
    assert availability["timeWindow"] == [{"duration": "30d", "isRolling": True}]
    assert availability["objectives"] == [{"displayName": "availability", "target": 0.999}]
    ratio = availability["indicator"]["spec"]["ratioMetric"]
    assert ratio["counter"] is True
    assert ratio["good"]["metricSource"] == {
        "type": "Prometheus",
        "spec": {"query": 'game_action_requests_total{code="200",service="game-server"}'},
    }

    error_rate = docs["error-rate"]["spec"]
    assert error_rate["budgetingMethod"] == "RatioTimeslices"
    assert error_rate["timeWindow"][0]["isRolling"] is False
    assert error_rate["timeWindow"][0]["duration"] == "1M"
    assert error_rate["timeWindow"][0]["calendar"]["timeZone"] == "Asia/Seoul"
    assert "bad" in error_rate["indicator"]["spec"]["ratioMetric"]

    capacity = docs["concurrent-sessions"]["spec"]
    assert capacity["budgetingMethod"] == "Timeslices"
    assert capacity["objectives"][0] | {} == {
        "displayName": "concurrent-sessions",
        "target": 0.999,
        "timeSliceWindow": "1m",
        "timeSliceTarget": 1.0,
        "op": "gte",
        "value": 1,
    }
    assert "thresholdMetric" in capacity["indicator"]["spec"]
    annotations = docs["concurrent-sessions"]["metadata"]["annotations"]
    assert annotations["gamesre/no-data"] == "skip" and annotations["gamesre/min-events"] == "1"


def test_import_without_annotations_parses_plain_selectors() -> None:
    doc = to_openslo(load_slos()["error-rate"])
    doc["metadata"]["annotations"] = {"gamesre/owner": "game-server", "gamesre/min-events": "20"}
    (slo,) = from_openslo_yaml(yaml.safe_dump(doc))
    assert slo == load_slos()["error-rate"].model_copy(update={"runbook_url": None})
    assert (
        slo.sli.kind == "ratio"
        and slo.sli.bad_selectors()[0].matchers_regex["error_type"] == "internal|timeout|database|dependency"
    )


def test_an_edited_query_with_a_stale_annotation_is_an_error() -> None:
    doc = to_openslo(load_slos()["availability"])
    doc["spec"]["indicator"]["spec"]["ratioMetric"]["good"]["metricSource"]["spec"]["query"] = (
        'game_action_requests_total{code="500",service="game-server"}'
    )
    with pytest.raises(
        SpecError,
        match=r"openslo.yaml: slo 'availability': spec.indicator.spec.ratioMetric.good.metricSource.spec.query: "
        r".* does not match the gamesre/sli annotation",
    ):
        from_openslo_yaml(yaml.safe_dump(doc))


def test_imported_specs_are_checked_against_the_contract() -> None:
    doc = to_openslo(load_slos()["availability"])
    del doc["metadata"]["annotations"]["gamesre/sli"]
    doc["spec"]["indicator"]["spec"]["ratioMetric"]["good"]["metricSource"]["spec"]["query"] = (
        'game_action_requests_total{code="201",service="game-server"}'
    )
    with pytest.raises(
        SpecError, match=r"openslo.yaml: slo 'availability': sli.good\[0\].matchers.code: value '201' not in contract"
    ):
        from_openslo_yaml(yaml.safe_dump(doc))


def test_unsupported_windows_are_named() -> None:
    doc = to_openslo(load_slos()["latency"])
    doc["spec"]["timeWindow"] = [{"duration": "7d", "isRolling": True}]
    with pytest.raises(SpecError, match=r"slo 'latency': spec.timeWindow\[0\]: .* not a rolling 28d/30d window"):
        from_openslo_yaml(yaml.safe_dump(doc))


def test_selector_parser_reads_escapes_and_rejects_negative_matchers() -> None:
    sel = parse_selector(r'm_total{b="x\"y",a=~"p|q"}')
    assert sel == Selector(metric="m_total", matchers={"b": 'x"y'}, matchers_regex={"a": "p|q"})
    assert parse_selector(sel.promql()) == sel
    with pytest.raises(ValueError, match="negative matcher"):
        parse_selector('m_total{a!="x"}')
    assert parse_ratio_query('sum(a_total{x="1"}) + sum(b_total)') == [
        Selector(metric="a_total", matchers={"x": "1"}),
        Selector(metric="b_total"),
    ]


# --- hypothesis: any valid spec survives the round trip ---------------------------------------------------

_COUNTER_SERIES = {
    service: [
        (series, m)
        for m in CONTRACT.metrics.values()
        if m.service in (service, "any") and m.type in ("counter", "histogram")
        for series in ((m.name,) if m.type == "counter" else (f"{m.name}_count", f"{m.name}_bucket"))
    ]
    for service in CONTRACT.services
}
_GAUGES = {
    service: [m for m in CONTRACT.metrics.values() if m.type == "gauge" and m.service in (service, "any")]
    for service in CONTRACT.services
}


@st.composite
def selectors(draw: st.DrawFn, service: str, kind: str = "counter") -> dict[str, Any]:
    if kind == "counter":
        series, metric = draw(st.sampled_from(_COUNTER_SERIES[service]))
    else:
        metric = draw(st.sampled_from(_GAUGES[service]))
        series = metric.name
    matchers: dict[str, str] = {"service": service}
    regex: dict[str, str] = {}
    if series.endswith("_bucket"):
        matchers["le"] = draw(st.sampled_from([*(repr(b) for b in metric.buckets), "+Inf"]))
    for label in draw(st.lists(st.sampled_from(["track", *metric.labels]), unique=True, max_size=3)):
        values = draw(st.lists(st.sampled_from(CONTRACT.label_values[label]), min_size=1, unique=True, max_size=3))
        if len(values) == 1 and draw(st.booleans()):
            matchers[label] = values[0]
        else:
            regex[label] = "|".join(values)
    return {"metric": series, "matchers": matchers, "matchers_regex": regex}


# What a description may hold (gamesre.slo.spec.Description): no control characters but tab and newline, no
# Unicode line or paragraph separators.
DESCRIPTION_CHARS = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), whitelist_characters="\t\n")
OWNER_CHARS = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))  # gamesre.slo.spec.OneLine

@st.composite
def slo_items(draw: st.DrawFn) -> dict[str, Any]:
    service = draw(st.sampled_from(sorted(CONTRACT.services)))
    threshold = draw(st.booleans())
    if threshold:
        conditions = []
        for i in range(draw(st.integers(1, 3))):
            if draw(st.booleans()):
                conditions.append(
                    {
                        "kind": "gauge",
                        "name": f"c{i}",
                        "selector": draw(selectors(service, "gauge")),
                        "over_time": draw(st.sampled_from(["max", "min", "avg", "last"])),
                        "aggregate": draw(st.sampled_from(["sum", "max", "min", "avg"])),
                        "op": draw(st.sampled_from(["<", "<=", ">", ">="])),
                        "threshold": draw(st.floats(-1e9, 1e9, allow_nan=False)),
                    }
                )
            else:
                conditions.append(
                    {
                        "kind": "counter_share",
                        "name": f"c{i}",
                        "description": draw(st.text(DESCRIPTION_CHARS, max_size=20)),
                        "part": draw(st.lists(selectors(service), min_size=1, max_size=2)),
                        "whole": draw(st.lists(selectors(service), min_size=1, max_size=2)),
                        "max_share": draw(st.floats(0, 1)),
                    }
                )
        sli: dict[str, Any] = {"kind": "threshold", "conditions": conditions}
        method = "timeslices"
    else:
        side = draw(st.sampled_from(["good", "bad"]))
        sli = {
            "kind": "ratio",
            side: draw(st.lists(selectors(service), min_size=1, max_size=3)),
            "total": draw(st.lists(selectors(service), min_size=1, max_size=3)),
        }
        method = draw(st.sampled_from(["occurrences", "timeslices", "ratio-timeslices"]))
    item: dict[str, Any] = {
        "name": draw(st.from_regex(r"[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,5}){0,2}", fullmatch=True)),
        "service": service,
        "owner": draw(st.text(OWNER_CHARS, min_size=1, max_size=20)),
        "description": draw(st.text(DESCRIPTION_CHARS, min_size=1, max_size=200)),
        "sli": sli,
        "target": draw(st.floats(min_value=1e-6, max_value=1 - 1e-9, exclude_max=False)),
        "window": draw(st.sampled_from(["rolling-28d", "rolling-30d", "calendar-month"])),
        "budgeting_method": method,
        "no_data": "skip" if method == "occurrences" else draw(st.sampled_from(["good", "bad", "skip"])),
        "min_events": 1 if threshold else draw(st.integers(1, 10**9)),
        "count_gamedays_against_budget": draw(st.booleans()),
    }
    if method == "timeslices":
        item["timeslice_target"] = draw(st.floats(min_value=1e-6, max_value=1.0))
    if draw(st.booleans()):
        item["runbook_url"] = draw(st.from_regex(r"https://[a-z]{1,10}\.example/[a-z0-9/#-]{0,20}", fullmatch=True))
    return item


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(slo_items())
def test_any_valid_spec_round_trips_through_openslo(item: dict[str, Any]) -> None:
    (slo,) = parse_slos({"version": 1, "slos": [item]}, "generated.yaml", CONTRACT)
    text = to_openslo_yaml([slo])
    (back,) = from_openslo_yaml(text, contract=CONTRACT)
    assert back == slo
    assert isinstance(back, Slo)
    # the annotation is canonical JSON of the SLI: exporting again gives the same text
    assert to_openslo_yaml([back]) == text
    assert json.loads(yaml.safe_load(text)["metadata"]["annotations"]["gamesre/sli"])["kind"] == slo.sli.kind
