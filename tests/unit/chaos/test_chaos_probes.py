"""Probe judging, the monitor's abort rules, the resilience score and the verdict of one experiment."""
from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesre.chaos.catalog import AbortRules, Probe, Tolerance
from gamesre.chaos.probes import (
    VERDICTS,
    Decision,
    MonitorState,
    ProbeReading,
    judge,
    probe_success,
    read_probes,
    resilience_score,
    steady_state,
    verdict,
)

AVAILABILITY = Probe(name="availability", query="sum(rate(ok[30s])) / sum(rate(all[30s]))",
                     tolerance=Tolerance(type="range", min=0.99), weight=2.0)
LATENCY = Probe(name="latency-p95", query="histogram_quantile(0.95, x)", tolerance=Tolerance(type="range", max=0.5))
PASS, FAIL, NO_DATA = 1.0, 0.5, None  # availability values


def baseline(worse: str, max_change: float, **bounds: float) -> Tolerance:
    return Tolerance(type="baseline", worse=worse, max_change=max_change, **bounds)  # type: ignore[arg-type]


# --- judge ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tolerance", "value", "passed", "reason"), [
    (Tolerance(type="range", min=0.99), 0.995, True, "0.995 within >= 0.99"),
    (Tolerance(type="range", min=0.99), 0.99, True, "within"),  # bounds are inclusive
    (Tolerance(type="range", min=0.99), 0.98, False, "0.98 is below 0.99"),
    (Tolerance(type="range", max=0.5), 0.6, False, "0.6 is above 0.5"),
    (Tolerance(type="range", max=0.5), 0.5, True, "within <= 0.5"),
    (Tolerance(type="range", min=0.0, max=1.0), 1.5, False, "1.5 is above 1"),
    (Tolerance(type="range", min=0.0, max=1.0), 0.25, True, "0.25 within 0 <= value <= 1"),
])
def test_judge_range_and_threshold(tolerance: Tolerance, value: float, passed: bool, reason: str) -> None:
    got_passed, got_reason = judge(tolerance, value)

    assert got_passed is passed
    assert reason in got_reason


@pytest.mark.parametrize(("tolerance", "value", "base", "passed", "reason"), [
    # higher is worse: p95 latency may grow by at most 50%
    (baseline("higher", 0.5), 0.29, 0.2, True, "vs baseline 0.2: within 50%"),
    (baseline("higher", 0.5), 0.31, 0.2, False, "0.31 is 55% higher than the baseline 0.2 (at most 50%)"),
    (baseline("higher", 0.5), 0.05, 0.2, True, "within"),  # better is always fine
    # lower is worse: throughput may drop by at most 20%
    (baseline("lower", 0.2), 81.0, 100.0, True, "within 20%"),
    (baseline("lower", 0.2), 79.0, 100.0, False, "79 is 21% lower than the baseline 100"),
    (baseline("lower", 0.2), 150.0, 100.0, True, "within"),
    # the absolute bounds of a baseline tolerance still hold: a bad baseline cannot make a bad value pass
    (baseline("higher", 2.0, max=0.5), 0.55, 0.4, False, "0.55 is above 0.5"),
    (baseline("lower", 0.5, min=0.9), 0.85, 0.95, False, "0.85 is below 0.9"),
    # a zero baseline: no change is fine, any worsening is infinitely worse, an improvement is fine
    (baseline("higher", 0.5), 0.0, 0.0, True, "within"),
    (baseline("higher", 0.5), 0.001, 0.0, False, "higher than the baseline 0"),
    (baseline("lower", 0.5), 0.001, 0.0, True, "within"),
    (baseline("lower", 0.5), -0.001, 0.0, False, "lower than the baseline 0"),
])
def test_judge_against_the_baseline(tolerance: Tolerance, value: float, base: float, passed: bool,
                                    reason: str) -> None:
    got_passed, got_reason = judge(tolerance, value, base)

    assert got_passed is passed, got_reason
    assert reason in got_reason


@pytest.mark.parametrize("base", [None, math.nan, math.inf])
def test_a_baseline_probe_without_a_measured_baseline_is_not_judged(base: float | None) -> None:
    assert judge(baseline("higher", 0.5), 0.3, base) == (None, "no baseline value was measured before injection")


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("tolerance", [Tolerance(type="range", min=0.99), baseline("higher", 0.5)])
def test_no_value_is_no_data_never_a_pass_or_a_fail(tolerance: Tolerance, value: float | None) -> None:
    assert judge(tolerance, value, 0.2) == (None, "no data")


def test_read_probes_turns_a_query_error_into_no_data_with_the_error() -> None:
    readings = read_probes([AVAILABILITY, LATENCY], {"availability": 0.999, "latency-p95": 0.2}, at=100.0,
                           errors={"latency-p95": "Prometheus at http://prom refused the query: HTTP 500"})

    assert readings == [
        ProbeReading("availability", 100.0, 0.999, True, "0.999 within >= 0.99"),
        ProbeReading("latency-p95", 100.0, None, None,
                     "no data: Prometheus at http://prom refused the query: HTTP 500"),
    ]


def test_steady_state_holds_only_when_every_probe_passed() -> None:
    assert steady_state(read_probes([AVAILABILITY, LATENCY], {"availability": 1.0, "latency-p95": 0.1}, 0.0)) == (
        True, "every probe within tolerance")

    holds, reason = steady_state(read_probes([AVAILABILITY, LATENCY], {"availability": 0.9}, 0.0))

    assert not holds
    assert reason == "availability: 0.9 is below 0.99; latency-p95: no data"


# --- MonitorState: the abort rules ------------------------------------------------------------------------------

T0 = 1_000.0


class Monitor:
    """One probe (availability >= 0.99) polled once a second from T0 under the given abort rules."""

    def __init__(self, rules: AbortRules, duration_s: float = 600.0) -> None:
        self.rules = rules
        self.state = MonitorState(started_at=T0, duration_s=duration_s)
        self.at = T0

    def poll(self, value: float | None, *, burn: dict[str, float | None] | None = None,
             kill_switch: bool = False) -> Decision | None:
        self.at += 1
        readings = read_probes([AVAILABILITY], {"availability": value}, self.at)
        return self.state.observe(readings, self.rules, at=self.at, burn_rates=burn, kill_switch=kill_switch)

    def polls(self, *values: float | None) -> list[Decision | None]:
        return [self.poll(v) for v in values]


def rules(n: int, no_data: str = "abort", **more: Any) -> AbortRules:
    return AbortRules(consecutive_failures=n, no_data=no_data, **more)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_aborts_exactly_on_the_nth_consecutive_failure(n: int) -> None:
    monitor = Monitor(rules(n))

    assert monitor.polls(*[FAIL] * (n - 1)) == [None] * (n - 1)
    decision = monitor.poll(FAIL)

    assert decision is not None
    assert (decision.outcome, decision.rule, decision.at) == ("aborted", "consecutive_failures", T0 + n)
    assert decision.reason == f"probe availability failed {n} polls in a row (last: 0.5 is below 0.99)"
    assert monitor.state.polls == n


def test_a_pass_resets_the_streak() -> None:
    monitor = Monitor(rules(3))

    assert monitor.polls(FAIL, FAIL, PASS, FAIL, FAIL) == [None] * 5
    decision = monitor.poll(FAIL)

    assert decision is not None
    assert decision.rule == "consecutive_failures"
    assert monitor.state.streak == {"availability": 3}


def test_no_data_abort_counts_no_data_and_names_it_when_the_whole_streak_had_none() -> None:
    monitor = Monitor(rules(3, "abort"))

    assert monitor.polls(NO_DATA, NO_DATA) == [None, None]
    decision = monitor.poll(NO_DATA)

    assert decision is not None
    assert (decision.outcome, decision.rule) == ("aborted", "no_data")
    assert decision.reason == "probe availability had no data 3 polls in a row (last: no data)"


def test_no_data_abort_mixed_with_failures_is_a_consecutive_failure() -> None:
    monitor = Monitor(rules(3, "abort"))

    decisions = monitor.polls(NO_DATA, FAIL, NO_DATA)

    assert decisions[:2] == [None, None]
    assert decisions[2] is not None
    assert decisions[2].rule == "consecutive_failures"


def test_no_data_ignore_neither_breaks_nor_resets_the_streak() -> None:
    monitor = Monitor(rules(3, "ignore"))

    # no data alone never aborts
    assert monitor.polls(*[NO_DATA] * 10) == [None] * 10
    # and it does not reset a streak of failures either: FAIL, FAIL, (no data), FAIL is 3 in a row
    assert monitor.polls(FAIL, FAIL, NO_DATA, NO_DATA) == [None] * 4
    decision = monitor.poll(FAIL)

    assert decision is not None
    assert decision.rule == "consecutive_failures"
    assert "failed 3 polls in a row" in decision.reason


def test_no_data_ignore_does_not_count_as_a_pass_that_resets() -> None:
    monitor = Monitor(rules(2, "ignore"))

    assert monitor.polls(FAIL, NO_DATA) == [None, None]
    assert monitor.state.streak == {"availability": 1}


def test_the_kill_switch_aborts_first() -> None:
    monitor = Monitor(rules(1, burn_rate=14.4, burn_slos=["availability"]), duration_s=1.0)

    # the probe fails, the SLO burns too fast and the duration is over, all at once: the kill switch wins
    decision = monitor.poll(FAIL, burn={"availability": 50.0}, kill_switch=True)

    assert decision == Decision("aborted", "kill_switch", "the chaos kill switch was turned on", T0 + 1)


def test_the_kill_switch_aborts_a_healthy_experiment() -> None:
    monitor = Monitor(rules(3))

    decision = monitor.poll(PASS, kill_switch=True)

    assert decision is not None
    assert decision.rule == "kill_switch"


def test_a_burn_rate_at_the_threshold_aborts() -> None:
    monitor = Monitor(rules(2, burn_rate=14.4, burn_slos=["availability", "error-rate"], burn_window="1m"))

    assert monitor.poll(PASS, burn={"availability": 14.39, "error-rate": None}) is None
    decision = monitor.poll(PASS, burn={"availability": 14.4, "error-rate": None})

    assert decision is not None
    assert (decision.outcome, decision.rule) == ("aborted", "burn_rate")
    assert decision.reason == "SLO availability burns its error budget at 14.4x over 1m (abort at 14.4x)"
    assert [b["burn"] for b in monitor.state.burns] == [14.39, None, 14.4, None]


def test_a_burn_rate_abort_names_the_fastest_burning_slo() -> None:
    monitor = Monitor(rules(2, burn_rate=14.4, burn_slos=["availability", "error-rate"], burn_window="1m"))

    decision = monitor.poll(PASS, burn={"availability": 15.0, "error-rate": 20.0})

    assert decision is not None
    assert decision.reason == "SLO error-rate burns its error budget at 20.0x over 1m (abort at 14.4x)"


def test_a_failing_probe_is_reported_before_the_burn_rate() -> None:
    monitor = Monitor(rules(1, burn_rate=2.0, burn_slos=["availability"]))

    decision = monitor.poll(FAIL, burn={"availability": 30.0})

    assert decision is not None
    assert decision.rule == "consecutive_failures"


def test_without_a_burn_rule_a_burn_never_aborts() -> None:
    monitor = Monitor(rules(2))

    assert monitor.poll(PASS, burn={"availability": 1000.0}) is None


def test_completes_at_the_duration() -> None:
    monitor = Monitor(rules(2), duration_s=3.0)

    assert monitor.polls(PASS, FAIL) == [None, None]
    decision = monitor.poll(PASS)

    assert decision == Decision("completed", "duration", "the fault ran its whole duration (3s) without breaking an "
                                "abort rule", T0 + 3)


def test_an_abort_on_the_last_poll_wins_over_completion() -> None:
    monitor = Monitor(rules(2), duration_s=2.0)

    decisions = monitor.polls(FAIL, FAIL)

    assert decisions[1] is not None
    assert (decisions[1].outcome, decisions[1].rule) == ("aborted", "consecutive_failures")


def test_the_state_resumes_from_json_mid_run() -> None:
    monitor = Monitor(rules(3, burn_rate=14.4, burn_slos=["availability"]))
    monitor.poll(PASS, burn={"availability": 1.0})
    monitor.polls(FAIL, FAIL)
    stored = json.loads(json.dumps(monitor.state.to_dict(), allow_nan=False))

    resumed = MonitorState.from_dict(stored)

    assert resumed == monitor.state
    assert resumed.polls == 3
    assert resumed.streak == {"availability": 2}
    assert [s[2] for s in resumed.samples["availability"]] == [True, False, False]
    # the resumed state keeps counting the streak: the next failure is the 3rd in a row
    decision = resumed.observe(read_probes([AVAILABILITY], {"availability": FAIL}, T0 + 4), monitor.rules,
                               at=T0 + 4)
    assert decision is not None
    assert decision.rule == "consecutive_failures"


# --- the resilience score ---------------------------------------------------------------------------------------


def samples(*passed: bool | None) -> list[list[Any]]:
    return [[T0 + i, None if p is None else 1.0, p] for i, p in enumerate(passed)]


def test_probe_success_counts_no_data_as_failed_under_abort_and_leaves_it_out_under_ignore() -> None:
    history = samples(True, True, None, False)

    assert probe_success(history, "abort") == 50.0
    assert probe_success(history, "ignore") == pytest.approx(200 / 3)
    assert probe_success(samples(None, None), "ignore") is None
    assert probe_success(samples(None, None), "abort") == 0.0
    assert probe_success([], "abort") is None


def test_resilience_score_by_hand() -> None:
    # availability (weight 2): 3 of 4 polls passed = 75%; latency (weight 1): 1 of 2 = 50%
    # score = (2 x 75 + 1 x 50) / (2 + 1) = 200 / 3
    score, per_probe = resilience_score(
        [AVAILABILITY, LATENCY],
        {"availability": samples(True, True, False, True), "latency-p95": samples(True, False)}, "abort")

    assert per_probe == {"availability": 75.0, "latency-p95": 50.0}
    assert score == pytest.approx(200 / 3)


def test_a_probe_never_judged_is_left_out_of_the_score() -> None:
    score, per_probe = resilience_score(
        [AVAILABILITY, LATENCY], {"availability": samples(True, False), "latency-p95": samples(None, None)},
        "ignore")

    assert per_probe == {"availability": 50.0, "latency-p95": None}
    assert score == 50.0
    assert resilience_score([AVAILABILITY, LATENCY], {}, "abort") == (None, {"availability": None,
                                                                             "latency-p95": None})


@settings(max_examples=200, deadline=None)
@given(probes=st.lists(st.tuples(st.floats(0.01, 100), st.lists(st.sampled_from([True, False, None]),
                                                                   max_size=12)), min_size=1, max_size=6),
       no_data=st.sampled_from(["abort", "ignore"]))
def test_the_score_lies_between_the_worst_and_best_probe(probes: list[tuple[float, list[bool | None]]],
                                                         no_data: str) -> None:
    specs = [Probe(name=f"p{i}", query="up", tolerance=Tolerance(type="range", min=1.0), weight=w)
             for i, (w, _) in enumerate(probes)]
    history = {f"p{i}": samples(*passed) for i, (_, passed) in enumerate(probes)}

    score, per_probe = resilience_score(specs, history, no_data)

    judged = [pct for pct in per_probe.values() if pct is not None]
    assert all(0.0 <= pct <= 100.0 for pct in judged)
    if not judged:
        assert score is None
    else:
        assert score is not None
        assert min(judged) - 1e-9 <= score <= max(judged) + 1e-9


# --- the verdict --------------------------------------------------------------------------------------------------

ABORTED = {"outcome": "aborted", "rule": "consecutive_failures", "reason": "probe availability failed 2 polls"}
COMPLETED = {"outcome": "completed", "rule": "duration", "reason": "the fault ran its whole duration"}
NOT_BACK = {"passed": False, "recovery_time_s": 120, "reason": "latency-p95: 0.9 is above 0.5"}
BACK = {"passed": True, "recovered_within_s": 14.2}
EVERYTHING_WRONG: dict[str, Any] = {"refused": "budget: 10% remains", "dry_run": True, "skipped": "no data",
                                    "error": "the backend failed", "decision": ABORTED, "recovered": False,
                                    "recovery_detail": "gs-1 still has the fault", "steady_after": NOT_BACK}

# each row takes the previous one and removes the reason that won there: the precedence, top down
PRECEDENCE: list[tuple[dict[str, Any], str, str]] = [
    ({}, "refused", "budget: 10% remains"),
    ({"refused": None}, "dry_run", "dry run: gates and steady state checked, nothing injected"),
    ({"dry_run": False}, "skipped", "the steady state did not hold before injection, nothing injected: no data"),
    ({"skipped": None}, "error", "recovery not confirmed, the fault may still be injected: gs-1 still has the fault"),
    ({"recovered": True}, "error", "the backend failed"),
    ({"error": None}, "aborted", "aborted (consecutive_failures): probe availability failed 2 polls"),
    ({"decision": COMPLETED}, "fail", "the steady state did not return within 120s of recovery: latency-p95: 0.9 "
                                      "is above 0.5"),
    ({"steady_after": BACK}, "pass", "the steady state held through the fault and returned 14s after recovery"),
]


def test_verdict_precedence_covers_every_verdict_in_order() -> None:
    arguments = dict(EVERYTHING_WRONG)
    seen = []
    for change, expected, reason in PRECEDENCE:
        arguments.update(change)
        assert verdict(**arguments) == (expected, reason), change
        seen.append(expected)

    assert set(seen) == set(VERDICTS) - {"invalid"}  # decided at validation, before verdict() has a say


def test_an_aborted_run_whose_fault_may_still_be_injected_is_an_error() -> None:
    assert verdict(decision=ABORTED, recovered=False, recovery_detail="gs-1")[0] == "error"


def test_a_run_without_a_decision_or_a_check_after_recovery_is_an_error() -> None:
    assert verdict(decision=None, recovered=True) == ("error", "the monitor gave no decision")
    assert verdict(decision=COMPLETED, recovered=True) == ("error",
                                                           "the steady state after recovery was not checked")
