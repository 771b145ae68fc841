"""Severity: the first matching rule decides, the budget rule only raises, and people's changes are recorded."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gamesre.incidents.payload import Alert
from gamesre.incidents.severity import (
    SEVERITIES,
    SeverityFacts,
    change_severity,
    classify,
    higher,
)
from gamesre.incidents.spec import IncidentsSpec, load_incidents, parse_incidents

SPEC = load_incidents()


def page(name: str = "SloBurnPageFast", **labels: str) -> Alert:
    return Alert("00000000000000a1", "firing", {"alertname": name, "severity": "page", **labels}, {},
                 datetime(2026, 12, 7, 1, 0, tzinfo=UTC), None, "")


def spec_with(rules: list[dict[str, Any]], default: str = "sev3",
              budget_rule: dict[str, Any] | None = None) -> IncidentsSpec:
    raw = SPEC.model_dump()
    raw["severity"] = {"default": default, "rules": rules,
                       "budget_rule": budget_rule or {"consumed_at_least": 0.2, "at_least": "sev1"}}
    return parse_incidents({"version": 1, "incidents": raw})


def test_severities_run_from_sev0_highest() -> None:
    assert SEVERITIES == ("sev0", "sev1", "sev2", "sev3")
    assert higher("sev2", "sev0") == "sev0"
    assert higher("sev1", "sev3") == "sev1"
    assert higher("sev2", "sev2") == "sev2"
    with pytest.raises(ValueError, match="unknown severity 'p1'"):
        higher("p1", "sev2")


def test_shipped_rules_endpoints_down_is_sev0() -> None:
    d = classify([page("EndpointsDown", service="game-server")], ["game-server"], [], SeverityFacts(), SPEC)
    assert (d.severity, d.rule) == ("sev0", 0)
    assert d.why == ("severity.rules[0] (sev0): no ready endpoint: players cannot reach the service (the game is "
                     "down)",)


def test_shipped_rules_a_fast_burn_is_sev1_and_a_slow_one_the_default() -> None:
    fast = classify([page()], ["game-server"], ["availability"], SeverityFacts(burn_rates={"availability": 14.4}), SPEC)
    assert fast.severity == "sev1"
    assert SPEC.severity.rules[fast.rule or 0].burn_rate_at_least == 14.4
    slow = classify([page()], ["game-server"], ["availability"], SeverityFacts(burn_rates={"availability": 6}), SPEC)
    assert (slow.severity, slow.rule, slow.why) == ("sev2", None, ("no severity rule matched: the default, sev2",))


def test_the_first_matching_rule_wins() -> None:
    spec = spec_with([{"severity": "sev2", "why": "latency", "slos": ["latency"]},
                      {"severity": "sev0", "why": "everyone", "players_affected_at_least": 0.9}])
    d = classify([page()], [], ["latency"], SeverityFacts(players_affected=1.0), spec)
    assert (d.severity, d.rule) == ("sev2", 0)


def test_all_conditions_of_a_rule_must_hold() -> None:
    spec = spec_with([{"severity": "sev0", "why": "x", "alertname": ["EndpointsDown"], "services": ["game-server"]}])
    assert classify([page("EndpointsDown")], ["matchmaking"], [], SeverityFacts(), spec).rule is None
    assert classify([page("EndpointsDown")], ["game-server"], [], SeverityFacts(), spec).rule == 0


def test_alertname_matches_any_page_alert() -> None:
    spec = spec_with([{"severity": "sev1", "why": "x", "alertname": ["EndpointsDown", "DataSaveFailures"]}])
    assert classify([page(), page("DataSaveFailures")], [], [], SeverityFacts(), spec).severity == "sev1"
    assert classify([page()], [], [], SeverityFacts(), spec).severity == "sev3"


def test_labels_match_exactly_on_one_alert() -> None:
    spec = spec_with([{"severity": "sev1", "why": "x", "labels": {"tier": "page_fast", "slo": "availability"}}])
    both = page(tier="page_fast", slo="availability")
    assert classify([both], [], [], SeverityFacts(), spec).severity == "sev1"
    # one label on each of two alerts is not a match: every label must be on the same alert
    split = [page(tier="page_fast"), page(slo="availability")]
    assert classify(split, [], [], SeverityFacts(), spec).severity == "sev3"
    assert classify([page(tier="page_fast_x", slo="availability")], [], [], SeverityFacts(), spec).severity == "sev3"


def test_services_and_slos_match_the_incidents() -> None:
    spec = spec_with([{"severity": "sev1", "why": "saves", "slos": ["data-save-success"]},
                      {"severity": "sev2", "why": "mm", "services": ["matchmaking"]}])
    assert classify([page()], ["game-server"], ["availability", "data-save-success"], SeverityFacts(),
                    spec).severity == "sev1"
    assert classify([page()], ["game-server", "matchmaking"], [], SeverityFacts(), spec).severity == "sev2"
    assert classify([page()], ["game-server"], ["availability"], SeverityFacts(), spec).severity == "sev3"


def test_the_burn_rate_is_the_highest_among_the_incidents_slos() -> None:
    spec = spec_with([{"severity": "sev1", "why": "fast", "burn_rate_at_least": 14.4}])
    facts = SeverityFacts(burn_rates={"availability": 2.0, "latency": 20.0, "matchmaking-success": 50.0})
    assert classify([page()], [], ["availability", "latency"], facts, spec).severity == "sev1"
    # a burn of an SLO that is not the incident's does not count
    assert classify([page()], [], ["availability"], facts, spec).severity == "sev3"
    assert classify([page()], [], ["availability"], SeverityFacts(), spec).severity == "sev3"


def test_players_affected_unknown_never_matches() -> None:
    spec = spec_with([{"severity": "sev1", "why": "many", "players_affected_at_least": 0.25}])
    assert classify([page()], [], [], SeverityFacts(players_affected=0.25), spec).severity == "sev1"
    assert classify([page()], [], [], SeverityFacts(players_affected=0.2), spec).severity == "sev3"
    assert classify([page()], [], [], SeverityFacts(players_affected=None), spec).severity == "sev3"


def test_the_budget_rule_raises_the_severity() -> None:
    facts = SeverityFacts(budget_consumed={"availability": 0.23, "latency": 0.4})
    d = classify([page()], ["game-server"], ["availability"], facts, SPEC)
    assert (d.severity, d.rule) == ("sev1", None)
    assert d.why == ("no severity rule matched: the default, sev2",
                     "the incident consumed 23% of the availability SLO's error budget (at least 20% makes it at "
                     "least sev1): raised from sev2 to sev1")


def test_the_budget_rule_never_lowers_the_severity() -> None:
    facts = SeverityFacts(budget_consumed={"availability": 0.5})
    d = classify([page("EndpointsDown")], ["game-server"], ["availability"], facts, SPEC)
    assert (d.severity, d.rule) == ("sev0", 0)
    assert d.why[1].endswith(": stays sev0")


def test_the_budget_rule_needs_its_share() -> None:
    facts = SeverityFacts(budget_consumed={"availability": 0.19})
    assert classify([page()], [], ["availability"], facts, SPEC).why == (
        "no severity rule matched: the default, sev2",)


def test_a_severity_change_is_recorded_with_its_reason() -> None:
    assert change_severity("sev2", "sev0", "  logins fail for everyone ", "jiwoo") == {
        "from": "sev2", "to": "sev0", "direction": "upgrade", "reason": "logins fail for everyone", "by": "jiwoo"}
    assert change_severity("sev1", "sev3", "impact was one test account", "minho")["direction"] == "downgrade"


@pytest.mark.parametrize(("current", "new", "reason", "by", "message"), [
    ("sev2", "sev1", "", "jiwoo", "needs a reason"),
    ("sev2", "sev1", "   ", "jiwoo", "needs a reason"),
    ("sev2", "sev1", "worse", "", "needs the person"),
    ("sev2", "sev5", "worse", "jiwoo", "unknown severity 'sev5'"),
    ("P1", "sev1", "worse", "jiwoo", "unknown severity 'P1'"),
    ("sev1", "sev1", "same", "jiwoo", "already sev1"),
])
def test_a_severity_change_is_refused_when_incomplete(current: str, new: str, reason: str, by: str,
                                                      message: str) -> None:
    with pytest.raises(ValueError, match=message):
        change_severity(current, new, reason, by)
