"""The chaos game-day steps (gamesre.app.chaos) with in-memory ports: the real SRE store on in-memory SQLite, a
scripted fault backend, Prometheus and Alertmanager from tables, a recording Slack, and a fixed clock. The
configuration is the product's own (include/config).

What each step leaves in the store, asks of the backend and tells people is checked from outside; the pure
decisions behind them have their own tests (tests/unit/chaos/).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gamesre.app import chaos
from gamesre.app.chaos import ChaosRefused, RecoveryFailed, SteadyStateBroken
from gamesre.chaos.catalog import load_catalog
from gamesre.chaos.faults import ChaosBackendError, Recovery
from gamesre.chaos.request import InvalidChaosRequest
from gamesre.core.services import load_services
from gamesre.integrations.store import SREStore
from tests.fakes.alertmanager import page
from tests.fakes.chaos_backend import injection
from tests.fakes.chaos_ports import NOW, RUN_URL
from tests.fakes.chaos_ports import ChaosRig as Rig
from tests.fakes.prometheus import unreachable_prometheus

KILL_SWITCH = "gamesre_chaos_kill_switch"
URL = RUN_URL
SERVICES = load_services()
GAME_SERVER, SRE = SERVICES.get("game-server").slack.channel_id, SERVICES.sre.slack.channel_id
ONCALL = load_catalog().policy.oncall_channel_id


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path / "reports" / "chaos")


def samples(passed: list[bool | None], start: float = NOW.timestamp()) -> list[list[Any]]:
    return [[start + 5 * i, 0.999 if ok else 0.9, ok] for i, ok in enumerate(passed)]


# --- validation -------------------------------------------------------------------------------------------------

def test_a_valid_request_is_recorded_with_its_targets_and_blast_radius(rig: Rig) -> None:
    run = rig.validated(gameday_id="gd-1")
    assert run["experiment"] == "gs-instance-kill" and run["requested_by"] == "alice"
    (target,) = run["targets"]
    assert target in ("gs-stable-1", "gs-stable-2")
    record = rig.store.chaos_run("r1")
    assert record["verdict"] == "running" and record["targets"] == [target] and record["gameday_id"] == "gd-1"
    assert record["blast_radius"] == {"requested": "1", "resolved": 1, "of": 2}
    assert record["requested_at"] == NOW and record["run_url"] == URL and record["backend"] == "local"


def test_an_invalid_request_is_recorded_naming_every_problem(rig: Rig) -> None:
    with pytest.raises(InvalidChaosRequest) as raised:
        chaos.validate(rig.ports, {"experiment": "gs-instance-kill", "duration": "1h", "colour": "red"}, "r1",
                       "alice", run_url=URL)
    record = rig.store.chaos_run("r1")
    assert record["verdict"] == "invalid" and record["reason"] == str(raised.value)
    assert "duration:" in record["reason"] and "colour: unknown field" in record["reason"]
    assert record["title"] == "Kill one game-server instance" and record["service"] == "game-server"
    assert record["finished_at"] == NOW and record["requested_by"] == "alice"
    assert rig.backend.injections == []


def test_an_unknown_experiment_is_recorded_with_what_can_be_told(rig: Rig) -> None:
    with pytest.raises(InvalidChaosRequest, match="unknown experiment 'gs-nope'"):
        chaos.validate(rig.ports, {"experiment": "gs-nope"}, "r1", "alice", run_url=URL)
    record = rig.store.chaos_run("r1")
    assert record["verdict"] == "invalid" and record["experiment"] == "gs-nope" and record["service"] == ""


def test_a_backend_that_cannot_be_asked_makes_the_target_invalid(rig: Rig) -> None:
    rig.backend.unreachable = "local backend: fleet.json unreadable"
    with pytest.raises(InvalidChaosRequest, match=r"target: local backend: fleet\.json unreadable"):
        rig.validated()
    assert rig.store.chaos_run("r1")["verdict"] == "invalid"


def test_targets_another_run_is_injecting_are_rejected_as_overlapping(rig: Rig) -> None:
    rig.backend.leftovers = [injection("other", targets=("gs-stable-1", "gs-stable-2"))]
    with pytest.raises(InvalidChaosRequest, match=r"overlapping experiments: gs-stable-\d already has "
                                                  r"network_latency injected by gs-latency \(run other\)"):
        rig.validated()
    assert rig.store.chaos_run("r1")["verdict"] == "invalid"


# --- gates ------------------------------------------------------------------------------------------------------

def test_when_every_gate_passes_the_run_takes_the_gameday_lock(rig: Rig) -> None:
    rig.budgets(0.9)
    run = rig.validated()
    docs = chaos.check_gates(rig.ports, run, "r1")
    assert [g["gate"] for g in docs] == ["evening_peak", "calendar", "budget", "page_alerts", "incident",
                                         "kill_switch", "exclusive"]
    assert all(g["passed"] for g in docs), docs
    assert rig.store.chaos_run("r1")["gates"] == docs
    assert rig.store.chaos_lock()["run_id"] == "r1"


def test_a_dry_run_only_looks_at_the_lock(rig: Rig) -> None:
    rig.budgets(0.9)
    run = rig.validated(dry_run=True)
    chaos.check_gates(rig.ports, run, "r1")
    assert rig.store.chaos_lock() is None


def _evening(rig: Rig) -> None:
    rig.now = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # 18:30 KST
    rig.budgets(0.9)


def _maintenance_window(rig: Rig) -> None:
    rig.store.upsert_window({"id": "adhoc-db", "kind": "adhoc", "start": NOW - timedelta(minutes=10),
                             "end": NOW + timedelta(hours=1), "services": ["game-server"], "reason": "db failover",
                             "owner": "bob", "ticket": "OPS-7", "status": "planned", "excludes_budget": True})


def _low_budget(rig: Rig) -> None:
    rig.budgets(0.2)  # gs-instance-kill's floor is 25%


def _page_firing(rig: Rig) -> None:
    rig.alertmanager.listed = [page("GameServerErrorBudgetBurn", service="game-server")]


def _incident_open(rig: Rig) -> None:
    rig.store.upsert_incident({"id": "inc-1", "severity": "sev2", "title": "login errors", "opened_at": NOW,
                               "services": ["game-server"]})


def _kill_switch_on(rig: Rig) -> None:
    rig.variables[KILL_SWITCH] = "on"


def _another_gameday(rig: Rig) -> None:
    rig.store.acquire_chaos_lock("other-run", "gs-latency", stale_after_s=3600)


@pytest.mark.parametrize(("arrange", "gate", "says"), [
    (_evening, "evening_peak", "evening peak"),
    (_maintenance_window, "calendar", "adhoc-db"),
    (_low_budget, "budget", "20.0% of the error budget remains"),
    (_page_firing, "page_alerts", "GameServerErrorBudgetBurn"),
    (_incident_open, "incident", "inc-1 (sev2: login errors)"),
    (_kill_switch_on, "kill_switch", f"Variable {KILL_SWITCH}) is on"),
    (_another_gameday, "exclusive", "another game-day is running: gs-latency in run 'other-run'"),
])
def test_a_refusing_gate_is_recorded_with_its_reason_and_the_lock_is_given_back(rig: Rig, arrange: Any, gate: str,
                                                                                 says: str) -> None:
    rig.budgets(0.9)
    run = rig.validated()
    arrange(rig)
    with pytest.raises(ChaosRefused, match=f"^refused: .*{gate}: "):
        chaos.check_gates(rig.ports, run, "r1")
    record = rig.store.chaos_run("r1")
    assert record["verdict"] == "refused" and f"{gate}: " in record["reason"] and says in record["reason"]
    refused = [g["gate"] for g in record["gates"] if not g["passed"]]
    assert refused == [gate], record["gates"]
    holder = rig.store.chaos_lock()
    assert (holder or {}).get("run_id") != "r1"


def test_an_incident_of_another_service_does_not_hold_back_an_experiment(rig: Rig) -> None:
    rig.budgets(0.9)
    run = rig.validated()
    rig.store.upsert_incident({"id": "INC-20261125-001", "severity": "sev1", "title": "queues stuck",
                               "opened_at": NOW, "services": ["matchmaking"]})
    chaos.check_gates(rig.ports, run, "r1")
    gate = next(g for g in rig.store.chaos_run("r1")["gates"] if g["gate"] == "incident")
    assert gate["passed"] and gate["reason"] == "no incident is open"
    rig.store.update_incident("INC-20261125-001", services=["matchmaking", "game-server"])
    with pytest.raises(ChaosRefused, match="incident: incident\\(s\\) open: INC-20261125-001"):
        chaos.check_gates(rig.ports, rig.validated(run_id="r2"), "r2")


def test_alertmanager_down_refuses(rig: Rig) -> None:
    rig.alertmanager.down = True
    with pytest.raises(ChaosRefused, match="page_alerts: cannot read the firing alerts \\(fail safe: refused\\): "
                                           "Alertmanager: connection refused"):
        rig.through_gates()
    assert rig.store.chaos_run("r1")["verdict"] == "refused" and rig.store.chaos_lock() is None


def test_the_kill_switch_is_read_from_the_policys_variable(rig: Rig) -> None:
    asked: list[str] = []
    rig.budgets(0.9)
    run = rig.validated()
    chaos.check_gates(replace(rig.ports, kill_switch=lambda key: asked.append(key)), run, "r1")
    assert asked == [KILL_SWITCH]


# --- steady state -----------------------------------------------------------------------------------------------

def test_the_steady_state_before_records_every_probe_and_the_baselines(rig: Rig) -> None:
    run = rig.through_gates()
    before = chaos.steady_state_before(rig.ports, run, "r1")
    assert before["passed"] and before["at"] == NOW.timestamp()
    assert before["baselines"] == {"availability": 0.999, "latency-p95": 0.2}
    assert {p["name"]: p["tolerance"] for p in before["probes"]} == {"availability": ">= 0.99",
                                                                      "latency-p95": "<= 0.5"}
    assert {at for _q, at in rig.prometheus.asked} == {NOW.timestamp()}  # one instant
    assert rig.store.chaos_run("r1")["steady_before"] == before


def test_a_broken_steady_state_skips_the_run_and_nothing_is_injected(rig: Rig) -> None:
    run = rig.through_gates()
    rig.prometheus.answers = {"histogram_quantile": 0.9}
    with pytest.raises(SteadyStateBroken, match="latency-p95"):
        chaos.steady_state_before(rig.ports, run, "r1")
    record = rig.store.chaos_run("r1")
    assert record["verdict"] == "skipped" and "steady state did not hold before injection" in record["reason"]
    assert record["steady_before"]["passed"] is False
    result = chaos.finalize(rig.ports, "r1")
    assert result["verdict"] == "skipped" and rig.backend.injections == []
    assert rig.store.chaos_run("r1")["injected_at"] is None and rig.store.chaos_lock() is None


def test_prometheus_down_is_no_data_never_a_steady_state(rig: Rig) -> None:
    run = rig.through_gates()
    rig.prometheus = unreachable_prometheus()
    with pytest.raises(SteadyStateBroken, match="no data: Prometheus: connection refused"):
        chaos.steady_state_before(rig.ports, run, "r1")


# --- inject, monitor ----------------------------------------------------------------------------------------------

def test_inject_records_that_recovery_is_owed_before_the_fault_and_the_injection_after(rig: Rig) -> None:
    run = rig.through_gates()
    chaos.steady_state_before(rig.ports, run, "r1")
    seen: list[Any] = []
    apply = rig.backend.inject

    def watching(*args: Any) -> Any:
        seen.append(rig.store.chaos_run("r1")["injected_at"])
        return apply(*args)

    rig.backend.inject = watching  # type: ignore[method-assign]
    done = chaos.inject(rig.ports, run, "r1")
    assert seen == [NOW]
    record = rig.store.chaos_run("r1")
    assert record["injection"] == done and done["run_id"] == "r1" and done["targets"] == run["targets"]
    assert done["fault"]["kind"] == "pod_delete"


def test_the_monitor_spec_watches_from_the_recorded_injection(rig: Rig) -> None:
    run, before = rig.injected()
    rig.now = NOW + timedelta(seconds=40)
    spec = chaos.monitor_spec(rig.ports, run, before, "r1")
    assert spec["mode"] == "monitor" and spec["started_at"] == NOW.timestamp()
    assert spec["baselines"] == before["baselines"] and spec["kill_switch_variable"] == KILL_SWITCH
    assert set(spec["burn_queries"]) == {"availability", "error-rate"}
    assert chaos.recovery_spec(rig.ports, run, before, "r1") is None  # not recovered yet: nothing to wait for


def test_an_abort_stops_the_fault_at_once_and_records_the_rule(rig: Rig) -> None:
    run, _before = rig.injected()
    at = NOW.timestamp() + 12
    event = {"outcome": "aborted", "rule": "consecutive_failures", "reason": "latency-p95 failed 2 polls",
             "at": at, "samples": {"availability": samples([True, True]), "latency-p95": samples([False, False])}}
    chaos.monitor_done(rig.ports, run, "r1", event)
    assert rig.backend.aborted == ["r1"]
    record = rig.store.chaos_run("r1")
    assert record["abort"]["rule"] == "consecutive_failures" and record["aborted_at"].timestamp() == at
    assert {p["name"]: p["success_pct"] for p in record["probes"]} == {"availability": 100.0, "latency-p95": 0.0}


def test_a_failed_abort_is_left_to_recover(rig: Rig) -> None:
    run, _before = rig.injected()
    rig.backend.abort_error = "gs-stable-1 unreachable"
    chaos.monitor_done(rig.ports, run, "r1", {"outcome": "aborted", "rule": "kill_switch", "reason": "on"})
    record = rig.store.chaos_run("r1")
    assert record["abort"]["rule"] == "kill_switch" and record["aborted_at"] == NOW  # no time in the event: now


def test_a_monitor_that_ran_its_course_does_not_abort(rig: Rig) -> None:
    run, _before = rig.injected()
    chaos.monitor_done(rig.ports, run, "r1", {"outcome": "completed", "rule": "duration", "samples": {}})
    assert rig.backend.aborted == [] and rig.store.chaos_run("r1")["abort"] is None


# --- recover ------------------------------------------------------------------------------------------------------

def test_recovery_retries_backend_errors_then_releases_the_lock(rig: Rig) -> None:
    rig.injected()
    rig.backend.outcomes = [ChaosBackendError("gs-stable-1 unreachable"), Recovery(True, (), "killed: false")]
    rig.now = NOW + timedelta(minutes=1)
    result = chaos.recover(rig.ports, "r1")
    assert result["recovered"] and result["attempts"] == 2 and rig.slept == [4.0]
    record = rig.store.chaos_run("r1")
    assert record["recovered_at"] == rig.now and record["recovery"]["detail"] == "killed: false"
    assert rig.store.chaos_lock() is None and rig.notifier.messages == []
    assert chaos.recover(rig.ports, "r1")["recovered"]  # idempotent: a re-run does nothing more
    assert rig.backend.recovered == ["r1"]


def test_a_recovery_that_keeps_failing_raises_with_what_is_still_injected_and_keeps_the_lock(rig: Rig) -> None:
    rig.injected()
    still = Recovery(False, ("gs-stable-1: killed=true",), "the fleet still reports the fault")
    rig.backend.outcomes = [ChaosBackendError("boom"), ChaosBackendError("boom"), still]
    with pytest.raises(RecoveryFailed, match=r"gs-instance-kill: the fault is still injected \(gs-stable-1: "
                                             r"killed=true\)"):
        chaos.recover(rig.ports, "r1")
    assert rig.store.chaos_lock()["run_id"] == "r1"  # never released while the fault may be injected
    record = rig.store.chaos_run("r1")
    assert record["recovered_at"] is None and record["recovery"]["recovered"] is False
    assert rig.slept == [4.0, 8.0, 16.0]


def test_recover_with_nothing_injected_only_releases_the_lock(rig: Rig) -> None:
    rig.through_gates()
    assert chaos.recover(rig.ports, "r1") == {"recovered": True, "detail": "nothing was injected", "attempts": 0}
    assert rig.store.chaos_lock() is None and rig.backend.recovered == []


def test_the_oncall_is_paged_with_what_is_still_injected(rig: Rig) -> None:
    rig.injected()
    rig.backend.outcomes = [Recovery(False, ("gs-stable-1: killed=true",), "still killed")] * 3
    with pytest.raises(RecoveryFailed):
        chaos.recover(rig.ports, "r1")
    chaos.page_unrecovered(rig.ports, "r1", "RecoveryFailed")
    (message,) = rig.notifier.messages
    assert message["channel_id"] == ONCALL == "C07SREONCL1" and "FAILED" in message["text"]
    assert "• gs-stable-1: killed=true" in message["text"] and "Last error: still killed" in message["text"]
    assert URL in message["text"]
    record = rig.store.chaos_run("r1")
    assert record["verdict"] == "error" and record["reason"] == "recovery failed, on-call paged: still killed"


# --- verdict, report ----------------------------------------------------------------------------------------------

def run_to_the_end(rig: Rig, *, latency: list[bool], steady_after: bool) -> dict[str, Any]:
    run, _before = rig.injected()
    event = {"outcome": "completed", "rule": "duration", "reason": "ran its course",
             "samples": {"availability": samples([True] * 4), "latency-p95": samples(latency)}}
    chaos.monitor_done(rig.ports, run, "r1", event)
    rig.now = NOW + timedelta(seconds=90)
    chaos.recover(rig.ports, "r1")
    chaos.steady_after_done(rig.ports, "r1", {"passed": steady_after, "recovered_within_s": 10.0,
                                              "reason": "held 2 polls" if steady_after else "latency-p95 high"})
    rig.now = NOW + timedelta(minutes=3)
    return chaos.finalize(rig.ports, "r1")


def test_a_run_that_held_passes_scores_100_and_is_reported_to_the_services_channel(rig: Rig) -> None:
    result = run_to_the_end(rig, latency=[True] * 4, steady_after=True)
    assert result["verdict"] == "pass" and result["score"] == pytest.approx(100.0)
    record = rig.store.chaos_run("r1")
    assert record["verdict"] == "pass" and record["finished_at"] == rig.now
    assert record["steady_after"]["recovery_time_s"] == 120  # the policy's default recovery time
    (window,) = rig.store.windows(ids=["gameday:r1"])
    assert window["kind"] == "gameday" and window["start"] == NOW and window["end"] == NOW + timedelta(seconds=90)
    assert rig.store.chaos_lock() is None
    files = {k: Path(v) for k, v in result["report"].items()}
    assert files["markdown"].parent == rig.report_dir and "gs-instance-kill" in files["markdown"].read_text()
    assert ET.parse(files["junit"]).getroot().find(".//failure") is None  # noqa: S314 (our own report)
    (message,) = rig.notifier.messages
    assert message["channel_id"] == GAME_SERVER == "C07GAMESRV1" and "gs-instance-kill" in message["text"]
    assert str(rig.report_dir) not in message["text"]  # no worker path: the report is a Slack file
    (report,) = rig.notifier.files
    assert report["channel_id"] == GAME_SERVER and report["name"] == files["html"].name
    assert b"gs-instance-kill" in report["content"]


def test_a_steady_state_that_did_not_return_fails_with_the_probes_score(rig: Rig) -> None:
    result = run_to_the_end(rig, latency=[True, True, False, True], steady_after=False)
    assert result["verdict"] == "fail" and "did not return within 120s" in result["reason"]
    # availability (weight 2) 100%, latency-p95 (weight 1) 75%
    assert result["score"] == pytest.approx((2 * 100 + 75) / 3)


def test_an_unrecovered_fault_ends_in_error_and_keeps_the_lock(rig: Rig) -> None:
    run, _before = rig.injected()
    chaos.monitor_done(rig.ports, run, "r1", {"outcome": "completed", "samples": {}})
    rig.backend.outcomes = [Recovery(False, ("gs-stable-1: killed=true",), "still killed")] * 3
    with pytest.raises(RecoveryFailed):
        chaos.recover(rig.ports, "r1")
    result = chaos.finalize(rig.ports, "r1")
    assert result["verdict"] == "error" and "recovery not confirmed" in result["reason"]
    assert rig.store.chaos_lock()["run_id"] == "r1"
    (window,) = rig.store.windows(ids=["gameday:r1"])
    assert window["end"] == NOW + timedelta(minutes=1)  # still injected: until now, at least a minute


def test_a_refused_run_keeps_its_verdict_and_has_no_score(rig: Rig) -> None:
    rig.variables[KILL_SWITCH] = "on"
    with pytest.raises(ChaosRefused):
        rig.through_gates()
    result = chaos.finalize(rig.ports, "r1")
    assert result["verdict"] == "refused" and result["score"] is None and "kill_switch" in result["reason"]
    assert rig.store.windows(ids=["gameday:r1"]) == [] and rig.store.chaos_lock() is None


def test_finalize_without_a_record_says_so(rig: Rig) -> None:
    assert chaos.finalize(rig.ports, "r-none") == {"verdict": "error",
                                                   "reason": "no chaos run record (validation did not run)"}


# --- game-days ----------------------------------------------------------------------------------------------------

def test_a_gameday_on_time_lists_its_experiments_in_order(rig: Rig) -> None:
    confs = chaos.plan_gameday(rig.ports, "weekly", "gd-1", run_url=URL, requested_by="chaos_gameday:weekly",
                               scheduled_for=NOW - timedelta(minutes=5))
    assert [c["experiment"] for c in confs] == ["gs-instance-kill", "gs-db-latency", "gs-cpu-hog", "gs-partition"]
    assert all(c["gameday_id"] == "gd-1" and c["requested_by"] == "chaos_gameday:weekly" for c in confs)
    (gameday,) = rig.store.gamedays(ids=["gd-1"])
    assert gameday["verdict"] == "running" and gameday["experiments"] == [c["experiment"] for c in confs]


def test_a_late_scheduled_gameday_is_refused_and_reported_as_refused(rig: Rig) -> None:
    with pytest.raises(ChaosRefused, match=r"due at 2026-11-18 14:00 KST and is 168\.0 h late"):
        chaos.plan_gameday(rig.ports, "smoke", "gd-late", run_url=URL, requested_by="chaos_gameday:smoke",
                           scheduled_for=NOW - timedelta(days=7))
    result = chaos.gameday_report(rig.ports, "gd-late", run_url=URL)
    assert result["verdict"] == "refused" and "late" in result["reason"] and result["experiments"] == 0
    (gameday,) = rig.store.gamedays(ids=["gd-late"])
    assert gameday["verdict"] == "refused" and gameday["finished_at"] == NOW


def test_the_gameday_report_scores_its_experiments(rig: Rig) -> None:
    chaos.plan_gameday(rig.ports, "smoke", "gd-1", run_url=URL, requested_by="chaos_gameday:smoke")
    rig.budgets(0.9)
    run_to_the_end(rig, latency=[True] * 4, steady_after=True)
    rig.store.update_chaos_run("r1", gameday_id="gd-1")
    result = chaos.gameday_report(rig.ports, "gd-1", run_url=URL)
    assert result["verdict"] == "pass" and result["experiments"] == 1 and result["score"] == pytest.approx(100.0)
    (gameday,) = rig.store.gamedays(ids=["gd-1"])
    assert gameday["verdict"] == "pass" and gameday["score"] == pytest.approx(100.0)
    assert Path(result["report"]["html"]).exists()
    assert rig.notifier.messages[-1]["channel_id"] == GAME_SERVER
    assert rig.notifier.files[-1]["title"] == "Chaos report: smoke game day"


def test_a_gameday_whose_plan_never_ran_is_still_recorded(rig: Rig) -> None:
    result = chaos.gameday_report(rig.ports, "gd-x", run_url=URL)
    assert result["verdict"] == "error" and result["reason"] == "no experiment ran"
    (gameday,) = rig.store.gamedays(ids=["gd-x"])
    assert gameday["suite"] == "?" and gameday["run_url"] == URL
    assert rig.notifier.messages[-1]["channel_id"] == SRE  # no service touched: the SRE channel


# --- the reaper -----------------------------------------------------------------------------------------------------

def crashed_run(store: SREStore, run_id: str, **extra: Any) -> None:
    fault = injection(run_id)
    store.upsert_chaos_run({"id": run_id, "experiment": "gs-latency", "title": "t", "service": "game-server",
                            "backend": "local", "environment": "prod", "fault": fault.fault.to_dict(),
                            "targets": ["gs-stable-1"], "weight": 2.0, "requested_at": datetime.now(UTC),
                            "injected_at": datetime.now(UTC), "injection": fault.to_dict(), **extra})


def test_the_reaper_recovers_a_crashed_runs_fault_but_not_the_running_gamedays(rig: Rig) -> None:
    rig.now = datetime.now(UTC)  # the store stamps the lock with the real time
    crashed_run(rig.store, "crashed", verdict="running")
    crashed_run(rig.store, "running-now")
    rig.store.acquire_chaos_lock("running-now", "gs-latency", stale_after_s=3600)
    rig.backend.leftovers = [injection("crashed"), injection("running-now"), injection("orphan")]
    result = chaos.reap(rig.ports)
    assert sorted(rig.backend.recovered) == ["crashed", "orphan"] and len(result["reaped"]) == 2
    crashed = rig.store.chaos_run("crashed")
    assert crashed["verdict"] == "error" and "reaper" in crashed["reason"] and crashed["recovered_at"] is not None
    assert crashed["recovery"]["by"] == "reaper"
    assert rig.store.chaos_run("running-now")["recovered_at"] is None
    assert rig.store.chaos_lock()["run_id"] == "running-now" and rig.notifier.messages == []


def test_the_reaper_takes_back_the_fault_of_a_stale_lock_and_frees_the_lock(rig: Rig) -> None:
    crashed_run(rig.store, "stuck", verdict="running")
    rig.store.acquire_chaos_lock("stuck", "gs-latency", stale_after_s=3600)
    rig.now = datetime.now(UTC) + timedelta(hours=2)  # the lock is older than lock_stale_after (1h)
    result = chaos.reap(rig.ports)
    assert rig.backend.recovered == ["stuck"] and len(result["reaped"]) == 1
    assert rig.store.chaos_lock() is None


def test_the_reaper_spares_the_run_that_asks(rig: Rig) -> None:
    rig.backend.leftovers = [injection("me")]
    assert chaos.reap(rig.ports, current_run_id="me") == {"reaped": []}


def test_a_fault_the_reaper_cannot_recover_pages_the_oncall(rig: Rig) -> None:
    rig.backend.leftovers = [injection("orphan")]
    rig.backend.outcomes = [ChaosBackendError("gs-stable-1 unreachable")]
    with pytest.raises(RecoveryFailed, match="orphan: gs-stable-1 unreachable"):
        chaos.reap(rig.ports)
    (message,) = rig.notifier.messages
    assert message["channel_id"] == ONCALL and "could not recover" in message["text"]


def test_a_backend_that_cannot_list_its_faults_does_not_stop_the_reaper(rig: Rig) -> None:
    crashed_run(rig.store, "crashed", verdict="running")
    listing = rig.backend.injected

    def failing(service: str | None = None) -> Any:
        raise ChaosBackendError("fleet.json unreadable")

    rig.backend.injected = failing  # type: ignore[method-assign]
    result = chaos.reap(rig.ports)
    rig.backend.injected = listing  # type: ignore[method-assign]
    assert rig.backend.recovered == ["crashed"] and len(result["reaped"]) == 1  # the store still remembers it
