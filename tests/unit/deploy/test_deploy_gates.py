"""Deploy gates: lock, page alerts, error budget (with force) and calendar, each explaining its decision."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gamesre.core.gates import AlertsRead, GateResult
from gamesre.core.gates import page_alerts_gate as core_page_alerts_gate
from gamesre.core.time import KST
from gamesre.deploy.gates import blocked, budget_gate, calendar_gate, lock_gate
from gamesre.slo.policy import STATES
from gamesre.slo.spec import load_policies

POLICY = load_policies()
NOW = datetime(2026, 3, 20, 3, 0, tzinfo=KST)  # 03:00 KST, off peak
PEAK = datetime(2026, 3, 20, 19, 0, tzinfo=KST)  # 19:00 KST = 10:00 UTC
RUN = "manual__2026-03-20T03:00:00+09:00"
REASON = "CHG-1234 fixes the crash of 1.5.0 on login"


def as_json(result: GateResult) -> dict[str, Any]:
    return json.loads(json.dumps(result.to_dict()))  # results travel as XCom and into the deploy record


# --- lock -----------------------------------------------------------------------------------------------


def test_a_free_lock_passes() -> None:
    result = lock_gate(None, RUN)
    assert result.passed and result.gate == "lock"
    assert result.evidence == {"holder": None}


def test_the_lock_held_by_this_run_passes() -> None:
    holder = {"service": "game-server", "run_id": RUN, "version": "1.5.1", "acquired_at": NOW - timedelta(minutes=1)}
    result = lock_gate(holder, RUN)
    assert result.passed
    assert as_json(result)["evidence"]["holder"]["acquired_at"] == "2026-03-19T17:59:00+00:00"


def test_the_lock_held_by_another_run_blocks_and_names_it() -> None:
    holder = {"service": "game-server", "run_id": "manual__other", "version": "1.5.0",
              "acquired_at": datetime(2026, 3, 19, 18, 0, tzinfo=UTC)}
    result = lock_gate(holder, RUN)
    assert not result.passed
    assert result.reason.startswith("game-server is being deployed by run 'manual__other' (version 1.5.0, since "
                                    "2026-03-20 03:00 KST)")
    assert "wait for it to finish" in result.reason
    assert as_json(result)["evidence"]["holder"]["acquired_at"] == "2026-03-19T18:00:00+00:00"


def test_a_lock_without_a_start_time_still_blocks() -> None:
    result = lock_gate({"service": "game-server", "run_id": "other", "version": "1.5.0"}, RUN)
    assert not result.passed and "since an unknown time" in result.reason


# --- page alerts ----------------------------------------------------------------------------------------


def alert(name: str, severity: str, state: str = "active") -> dict[str, Any]:
    return {"labels": {"alertname": name, "severity": severity, "service": "game-server"}, "state": state,
            "startsAt": "2026-03-19T17:50:00Z"}


def page_alerts_gate(alerts: list[dict[str, Any]]) -> GateResult:
    return core_page_alerts_gate(AlertsRead(tuple(alerts)), scope="the service")


def test_no_alerts_pass() -> None:
    result = page_alerts_gate([])
    assert result.passed and result.evidence == {"firing": []}


@pytest.mark.parametrize("severity", ["page", "critical", "PAGE"])
def test_an_active_page_blocks(severity: str) -> None:
    result = page_alerts_gate([alert("SloFastBurn", severity), alert("SloTicket", "ticket"),
                               alert("HighLatency", "page")])
    assert not result.passed
    assert result.reason == "page alert(s) firing for the service: HighLatency, SloFastBurn"
    assert [a["labels"]["alertname"] for a in as_json(result)["evidence"]["firing"]] == ["SloFastBurn",
                                                                                         "HighLatency"]


@pytest.mark.parametrize(
    "alerts",
    [[alert("SloFastBurn", "page", state="suppressed")], [alert("SloTicket", "ticket")],
     [alert("SloTicket", "warning"), alert("Unlabelled", "")], [{"labels": {"alertname": "NoSeverity"},
                                                                  "state": "active"}]],
    ids=["silenced-page", "ticket", "other-severities", "no-severity"],
)
def test_silenced_pages_and_non_pages_do_not_block(alerts: list[dict[str, Any]]) -> None:
    assert page_alerts_gate(alerts).passed


# --- budget ---------------------------------------------------------------------------------------------


def state_row(state: str, age: timedelta = timedelta(minutes=10), **slo_states: str) -> dict[str, Any]:
    return {"state": state, "computed_at": NOW - age,
            "details": {"slo_states": slo_states or {"availability": state}}}


def budget(row: dict[str, Any] | None, *, force: bool = False, reason: str = "") -> GateResult:
    return budget_gate(row, NOW, POLICY, force=force, force_reason=reason)


def test_a_missing_budget_state_blocks() -> None:
    result = budget(None)
    assert not result.passed
    assert "no published error-budget state" in result.reason


def test_a_stale_budget_state_blocks_naming_its_age() -> None:
    result = budget(state_row("normal", age=timedelta(hours=3)))
    assert not result.passed
    assert result.reason.startswith("the error-budget state is 180 min old (stale after 2h)")


def test_a_state_just_within_stale_after_is_fresh() -> None:
    assert budget(state_row("normal", age=timedelta(hours=2))).passed


@pytest.mark.parametrize("state", ["normal", "ticket", "slow_burn"])
def test_non_blocking_states_pass(state: str) -> None:
    result = budget(state_row(state))
    assert result.passed and not result.bypassed
    assert result.reason == f"error-budget state {state}"
    assert as_json(result)["evidence"]["computed_at"] == "2026-03-19T17:50:00+00:00"


def test_the_deploy_freeze_blocks_without_force() -> None:
    result = budget(state_row("deploy_freeze"))
    assert not result.passed
    assert result.reason.startswith("deploy freeze: >= 50% of the error budget consumed")
    assert "force" in result.reason


def test_force_bypasses_the_deploy_freeze_and_says_so() -> None:
    result = budget(state_row("deploy_freeze", availability="deploy_freeze", latency="normal"), force=True,
                    reason=REASON)
    assert result.passed and result.bypassed
    assert result.reason == f"deploy freeze (>= 50% of the budget consumed) bypassed by force: {REASON}"


def test_force_does_not_hide_a_worse_slo_behind_the_freeze() -> None:
    result = budget(state_row("deploy_freeze", availability="deploy_freeze", latency="fast_burn",
                              **{"error-rate": "no_data"}), force=True, reason=REASON)
    assert not result.passed and not result.bypassed
    assert result.reason == ("force bypasses only the deploy freeze, but SLO(s) error-rate=no_data, "
                             "latency=fast_burn block too")


@pytest.mark.parametrize(("state", "why"), [("rollback", ">= 80% of the error budget consumed"),
                                            ("fast_burn", "the budget is burning fast"),
                                            ("no_data", "too little SLI data")])
@pytest.mark.parametrize("force", [False, True])
def test_worse_states_block_even_with_force(state: str, why: str, force: bool) -> None:
    result = budget(state_row(state), force=force, reason=REASON if force else "")
    assert not result.passed and not result.bypassed
    assert result.reason.startswith(f"error-budget state {state}: {why}")
    assert "force does not bypass it" in result.reason


@pytest.mark.parametrize("row", [{"state": "sunny", "computed_at": NOW}, {"state": None, "computed_at": NOW},
                                 {"state": "normal", "computed_at": None}, {}])
def test_an_unknown_state_blocks(row: dict[str, Any]) -> None:
    result = budget(row)
    assert not result.passed
    assert result.reason.startswith("unknown error-budget state")


def test_every_policy_state_is_decided() -> None:
    decided = {s: budget(state_row(s)).passed for s in STATES}
    assert decided == {"rollback": False, "deploy_freeze": False, "fast_burn": False, "no_data": False,
                       "slow_burn": True, "ticket": True, "normal": True}


# --- calendar -------------------------------------------------------------------------------------------


def calendar(at: datetime, *, allowed: bool = True, mode: str = "stricter", strictest: bool = True,
             reason: str = "no maintenance window") -> tuple[GateResult, float]:
    return calendar_gate(allowed, reason, at, POLICY, peak_mode=mode, strictest=strictest)


def test_a_maintenance_window_that_forbids_deploys_blocks() -> None:
    why = "maintenance 'weekly' forbids deploys of matchmaking (services.yaml maintenance.deploy_during_maintenance)"
    result, strictness = calendar(NOW, allowed=False, reason=why)
    assert not result.passed and result.reason == why
    assert strictness == 1.0


def test_off_peak_the_strictest_stage_runs_unchanged() -> None:
    result, strictness = calendar(NOW, mode="block")
    assert result.passed and strictness == 1.0
    assert result.reason == "no maintenance window"


def test_the_evening_peak_blocks_the_strictest_stage_in_block_mode() -> None:
    result, strictness = calendar(PEAK, mode="block")
    assert not result.passed
    assert result.reason.startswith("evening peak 18:00-22:00 Asia/Seoul: this stage does not start at peak")
    assert strictness == 1.2
    assert result.evidence == {"maintenance": "no maintenance window", "evening_peak": True, "peak_mode": "block",
                               "strictness": 1.2}


def test_the_evening_peak_makes_the_strictest_stage_stricter() -> None:
    result, strictness = calendar(PEAK, mode="stricter")
    assert result.passed and strictness == 1.2
    assert result.reason == "no maintenance window; evening peak: analysis 1.2x stricter"


@pytest.mark.parametrize("mode", ["stricter", "block"])
def test_the_evening_peak_leaves_other_stages_alone(mode: str) -> None:
    result, strictness = calendar(PEAK, mode=mode, strictest=False)
    assert result.passed and strictness == 1.0
    assert result.evidence["evening_peak"] is True


@pytest.mark.parametrize(("at", "peak"), [(datetime(2026, 3, 20, 18, 0, tzinfo=KST), True),
                                          (datetime(2026, 3, 20, 21, 59, tzinfo=KST), True),
                                          (datetime(2026, 3, 20, 22, 0, tzinfo=KST), False),
                                          (datetime(2026, 3, 20, 9, 30, tzinfo=UTC), True),  # 18:30 KST
                                          (datetime(2026, 3, 20, 17, 59, tzinfo=KST), False)])
def test_the_peak_is_18_to_22_seoul_time(at: datetime, peak: bool) -> None:
    _, strictness = calendar(at)
    assert strictness == (1.2 if peak else 1.0)


def test_blocked_lists_the_failed_gates() -> None:
    results = [lock_gate(None, RUN), page_alerts_gate([alert("SloFastBurn", "page")]), budget(None)]
    assert [r.gate for r in blocked(results)] == ["page_alerts", "budget"]
    assert blocked([lock_gate(None, RUN)]) == []


def test_alerts_that_cannot_be_read_block_and_say_why() -> None:
    down = "Alertmanager at http://am is unreachable"
    result = core_page_alerts_gate(AlertsRead(error=down), scope="the service")
    assert not result.passed
    assert result.reason == f"cannot read the firing alerts (fail safe: blocked): {down}"
