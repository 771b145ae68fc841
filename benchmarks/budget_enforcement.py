"""Benchmark: from a service's policy state turning `rollback` to traffic back on the previous version (mode act).

Starts the demo stack on free loopback ports (the fleet behind HAProxy under the demo's load, a Prometheus scraping
every 5 s; deploy_guard.start_stack) and `airflow standalone` wired to it. Each trial:

1. leaves game-server as a bad promotion would: every instance on 1.5.1 (the fleet's admin API), its deployment
   record (promoted over 1.4.2, after every change before), two hours of availability ledger with 2% of the
   actions failing since the promotion's minute, and the published states `normal` then `rollback` (83%);
2. at t0 posts the event error_budget_report emits after publishing (`POST /api/v2/assets/events` on
   `error_budget_policy_state`): the scheduler starts budget_policy_enforcement, which decides and starts the
   `automatic-rollback` run of game_service_deploy;
3. polls HAProxy every 0.1 s: **traffic back** is when every player request goes to instances running 1.4.2; then
   waits for the rollback run to end (verified by its analysis and promoted everywhere).

Reported per trial and as medians: t0 -> decision recorded, -> rollback run created, -> traffic back, -> run
ended. Goal: traffic back in under 2 minutes.

    .venv/bin/python benchmarks/budget_enforcement.py [--trials 3] [--out benchmarks/results/budget_enforcement.json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins"), str(REPO / "benchmarks")]

from deploy_guard import Stack, _airflow_home, start_stack  # noqa: E402

from demo.procs import ProcessGroup, free_port  # noqa: E402

SERVICE = "game-server"
BAD, GOOD = "1.5.1", "1.4.2"
GOAL_S = 120.0
WARM_UP_S = 45.0


def serve(stack: Stack, version: str) -> None:
    """Every game-server instance on `version`, as a promotion leaves them."""
    urls = [i["url"] for i in stack.fleet["instances"].values() if i["service"] == SERVICE]
    for url in urls:
        requests.put(f"{url}/admin/build", json={"version": version}, timeout=5).raise_for_status()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(requests.get(f"{u}/admin/build", timeout=5).json()["version"] == version for u in urls):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the fleet did not reach {version}")


def traffic_back(stack: Stack) -> bool:
    """Every HAProxy weight of game-server is on instances running the previous version."""
    weights = 0
    for name, info in stack.fleet["instances"].items():
        if info["service"] != SERVICE:
            continue
        weight = stack.haproxy.get_weight(info["job"], name)
        if weight and requests.get(f"{info['url']}/admin/build", timeout=5).json()["version"] != GOOD:
            return False
        weights += weight
    return weights > 0


def prepare(store: Any, n: int) -> str:
    """The bad promotion's record, the ledger and the published states; the deployment id."""
    done = [d["finished_at"] for d in store.deployments(service=SERVICE) if d["finished_at"]]
    promoted = max([datetime.now(UTC) - timedelta(minutes=20), *(t + timedelta(seconds=1) for t in done)])
    deployment_id = f"bench-bad-{n}-{int(time.time())}"
    store.upsert_deployment({
        "id": deployment_id, "service": SERVICE, "version": BAD, "image": f"demo:{BAD}", "previous_version": GOOD,
        "strategy": "canary", "stages": ["prod"], "backend": "local", "change_ticket": "CHG-1", "requested_by": "ci",
        "dry_run": False, "forced": False, "outcome": "promoted", "requested_at": promoted - timedelta(minutes=4),
        "finished_at": promoted})
    since = promoted.replace(second=0, microsecond=0)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = [(int((now - timedelta(minutes=m)).timestamp()),
             980.0 if now - timedelta(minutes=m) >= since else 1000.0, 1000.0) for m in range(120, -1, -1)]
    store.upsert_ledger("availability", rows)
    store.publish_state("slo", "availability", "rollback", datetime.now(UTC), [], {"budget_remaining_adjusted": 0.17})
    for state in ("normal", "rollback"):
        store.publish_state("service", SERVICE, state, datetime.now(UTC), [],
                            {"service": SERVICE, "state": state, "slo_states": {"availability": state}})
    return deployment_id


def trial(api: Any, store: Any, stack: Stack, asset_id: int, n: int) -> dict[str, Any]:
    serve(stack, BAD)
    suspect = prepare(store, n)
    decided_before = len(store.policy_actions(SERVICE))
    t0 = time.monotonic()
    api.call("POST", "assets/events", json={"asset_id": asset_id, "extra": {"from": "benchmark"}}).raise_for_status()
    marks: dict[str, float] = {}
    run_id = ""
    deadline = t0 + 600
    while time.monotonic() < deadline:
        now = time.monotonic() - t0
        if "decided" not in marks:
            actions = store.policy_actions(SERVICE)
            if len(actions) > decided_before:
                marks["decided"], run_id = now, str(actions[-1]["deployment_id"])
        if run_id and "run_created" not in marks:
            if api.call("GET", f"dags/game_service_deploy/dagRuns/{run_id}").status_code == 200:
                marks["run_created"] = now
        if "run_created" in marks and "traffic_back" not in marks and traffic_back(stack):
            marks["traffic_back"] = now
        if "traffic_back" in marks:
            break
        time.sleep(0.1)
    run = api.wait("game_service_deploy", run_id, timeout=600) if run_id else {}
    marks["run_ended"] = time.monotonic() - t0
    record = store.deployment(run_id) if run_id else None
    return {"suspect": suspect, "run_id": run_id, "state": run.get("state"),
            "outcome": (record or {}).get("outcome"), **{k: round(v, 1) for k, v in marks.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--trials", type=int, default=3, help="automatic rollbacks measured (default 3)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "budget_enforcement.json",
                        help="where the JSON results go (default benchmarks/results/budget_enforcement.json)")
    args = parser.parse_args()
    from demo.airflow_env import Endpoints
    from demo.services import start_slack_sink
    from gamesre.integrations.store import SREStore
    from tests.airflow_api import AirflowAPI, RestartableAlertmanager, airflow_standalone
    from tests.databases import postgres_database, postgres_reachable

    results: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(),
                               "machine": {"cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg()}}
    with tempfile.TemporaryDirectory(prefix="budget-enforcement-") as tmp, _airflow_home(Path(tmp)):
        workdir = Path(tmp)
        group = ProcessGroup()
        with group.running(), contextlib.ExitStack() as exits:
            stack = start_stack(group, workdir)
            slack_port = free_port()
            group.add(start_slack_sink(workdir / "slack-sink", slack_port))
            alertmanager = RestartableAlertmanager(workdir / "alertmanager", free_port(),
                                                   f"http://127.0.0.1:{slack_port}/services/T0TEST/B0TEST/sink")
            alertmanager.start()
            exits.callback(alertmanager.stop)
            metadata_url = (exits.enter_context(postgres_database("gamesre_bench_enforcement"))
                            if postgres_reachable() else None)
            store_url = f"sqlite:///{workdir / 'sre.db'}"
            ep = Endpoints(prometheus_port=stack.prometheus_port, alertmanager_port=alertmanager.port,
                           slack_sink_port=slack_port, sre_store_url=store_url,
                           haproxy_runtime_port=stack.haproxy_admin_port, fleet_file=stack.fleet_file)
            port = free_port()
            password = exits.enter_context(airflow_standalone(workdir / "airflow-home", ep, port, metadata_url))
            api = AirflowAPI(f"http://127.0.0.1:{port}", password, store_url, workdir / "airflow-home", alertmanager)
            for dag in ("budget_policy_enforcement", "game_service_deploy"):
                api.wait_for_dag(dag, timeout=300)
                api.call("PATCH", f"dags/{dag}", json={"is_paused": False}).raise_for_status()
            assets = api.call("GET", "assets", params={"name_pattern": "error_budget_policy_state"}).json()["assets"]
            store = SREStore(store_url)
            print(f"stack and Airflow up; warming up {WARM_UP_S:.0f} s", flush=True)
            time.sleep(WARM_UP_S)
            trials = []
            for n in range(1, args.trials + 1):
                result = trial(api, store, stack, int(assets[0]["id"]), n)
                trials.append(result)
                print(f"[{n}/{args.trials}] {result}", flush=True)
    results["trials"] = trials
    summary = {k: statistics.median(t[k] for t in trials if k in t) for k in
               ("decided", "run_created", "traffic_back", "run_ended") if any(k in t for t in trials)}
    summary["max_traffic_back"] = max((t.get("traffic_back", float("inf")) for t in trials), default=None)
    summary["goal_s"] = GOAL_S
    summary["met"] = all(t.get("traffic_back", float("inf")) < GOAL_S and t["outcome"] == "promoted"
                         for t in trials)
    results["summary"] = summary
    results["finished_at"] = datetime.now(UTC).isoformat()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(summary, indent=2))
    print(f"results in {args.out}")
    return 0 if summary["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
