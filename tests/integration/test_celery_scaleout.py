"""Scale-out proof: one project DAG end to end on CeleryExecutor with TWO Celery workers, as real processes.

PostgreSQL (a fresh metadata database and a fresh SRE store database, both dropped afterwards) and Redis (the
broker: a dedicated database number, a queue and a key prefix of this run's own, so parallel runs do not see each
other's tasks) must answer on 127.0.0.1; the test is skipped, saying which, when one does not. It runs
`airflow db migrate`, then api-server, scheduler, dag-processor and two `airflow celery worker` processes (one task
slot each, distinct Celery hostnames), triggers `error_budget_report` over the REST API and checks that the run
succeeded, that it did its work (states published in the store, the report in the Slack sink), and that its task
instances ran on BOTH workers: each worker's task processes report the worker's own name as their hostname
(`[core] hostname_callable` = `worker_hostname` below), which the REST API returns for every task instance.

Why both workers get work: each worker holds one slot and acknowledges a task only when it is done (Airflow's
Celery defaults: prefetch multiplier 1, acks late), so a worker running a task takes nothing else from Redis, and
the broker hands a new task to whichever idle worker's poll comes first. The DAG's three tasks run one after the
other, so nothing forces them apart: when one run's tasks all landed on one worker, the test runs the DAG again for
the hour before (at most three runs) and asks that both workers have run tasks. With one worker it always fails.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from demo.airflow_env import Endpoints, airflow_env, ensure_password
from demo.procs import ManagedProcess, ProcessGroup, free_port, http_ok
from tests.airflow_api import TERMINAL, AirflowAPI, RestartableAlertmanager
from tests.databases import postgres_database, postgres_reachable

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

DAG = "error_budget_report"
WORKERS = ("celery-worker-a", "celery-worker-b")
WORKER_NAME_ENV = "GAMESRE_TEST_WORKER_NAME"
REDIS_HOST = os.environ.get("GAMESRE_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("GAMESRE_TEST_REDIS_PORT", "6379"))
REDIS_DB = int(os.environ.get("GAMESRE_TEST_REDIS_DB", "11"))  # the broker's own database number
# Imported by the workers' task processes (PYTHONPATH holds the repository root), not by pytest's module name.
HOSTNAME_CALLABLE = "tests.integration.test_celery_scaleout.worker_hostname"


def worker_hostname() -> str:
    """`[core] hostname_callable` of the workers: the worker's name, which every task instance records."""
    return os.environ[WORKER_NAME_ENV]


def redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@dataclass
class CeleryAirflow:
    api: AirflowAPI
    workers: dict[str, ManagedProcess]
    queue: str
    logs: Path


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def latest_interval(now: datetime) -> tuple[datetime, datetime]:
    """The last complete interval of error_budget_report's schedule (`5 * * * *` in Asia/Seoul: :05 UTC too)."""
    end = now.astimezone(UTC).replace(minute=5, second=0, microsecond=0)
    if end > now:
        end -= timedelta(hours=1)
    return end - timedelta(hours=1), end


def seed_ledger(store_url: str, end: datetime) -> None:
    """Two hours of ledger per SLO before `end` (0.1 % errors), so the report has budgets to compute."""
    from gamesre.integrations.store import SREStore
    from gamesre.slo.spec import load_slos

    store = SREStore(store_url)
    stop = int(end.timestamp()) // 60 * 60
    for name in load_slos().names():
        store.upsert_ledger(name, [(m, 999.0, 1000.0) for m in range(stop - 7200, stop, 60)])
    store.engine.dispose()


def clear_broker_keys(prefix: str) -> None:
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_connect_timeout=2)
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)


@pytest.fixture
def celery_airflow(tmp_path: Path, slack_sink) -> Iterator[CeleryAirflow]:
    if not postgres_reachable():
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432 (Airflow's metadata database for CeleryExecutor)")
    if not redis_reachable():
        pytest.skip(f"Redis does not answer on {REDIS_HOST}:{REDIS_PORT} (the Celery broker)")
    run = uuid.uuid4().hex[:10]
    queue = f"gamesre-scaleout-{run}"
    key_prefix = f"{queue}:"
    home = tmp_path / "airflow-home"
    with postgres_database("gamesre_celery_airflow") as metadata_url, \
            postgres_database("gamesre_celery_store") as store_url, ProcessGroup().running() as group:
        alertmanager = RestartableAlertmanager(tmp_path / "alertmanager", free_port(), slack_sink.webhook_url)
        alertmanager.start()
        port = free_port()
        ep = Endpoints(prometheus_port=free_port(), alertmanager_port=alertmanager.port,
                       slack_sink_port=slack_sink.port, sre_store_url=store_url)
        password = ensure_password(home)
        env = airflow_env(home, ep, port)
        env.update({
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url.replace("+psycopg2", ""),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": key_prefix,
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
            "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
        })
        airflow_bin = shutil.which("airflow", path=env["PATH"])
        assert airflow_bin, "airflow is not installed in the virtualenv"
        logs = tmp_path / "logs"
        logs.mkdir()
        migrate = subprocess.run([airflow_bin, "db", "migrate"], env=env, capture_output=True, text=True,
                                 timeout=180, check=False)
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        try:
            api_server = group.add(ManagedProcess("api-server", [airflow_bin, "api-server"], logs / "api-server.log",
                                                  env=env).start())
            for component in ("scheduler", "dag-processor"):
                group.add(ManagedProcess(component, [airflow_bin, component], logs / f"{component}.log",
                                         env=env).start())
            workers = {}
            for name in WORKERS:
                worker_env = {**env, WORKER_NAME_ENV: name,
                              "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE}
                workers[name] = group.add(ManagedProcess(
                    name, [airflow_bin, "celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", queue,
                           "--concurrency", "1", "--skip-serve-logs", "--without-gossip", "--without-mingle"],
                    logs / f"{name}.log", env=worker_env).start())
            api_server.wait_ready(lambda: http_ok(f"http://127.0.0.1:{port}/api/v2/monitor/health"), timeout=120)
            yield CeleryAirflow(AirflowAPI(f"http://127.0.0.1:{port}", password, store_url, home, alertmanager),
                                workers, queue, logs)
        finally:
            group.stop_all()
            alertmanager.stop()
            clear_broker_keys(key_prefix)


def wait_for_run(api: AirflowAPI, run_id: str, timeout: float) -> dict[str, Any]:
    """AirflowAPI.wait that rides out a poll timing out: the one api-server process also serves the workers'
    execution API, and on a loaded two-core machine a token request can take longer than its 10 s timeout."""
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            run = api.call("GET", f"dags/{DAG}/dagRuns/{run_id}").json()
        except requests.RequestException as exc:
            run = {"last poll": repr(exc)}
        if run.get("state") in TERMINAL:
            return run
        time.sleep(2)
    raise AssertionError(f"{DAG} run {run_id} did not finish within {timeout:.0f}s: {run}")


def diagnostics(cluster: CeleryAirflow, run_id: str) -> str:
    tis = cluster.api.task_instances(DAG, run_id)
    states = {t: (ti["state"], ti.get("hostname")) for t, ti in tis.items()}
    tails = {name: w.log_tail(8) for name, w in cluster.workers.items()}
    return f"task instances (state, hostname): {states}; worker logs: {tails}"


MAX_RUNS = 3  # runs of the DAG until both workers have run a task (see the module docstring)


@pytest.mark.timeout(420)
def test_one_dag_runs_end_to_end_on_two_celery_workers(celery_airflow: CeleryAirflow, slack_sink) -> None:
    from gamesre.integrations.store import SREStore
    from gamesre.slo.spec import load_slos

    api = celery_airflow.api
    start, end = latest_interval(datetime.now(UTC))
    seed_ledger(api.store_url, end)
    slack_sink.clear()
    api.wait_for_dag(DAG)
    hostnames: set[str] = set()
    for attempt in range(MAX_RUNS):
        # The first run takes the schedule's latest interval and exists before the DAG is unpaused, so the
        # scheduler sees it and creates no second (scheduled) run for that interval; later ones take earlier hours.
        run_start, run_end = start - timedelta(hours=attempt), end - timedelta(hours=attempt)
        resp = api.call("POST", f"dags/{DAG}/dagRuns", json={
            "conf": {"daily_report": "always"}, "logical_date": iso(run_start), "data_interval_start": iso(run_start),
            "data_interval_end": iso(run_end)})
        assert resp.status_code == 200, resp.text
        run_id = str(resp.json()["dag_run_id"])
        if attempt == 0:
            api.call("PATCH", f"dags/{DAG}", json={"is_paused": False}).raise_for_status()
        finished = wait_for_run(api, run_id, timeout=180)
        assert finished["state"] == "success", diagnostics(celery_airflow, run_id)

        tis = api.task_instances(DAG, run_id)
        assert set(tis) == {"compute_and_publish", "is_daily_report_hour", "post_daily_report"}
        assert all(ti["state"] == "success" for ti in tis.values()), diagnostics(celery_airflow, run_id)
        assert all(ti["queue"] == celery_airflow.queue for ti in tis.values()), diagnostics(celery_airflow, run_id)
        ran_on = {ti["hostname"] for ti in tis.values()}
        assert ran_on <= set(WORKERS), diagnostics(celery_airflow, run_id)
        hostnames |= ran_on
        if attempt == 0:
            store = SREStore(api.store_url)
            try:
                for name in load_slos().names():
                    state = store.current_state("slo", name)
                    assert state is not None and state["computed_at"] == end, (name, state)
            finally:
                store.engine.dispose()
            texts = [m["text"] for m in slack_sink.messages() if m["kind"] == "chat.postMessage"]
            assert any("Error-budget report" in t for t in texts), texts
        if hostnames == set(WORKERS):
            break
    assert hostnames == set(WORKERS), (
        f"the tasks of {attempt + 1} run(s) did not run on both workers: {diagnostics(celery_airflow, run_id)}")
    assert all(w.running for w in celery_airflow.workers.values())
