"""Benchmark: the deploy guard's time to stable, false rollbacks and worker-slot use, against a Flagger-like judge.

Starts the demo stack on free loopback ports (the fleet behind HAProxy, the load generator at the demo's default
load, which follows the daily curve in KST, and a Prometheus scraping every 5 s) and drives the real deploy code
directly, without Airflow: LocalDeployBackend gives the canary 10% of the traffic, the real CanaryAnalysisTrigger
judges it against the live Prometheus, and every trial ends with backend.rollback(), so each starts from the
same state. The evening-peak strictness is the one the prod calendar gate would apply at the trial's start.

- bad trials: game-server 1.6.66 (3% of player requests fail, demo/builds.yaml). Time to stable: from the
  canary getting 10% of the traffic to backend.rollback() returning (traffic fully back on stable).
- healthy trials: 1.5.<n>. A rollback of one is a false rollback; a pass counts as a correct promotion.
- extended trials keep the canary at 10% for a fixed span whatever our verdict (bad: 6 min, some healthy: 5
  min); our judge still decides live and its decision time is recorded. On those spans, and on the span every
  healthy trial ran, a fixed-interval judge set up like Flagger's defaults (interval 60 s, threshold 5: every
  60 s the canary's request success rate over the last minute; below 99% or no data is a failed check; 5 failed
  checks roll back) is evaluated offline, from the same Prometheus data.
- worker slots: one real deploy of 1.5.9 (stage prod) through `airflow standalone`, triggered over the REST API;
  the time each task instance ran on a worker, from the REST API and the task logs, over the run's wall time.

    .venv/bin/python benchmarks/deploy_guard.py [--healthy 20] [--bad 5] [--out benchmarks/results/deploy_guard.json]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

from demo.curve import load_factor  # noqa: E402
from demo.procs import ProcessGroup, free_port  # noqa: E402
from demo.topology import DEFAULT_TOPOLOGY  # noqa: E402
from gamesre.deploy.analysis import with_matchers  # noqa: E402
from gamesre.integrations.haproxy import HAProxyRuntime  # noqa: E402
from gamesre.integrations.prometheus import PrometheusClient  # noqa: E402

SERVICE = "game-server"
BAD_VERSION = "1.6.66"  # demo/builds.yaml: 3% of player requests fail
CANARY_STEPS = (10, 25, 50, 100)
GOAL_TIME_TO_STABLE_S = 60.0
GOAL_SLOT_SHARE = 0.05
BAD_HOLD_S = 360.0  # an extended bad trial: six fixed-interval checks fit
HEALTHY_HOLD_S = 300.0  # an extended healthy trial: five checks, the fewest that can roll back
WARM_UP_S = 60.0  # load generator sessions and the first scrapes settle before the first trial

# What is measured: a change to any of these during a run makes its numbers a mix of two versions.
JUDGED_CODE = ("plugins/gamesre/deploy/analysis.py", "plugins/gamesre/airflow/triggers/analysis.py",
               "plugins/gamesre/airflow/deploy.py", "plugins/gamesre/airflow/operators/deploy.py",
               "plugins/gamesre/integrations/deploy/local.py", "dags/game_service_deploy.py",
               "include/config/deploy.yaml", "include/config/slos.yaml", "include/config/policies.yaml")
QUIET = logging.getLogger("deploy_guard.quiet")
QUIET.setLevel(logging.WARNING)

# The fixed-interval judge, as Flagger's defaults (analysis.interval 1m, threshold 5, request-success-rate min 99)
FIXED_INTERVAL_S = 60
FIXED_THRESHOLD = 5
FIXED_MIN_SUCCESS = 0.99
ACTIONS = 'game_action_requests_total{service="game-server"}'
FAILED_ACTIONS = 'game_action_requests_total{service="game-server",code!="200"}'


# --- the fixed-interval judge (pure) --------------------------------------------------------------------------

@dataclass(frozen=True)
class FixedCheck:
    """One check of the fixed-interval judge: the canary's requests over the minute before `at_s`."""

    at_s: float  # seconds after the canary got traffic
    total: float | None
    bad: float | None

    @property
    def success_rate(self) -> float | None:
        """None when nothing was served: no data is not success."""
        if self.total is None or self.total <= 0:
            return None
        return 1.0 - (self.bad or 0.0) / self.total

    @property
    def failed(self) -> bool:
        rate = self.success_rate
        return rate is None or rate < FIXED_MIN_SUCCESS

    def to_dict(self) -> dict[str, Any]:
        return {"at_s": self.at_s, "total": self.total, "bad": self.bad, "success_rate": self.success_rate,
                "failed": self.failed}


def fixed_rollback_at(checks: list[FixedCheck], threshold: int = FIXED_THRESHOLD) -> float | None:
    """When the threshold-th failed check happens (seconds after traffic), or None: no rollback in the span."""
    failed = [c.at_s for c in checks if c.failed]
    return failed[threshold - 1] if len(failed) >= threshold else None


def fixed_checks(prom: PrometheusClient, version: str, t_traffic: float, t_end: float) -> list[FixedCheck]:
    """The checks at every full interval after the canary got traffic, up to t_end, from Prometheus."""
    cohort = {"version": version, "track": "canary"}
    total_q = f"sum(increase({with_matchers(ACTIONS, cohort)}[{FIXED_INTERVAL_S}s]))"
    bad_q = f"sum(increase({with_matchers(FAILED_ACTIONS, cohort)}[{FIXED_INTERVAL_S}s]))"
    checks = []
    k = 1
    while t_traffic + k * FIXED_INTERVAL_S <= t_end + 1e-6:
        at = t_traffic + k * FIXED_INTERVAL_S
        total = prom.scalar(total_q, at)
        bad = prom.scalar(bad_q, at) if total else None
        checks.append(FixedCheck(k * FIXED_INTERVAL_S, total, 0.0 if total and bad is None else bad))
        k += 1
    return checks


# --- the stack ------------------------------------------------------------------------------------------------

@dataclass
class Stack:
    fleet: dict[str, Any]
    fleet_file: Path
    haproxy: HAProxyRuntime
    haproxy_admin_port: int
    prometheus_port: int

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"


def start_stack(group: ProcessGroup, workdir: Path) -> Stack:
    """Like tests/conftest.py _start_live_stack, with the load generator at the demo's default load (demo/run.py)."""
    from demo.services import (
        ScrapeTarget,
        render_prometheus_config,
        start_fleet,
        start_haproxy,
        start_loadgen,
        start_prometheus,
    )

    ports = {i.name: free_port() for i in DEFAULT_TOPOLOGY}
    for process in start_fleet(workdir, ports, seed=11):
        group.add(process)
    players, stats, admin = free_port(), free_port(), free_port()
    group.add(start_haproxy(workdir / "haproxy", ports, player_port=players, stats_port=stats, admin_port=admin))
    players_url = f"http://127.0.0.1:{players}"
    group.add(start_loadgen(workdir, players_url))
    targets = [ScrapeTarget(i.job(), i.name, f"127.0.0.1:{ports[i.name]}") for i in DEFAULT_TOPOLOGY]
    prom_port = free_port()
    group.add(start_prometheus(workdir / "prometheus", prom_port,
                               render_prometheus_config(targets, extra_jobs={"haproxy": f"127.0.0.1:{stats}"})))
    # the fleet description `make demo` writes to .demo/fleet.json (tests/e2e/deploy/conftest.py fleet_document)
    instances = {i.name: {"service": i.service, "track": i.track, "version": i.version, "job": i.job(),
                          "port": ports[i.name], "url": f"http://127.0.0.1:{ports[i.name]}"}
                 for i in DEFAULT_TOPOLOGY}
    fleet = {"instances": instances, "haproxy": {"players": players_url, "admin_port": admin}}
    fleet_file = workdir / "fleet.json"
    fleet_file.write_text(json.dumps(fleet, indent=2))
    return Stack(fleet, fleet_file, HAProxyRuntime("127.0.0.1", admin), admin, prom_port)


# --- one trial: the real backend and the real trigger -----------------------------------------------------------

def peak_strictness(now: datetime) -> dict[str, Any]:
    """The strictness the prod calendar gate would apply now (maintenance windows from the config only)."""
    from gamesre.calendar import load_calendar
    from gamesre.core.services import load_services
    from gamesre.deploy.config import load_deploy_config
    from gamesre.deploy.gates import calendar_gate
    from gamesre.slo.spec import load_policies

    config = load_deploy_config()
    verdict = load_calendar(services=load_services()).deploy_allowed(now, SERVICE)
    result, strictness = calendar_gate(verdict.allowed, verdict.reason, now, load_policies(), peak_mode=config.peak,
                                       strictest=config.stages["prod"].strictest)
    return {"strictness": strictness, "evening_peak": result.evidence["evening_peak"], "gate_passed": result.passed,
            "gate_reason": result.reason}


async def first_event(trigger: Any) -> tuple[dict[str, Any], float]:
    """The trigger's single event and when it arrived."""
    async with contextlib.aclosing(trigger.run()) as events:
        async for event in events:
            return dict(event.payload), time.time()
    raise RuntimeError("the analysis trigger ended without an event")


async def run_trial(stack: Stack, kind: str, version: str, hold_s: float | None) -> dict[str, Any]:
    """Prepare, shift to 10%, judge with CanaryAnalysisTrigger, roll back; `hold_s`: keep 10% that long anyway."""
    from gamesre.airflow.deploy import analysis_spec
    from gamesre.airflow.triggers.analysis import CanaryAnalysisTrigger
    from gamesre.core.services import load_services
    from gamesre.deploy.config import load_deploy_config
    from gamesre.deploy.plan import build_plan
    from gamesre.deploy.request import parse_request
    from gamesre.integrations.deploy.local import LocalDeployBackend

    backend = LocalDeployBackend(stack.fleet, stack.haproxy, SERVICE, fleet_file=stack.fleet_file)
    plan = build_plan("canary", canary_steps=CANARY_STEPS)
    request = parse_request({"service": SERVICE, "version": version, "change_ticket": "CHG-1", "stages": ["prod"],
                             "canary_steps": list(CANARY_STEPS)}, load_services(), load_deploy_config(),
                            default_requester="benchmark")
    judge: asyncio.Task[tuple[dict[str, Any], float]] | None = None
    try:
        backend.prepare(version, plan)
        now = datetime.now(UTC)
        gate = peak_strictness(now)
        backend.shift(0)
        t_traffic = time.time()
        spec = analysis_spec(request, "prod", 0, plan.steps[0].label, backend, since=t_traffic,
                             strictness=gate["strictness"])
        trigger = CanaryAnalysisTrigger(spec, prometheus_url=stack.prometheus_url)
        trigger._log = QUIET  # type: ignore[assignment]  # its per-poll progress would drown this output
        judge = asyncio.create_task(first_event(trigger))
        if hold_s:
            await asyncio.sleep(max(0.0, t_traffic + hold_s - time.time()))
        event, t_decided = await judge
        t_rollback = time.time()
        backend.rollback(f"benchmark trial over: {event['decision']}")
        t_stable = time.time()
    finally:
        if judge is not None and not judge.done():
            judge.cancel()
        backend.rollback("benchmark trial interrupted")  # a no-op when nothing is prepared any more
    failed = [s for s in event.get("slis", []) if s["decision"] == "fail"]
    decided_after = t_decided - t_traffic
    rollback_s = t_stable - t_rollback
    return {
        "kind": kind, "version": version, "hold_s": hold_s, "started_at": now.isoformat(),
        "load_factor": round(load_factor(now), 4), **gate,
        "decision": event["decision"], "rules": sorted({f"{s['slo']}:{s['rule']}" for s in failed}),
        "reason": str(event.get("reason", ""))[:400], "polls": event.get("polls"), "errors": event.get("errors"),
        "candidate": {s["slo"]: s.get("candidate") for s in event.get("slis", [])},
        "decided_after_s": round(decided_after, 2), "rollback_s": round(rollback_s, 3),
        # extended: traffic came back only at the end of the hold; ours would have been decision + rollback
        "time_to_stable_s": round(decided_after + rollback_s if hold_s else t_stable - t_traffic, 2),
        "held_until_s": round(t_rollback - t_traffic, 1) if hold_s else None,
        "t_traffic": t_traffic, "t_stable": t_stable, "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def trial_plan(healthy: int, healthy_extended: int, bad: int, bad_extended: int, seed: int) -> list[tuple]:
    """(kind, version, hold) in a seeded shuffle, so load drift during the run touches both kinds alike."""
    trials: list[tuple[str, str, float | None]] = [
        ("healthy", f"1.5.{100 + i}", HEALTHY_HOLD_S if i < healthy_extended else None) for i in range(healthy)]
    trials += [("bad", BAD_VERSION, None)] * bad + [("bad", BAD_VERSION, BAD_HOLD_S)] * bad_extended
    random.Random(seed).shuffle(trials)
    return trials


# --- the fixed-interval judge on the same runs ----------------------------------------------------------------

def evaluate_fixed(prom: PrometheusClient, trials: list[dict[str, Any]]) -> None:
    """Adds to every trial the fixed-interval checks over the span it ran (extended: the whole hold)."""
    for t in trials:
        end = t["t_traffic"] + t["hold_s"] if t["hold_s"] else t["t_stable"]
        checks = fixed_checks(prom, t["version"], t["t_traffic"], end)
        rollback_at = fixed_rollback_at(checks)
        t["fixed_interval"] = {
            "span_s": round(end - t["t_traffic"], 1), "checks": [c.to_dict() for c in checks],
            "failed_checks": sum(c.failed for c in checks), "rollback_at_s": rollback_at,
            "time_to_stable_s": None if rollback_at is None else round(rollback_at + t["rollback_s"], 2)}


# --- worker slots: one real deploy through Airflow --------------------------------------------------------------

def _parse_ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def worker_segments(lines: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """The spans a task ran on a worker, from its log lines: one per start or resume of the task process.

    A segment begins at the task runner's `::group::Pre Execute` line and ends at the task process's last line
    (`::endgroup::` after Post Execute: deferred, or finished) before the next segment or a triggerer line.
    """
    segments: list[tuple[float, float]] = []
    current: list[float] | None = None
    for line in sorted((x for x in lines if x.get("timestamp")), key=lambda x: str(x["timestamp"])):
        at = _parse_ts(str(line["timestamp"]))
        if _is_triggerer_line(line):
            if current is not None:
                segments.append((current[0], current[1]))
                current = None
        elif line.get("event") == "::group::Pre Execute":
            if current is not None:
                segments.append((current[0], current[1]))
            current = [at, at]
        elif current is not None:
            current[1] = at
    if current is not None:
        segments.append((current[0], current[1]))
    return segments


def _is_triggerer_line(line: dict[str, Any]) -> bool:
    return line.get("filename") == "triggerer_job_runner.py" or ".triggers." in str(line.get("logger", ""))


def handoffs(lines: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Airflow's own delays around a deferral, where the log holds the triggerer's lines for it.

    pickup: the task deferred -> the triggerer started the trigger; resume: the trigger fired -> the task process
    started again on a worker.
    """
    def times(match: Any) -> list[float]:
        return sorted(_parse_ts(str(x["timestamp"])) for x in lines if x.get("timestamp") and match(str(x["event"])))

    deferred = times(lambda e: e.startswith("Pausing task as DEFERRED"))
    started = times(lambda e: e.startswith("trigger ") and e.endswith(" starting"))
    fired = times(lambda e: e == "Trigger fired event")
    resumed = times(lambda e: e == "::group::Pre Execute")
    pickup = [s - max(d for d in deferred if d <= s) for s in started if any(d <= s for d in deferred)]
    resume = [min(r for r in resumed if r >= f) - f for f in fired if any(r >= f for r in resumed)]
    return {"pickup_s": [round(x, 3) for x in pickup], "resume_s": [round(x, 3) for x in resume]}


def measure_worker_slots(group: ProcessGroup, workdir: Path, stack: Stack, version: str) -> dict[str, Any]:
    """Deploy `version` through a real Airflow and add up the time its task instances held a worker slot."""
    import tests.airflow_api
    from demo.airflow_env import Endpoints
    from demo.services import start_slack_sink
    from gamesre.integrations.store import SREStore
    from tests.airflow_api import AirflowAPI, RestartableAlertmanager, airflow_standalone
    from tests.databases import postgres_database, postgres_reachable

    # The task logs at INFO: the lines of each worker segment (start, deferral, resume, end) are the measure.
    tests.airflow_api.airflow_env = _airflow_env_info_logs
    dag = "game_service_deploy"
    slack_port = free_port()
    group.add(start_slack_sink(workdir / "slack-sink", slack_port))
    alertmanager = RestartableAlertmanager(workdir / "alertmanager", free_port(),
                                           f"http://127.0.0.1:{slack_port}/services/T0TEST/B0TEST/sink")
    with contextlib.ExitStack() as exits:
        alertmanager.start()
        exits.callback(alertmanager.stop)
        metadata_url = (exits.enter_context(postgres_database("gamesre_bench_airflow")) if postgres_reachable()
                        else None)
        store_url = f"sqlite:///{workdir / 'sre.db'}"
        ep = Endpoints(prometheus_port=stack.prometheus_port, alertmanager_port=alertmanager.port,
                       slack_sink_port=slack_port, sre_store_url=store_url,
                       haproxy_runtime_port=stack.haproxy_admin_port, fleet_file=stack.fleet_file)
        port = free_port()
        home = workdir / "airflow-home"
        t = time.monotonic()
        password = exits.enter_context(airflow_standalone(home, ep, port, metadata_url))
        api = AirflowAPI(f"http://127.0.0.1:{port}", password, store_url, home, alertmanager)
        api.wait_for_dag(dag, timeout=300)
        print(f"airflow standalone up in {time.monotonic() - t:.0f} s "
              f"(metadata on {'PostgreSQL' if metadata_url else 'SQLite'})", flush=True)
        SREStore(store_url).publish_state("service", SERVICE, "normal", datetime.now(UTC), [], {"slo_states": {}})
        conf = {"service": SERVICE, "version": version, "change_ticket": "CHG-1", "stages": ["prod"]}
        run_id = api.trigger(dag, conf)
        run = api.wait(dag, run_id, timeout=1200)
        outcome = api.xcom(dag, run_id, "finalize")
        return _slot_report(api, dag, run_id, run, outcome)


def _airflow_env_info_logs(*args: Any, **kwargs: Any) -> dict[str, str]:
    from demo.airflow_env import airflow_env

    return {**airflow_env(*args, **kwargs), "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO"}


def _slot_report(api: Any, dag: str, run_id: str, run: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    """Per task instance: its tries' start and end (REST), its worker segments (task log); totals over the wall."""
    base = f"dags/{dag}/dagRuns/{run_id}/taskInstances"
    run_start = _parse_ts(run["start_date"])
    wall = _parse_ts(run["end_date"]) - run_start
    tasks = []
    all_handoffs: dict[str, list[float]] = {"pickup_s": [], "resume_s": []}
    for ti in sorted(api.call("GET", base).json()["task_instances"], key=lambda x: x.get("start_date") or ""):
        task_id = ti["task_id"]
        tries = [x for x in api.call("GET", f"{base}/{task_id}/tries").json().get("task_instances", [])
                 if x.get("start_date") and x.get("end_date")]
        start_to_end = sum(_parse_ts(x["end_date"]) - _parse_ts(x["start_date"]) for x in tries)
        segments: list[tuple[float, float]] = []
        for x in tries:
            resp = api.call("GET", f"{base}/{task_id}/logs/{x['try_number']}", params={"full_content": "true"})
            lines = [line for line in (resp.json().get("content", []) if resp.status_code == 200 else [])
                     if isinstance(line, dict)]
            segments += worker_segments(lines)
            for key, values in handoffs(lines).items():
                all_handoffs[key] += values
        log_s = sum(b - a for a, b in segments)
        # One segment: the try's own start and end bracket it too; take the larger. Several (deferrals): the
        # try's start and end span the waits in the triggerer, so only the log tells the worker time.
        worker_s = log_s if len(segments) > 1 else max(log_s, start_to_end)
        # The hand-over before the last start on a worker: queued (the executor takes a slot) -> running.
        last_start = (segments[-1][0] if len(segments) > 1
                      else _parse_ts(ti["start_date"]) if ti.get("start_date") else None)
        handover = (last_start - _parse_ts(ti["queued_when"])) if last_start and ti.get("queued_when") else None
        tasks.append({"task_id": task_id, "state": ti["state"], "tries": len(tries),
                      "queued_when": ti.get("queued_when"), "start_date": ti.get("start_date"),
                      "end_date": ti.get("end_date"), "start_to_end_s": round(start_to_end, 3),
                      "log_segments": [[round(a - run_start, 3), round(b - a, 3)] for a, b in segments],
                      "log_worker_s": round(log_s, 3), "worker_s": round(worker_s, 3),
                      "queued_to_start_s": None if handover is None or handover < 0 else round(handover, 3)})
    worker_total = sum(t["worker_s"] for t in tasks)
    upper_total = sum(t["start_to_end_s"] for t in tasks)
    gaps = [t["queued_to_start_s"] for t in tasks if t["queued_to_start_s"] is not None]
    segment_count = sum(len(t["log_segments"]) for t in tasks)
    # Segments whose queueing Airflow no longer records (earlier resumes) get the median measured hand-over.
    handover_total = sum(gaps) + (segment_count - len(gaps)) * (statistics.median(gaps) if gaps else 0.0)
    return {"run_id": run_id, "state": run["state"], "outcome": outcome.get("outcome"),
            "reason": outcome.get("reason"), "run_start": run["start_date"], "run_end": run["end_date"],
            "wall_s": round(wall, 2), "tasks": tasks, "handoffs": all_handoffs,
            "worker_s": round(worker_total, 2), "share": round(worker_total / wall, 4),
            "segments": segment_count, "handover_measured": len(gaps),
            "handover_s": round(handover_total, 2),
            "share_with_handover": round((worker_total + handover_total) / wall, 4),
            "start_to_end_s": round(upper_total, 2), "start_to_end_share": round(upper_total / wall, 4)}


def code_fingerprint() -> dict[str, str]:
    return {path: hashlib.sha256((REPO / path).read_bytes()).hexdigest()[:16] for path in JUDGED_CODE}


# --- the report -----------------------------------------------------------------------------------------------

def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None}
    return {"n": len(values), "median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2)}


def summarize(trials: list[dict[str, Any]]) -> dict[str, Any]:
    healthy = [t for t in trials if t["kind"] == "healthy"]
    bad = [t for t in trials if t["kind"] == "bad" and not t["hold_s"]]
    bad_ext = [t for t in trials if t["kind"] == "bad" and t["hold_s"]]
    healthy_ext = [t for t in healthy if t["hold_s"]]
    return {
        "ours": {
            "bad_time_to_stable_s": _stats([t["time_to_stable_s"] for t in bad]),
            "bad_decided_after_s": _stats([t["decided_after_s"] for t in bad]),
            "bad_rolled_back": sum(t["decision"] != "pass" for t in bad), "bad_trials": len(bad),
            "bad_extended_decided_after_s": [t["decided_after_s"] for t in bad_ext],
            "healthy_trials": len(healthy), "false_rollbacks": sum(t["decision"] != "pass" for t in healthy),
            "healthy_pass_after_s": _stats([t["decided_after_s"] for t in healthy if t["decision"] == "pass"]),
            "rollback_s": _stats([t["rollback_s"] for t in trials]),
        },
        "fixed_interval": {
            "bad_extended_time_to_stable_s": [t["fixed_interval"]["time_to_stable_s"] for t in bad_ext],
            "bad_extended_rollback_at_s": [t["fixed_interval"]["rollback_at_s"] for t in bad_ext],
            "bad_extended_failed_checks": [t["fixed_interval"]["failed_checks"] for t in bad_ext],
            "healthy_checks_made": sum(len(t["fixed_interval"]["checks"]) for t in healthy if not t["hold_s"]),
            "healthy_failed_checks": sum(t["fixed_interval"]["failed_checks"] for t in healthy if not t["hold_s"]),
            "healthy_extended": [{"version": t["version"], "checks": len(t["fixed_interval"]["checks"]),
                                  "failed": t["fixed_interval"]["failed_checks"],
                                  "rollback": t["fixed_interval"]["rollback_at_s"] is not None} for t in healthy_ext],
            "false_rollbacks": sum(t["fixed_interval"]["rollback_at_s"] is not None for t in healthy),
        },
    }


def print_summary(summary: dict[str, Any], slots: dict[str, Any] | None) -> None:
    ours, fixed = summary["ours"], summary["fixed_interval"]
    tts = ours["bad_time_to_stable_s"]
    if tts["n"]:
        met = "met" if tts["max"] <= GOAL_TIME_TO_STABLE_S else "NOT met"
        print(f"bad canary, time to stable (ours, live): median {tts['median']} s, max {tts['max']} s over "
              f"{tts['n']} trials; goal <= {GOAL_TIME_TO_STABLE_S:.0f} s -> {met}")
    if fixed["bad_extended_time_to_stable_s"]:
        print(f"bad canary, time to stable (fixed-interval, offline): {fixed['bad_extended_time_to_stable_s']} s; "
              f"ours on the same runs decided after {ours['bad_extended_decided_after_s']} s")
    print(f"false rollbacks (ours, live): {ours['false_rollbacks']} of {ours['healthy_trials']} healthy; "
          f"fixed-interval on the same runs: {fixed['false_rollbacks']} ({fixed['healthy_failed_checks']} of "
          f"{fixed['healthy_checks_made']} checks failed over the spans ours needed; 5-min spans: "
          f"{fixed['healthy_extended']})")
    if slots:
        met = "met" if slots["share"] < GOAL_SLOT_SHARE else "NOT met"
        print(f"worker slots: run {slots['outcome']} in {slots['wall_s']} s; {slots['segments']} worker segments, "
              f"{slots['worker_s']} s = {slots['share']:.1%} of the wall time (goal < {GOAL_SLOT_SHARE:.0%} -> {met}); "
              f"the task instances' start-to-end, deferrals included: {slots['start_to_end_s']} s = "
              f"{slots['start_to_end_share']:.1%}; with the queued -> running hand-over of every segment "
              f"({slots['handover_measured']} measured, the rest at their median): {slots['share_with_handover']:.1%}; "
              f"deferral hand-offs {slots['handoffs']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--healthy", type=int, default=20, help="healthy canaries (1.5.<n>) judged (default 20)")
    parser.add_argument("--healthy-extended", type=int, default=2,
                        help=f"of those, how many keep 10%% for {HEALTHY_HOLD_S:.0f} s for the fixed-interval "
                             "judge (default 2)")
    parser.add_argument("--bad", type=int, default=5, help=f"bad canaries ({BAD_VERSION}) rolled back at our "
                        "verdict (default 5)")
    parser.add_argument("--bad-extended", type=int, default=1,
                        help=f"extra bad canaries kept at 10%% for {BAD_HOLD_S:.0f} s for the fixed-interval judge "
                             "(default 1)")
    parser.add_argument("--no-airflow", action="store_true", help="skip the worker-slot deploy through Airflow")
    parser.add_argument("--seed", type=int, default=1, help="seed of the trial order (default 1)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "deploy_guard.json",
                        help="where the JSON results go (default benchmarks/results/deploy_guard.json)")
    args = parser.parse_args()
    if args.healthy_extended > args.healthy:
        parser.error("--healthy-extended cannot exceed --healthy")
    began = time.monotonic()
    started_at = datetime.now(UTC)
    plan = trial_plan(args.healthy, args.healthy_extended, args.bad, args.bad_extended, args.seed)
    fingerprint = code_fingerprint()
    results: dict[str, Any] = {"started_at": started_at.isoformat(), "load_factor_at_start": load_factor(started_at),
                               "code": fingerprint,
                               "machine": {"cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg()},
                               "args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="deploy-guard-") as tmp, _airflow_home(Path(tmp)):
        workdir = Path(tmp)
        group = ProcessGroup()
        with group.running():
            stack = start_stack(group, workdir)
            print(f"stack up; warming up {WARM_UP_S:.0f} s (load factor {load_factor(datetime.now(UTC)):.2f})",
                  flush=True)
            time.sleep(WARM_UP_S)
            trials = []
            for n, (kind, version, hold) in enumerate(plan, 1):
                trial = asyncio.run(run_trial(stack, kind, version, hold))
                trials.append(trial)
                print(f"[{n}/{len(plan)}] {kind:7s} {version:7s}{' held ' + str(int(hold)) + ' s' if hold else ''}: "
                      f"{trial['decision']} after {trial['decided_after_s']:.1f} s, stable after "
                      f"{trial['time_to_stable_s']:.1f} s {trial['rules'] or ''} (load {trial['load_factor']:.2f}, "
                      f"strictness {trial['strictness']})", flush=True)
            if trials:
                time.sleep(15)  # the last samples are scraped before the offline evaluation
                evaluate_fixed(PrometheusClient(stack.prometheus_url), trials)
            results["trials"] = trials
            results["summary"] = summarize(trials)
            results["trials_finished_s"] = round(time.monotonic() - began, 1)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2, default=str))  # kept should the Airflow part fail
            slots = None
            if not args.no_airflow:
                slots = measure_worker_slots(group, workdir, stack, "1.5.9")
                results["worker_slots"] = slots
    changed = sorted(path for path, digest in code_fingerprint().items() if digest != fingerprint[path])
    results["code_changed_during_run"] = changed
    results["finished_at"] = datetime.now(UTC).isoformat()
    results["total_s"] = round(time.monotonic() - began, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print_summary(results["summary"], slots)
    if changed:
        print(f"WARNING: {', '.join(changed)} changed during the run: these numbers mix two versions of the code")
    print(f"total {results['total_s']:.0f} s; results in {args.out}")
    return 0


@contextlib.contextmanager
def _airflow_home(workdir: Path) -> Iterator[None]:
    """Importing the trigger imports Airflow, which writes an airflow.cfg: keep it in the work folder."""
    previous = os.environ.get("AIRFLOW_HOME")
    os.environ["AIRFLOW_HOME"] = str(workdir / "airflow-import-home")
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("AIRFLOW_HOME", None)
        else:
            os.environ["AIRFLOW_HOME"] = previous


if __name__ == "__main__":
    sys.exit(main())
