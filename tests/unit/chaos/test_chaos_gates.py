"""The game-day safety gates: the evening peak, the error budget, incidents, the kill switch and the lock; and all
of them judged together over the gathered facts."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gamesre.calendar import load_calendar
from gamesre.chaos.catalog import load_catalog
from gamesre.chaos.gates import (
    GateFacts,
    budget_gate,
    evening_peak_gate,
    exclusive_gate,
    experiment_span,
    incident_gate,
    judge,
    kill_switch_gate,
    kill_switch_on,
    refusal,
)
from gamesre.chaos.request import ExperimentRun, build_run
from gamesre.core.gates import AlertsRead
from gamesre.core.time import KST
from gamesre.slo.spec import Policy, load_policies


@pytest.fixture(scope="module")
def policy() -> Policy:
    loaded = load_policies()
    # what the cases below are written for
    assert (loaded.evening_peak.start, loaded.evening_peak.end) == ("18:00", "22:00")
    assert loaded.state.stale_after == "2h"
    return loaded


def kst(hour: int, minute: int = 0, second: int = 0, day: int = 25) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=KST)


# --- evening peak ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "span", "hit"), [
    (kst(17, 30), timedelta(minutes=45), "18:00"),  # starts before the peak and runs into it
    (kst(17, 59, 30), timedelta(seconds=40), "18:00"),  # runs into it between two whole minutes
    (kst(17, 30), timedelta(minutes=30), "18:00"),  # ends exactly at 18:00: the span is closed, it touches it
    (kst(19, 0), timedelta(minutes=5), "19:00"),  # inside
    (kst(21, 59), timedelta(minutes=10), "21:59"),  # starts in the last minute of the peak
    (kst(22, 0), timedelta(hours=20, minutes=1), "18:00"),  # runs into the next evening's peak
])
def test_a_span_touching_the_evening_peak_is_refused(policy: Policy, start: datetime, span: timedelta,
                                                     hit: str) -> None:
    result = evening_peak_gate(start, span, policy)

    assert (result.gate, result.passed) == ("evening_peak", False)
    assert result.reason == (f"the experiment would run into the evening peak 18:00-22:00 Asia/Seoul (at {hit} KST): "
                             "game-days stay out of the peak")


@pytest.mark.parametrize(("start", "span"), [
    (kst(14, 0), timedelta(minutes=6)),  # the weekly game-day
    (kst(17, 30), timedelta(minutes=29, seconds=59)),  # ends just before 18:00
    (kst(22, 0), timedelta(minutes=30)),  # starts when the peak is over (the peak is [18:00, 22:00))
    (kst(22, 0), timedelta(hours=19, minutes=59)),  # overnight, ends 17:59 the next day
])
def test_a_span_clear_of_the_evening_peak_passes(policy: Policy, start: datetime, span: timedelta) -> None:
    result = evening_peak_gate(start, span, policy)

    assert result.passed, result.reason
    assert result.reason == "clear of the evening peak 18:00-22:00 Asia/Seoul"
    assert result.evidence == {"start": start.astimezone(UTC).isoformat(),
                               "end": (start + span).astimezone(UTC).isoformat(),
                               "peak": "18:00-22:00 Asia/Seoul"}


def test_the_peak_is_in_korean_time_whatever_the_start_timezone(policy: Policy) -> None:
    # 09:30 UTC is 18:30 KST
    assert not evening_peak_gate(datetime(2026, 11, 25, 9, 30, tzinfo=UTC), timedelta(minutes=1), policy).passed
    assert evening_peak_gate(datetime(2026, 11, 25, 5, 0, tzinfo=UTC), timedelta(minutes=10), policy).passed


# --- error budget ----------------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 14:00 KST


def row(remaining: float | None = None, *, adjusted: float | None = None, age: timedelta = timedelta(minutes=5),
        state: str = "normal", **details: Any) -> dict[str, Any]:
    if remaining is not None:
        details["budget_remaining"] = remaining
    if adjusted is not None:
        details["budget_remaining_adjusted"] = adjusted
    return {"state": state, "computed_at": NOW - age, "details": details}


def test_budget_above_the_floor_passes_naming_the_worst_slo(policy: Policy) -> None:
    result = budget_gate("game-server", {"availability": row(0.8), "latency": row(0.62)}, 0.5, NOW, policy)

    assert (result.gate, result.passed) == ("budget", True)
    assert result.reason == "worst budget remaining 62.0% (latency), above the floor 50%"
    assert result.evidence["floor"] == 0.5
    assert result.evidence["slos"]["latency"] == {"state": "normal", "budget_remaining": 0.62,
                                                  "computed_at": (NOW - timedelta(minutes=5)).isoformat()}


@pytest.mark.parametrize("remaining", [0.5, 0.3, -0.2])
def test_budget_at_or_below_the_floor_is_refused(policy: Policy, remaining: float) -> None:
    result = budget_gate("game-server", {"availability": row(0.9), "latency": row(remaining)}, 0.5, NOW, policy)

    assert not result.passed
    assert result.reason == (f"error budget: latency: {remaining:.1%} of the error budget remains, at or below the "
                             "floor 50%")


def test_a_stale_state_is_refused_even_with_budget_left(policy: Policy) -> None:
    fresh = budget_gate("game-server", {"availability": row(0.9, age=timedelta(hours=2))}, 0.5, NOW, policy)
    stale = budget_gate("game-server", {"availability": row(0.9, age=timedelta(hours=2, seconds=1))}, 0.5, NOW,
                        policy)

    assert fresh.passed
    assert not stale.passed
    assert stale.reason == "error budget: availability: the published state is stale (older than 2h)"


def test_a_state_without_computed_at_counts_as_stale(policy: Policy) -> None:
    result = budget_gate("game-server", {"availability": {"state": "normal", "computed_at": None,
                                                          "details": {"budget_remaining": 0.9}}}, 0.5, NOW, policy)

    assert not result.passed
    assert "availability: the published state is stale" in result.reason


def test_a_missing_state_is_refused(policy: Policy) -> None:
    result = budget_gate("game-server", {"availability": row(0.9), "latency": None}, 0.5, NOW, policy)

    assert not result.passed
    assert result.reason == "error budget: latency: no published error-budget state"
    assert result.evidence["slos"]["latency"] is None


def test_a_service_without_any_slo_state_is_refused(policy: Policy) -> None:
    result = budget_gate("game-server", {}, 0.5, NOW, policy)

    assert not result.passed
    assert result.reason == "error budget: game-server has no SLO with a published state"


def test_a_state_without_budget_remaining_is_refused(policy: Policy) -> None:
    result = budget_gate("game-server", {"availability": row(state="no_data")}, 0.5, NOW, policy)

    assert not result.passed
    assert result.reason == "error budget: availability: no budget remaining in the published state (no_data)"


def test_the_adjusted_budget_is_preferred(policy: Policy) -> None:
    # maintenance windows excluded: the adjusted budget is what counts, both ways
    rescued = budget_gate("game-server", {"availability": row(0.3, adjusted=0.7)}, 0.5, NOW, policy)
    sunk = budget_gate("game-server", {"availability": row(0.7, adjusted=0.3)}, 0.5, NOW, policy)

    assert rescued.passed
    assert rescued.evidence["slos"]["availability"]["budget_remaining"] == 0.7
    assert not sunk.passed
    assert "availability: 30.0% of the error budget remains" in sunk.reason


def test_every_budget_problem_is_reported(policy: Policy) -> None:
    result = budget_gate("game-server", {"availability": row(0.1), "error-rate": None,
                                         "latency": row(0.9, age=timedelta(days=1))}, 0.5, NOW, policy)

    assert not result.passed
    assert result.reason.count("; ") == 2
    for slo in ("availability", "error-rate", "latency"):
        assert f"{slo}: " in result.reason


# --- kill switch ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["on", "ON", " true ", "True", "1", "yes", "stop", 1, True])
def test_kill_switch_values_that_mean_on(value: object) -> None:
    assert kill_switch_on(value)
    result = kill_switch_gate("gamesre_chaos_kill_switch", value)
    assert not result.passed
    assert result.reason == ("the chaos kill switch (Variable gamesre_chaos_kill_switch) is on: no game-day runs "
                             "until it is turned off")
    assert result.evidence == {"variable": "gamesre_chaos_kill_switch", "value": str(value)}


@pytest.mark.parametrize("value", ["off", "", None, "false", "0", "no", 0, False, "onn"])
def test_kill_switch_values_that_mean_off(value: object) -> None:
    assert not kill_switch_on(value)
    result = kill_switch_gate("gamesre_chaos_kill_switch", value)
    assert result.passed
    assert result.reason == "the kill switch (Variable gamesre_chaos_kill_switch) is off"


# --- incidents and the lock ----------------------------------------------------------------------------------


def test_no_open_incident_passes() -> None:
    result = incident_gate([])

    assert (result.gate, result.passed, result.evidence) == ("incident", True, {"open": []})


def test_an_open_incident_is_refused_with_its_evidence() -> None:
    opened = datetime(2026, 11, 25, 4, 12, tzinfo=UTC)
    incidents = [{"id": "INC-42", "severity": "sev2", "title": "login errors", "opened_at": opened},
                 {"id": "INC-43", "severity": "sev3", "title": "slow saves", "opened_at": opened}]

    result = incident_gate(incidents)

    assert not result.passed
    assert result.reason == "incident(s) open: INC-42 (sev2: login errors), INC-43 (sev3: slow saves)"
    assert result.evidence["open"][0] == {"id": "INC-42", "severity": "sev2", "title": "login errors",
                                          "opened_at": "2026-11-25T04:12:00+00:00"}


def test_the_lock_free_or_held_by_this_run_passes() -> None:
    mine = {"run_id": "manual__1", "experiment": "gs-latency", "acquired_at": NOW}

    assert exclusive_gate(None, "manual__1").passed
    result = exclusive_gate(mine, "manual__1")
    assert (result.gate, result.passed, result.evidence) == ("exclusive", True, {"holder": None})


def test_another_game_day_holding_the_lock_is_refused_with_its_evidence() -> None:
    holder = {"run_id": "scheduled__2026-11-25", "experiment": "gs-instance-kill", "acquired_at": NOW}

    result = exclusive_gate(holder, "manual__1")

    assert not result.passed
    assert result.reason == ("another game-day is running: gs-instance-kill in run 'scheduled__2026-11-25' since "
                             "2026-11-25 14:00 KST; one game-day at a time")
    assert result.evidence == {"holder": {"run_id": "scheduled__2026-11-25", "experiment": "gs-instance-kill",
                                          "acquired_at": "2026-11-25T05:00:00+00:00"}}


def test_a_lock_without_a_time_is_still_refused() -> None:
    result = exclusive_gate({"run_id": "other", "experiment": "gs-latency", "acquired_at": None}, "manual__1")

    assert not result.passed
    assert "since an unknown time" in result.reason


# --- all the gates over the gathered facts ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def run() -> ExperimentRun:
    return build_run({"experiment": "gs-instance-kill"}, load_catalog(), run_id="r1", requested_by="alice",
                     backends={"game-server": "local", "matchmaking": "local"})


AFTERNOON = kst(14)


def facts(now: datetime = AFTERNOON, **changes: Any) -> GateFacts:
    """Everything fine (by default on Wednesday 14:00 KST): budgets at 90% published now, no alert, no incident,
    the switch off, no lock."""
    fresh = {"state": "normal", "computed_at": now, "details": {"budget_remaining": 0.9}}
    base = {"now": now, "calendar": load_calendar(), "slo_states": {"availability": fresh, "latency": fresh},
            "alerts": AlertsRead(), "open_incidents": [], "kill_switch": None, "lock_holder": None}
    return GateFacts(**{**base, **changes})


def test_the_span_is_the_duration_and_the_recovery_time(run: ExperimentRun) -> None:
    assert experiment_span(run) == timedelta(seconds=30 + 120)


def test_every_gate_is_judged_in_order_and_all_pass_on_a_quiet_afternoon(policy: Policy, run: ExperimentRun) -> None:
    results = judge(run, facts(), policy, kill_switch_variable="switch")
    assert [r.gate for r in results] == ["evening_peak", "calendar", "budget", "page_alerts", "incident",
                                         "kill_switch", "exclusive"]
    assert all(r.passed for r in results) and refusal(results) is None


def test_every_refusing_gate_is_named_in_the_refusal(policy: Policy, run: ExperimentRun) -> None:
    holder = {"run_id": "r0", "experiment": "gs-latency", "acquired_at": kst(13).astimezone(UTC)}
    results = judge(run, facts(kst(17, 59), kill_switch="on", lock_holder=holder,
                               alerts=AlertsRead(error="Alertmanager: connection refused")),
                    policy, kill_switch_variable="switch")
    reason = refusal(results)
    assert reason is not None and reason.startswith("refused: evening_peak: ")
    assert [r.gate for r in results if not r.passed] == ["evening_peak", "page_alerts", "kill_switch", "exclusive"]
    assert "page_alerts: cannot read the firing alerts (fail safe: refused)" in reason


def test_the_calendar_gate_judges_the_whole_span(policy: Policy, run: ExperimentRun) -> None:
    # Tuesday 01:58 KST: the weekly maintenance starts at 02:00, inside the 2.5 minutes the experiment needs
    results = judge(run, facts(kst(1, 58, day=24)), policy, kill_switch_variable="switch")
    (calendar,) = [r for r in results if r.gate == "calendar"]
    assert not calendar.passed and "maintenance" in calendar.reason
