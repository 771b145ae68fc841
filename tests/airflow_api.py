"""A real Airflow (`airflow standalone`) driven through its REST API: shared by the end-to-end test packages."""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from demo.airflow_env import AIRFLOW_USER, Endpoints, airflow_env, ensure_password, ensure_passwords, ensure_pools
from demo.procs import ManagedProcess, http_ok

TERMINAL = {"success", "failed"}


class RestartableAlertmanager:
    """Airflow's own Alertmanager, which a test may stop (to see how the DAGs cope) and start again."""

    def __init__(self, workdir: Path, port: int, webhook_url: str):
        self.workdir, self.port, self.webhook_url = workdir, port, webhook_url
        self.url = f"http://127.0.0.1:{port}"
        self.process: ManagedProcess | None = None

    def start(self) -> None:
        from demo.services import render_alertmanager_config, start_alertmanager

        self.process = start_alertmanager(self.workdir, self.port, render_alertmanager_config(self.webhook_url))

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


@dataclass
class AirflowAPI:
    url: str
    password: str
    store_url: str
    home: Path
    alertmanager: RestartableAlertmanager

    # `airflow standalone` serves the REST API and the Execution API of every running task from one API server
    # process, which can stall for several seconds while runs start on a loaded machine: requests that can be
    # repeated safely (the token, GETs) are retried after a timeout, and the token is reused for a while.
    TIMEOUT_S = 30
    ATTEMPTS = 3
    TOKEN_REUSE_S = 300
    _token: tuple[str, float] | None = field(default=None, init=False, repr=False)

    def _send(self, method: str, url: str, *, repeatable: bool, **kwargs: Any) -> requests.Response:
        attempts = self.ATTEMPTS if repeatable else 1
        for attempt in range(1, attempts + 1):
            try:
                return requests.request(method, url, timeout=self.TIMEOUT_S, **kwargs)
            except (requests.Timeout, requests.ConnectionError):
                if attempt == attempts:
                    raise
                time.sleep(2)
        raise AssertionError("unreachable")

    def token(self) -> str:
        if self._token is not None and time.monotonic() - self._token[1] < self.TOKEN_REUSE_S:
            return self._token[0]
        resp = self._send("POST", f"{self.url}/auth/token", repeatable=True,
                          json={"username": AIRFLOW_USER, "password": self.password})
        resp.raise_for_status()
        self._token = (str(resp.json()["access_token"]), time.monotonic())
        return self._token[0]

    def user_token(self, user: str) -> str:
        """A token of another demo user (the deploy reviewers), with the password the demo generated for it."""
        resp = self._send("POST", f"{self.url}/auth/token", repeatable=True,
                          json={"username": user, "password": ensure_passwords(self.home)[user]})
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def call_as(self, user: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self._send(method, f"{self.url}/api/v2/{path}", repeatable=method == "GET",
                          headers={"Authorization": f"Bearer {self.user_token(user)}"}, **kwargs)

    def pending_reviews(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's Required actions that wait for an answer and can take one now (the task waits, deferred)."""
        details = self.call("GET", f"dags/{dag_id}/dagRuns/{run_id}/hitlDetails").json().get("hitl_details", [])
        return [d for d in details if not d["response_received"]
                and d["task_instance"]["state"] in ("deferred", "awaiting_input")]

    def answer(self, dag_id: str, run_id: str, task_id: str, option: str, *, user: str,
               reason: str = "") -> requests.Response:
        return self.call_as(user, "PATCH", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails",
                            json={"chosen_options": [option], "params_input": {"reason": reason}})

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None,
             **kwargs: Any) -> requests.Response:
        return self._send(method, f"{self.url}/api/v2/{path}", repeatable=method == "GET",
                          headers={"Authorization": f"Bearer {self.token()}", **(headers or {})}, **kwargs)

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.call("GET", f"dags/{dag_id}").status_code == 200:
                return
            time.sleep(2)
        errors = self.call("GET", "importErrors").json()
        raise AssertionError(f"DAG {dag_id} was not parsed within {timeout}s; import errors: {errors}")

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, **body: Any) -> str:
        self.wait_for_dag(dag_id)
        self.call("PATCH", f"dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        resp = self.call("POST", f"dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}, **body})
        assert resp.status_code == 200, resp.text
        return str(resp.json()["dag_run_id"])

    def wait(self, dag_id: str, run_id: str, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            run = self.call("GET", f"dags/{dag_id}/dagRuns/{run_id}").json()
            if run.get("state") in TERMINAL:
                return run
            time.sleep(2)
        raise AssertionError(f"{dag_id} run {run_id} did not finish within {timeout}s: {run}")

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """Task instances by task id (a mapped task: its first mapped instance)."""
        tis = self.call("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
        out: dict[str, dict[str, Any]] = {}
        for t in sorted(tis, key=lambda t: t.get("map_index", -1)):
            out.setdefault(t["task_id"], t)
        return out

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        resp = self.call("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}")
        resp.raise_for_status()
        return resp.json()["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        resp = self.call("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                         params={"full_content": "true"})
        resp.raise_for_status()
        content = resp.json().get("content", [])
        return "\n".join(json.dumps(line) if not isinstance(line, str) else line for line in content)


@contextmanager
def airflow_standalone(home: Path, ep: Endpoints, port: int, metadata_url: str | None,
                       extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `airflow standalone` wired to the endpoints until the block ends; yields the admin password.

    The DAGs' pools are created once it answers.
    """
    password = ensure_password(home)
    env = airflow_env(home, ep, port)
    env.update(extra_env or {})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "True"
    env["AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL"] = "5"
    # Retries wait at most 20 s here (exponential back-off would reach minutes): the tests that make a task fail
    # on purpose wait through every retry before the failure notice goes out.
    env["AIRFLOW__CORE__MAX_TASK_RETRY_DELAY"] = "20"
    if metadata_url:  # Airflow's own database on PostgreSQL too, still LocalExecutor under standalone
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata_url
    airflow_bin = shutil.which("airflow", path=env["PATH"])
    assert airflow_bin, "airflow is not installed in the virtualenv"
    process = ManagedProcess("airflow", [airflow_bin, "standalone"], home / "standalone.log", env=env)
    try:
        process.start().wait_ready(lambda: http_ok(f"http://127.0.0.1:{port}/api/v2/monitor/health"), timeout=300)
        token = requests.post(f"http://127.0.0.1:{port}/auth/token", json={"username": AIRFLOW_USER,
                                                                           "password": password}, timeout=10)
        token.raise_for_status()
        ensure_pools(f"http://127.0.0.1:{port}", token.json()["access_token"])
        yield password
    finally:
        process.stop()
