"""SLO spec validation: the mission's six SLOs load, and every error names the file, the SLO and the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from gamesre.core.config import SpecError
from gamesre.core.contract import load_contract
from gamesre.slo.spec import POLICIES_PATH, SLOS_PATH, Selector, load_policies, load_slos, parse_policies, parse_slos

SOURCE = "slos.yaml"


def raw_slos() -> dict[str, Any]:
    return yaml.safe_load(SLOS_PATH.read_text())


def raw_item(name: str) -> dict[str, Any]:
    return copy.deepcopy(next(s for s in raw_slos()["slos"] if s["name"] == name))


def errors_for(item: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        parse_slos({"version": 1, "slos": [item]}, SOURCE)
    return str(info.value)


def test_the_mission_slos_load_with_their_kinds_windows_and_methods() -> None:
    catalog = load_slos()
    got = {s.name: (s.sli.kind, s.window, s.budgeting_method, s.target) for s in catalog}
    assert got == {
        "availability": ("ratio", "rolling-30d", "occurrences", 0.999),
        "latency": ("ratio", "rolling-30d", "occurrences", 0.95),
        "error-rate": ("ratio", "calendar-month", "ratio-timeslices", 0.999),
        "concurrent-sessions": ("threshold", "rolling-28d", "timeslices", 0.999),
        "matchmaking-success": ("ratio", "rolling-28d", "occurrences", 0.95),
        "data-save-success": ("ratio", "calendar-month", "occurrences", 0.9999),
    }
    assert catalog["matchmaking-success"].service == "matchmaking"


def test_latency_is_the_half_second_bucket_over_the_count_not_a_percentile() -> None:
    sli = load_slos()["latency"].sli
    assert sli.kind == "ratio"
    assert [s.promql() for s in sli.good_selectors()] == [
        'game_action_duration_seconds_bucket{le="0.5",service="game-server"}'
    ]
    assert [s.promql() for s in sli.total_selectors()] == ['game_action_duration_seconds_count{service="game-server"}']
    assert 0.5 in load_contract().metric("game_action_duration_seconds").buckets


def test_error_rate_counts_server_errors_by_type_and_availability_every_non_200() -> None:
    catalog = load_slos()
    availability, error_rate = catalog["availability"].sli, catalog["error-rate"].sli
    assert availability.kind == error_rate.kind == "ratio"
    assert not availability.uses_bad and error_rate.uses_bad
    assert availability.good_selectors()[0].matchers["code"] == "200"
    (bad,) = error_rate.bad_selectors()
    assert bad.metric == "game_action_errors_total"
    assert bad.matchers_regex == {"error_type": "internal|timeout|database|dependency"}
    assert error_rate.good_selectors() == ()


def test_capacity_threshold_is_the_contracts_session_capacity() -> None:
    slo = load_slos()["concurrent-sessions"]
    assert slo.sli.kind == "threshold"
    peak, rejections = slo.sli.conditions
    assert peak.kind == "gauge" and peak.threshold == load_contract().max_concurrent_sessions
    assert peak.promql() == 'sum(max_over_time(game_sessions_active{service="game-server"}[1m]))'
    assert peak.holds(100_000) and not peak.holds(100_001)
    assert rejections.kind == "counter_share" and rejections.max_share == 0.001
    assert rejections.holds(0.0) and not rejections.holds(0.5)
    assert " offset 1m" in rejections.promql()


def test_policies_load_with_the_workbook_tiers() -> None:
    policy = load_policies(POLICIES_PATH)
    tiers = {t.name: (t.severity, t.long_window, t.short_window, t.budget_fraction) for t in policy.burn_alerts}
    assert tiers == {
        "page_fast": ("page", "1h", "5m", 0.02),
        "page_slow": ("page", "6h", "30m", 0.05),
        "ticket_fast": ("ticket", "1d", "2h", 0.10),
        "ticket_slow": ("ticket", "3d", "6h", 0.10),
    }
    assert [round(t.factor(30 * 86400), 9) for t in policy.burn_alerts] == [14.4, 6.0, 3.0, 1.0]
    assert (policy.budget.deploy_freeze, policy.budget.rollback) == (0.5, 0.8)
    assert policy.evening_peak.strictness == 1.2


def test_selector_promql_is_plain_sorted_and_escaped() -> None:
    sel = Selector(
        metric="m_total", matchers={"service": "a", "code": 'x"y\\z'}, matchers_regex={"action": "login|move"}
    )
    assert sel.promql() == 'm_total{code="x\\"y\\\\z",service="a",action=~"login|move"}'
    assert Selector(metric="m_total").promql() == "m_total"


# --- errors name file, SLO and field -------------------------------------------------------------------


def test_a_label_value_outside_the_contract_is_named_precisely() -> None:
    item = raw_item("availability")
    item["sli"]["good"][0]["matchers"]["code"] = "201"
    assert errors_for(item) == (
        "slos.yaml: slo 'availability': sli.good[0].matchers.code: value '201' not in contract label_values.code"
    )


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda i: i["sli"]["total"][0].update(metric="game_actions_total"),
            "sli.total[0].metric: metric 'game_actions_total' is not in the metric contract",
        ),
        (
            lambda i: i["sli"]["total"][0].update(metric="game_sessions_active"),
            "sli.total[0].metric: 'game_sessions_active' is a gauge, not a counter",
        ),
        (
            lambda i: i["sli"]["good"][0].update(
                metric="game_action_duration_seconds_bucket", matchers={"service": "game-server"}
            ),
            "sli.good[0].metric: a histogram bucket needs an le matcher",
        ),
        (
            lambda i: i["sli"]["good"][0].update(
                metric="game_action_duration_seconds_sum", matchers={"service": "game-server"}
            ),
            "is a sum of observed values, not a count of events",
        ),
        (
            lambda i: i["sli"]["good"][0]["matchers"].update(mode="ranked"),
            "sli.good[0].matchers.mode: label 'mode' is not a label of game_action_requests_total",
        ),
        (
            lambda i: i["sli"]["good"][0]["matchers"].pop("service"),
            "sli.good[0].matchers.service: missing: every selector pins service: game-server",
        ),
        (
            lambda i: i["sli"]["good"][0]["matchers"].update(service="matchmaking"),
            "sli.good[0].matchers.service: value 'matchmaking' is not the SLO's service 'game-server'",
        ),
        (
            lambda i: i["sli"]["good"][0].update(matchers_regex={"action": "jump|fly"}),
            "sli.good[0].matchers_regex.action: regex 'jump|fly' matches no value in contract label_values.action",
        ),
        (
            lambda i: i["sli"]["good"][0]["matchers"].update(code=200),
            "sli.good[0].matchers.code: Input should be a valid string",
        ),
        (lambda i: i.update(target=1.0), "target: Input should be less than 1"),
        (
            lambda i: i.update(window="rolling-7d"),
            "window: Input should be 'rolling-28d', 'rolling-30d' or 'calendar-month'",
        ),
        (lambda i: i.update(no_data="bad"), "no_data: must be skip for occurrences"),
        (
            lambda i: i.update(budgeting_method="timeslices"),
            "timeslice_target: required for budgeting_method timeslices",
        ),
        (lambda i: i.update(colour="blue"), "colour: unknown field"),
        (lambda i: i.update(owner="game\x85server"), "owner: String should match pattern"),
        (lambda i: i["sli"].update(bad=i["sli"]["good"]), "sli.good: a ratio SLI has exactly one of good or bad"),
        (lambda i: i.update(service="billing"), "service: 'billing' is not a service in the contract"),
    ],
)
def test_errors_name_the_file_the_slo_and_the_field(mutate: Any, expected: str) -> None:
    item = raw_item("availability")
    mutate(item)
    message = errors_for(item)
    assert message.startswith("slos.yaml: slo 'availability': ")
    assert expected in message


def test_matchmaking_metric_cannot_serve_a_game_server_slo() -> None:
    item = raw_item("availability")
    item["sli"]["good"][0] = {"metric": "matchmaking_requests_total", "matchers": {"service": "game-server"}}
    assert (
        "sli.good[0].metric: metric 'matchmaking_requests_total' belongs to service 'matchmaking', not 'game-server'"
        in errors_for(item)
    )


def test_threshold_condition_errors_name_the_condition_path() -> None:
    item = raw_item("concurrent-sessions")
    item["sli"]["conditions"][0]["selector"]["metric"] = "game_session_admissions_total"
    item["sli"]["conditions"][1]["whole"][0]["matchers"]["admission_result"] = "queued"
    message = errors_for(item)
    assert (
        "slo 'concurrent-sessions': sli.conditions[0].selector.metric: "
        "'game_session_admissions_total' is a counter, a gauge condition needs a gauge" in message
    )
    assert (
        "slo 'concurrent-sessions': sli.conditions[1].whole[0].matchers.admission_result: "
        "value 'queued' not in contract label_values.admission_result" in message
    )


def test_threshold_sli_must_use_timeslices() -> None:
    item = raw_item("concurrent-sessions")
    item["budgeting_method"] = "occurrences"
    item.pop("timeslice_target")
    assert "slo 'concurrent-sessions': budgeting_method: a threshold SLI can only use timeslices" in errors_for(item)


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(
        SpecError, match=r"slos.yaml: slo 'latency': name: duplicate SLO name \(first defined as item #0\)"
    ):
        parse_slos({"version": 1, "slos": [raw_item("latency"), raw_item("latency")]}, SOURCE)


def test_every_problem_is_reported_not_just_the_first() -> None:
    a, b = raw_item("availability"), raw_item("latency")
    a["target"] = 2
    b["sli"]["good"][0]["matchers"]["le"] = "0.3"
    with pytest.raises(SpecError) as info:
        parse_slos({"version": 1, "slos": [a, b]}, SOURCE)
    lines = str(info.value).splitlines()
    assert "slos.yaml: slo 'availability': target: Input should be less than 1" in lines
    assert any(
        line.startswith("slos.yaml: slo 'latency': sli.good[0].matchers.le: value '0.3' is not a bucket")
        for line in lines
    )


def test_yaml_syntax_errors_name_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "slos.yaml"
    bad.write_text("version: 1\nslos:\n  - name: [unclosed\n")
    with pytest.raises(SpecError, match=r"slos.yaml: line \d+, column \d+: YAML syntax error"):
        load_slos(bad)


def test_an_unnamed_item_is_named_by_position() -> None:
    item = raw_item("availability")
    del item["name"]
    assert errors_for(item).startswith("slos.yaml: slo #0: name: Field required")


def test_policy_errors_name_file_and_field() -> None:
    raw = yaml.safe_load(POLICIES_PATH.read_text())
    raw["burn_alerts"][1]["long_window"] = "4h"
    raw["budget"]["rollback"] = 0.4
    with pytest.raises(SpecError) as info:
        parse_policies(raw, "policies.yaml")
    message = str(info.value)
    assert "policies.yaml: burn_alerts[1].long_window: '4h' is not one of the computed burn windows" in message
    assert "policies.yaml: budget.rollback: must be above deploy_freeze" in message
