"""chaos_experiment and chaos_gameday end to end: a real Airflow injecting real faults into the demo fleet,
watched through a real Prometheus, with the verdicts checked from outside (the REST API, the fleet's admin
API, HAProxy, the SRE store, the report files and Slack)."""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.chaos.conftest import ChaosStack

pytestmark = pytest.mark.e2e

DAG = "chaos_experiment"
STABLES = ("gs-stable-1", "gs-stable-2")
INTERVAL = 5  # include/config/chaos/policy.yaml probe_interval


def run_experiment(stack: ChaosStack, conf: dict[str, Any], timeout: float = 420) -> tuple[str, dict, dict, dict]:
    run_id = stack.airflow.trigger(DAG, conf)
    run = stack.airflow.wait(DAG, run_id, timeout=timeout)
    record = stack.store.chaos_run(run_id)
    assert record is not None
    return run_id, run, stack.airflow.task_instances(DAG, run_id), record


def no_fault_left(stack: ChaosStack) -> None:
    for name in STABLES:
        faults = stack.faults(name)
        assert not any(faults.values()), f"{name} still has faults {faults}"
        assert stack.server_status(name) == "UP", name


def report_files(stack: ChaosStack, run_id: str) -> dict[str, Path]:
    found = {p.name: p for p in (stack.report_dir / "chaos").iterdir()}
    prefix = next(n for n in found if n.endswith(".md") and run_id.split("__")[-1][:19].replace(":", "_") in n)
    stem = prefix.removesuffix(".md")
    return {"md": found[f"{stem}.md"], "html": found[f"{stem}.html"], "junit": found[f"{stem}.junit.xml"]}


def test_a_latency_experiment_breaking_the_slo_is_aborted_within_two_probe_intervals(chaos_stack: ChaosStack) -> None:
    stack = chaos_stack
    stack.publish_budgets(0.9)
    _run_id, run, tis, record = run_experiment(stack, {"experiment": "gs-latency", "duration": "3m"})
    assert run["state"] == "failed"  # conclude: a broken hypothesis fails the run
    assert record["verdict"] == "aborted", record["reason"]
    assert record["abort"]["rule"] == "consecutive_failures", record["abort"]
    assert "latency-p95" in record["abort"]["reason"]
    latency = next(p for p in record["probes"] if p["name"] == "latency-p95")["samples"]
    first_failure = next(s[0] for s in latency if s[2] is False)
    aborted = record["aborted_at"].timestamp()
    assert aborted - first_failure <= 2 * INTERVAL + 1, (aborted - first_failure, latency)
    assert aborted - record["injected_at"].timestamp() < 90  # long before the 3 minutes ran out
    assert record["recovery"]["recovered"] and tis["recover"]["state"] == "success"
    assert stack.faults(record["targets"][0])["latency_ms"] == 0
    no_fault_left(stack)


def test_the_kill_switch_stops_a_running_experiment_and_the_fault_is_removed(chaos_stack: ChaosStack) -> None:
    stack = chaos_stack
    stack.publish_budgets(0.9)
    run_id = stack.airflow.trigger(DAG, {"experiment": "gs-memory-hog", "duration": "5m"})
    deadline = time.monotonic() + 180
    while stack.airflow.task_instances(DAG, run_id).get("monitor", {}).get("state") != "deferred":
        assert time.monotonic() < deadline, stack.airflow.task_instances(DAG, run_id)
        time.sleep(2)
    target = stack.store.chaos_run(run_id)["targets"][0]
    assert stack.faults(target)["memory_mb"] == 256
    try:
        stack.set_kill_switch("on")
        switched = time.time()
        run = stack.airflow.wait(DAG, run_id, timeout=240)
        record = stack.store.chaos_run(run_id)
        assert run["state"] == "failed"
        assert record["verdict"] == "aborted" and record["abort"]["rule"] == "kill_switch", record["abort"]
        assert record["aborted_at"].timestamp() - switched < 3 * INTERVAL
        assert stack.faults(target)["memory_mb"] == 0
        no_fault_left(stack)
        # While it is on, a new experiment is refused at the gates and injects nothing.
        _refused_id, run, tis, refused = run_experiment(stack, {"experiment": "gs-disk-fill", "duration": "20s"})
        assert refused["verdict"] == "refused" and "kill_switch" in refused["reason"]
        assert tis["inject"]["state"] == "skipped" and refused["injected_at"] is None
    finally:
        stack.set_kill_switch(None)


def test_a_refused_experiment_injects_nothing(chaos_stack: ChaosStack) -> None:
    stack = chaos_stack
    stack.publish_budgets(0.2)  # below the experiment's 25% floor
    before = {name: stack.faults(name) for name in STABLES}
    _run_id, _run, tis, record = run_experiment(stack, {"experiment": "gs-instance-kill"})
    assert record["verdict"] == "refused", record
    assert "budget" in record["reason"] and "20.0%" in record["reason"]
    assert tis["gates"]["state"] == "skipped" and tis["inject"]["state"] == "skipped"
    assert tis["monitor"]["state"] == "skipped" and tis["finalize"]["state"] == "success"
    assert record["injected_at"] is None and record["injection"] is None
    assert {name: stack.faults(name) for name in STABLES} == before
    assert stack.store.chaos_lock() is None


@pytest.mark.parametrize(("conf", "field"), [
    ({"experiment": "gs-instance-kill", "blast_radius": "2"}, "blast_radius"),  # 2 of 2 stables: over 50%
    ({"experiment": "gs-instance-kill", "target": "gs-stable-9"}, "target"),
    ({"experiment": "gs-instance-kill", "duration": "1h"}, "duration"),
])
def test_bad_requests_are_rejected_before_anything_is_injected(chaos_stack: ChaosStack, conf: dict,
                                                                field: str) -> None:
    stack = chaos_stack
    stack.publish_budgets(0.9)
    _run_id, run, tis, record = run_experiment(stack, conf, timeout=180)
    assert run["state"] == "failed" and tis["validate"]["state"] == "failed"
    assert record["verdict"] == "invalid" and f"{field}:" in record["reason"], record["reason"]
    assert tis["inject"]["state"] in ("upstream_failed", "skipped")
    no_fault_left(stack)


def test_a_gameday_runs_its_suite_an_instance_kill_passes_and_a_late_scheduled_one_is_refused(
        chaos_stack: ChaosStack, slack_sink) -> None:
    """The smoke suite is one experiment, gs-instance-kill: a stable game server disappears and the steady state
    holds because HAProxy routes around it. The game-day and the experiment are checked from outside."""
    stack = chaos_stack
    stack.publish_budgets(0.9)
    dry = stack.airflow.trigger(DAG, {"experiment": "gs-instance-kill", "dry_run": True})  # unpauses the DAG
    assert stack.airflow.wait(DAG, dry, timeout=180)["state"] == "success"
    assert stack.store.chaos_run(dry)["verdict"] == "dry_run"
    slack_sink.clear()
    gameday_id = stack.airflow.trigger("chaos_gameday", {"suite": "smoke"})
    assert stack.airflow.wait("chaos_gameday", gameday_id, timeout=420)["state"] == "success"
    (gameday,) = stack.store.gamedays(ids=[gameday_id])
    (record,) = stack.store.chaos_runs(gameday_id=gameday_id)
    run_id = record["id"]
    assert gameday["verdict"] == "pass", (gameday["reason"], record["reason"], record["steady_after"])
    assert gameday["score"] == pytest.approx(record["score"])
    report = stack.airflow.xcom("chaos_gameday", gameday_id, "report")
    assert Path(report["report"]["html"]).exists()

    assert stack.airflow.call("GET", f"dags/{DAG}/dagRuns/{run_id}").json()["state"] == "success"
    assert record["experiment"] == "gs-instance-kill" and record["verdict"] == "pass", record["reason"]
    assert all(g["passed"] for g in record["gates"]), record["gates"]
    assert record["steady_before"]["passed"] and record["steady_after"]["passed"]
    assert record["injected_at"] and record["recovered_at"] and record["abort"] is None
    (target,) = record["targets"]
    assert target in STABLES and record["injection"]["fault"]["kind"] == "pod_delete"
    # The steady state held the whole time: every poll of every probe passed.
    samples = {p["name"]: p["samples"] for p in record["probes"]}
    assert len(samples["availability"]) >= 30 // INTERVAL - 1
    assert all(s[2] is True for rows in samples.values() for s in rows), samples
    assert record["score"] == pytest.approx(100.0)
    no_fault_left(stack)
    # The span is recorded as a game-day window, so SLO reports can show it.
    window = stack.store.windows(ids=[f"gameday:{run_id}"[:128]])[0]
    assert window["kind"] == "gameday" and window["services"] == ["game-server"]
    files = report_files(stack, run_id)
    assert "gs-instance-kill" in files["md"].read_text() and "<img" in files["html"].read_text()
    suite = ET.parse(files["junit"]).getroot()  # noqa: S314 (our own report)
    assert suite.find(".//testcase").get("name") == "gs-instance-kill"
    assert suite.find(".//failure") is None
    texts = [m.get("text", "") for m in slack_sink.messages()]
    assert any("gs-instance-kill" in t for t in texts), texts

    # Unpausing chaos_gameday made the scheduler create the run of the last Wednesday 14:00: it is late, so it
    # is refused and injects nothing.
    late = [r for r in stack.airflow.call("GET", "dags/chaos_gameday/dagRuns").json()["dag_runs"]
            if r["run_type"] == "scheduled"]
    for scheduled in late:
        (refused,) = stack.store.gamedays(ids=[scheduled["dag_run_id"]])
        assert refused["verdict"] == "refused" and "late" in refused["reason"], refused
        assert stack.store.chaos_runs(gameday_id=scheduled["dag_run_id"]) == []
