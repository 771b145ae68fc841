"""scripts/trigger_deploy.py against a fake Airflow REST API: exit codes, progress lines (reviews, gates, rollout
steps), re-auth, a given token, retries of outages, --follow, --abort, conf."""
from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml

from demo.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "trigger_deploy.py"
WORKFLOW = ROOT / "include" / "ci" / "github-actions-deploy.yml"


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("trigger_deploy", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


td = _load_script()

DAG_ID = "game_service_deploy"
CONTROL_DAG_ID = "deploy_control"
USER, PASSWORD = "ci-bot", "hunter2-very-secret"
CONF_KEYS = {"service", "version", "strategy", "stages", "change_ticket", "requested_by", "dry_run", "force",
             "force_reason"}
TASKS = ("validate_request", "gates", "rollout", "finalize")


def walk(final_run_state: str = "success") -> list[tuple[str, dict[tuple[str, int], str | None]]]:
    """A run going queued -> running -> final, with a mapped `rollout` over three stages; one entry per poll."""
    def tis(validate, gates, r0, r1, r2, finalize):
        return {("validate_request", -1): validate, ("gates", -1): gates, ("rollout", 0): r0, ("rollout", 1): r1,
                ("rollout", 2): r2, ("finalize", -1): finalize}
    return [
        ("queued", tis(None, None, None, None, None, None)),
        ("running", tis("running", None, None, None, None, None)),
        ("running", tis("success", "running", None, None, None, None)),
        ("running", tis("success", "success", "running", None, None, None)),
        ("running", tis("success", "success", "success", "running", None, None)),
        ("running", tis("success", "success", "success", "success", "running", None)),
        ("running", tis("success", "success", "success", "success", "success", "running")),
        (final_run_state, tis("success", "success", "success", "success", "success", "success")),
    ]


@dataclass
class FakeTime:
    """An injectable monotonic clock and sleep: sleeping advances the clock at once, nothing waits for real."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class FakeAirflow:
    """Airflow 3's auth and REST endpoints the client uses, scripted poll by poll.

    Each GET of the dag run moves one step along `steps` (staying on the last); the task instances answer
    with the current step. Tokens are plain counters; `revoke_tokens_at` answers 401 to those dag-run polls
    (an expired token), `fail_polls` answers them with 503 or drops the connection. `hitl` (the run's reviews)
    and `xcoms` are keyed by step index too: the reviews as they stand from that step on, the XComs pushed at it.
    The `deploy_control` DAG's runs go through `control_steps`, and its task's log is `control_log`.
    """

    port: int
    # per poll: the run's state and each task instance's state (or its fields, e.g. with start/end dates)
    steps: list[tuple[str, dict[tuple[str, int], Any]]] = field(default_factory=walk)
    outcome: Any = None  # finalize's return value; None: no XCom (404)
    xcom_form: str = "native"  # native (like Airflow), json_string or repr
    reject: tuple[int, Any] | None = None  # (status, detail) for the trigger
    revoke_tokens_at: set[int] = field(default_factory=set)
    fail_polls: dict[int, str] = field(default_factory=dict)  # poll number -> "503" | "drop"
    paused: bool = False
    auth_failures: list[int] = field(default_factory=list)  # statuses for the next POSTs of /auth/token
    # per POST: (status, the run created anyway: True, or a conf: somebody else's run with the same id)
    trigger_failures: list[tuple[int, bool | dict[str, Any]]] = field(default_factory=list)
    hitl: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    xcoms: dict[int, dict[tuple[str, str], Any]] = field(default_factory=dict)
    read_failures: dict[str, list[int]] = field(default_factory=dict)  # "hitl" or "task/key" -> statuses to answer
    hitl_reads: list[int] = field(default_factory=list)  # the step index of each hitlDetails GET
    xcom_reads: list[tuple[str, str]] = field(default_factory=list)  # (task, key) of each XCom value GET
    xcom_lists: list[str] = field(default_factory=list)  # the task of each XCom keys listing
    control_steps: list[tuple[str, dict[tuple[str, int], Any]]] = field(default_factory=lambda: [
        ("queued", {("request", -1): None}), ("running", {("request", -1): "running"}),
        ("success", {("request", -1): "success"})])
    control_log: list[Any] | None = None  # the request task's log content; None: 404
    control_triggered: list[dict[str, Any]] = field(default_factory=list)
    control_polls: int = 0
    log_queries: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    max_page: int = 4  # like [api] maximum_page_limit, small to make the client page
    requests: list[tuple[str, str]] = field(default_factory=list)
    triggered: list[dict[str, Any]] = field(default_factory=list)
    tokens_issued: int = 0
    valid_tokens: set[str] = field(default_factory=set)
    polls: int = 0
    xcom_queries: list[dict[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def index(self) -> int:
        return min(max(self.polls - 1, 0), len(self.steps) - 1)

    def step(self) -> tuple[str, dict[tuple[str, int], Any]]:
        return self.steps[self.index()]

    def visible_xcoms(self, task_id: str) -> dict[str, Any]:
        return {key: value for at, pushed in sorted(self.xcoms.items()) if at <= self.index()
                for (task, key), value in pushed.items() if task == task_id}

    def reviews(self) -> list[dict[str, Any]]:
        at = [i for i in self.hitl if i <= self.index()]
        return self.hitl[max(at)] if at else []

    def read_failure(self, what: str) -> tuple[int, Any] | None:
        statuses = self.read_failures.get(what)
        if statuses:
            status = statuses.pop(0)
            return status, {"detail": "Forbidden" if status == 403 else "database is locked"}
        return None

    @staticmethod
    def tis_of(step: tuple[str, dict[tuple[str, int], Any]], query: dict[str, list[str]], max_page: int) -> Any:
        tis = [{"task_id": t, "map_index": m, **(s if isinstance(s, dict) else {"state": s})}
               for (t, m), s in step[1].items()]
        limit = min(int(query.get("limit", ["50"])[0]) or 50, max_page)
        offset = int(query.get("offset", ["0"])[0])
        return {"task_instances": tis[offset:offset + limit], "total_entries": len(tis)}

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, Any] | None:
        """(status, JSON body), or None to drop the connection without an answer."""
        split = urlsplit(raw_path)
        parts = [unquote(p) for p in split.path.strip("/").split("/")]
        query = parse_qs(split.query)
        with self.lock:
            self.requests.append((method, split.path))
            if parts == ["auth", "token"] and method == "POST":
                if self.auth_failures:
                    return self.auth_failures.pop(0), {"detail": "(sqlite3.OperationalError) database is locked"}
                creds = json.loads(body or b"{}")
                if creds != {"username": USER, "password": PASSWORD}:
                    return 401, {"detail": "Invalid credentials"}
                self.tokens_issued += 1
                token = f"token-{self.tokens_issued}"
                self.valid_tokens.add(token)
                return 201, {"access_token": token}
            if parts[:2] != ["api", "v2"]:
                return 404, {"detail": "Not Found"}
            if headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid_tokens:
                return 401, {"detail": "Not authenticated"}
            parts = parts[2:]
            if parts[0] == "dags" and parts[1] == CONTROL_DAG_ID:
                return self.control(method, parts[2:], query, body)
            if parts[0] != "dags" or parts[1] != DAG_ID:
                return 404, {"detail": f"Dag with dag_id: '{parts[1]}' not found"}
            if parts[2:] == [] and method == "GET":
                return 200, {"dag_id": DAG_ID, "is_paused": self.paused}
            if parts[2:] == ["dagRuns"] and method == "POST":
                return self.trigger(json.loads(body))
            run_id = parts[3]
            if not any(r["dag_run_id"] == run_id for r in self.triggered):
                return 404, {"detail": f"DagRun with run_id: `{run_id}` was not found"}
            if parts[4:] == []:
                self.polls += 1
                if self.polls in self.revoke_tokens_at:
                    self.valid_tokens.clear()
                    return 401, {"detail": "Token expired"}
                failure = self.fail_polls.get(self.polls)
                if failure == "drop":
                    return None
                if failure:
                    return int(failure), {"detail": "Service Unavailable"}
                conf = next(r["conf"] for r in self.triggered if r["dag_run_id"] == run_id)
                return 200, {"dag_id": DAG_ID, "dag_run_id": run_id, "state": self.step()[0], "conf": conf}
            if parts[4:] == ["taskInstances"]:
                return 200, self.tis_of(self.step(), query, self.max_page)
            if parts[4:] == ["hitlDetails"]:
                self.hitl_reads.append(self.index())
                reviews = self.reviews()
                offset = int(query.get("offset", ["0"])[0])
                return self.read_failure("hitl") or (200, {"hitl_details": reviews[offset:offset + self.max_page],
                                                           "total_entries": len(reviews)})
            if parts[4] == "taskInstances" and parts[6:] == ["xcomEntries"] and parts[5] != "finalize":
                self.xcom_lists.append(parts[5])
                keys = sorted(self.visible_xcoms(parts[5]))
                return 200, {"xcom_entries": [{"key": k, "task_id": parts[5]} for k in keys],
                             "total_entries": len(keys)}
            if parts[4] == "taskInstances" and parts[6:7] == ["xcomEntries"] and parts[5] != "finalize":
                task_id, key = parts[5], parts[7]
                self.xcom_reads.append((task_id, key))
                refused = self.read_failure(f"{task_id}/{key}")
                if refused:
                    return refused
                pushed = self.visible_xcoms(task_id)
                if key not in pushed or query.get("deserialize") != ["true"]:
                    return 404, {"detail": f"XCom entry with key: `{key}` not found"}
                return 200, {"key": key, "task_id": task_id, "map_index": -1, "value": pushed[key]}
            if parts[4:] == ["taskInstances", "finalize", "xcomEntries", "return_value"]:
                self.xcom_queries.append(query)
                if self.outcome is None:
                    return 404, {"detail": "XCom entry with key: `return_value` not found"}
                deserialize = query.get("deserialize") == ["true"]
                stored = json.dumps(self.outcome)  # what the XCom table holds; deserialize=true parses it
                value = {"native": self.outcome if deserialize else stored,
                         "json_string": json.dumps(stored) if deserialize else stored,
                         "repr": repr(self.outcome)}[self.xcom_form]
                return 200, {"key": "return_value", "task_id": "finalize", "map_index": -1, "value": value}
            return 404, {"detail": "Not Found"}

    def trigger(self, body: dict[str, Any]) -> tuple[int, Any]:
        problems = []
        if set(body) != {"dag_run_id", "logical_date", "conf"}:
            problems.append({"loc": ["body"], "msg": f"unexpected fields {sorted(body)}"})
        if body.get("logical_date", "missing") is not None:
            problems.append({"loc": ["body", "logical_date"], "msg": "Field required (null for no logical date)"})
        conf = body.get("conf")
        if not isinstance(conf, dict) or not set(conf) <= CONF_KEYS:
            problems.append({"loc": ["body", "conf"], "msg": f"not a deploy request: {conf!r}"})
        if problems:
            return 422, {"detail": problems}
        if self.reject:
            return self.reject
        if any(r["dag_run_id"] == body["dag_run_id"] for r in self.triggered):
            return 409, {"detail": {"reason": "Unique constraint violation", "statement": "hidden",
                                    "orig_error": "hidden", "message": "Serious error when handling your request."}}
        if self.trigger_failures:
            status, created = self.trigger_failures.pop(0)
            if created:  # the run was made, the answer lost (e.g. the commit went through, then the API failed)
                self.triggered.append(body if created is True else {**body, "conf": created})
            return status, {"detail": "(sqlite3.OperationalError) database is locked"}
        self.triggered.append(body)
        return 200, {"dag_id": DAG_ID, "dag_run_id": body["dag_run_id"], "state": "queued"}

    def control(self, method: str, parts: list[str], query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        """deploy_control: its runs go through `control_steps`; its task's log is `control_log`."""
        if parts == [] and method == "GET":
            return 200, {"dag_id": CONTROL_DAG_ID, "is_paused": False}
        if parts == ["dagRuns"] and method == "POST":
            request = json.loads(body)
            if set(request) - {"dag_run_id", "logical_date", "conf"} or request.get("logical_date", 0) is not None:
                return 422, {"detail": [{"loc": ["body"], "msg": f"bad body {request}"}]}
            self.control_triggered.append(request)
            return 200, {"dag_id": CONTROL_DAG_ID, "dag_run_id": request["dag_run_id"], "state": "queued"}
        run_id = parts[1]
        if not any(r["dag_run_id"] == run_id for r in self.control_triggered):
            return 404, {"detail": f"DagRun with run_id: `{run_id}` was not found"}
        if parts[2:] == []:
            self.control_polls += 1
        step = self.control_steps[min(max(self.control_polls - 1, 0), len(self.control_steps) - 1)]
        if parts[2:] == []:
            return 200, {"dag_id": CONTROL_DAG_ID, "dag_run_id": run_id, "state": step[0]}
        if parts[2:] == ["taskInstances"]:
            return 200, self.tis_of(step, query, self.max_page)
        if parts[2:5] == ["taskInstances", "request", "logs"]:
            self.log_queries.append((parts[5], query))
            if self.control_log is None:
                return 404, {"detail": "TaskInstance not found"}
            return 200, {"content": self.control_log, "continuation_token": None}
        return 404, {"detail": "Not Found"}


def _handler(fake: FakeAirflow) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = fake.handle(self.command, self.path, self.headers, body)
            if answer is None:
                self.close_connection = True
                return
            status, payload = answer
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve  # noqa: N815 (http.server's naming)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    return Handler


@pytest.fixture
def airflow() -> Iterator[FakeAirflow]:
    fake = FakeAirflow(port=free_port())
    server = ThreadingHTTPServer(("127.0.0.1", fake.port), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIRFLOW_URL", "AIRFLOW_USERNAME", "AIRFLOW_PASSWORD", "AIRFLOW_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_ACTOR", "octo-dev")


def deploy_args(url: str, *extra: str) -> list[str]:
    return ["--airflow-url", url, "--username", USER, "--password", PASSWORD, "--service", "game-server",
            "--version", "1.4.2", "--change-ticket", "CHG-1234", "--poll", "0.01", "--timeout", "10", *extra]


def outcome(name: str, reason: str = "") -> dict[str, Any]:
    return {"outcome": name, "reason": reason or f"because {name}", "service": "game-server", "version": "1.4.2",
            "stages": ["dev", "staging", "prod"], "run_url": "http://airflow/whatever"}


def test_promoted_exits_0_with_a_line_per_task_state_change(airflow: FakeAirflow, capsys) -> None:
    airflow.outcome = outcome("promoted", "all stages healthy")
    code = td.main(deploy_args(airflow.url, "--run-id", "ci__gs__1.4.2__manual"))
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    progress = [ln[9:] for ln in lines if re.match(r"^\d\d:\d\d:\d\d ", ln)]
    # every change once, in order, map indexes shown for the mapped task only; nothing for unstarted tasks
    task_lines = [p for p in progress if not p.startswith(("dag run", "triggered", "deploying"))]
    assert task_lines == [
        "validate_request: running", "validate_request: success", "gates: running", "gates: success",
        "rollout[0]: running", "rollout[0]: success", "rollout[1]: running", "rollout[1]: success",
        "rollout[2]: running", "rollout[2]: success", "finalize: running", "finalize: success",
    ]
    assert [p for p in progress if p.startswith("dag run")] == ["dag run: queued", "dag run: running",
                                                                "dag run: success"]
    assert progress[-1] == "dag run: success"  # after its last task, as it happened
    ui = f"{airflow.url}/dags/{DAG_ID}/runs/ci__gs__1.4.2__manual"
    assert lines[-1] == f"result: promoted (exit 0) - all stages healthy - {ui}"
    assert airflow.xcom_queries == [{"deserialize": ["true"]}]
    assert PASSWORD not in out + err


def test_changes_seen_in_one_poll_are_printed_in_the_order_they_happened(airflow: FakeAirflow, capsys) -> None:
    airflow.outcome = outcome("promoted")
    # Airflow lists finalize first, but it started after the mapped rollout ended, and rollout[1] ended first
    airflow.steps = [("running", {
        ("finalize", -1): {"state": "running", "start_date": "2026-11-26T09:00:09.000000Z"},
        ("rollout", 0): {"state": "success", "start_date": "2026-11-26T09:00:01.000000Z",
                         "end_date": "2026-11-26T09:00:08.000000Z"},
        ("rollout", 1): {"state": "success", "start_date": "2026-11-26T09:00:01.000000Z",
                         "end_date": "2026-11-26T09:00:07.000000Z"},
    }), ("success", {("finalize", -1): {"state": "success", "end_date": "2026-11-26T09:00:10.000000Z"},
                     ("rollout", 0): "success", ("rollout", 1): "success"})]
    assert td.main(deploy_args(airflow.url)) == 0
    lines = [ln[9:] for ln in capsys.readouterr().out.splitlines() if re.match(r"^\d\d:\d\d:\d\d ", ln)]
    assert lines[-5:] == ["rollout[1]: success", "rollout[0]: success", "finalize: running", "finalize: success",
                          "dag run: success"]


@pytest.mark.parametrize("name, code", [
    ("rolled_back", 2), ("timed_out", 2), ("aborted", 2), ("blocked", 3), ("invalid", 4), ("rejected", 5),
    ("failed", 1), ("dry_run", 0), ("something_new", 1),
])
def test_outcome_decides_the_exit_code(airflow: FakeAirflow, capsys, name: str, code: int) -> None:
    airflow.outcome = outcome(name, f"the {name} reason")
    airflow.steps = walk("failed" if code else "success")
    assert td.main(deploy_args(airflow.url)) == code
    out = capsys.readouterr().out
    assert f"result: {name} (exit {code}) - the {name} reason - {airflow.url}/dags/{DAG_ID}/runs/ci__" in out


@pytest.mark.parametrize("form", ["native", "json_string", "repr"])
def test_outcome_is_read_however_airflow_serialised_it(airflow: FakeAirflow, capsys, form: str) -> None:
    airflow.outcome = {**outcome("rolled_back", "p99 latency regression"), "dry_run": False}
    if form == "repr":
        airflow.outcome["stages"] = ("prod",)  # Python's repr, with what JSON has no word for
    airflow.xcom_form = form
    assert td.main(deploy_args(airflow.url, "--json")) == 2
    result = json.loads(capsys.readouterr().out.strip())
    assert result["outcome"] == "rolled_back" and result["reason"] == "p99 latency regression"
    assert result["exit_code"] == 2 and result["service"] == "game-server"


def test_parse_xcom_value_refuses_what_is_not_a_dict() -> None:
    assert td.parse_xcom_value('{"outcome": "blocked"}') == {"outcome": "blocked"}
    assert td.parse_xcom_value("{'outcome': 'blocked', 'force': True}") == {"outcome": "blocked", "force": True}
    for not_a_dict in (None, 3, "promoted", "[1, 2]", "__import__('os').system('true')", "{'a': "):
        assert td.parse_xcom_value(not_a_dict) is None


@pytest.mark.parametrize("status, detail, shown", [
    (400, "Invalid input for param version: tag '1.4' does not match '^[0-9]+\\.[0-9]+\\.[0-9]+$'",
     "Invalid input for param version: tag '1.4'"),
    (403, "Forbidden", "Forbidden"),
    (409, {"reason": "Unique constraint violation", "statement": "hidden", "orig_error": "hidden",
           "message": "Serious error"}, "Unique constraint violation: Serious error"),
])
def test_a_rejected_trigger_exits_4_with_airflows_detail(airflow: FakeAirflow, capsys, status: int, detail: Any,
                                                          shown: str) -> None:
    airflow.reject = (status, {"detail": detail})
    assert td.main(deploy_args(airflow.url)) == 4
    out = capsys.readouterr().out
    assert f"result: invalid (exit 4) - Airflow rejected the run ({status}): {shown}" in out
    assert airflow.polls == 0  # nothing to follow
    assert airflow.requests.count(("POST", f"/api/v2/dags/{DAG_ID}/dagRuns")) == 1  # a refusal is not retried


def test_an_unknown_dag_exits_4(airflow: FakeAirflow, capsys) -> None:
    assert td.main(deploy_args(airflow.url, "--dag-id", "game_service_deploi")) == 4
    assert "(404): Dag with dag_id: 'game_service_deploi' not found" in capsys.readouterr().out


def test_a_paused_dag_is_warned_about_and_left_paused(airflow: FakeAirflow, capsys) -> None:
    airflow.paused = True
    airflow.outcome = outcome("promoted")
    assert td.main(deploy_args(airflow.url)) == 0
    assert f"warning: {DAG_ID} is paused in Airflow" in capsys.readouterr().err
    assert all(method in ("GET", "POST") for method, _ in airflow.requests)  # no PATCH to unpause


def test_a_duplicate_run_id_is_rejected_by_airflow(airflow: FakeAirflow, capsys) -> None:
    airflow.outcome = outcome("promoted")
    assert td.main(deploy_args(airflow.url, "--run-id", "ci__same")) == 0
    assert td.main(deploy_args(airflow.url, "--run-id", "ci__same")) == 4
    assert "(409): Unique constraint violation" in capsys.readouterr().out


def test_an_expired_token_is_renewed_once_and_following_goes_on(airflow: FakeAirflow, capsys) -> None:
    airflow.outcome = outcome("promoted")
    airflow.revoke_tokens_at = {3}
    assert td.main(deploy_args(airflow.url)) == 0
    assert airflow.tokens_issued == 2
    assert "finalize: success" in capsys.readouterr().out


def test_a_token_refused_again_after_renewal_ends_the_follow(airflow: FakeAirflow, capsys) -> None:
    airflow.revoke_tokens_at = {3, 4}
    assert td.main(deploy_args(airflow.url)) == 1
    assert airflow.tokens_issued == 2  # renewed once, not in a loop
    assert "401" in capsys.readouterr().out


def test_transient_errors_while_following_are_retried(airflow: FakeAirflow, capsys) -> None:
    airflow.outcome = outcome("promoted")
    airflow.fail_polls = {2: "503", 3: "drop", 5: "502"}
    assert td.main(deploy_args(airflow.url)) == 0
    out, err = capsys.readouterr()
    assert err.count("retrying in") == 3 and "answered 503" in err and airflow.url in err
    assert "finalize: success" in out


def test_airflow_unreachable_exits_1_naming_the_url_and_how_long_it_tried(capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    time = FakeTime()
    assert td.main(deploy_args(url), clock=time.clock, sleep=time.sleep) == 1
    out, err = capsys.readouterr()
    assert f"result: unreachable (exit 1) - Airflow at {url} is unreachable" in out
    assert "(gave up after retrying for 10s)" in out  # --timeout 10, on the injected clock
    assert err.count("retrying in") == len(time.slept) > 3 and sum(time.slept) == pytest.approx(10)


def test_wrong_credentials_exit_1(airflow: FakeAirflow, capsys) -> None:
    args = deploy_args(airflow.url)
    args[args.index(PASSWORD)] = "wrong"
    assert td.main(args) == 1
    out = capsys.readouterr().out
    assert f"Airflow at {airflow.url} refused the credentials of user '{USER}' (401" in out
    assert airflow.triggered == []


def test_a_run_that_does_not_end_in_time_exits_1_and_keeps_running(airflow: FakeAirflow, capsys) -> None:
    airflow.steps = [("running", {("gates", -1): "running"})]
    args = deploy_args(airflow.url)
    args[args.index("--timeout") + 1] = "0.3"
    assert td.main(args) == 1
    out = capsys.readouterr().out
    assert "result: client_timeout (exit 1) - gave up following after 0.3s; the run is still running" in out


def test_a_run_that_failed_without_an_outcome_exits_1(airflow: FakeAirflow, capsys) -> None:
    airflow.steps = walk("failed")
    assert td.main(deploy_args(airflow.url)) == 1
    assert "result: no_outcome (exit 1) - the run ended failed without an outcome from task finalize" in \
        capsys.readouterr().out


def test_the_trigger_carries_the_deploy_request_as_conf(airflow: FakeAirflow, capsys) -> None:
    airflow.outcome = outcome("dry_run")
    assert td.main(deploy_args(airflow.url, "--strategy", "blue-green", "--stages", "staging, prod",
                               "--dry-run", "--force", "--force-reason", "hotfix for the crash loop",
                               "--run-id", "ci__x")) == 0
    assert airflow.triggered == [{"dag_run_id": "ci__x", "logical_date": None, "conf": {
        "service": "game-server", "version": "1.4.2", "strategy": "blue-green", "stages": ["staging", "prod"],
        "change_ticket": "CHG-1234", "requested_by": "octo-dev", "dry_run": True, "force": True,
        "force_reason": "hotfix for the crash loop"}}]


def test_conf_leaves_out_strategy_and_stages_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_URL", "http://127.0.0.1:8080")
    monkeypatch.setenv("AIRFLOW_USERNAME", USER)
    monkeypatch.setenv("AIRFLOW_PASSWORD", PASSWORD)
    monkeypatch.delenv("GITHUB_ACTOR")
    monkeypatch.setattr(td, "_os_user", lambda: "builder")
    args = td.parse_args(["--service", "matchmaking", "--version", "2.0.0", "--change-ticket", "OPS-9"])
    assert args.airflow_url == "http://127.0.0.1:8080" and args.password == PASSWORD
    assert td.build_conf(args) == {"service": "matchmaking", "version": "2.0.0", "change_ticket": "OPS-9",
                                   "requested_by": "builder", "dry_run": False, "force": False, "force_reason": ""}
    args = td.parse_args(["--service", "matchmaking", "--version", "2.0.0", "--change-ticket", "OPS-9",
                          "--canary-steps", "25, 50,100"])
    assert td.build_conf(args)["canary_steps"] == [25, 50, 100]


def test_a_rollback_of_a_deployment_needs_no_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_URL", "http://127.0.0.1:8080")
    monkeypatch.setenv("AIRFLOW_USERNAME", USER)
    monkeypatch.setenv("AIRFLOW_PASSWORD", PASSWORD)
    args = td.parse_args(["--service", "game-server", "--rollback-of", "ci__game-server__1.6.66__x",
                          "--change-ticket", "INC-20261207-001", "--requested-by", "kim"])
    assert td.build_conf(args) == {"service": "game-server", "kind": "rollback",
                                   "rollback_of": "ci__game-server__1.6.66__x", "change_ticket": "INC-20261207-001",
                                   "requested_by": "kim", "dry_run": False, "force": False, "force_reason": ""}
    args = td.parse_args(["--service", "game-server", "--rollback", "--version", "1.5.0", "--change-ticket", "CHG-9",
                          "--requested-by", "kim"])
    assert td.build_conf(args)["kind"] == "rollback" and "rollback_of" not in td.build_conf(args)
    args = td.parse_args(["--service", "game-server", "--rollback", "--version", "1.5.0", "--change-ticket", "CHG-9",
                          "--requested-by", "kim", "--canary-steps", "50,100"])
    with pytest.raises(td.UsageError, match="a rollback takes neither --force nor --canary-steps"):
        td.build_conf(args)


@pytest.mark.parametrize("extra, message", [
    (["--force"], "--force needs --force-reason"),
    (["--force", "--force-reason", "  "], "--force needs --force-reason"),
    (["--force-reason", "because"], "--force-reason given without --force"),
    (["--stages", " , "], "names no stage"),
    (["--canary-steps", "10,half,100"], "give whole percentages"),
    (["--strategy", "big-bang"], "invalid choice: 'big-bang'"),
    (["--poll", "0"], "must be positive"),
    (["--timeout", "soon"], "invalid float value"),
])
def test_bad_options_exit_4_before_any_request(airflow: FakeAirflow, capsys, extra: list[str], message: str) -> None:
    assert td.main([*deploy_args(airflow.url), *extra]) == 4
    assert message in capsys.readouterr().err
    assert airflow.requests == []


def test_missing_options_are_listed_and_exit_4(capsys) -> None:
    assert td.main(["--service", "game-server", "--json"]) == 4
    out, err = capsys.readouterr()
    assert "missing --airflow-url (or $AIRFLOW_URL), --username" in err and "--change-ticket" in err
    assert json.loads(out)["exit_code"] == 4


def test_default_run_id_is_safe_in_a_url_path() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 11, 26, 9, 0, 5, tzinfo=UTC)
    assert td.default_run_id("game-server", "1.4.2", at) == "ci__game-server__1.4.2__20261126T090005Z"
    assert td.default_run_id("gs", "registry.example/game:1.4.2", at) == "ci__gs__registry.example-game-1.4.2__" \
                                                                         "20261126T090005Z"


def test_json_output_is_one_line_with_progress_on_stderr(airflow: FakeAirflow, capsys) -> None:
    airflow.outcome = outcome("blocked", "error budget frozen")
    assert td.main(deploy_args(airflow.url, "--json", "--run-id", "ci__j")) == 3
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1
    result = json.loads(out)
    assert result["outcome"] == "blocked" and result["reason"] == "error budget frozen"
    assert result["ui_url"] == f"{airflow.url}/dags/{DAG_ID}/runs/ci__j" and result["run_state"] == "success"
    assert "gates: success" in err


def test_help_documents_the_exit_codes_and_an_example(capsys) -> None:
    assert td.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "example:" in text and "python scripts/trigger_deploy.py --service" in text
    for code in ("0  promoted", "2  rolled back, aborted", "3  blocked", "4  invalid input", "5  rejected",
                 "1  anything else"):
        assert code in text and code in (td.__doc__ or "")


def test_the_script_runs_standalone_with_only_stdlib_and_requests() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0 and "exit codes:" in proc.stdout
    imported = set()
    for node in ast.walk(ast.parse(SCRIPT.read_text())):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"requests"}


def test_the_example_workflow_ships_tags_through_the_script() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["tags"] == ["v*.*.*"]
    assert {"service", "strategy"} <= set(triggers["workflow_dispatch"]["inputs"])
    steps = workflow["jobs"]["deploy"]["steps"]
    assert any(s.get("with", {}).get("python-version") == "3.11" for s in steps)
    assert any("pip install requests" in s.get("run", "") for s in steps)
    (deploy,) = [s for s in steps if "scripts/trigger_deploy.py" in s.get("run", "")]
    for name in ("AIRFLOW_URL", "AIRFLOW_USERNAME", "AIRFLOW_PASSWORD"):
        assert deploy["env"][name] == f"${{{{ secrets.{name} }}}}"
    command = deploy["run"]
    known = {o for a in td.build_parser()._actions for o in a.option_strings}
    used = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", command))
    assert {"--service", "--version", "--change-ticket"} <= used and used <= known
    assert "--password" not in command  # the secret stays in the environment, out of process lists


# --- progress as a person follows it: reviews, gates, rollout steps ----------------------------------------------

def progress_of(text: str) -> list[str]:
    """The progress lines' text, without their "HH:MM:SS " time."""
    return [ln[9:] for ln in text.splitlines() if re.match(r"^\d\d:\d\d:\d\d ", ln)]


def states(**tasks: Any) -> dict[tuple[str, int], Any]:
    return {(task, -1): state for task, state in tasks.items()}


def review(task_id: str, users: list[str], *, answer: str | None = None, by: str | None = None, reason: str = "",
           state: str = "deferred") -> dict[str, Any]:
    """One item of GET .../hitlDetails, as Airflow 3 answers it."""
    kind = task_id.split("_")[2]
    return {"subject": f"{kind.capitalize()} review: deploy game-server 1.5.2 to prod", "body": "...",
            "options": ["Approve", "Reject"], "assigned_users": [{"id": u, "name": u} for u in users],
            "response_received": answer is not None, "responded_by_user": {"id": by, "name": by} if by else None,
            "chosen_options": [answer] if answer else None, "params_input": {"reason": reason} if answer else {},
            "task_instance": {"task_id": task_id, "map_index": -1, "state": state}}


TECH, SEC, BIZ = "approve_prod_technical", "approve_prod_security", "approve_prod_business"


@pytest.fixture
def time_() -> FakeTime:
    return FakeTime()


def test_reviews_are_shown_once_as_they_wait_and_when_answered(airflow: FakeAirflow, capsys, time_: FakeTime) -> None:
    airflow.outcome = outcome("promoted")
    airflow.steps = [
        ("running", states(validate="running", approve_dev_technical=None, **dict.fromkeys((TECH, SEC, BIZ)))),
        ("running", states(validate="success", approve_dev_technical="skipped",
                           **{TECH: "deferred", SEC: "deferred", BIZ: "scheduled"})),
        ("running", states(validate="success", approve_dev_technical="skipped",
                           **{TECH: "deferred", SEC: "deferred", BIZ: "scheduled"})),
        ("running", states(validate="success", approve_dev_technical="skipped",
                           **{TECH: "success", SEC: "deferred", BIZ: "deferred"})),
        ("running", states(validate="success", approve_dev_technical="skipped",
                           **{TECH: "success", SEC: "success", BIZ: "success"})),
        ("success", states(validate="success", approve_dev_technical="skipped",
                           **{TECH: "success", SEC: "success", BIZ: "success"}, finalize="success")),
    ]
    tech_ok = review(TECH, ["sre-lead"], answer="Approve", by="sre-lead", reason="tests green", state="success")
    airflow.hitl = {
        1: [review(TECH, ["sre-lead"]), review(SEC, ["security-lead", "alice"])],
        3: [tech_ok, review(SEC, ["security-lead", "alice"]), review(BIZ, ["product-owner"])],
        4: [tech_ok, review(SEC, ["security-lead", "alice"], answer="Approve", by="alice", reason="pen test passed"),
            review(BIZ, ["product-owner"], answer="Approve", by="product-owner")],
    }
    assert td.main(deploy_args(airflow.url), clock=time_.clock, sleep=time_.sleep) == 0
    progress = progress_of(capsys.readouterr().out)
    assert [p for p in progress if "review" in p] == [
        "waiting for the technical review before prod from sre-lead",
        "waiting for the security review before prod from security-lead, alice",
        "technical review before prod: Approve by sre-lead: tests green",
        "waiting for the business review before prod from product-owner",
        "security review before prod: Approve by alice: pen test passed",
        "business review before prod: Approve by product-owner",
    ]
    # an answer comes before the task's end, a wait after the task's deferral
    assert progress.index("technical review before prod: Approve by sre-lead: tests green") + 1 == \
        progress.index(f"{TECH}: success")
    assert progress.index(f"{BIZ}: deferred") + 1 == \
        progress.index("waiting for the business review before prod from product-owner")
    # read only while a review task has started and until each was read after it ended
    assert airflow.hitl_reads == [1, 2, 3, 4]


def test_a_rejection_is_shown_and_exits_5(airflow: FakeAirflow, capsys, time_: FakeTime) -> None:
    airflow.outcome = outcome("rejected", "prod: security review: rejected by alice: no pen test yet")
    airflow.steps = [
        ("running", states(**{TECH: "deferred", SEC: "deferred", BIZ: "deferred"})),
        ("failed", states(**{TECH: "success", SEC: "failed", BIZ: "failed"}, finalize="success")),
    ]
    airflow.hitl = {0: [review(TECH, ["sre-lead"]), review(SEC, ["alice"]), review(BIZ, ["product-owner"])],
                    1: [review(TECH, ["sre-lead"], answer="Approve", by="sre-lead", state="success"),
                        review(SEC, ["alice"], answer="Reject", by="alice", reason="no pen test yet", state="failed"),
                        review(BIZ, ["product-owner"], state="failed")]}
    assert td.main(deploy_args(airflow.url), clock=time_.clock, sleep=time_.sleep) == 5
    out = capsys.readouterr().out
    progress = progress_of(out)
    assert "security review before prod: Reject by alice: no pen test yet" in progress
    assert f"business review before prod: not answered ({BIZ} failed)" in progress
    assert "result: rejected (exit 5) - prod: security review: rejected by alice: no pen test yet" in out


def test_gate_results_are_one_line_each(airflow: FakeAirflow, capsys, time_: FakeTime) -> None:
    airflow.outcome = outcome("dry_run")
    airflow.steps = [
        ("running", states(gates_staging="running", gates_prod=None)),
        ("running", states(gates_staging="success", gates_prod=None)),
        ("success", states(gates_staging="success", gates_prod="skipped", finalize="success")),
    ]
    airflow.xcoms = {1: {("gates_staging", "return_value"): {"strictness": 1.2, "gates": [
        {"gate": "lock", "passed": True, "reason": "no other deploy of game-server", "evidence": {}},
        {"gate": "budget", "passed": False, "reason": "62% of the budget consumed: deploy freeze", "evidence": {}},
    ], "approvals": [{"review": "technical", "reviewers": "sre-lead"}, {"review": "security", "reviewers": "role op"}]
    }}}
    assert td.main(deploy_args(airflow.url, "--dry-run"), clock=time_.clock, sleep=time_.sleep) == 0
    progress = progress_of(capsys.readouterr().out)
    start = progress.index("gate lock before staging: passed - no other deploy of game-server")
    assert progress[start:start + 5] == [
        "gate lock before staging: passed - no other deploy of game-server",
        "gate budget before staging: BLOCKED - 62% of the budget consumed: deploy freeze",
        "analysis strictness in staging: 1.2 (thresholds tightened)",
        "reviews of staging: technical (sre-lead), security (role op)",
        "gates_staging: success",
    ]
    assert airflow.xcom_reads == [("gates_staging", "return_value")]  # once; gates_prod never started


def sli(slo: str, decision: str, cand: tuple[float, float] | None, base: tuple[float, float] | None,
        reason: str) -> dict[str, Any]:
    def cohort(counts: tuple[float, float] | None) -> dict[str, float] | None:
        return None if counts is None else {"bad": counts[0], "total": counts[1], "ratio": counts[0] / counts[1]}
    return {"slo": slo, "decision": decision, "reason": reason, "candidate": cohort(cand), "baseline": cohort(base)}


def step(index: int, label: str, nxt: str | None, *, reason: str = "every SLI passed",
         control: dict[str, str] | None = None, slis: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"stage": "prod", "index": index, "label": label, "decision": "pass", "reason": reason,
            "slis": slis or [sli("availability", "pass", (0.0, 812.0), (2.0, 7300.0), "LLR -3.1 <= 0")],
            "control": control, "decided_at": "2026-11-26T09:01:00+00:00", "next": nxt}


def test_rollout_steps_show_each_sli_and_who_decided(airflow: FakeAirflow, capsys, time_: FakeTime) -> None:
    airflow.outcome = outcome("promoted")
    running = {"rollout_staging": None}
    airflow.steps = [
        ("running", states(**running, rollout_prod="queued")),
        ("running", states(**running, rollout_prod="running")),
        *[("running", states(**running, rollout_prod="deferred"))] * 4,
        ("running", states(**running, rollout_prod="success")),
        ("success", states(**running, rollout_prod="success", finalize="success")),
    ]
    promote = {"action": "promote", "actor": "alice", "reason": "the event starts at 10:00"}
    airflow.xcoms = {
        2: {("rollout_prod", "plan"): {"stage": "prod", "steps": ["canary 10%", "canary 50%", "canary 100%"],
                                       "first": 0}},
        3: {("rollout_prod", "step-0"): step(0, "canary 10%", "canary 50%", slis=[
            sli("availability", "pass", (0.0, 812.0), (2.0, 7300.0), "LLR -3.1 <= 0"),
            sli("concurrent_sessions", "not_judged", None, None, "a threshold SLI over the fleet")])},
        5: {("rollout_prod", "step-1"): step(1, "canary 50%", "canary 100%", control=promote,
                                             reason="promoted the current step by alice: the event starts at 10:00",
                                             slis=[sli("availability", "observing", (1.0, 2104.0), (3.0, 9120.0),
                                                       "0 < LLR 1.2 < 4.55")])},
        6: {("rollout_prod", "step-2"): step(2, "canary 100%", None),
            ("rollout_prod", "return_value"): {"stage": "prod", "outcome": "promoted"}},
    }
    assert td.main(deploy_args(airflow.url), clock=time_.clock, sleep=time_.sleep) == 0
    progress = progress_of(capsys.readouterr().out)
    start = progress.index("rollout_prod: running")
    assert progress[start:progress.index("finalize: success")] == [
        "rollout_prod: running",
        "rollout_prod: deferred",
        "prod rollout: canary 10% → canary 50% → canary 100%; applied canary 10%",
        "prod canary 10%: pass - every SLI passed",
        "  availability: pass - new version 0/812 bad (0.000%), baseline 2/7300 bad (0.027%) - LLR -3.1 <= 0",
        "  concurrent_sessions: not_judged - a threshold SLI over the fleet",
        "  next: canary 50%",
        "prod canary 50%: pass - promoted the current step by alice: the event starts at 10:00",
        "  decided by alice (promote): the event starts at 10:00",
        "  availability: observing - new version 1/2104 bad (0.048%), baseline 3/9120 bad (0.033%) - "
        "0 < LLR 1.2 < 4.55",
        "  next: canary 100%",
        "prod canary 100%: pass - every SLI passed",
        "  availability: pass - new version 0/812 bad (0.000%), baseline 2/7300 bad (0.027%) - LLR -3.1 <= 0",
        "  that was the last step in prod",
        "rollout_prod: success",  # after its last step, as it happened
    ]
    # each new key fetched once, return_value never; listed while started, not before, not after the read at its end
    assert sorted(airflow.xcom_reads) == [("rollout_prod", k) for k in ("plan", "step-0", "step-1", "step-2")]
    assert airflow.xcom_lists == ["rollout_prod"] * 6


def test_failed_progress_reads_never_stop_the_follow(airflow: FakeAirflow, capsys, time_: FakeTime) -> None:
    airflow.outcome = outcome("promoted")
    airflow.steps = [
        ("running", states(**{TECH: "deferred"}, gates_prod=None, rollout_prod=None)),
        ("running", states(**{TECH: "deferred"}, gates_prod="success", rollout_prod="deferred")),
        ("running", states(**{TECH: "success"}, gates_prod="success", rollout_prod="deferred")),
        ("success", states(**{TECH: "success"}, gates_prod="success", rollout_prod="success", finalize="success")),
    ]
    airflow.hitl = {0: [review(TECH, ["sre-lead"])]}
    airflow.xcoms = {1: {("gates_prod", "return_value"): {"strictness": 1.0, "gates": []},
                         ("rollout_prod", "step-0"): step(0, "canary 100%", None)}}
    airflow.read_failures = {"hitl": [500] * 1000, "gates_prod/return_value": [403] * 1000,
                             "rollout_prod/step-0": [503]}
    args = deploy_args(airflow.url)
    args[args.index("--timeout") + 1] = "600"
    assert td.main(args, clock=time_.clock, sleep=time_.sleep) == 0
    out, err = capsys.readouterr()
    assert "result: promoted (exit 0)" in out
    assert progress_of(out).count("prod canary 100%: pass - every SLI passed") == 1  # the 503 was retried
    assert err.count("warning: could not read the reviews (hitlDetails) (the follow goes on)") == 1
    assert err.count("warning: could not read the results of gates_prod (the follow goes on)") == 1
    assert "answered 403" in err and "retrying in" in err
    # the failing reads were retried for a while once, then tried once per poll: the follow kept its pace
    assert time_.now - 1000 < td.PROGRESS_RETRY_S * 2 + 5


# --- --follow, --abort ------------------------------------------------------------------------------------------

def attach_args(url: str, *extra: str) -> list[str]:
    return ["--airflow-url", url, "--username", USER, "--password", PASSWORD, "--poll", "0.01", "--timeout", "10",
            *extra]


def existing_run(airflow: FakeAirflow, run_id: str = "ci__live") -> None:
    airflow.triggered.append({"dag_run_id": run_id, "logical_date": None,
                              "conf": {"service": "game-server", "version": "1.5.2"}})


def test_follow_reattaches_without_triggering(airflow: FakeAirflow, capsys, time_: FakeTime) -> None:
    existing_run(airflow)
    airflow.outcome = outcome("rolled_back", "prod: availability regressed")
    airflow.steps = walk("failed")[3:]  # it was running already
    assert td.main(attach_args(airflow.url, "--follow", "ci__live"), clock=time_.clock, sleep=time_.sleep) == 2
    out = capsys.readouterr().out
    progress = progress_of(out)
    assert progress[1] == f"following {DAG_ID} run ci__live, running: {airflow.url}/dags/{DAG_ID}/runs/ci__live"
    assert "validate_request: success" in progress and "finalize: success" in progress  # where it stands, then on
    assert out.splitlines()[-1].startswith("result: rolled_back (exit 2) - prod: availability regressed")
    assert [r for r in airflow.requests if r[0] == "POST" and r[1] != "/auth/token"] == []
    assert len(airflow.triggered) == 1


def test_follow_of_an_unknown_run_exits_4(airflow: FakeAirflow, capsys, time_: FakeTime) -> None:
    assert td.main(attach_args(airflow.url, "--follow", "ci__nope"), clock=time_.clock, sleep=time_.sleep) == 4
    assert "result: invalid (exit 4) - Airflow rejected the run to follow (404): DagRun with run_id: `ci__nope`" in \
        capsys.readouterr().out


REFUSAL = "run_id: this deploy has ended (promoted): all stages healthy"


@pytest.mark.parametrize("log, shown", [
    pytest.param([{"event": "Task failed with exception", "level": "error", "timestamp": "2026-11-26T09:00:03Z",
                   "error_detail": [{"exc_type": "AirflowFailException", "exc_value": REFUSAL, "frames": []}]},
                  {"event": "::group::Post Execute", "level": "info"}], REFUSAL, id="structured"),
    pytest.param(["[2026-11-26 09:00:03] ERROR - Task failed with exception",
                  f"airflow.sdk.exceptions.AirflowFailException: {REFUSAL}", "::group::Post Execute"], REFUSAL,
                 id="plain-lines"),
    pytest.param(None, None, id="no-log"),
])
def test_a_refused_abort_exits_4_with_the_reason(airflow: FakeAirflow, capsys, time_: FakeTime, log: Any,
                                                 shown: str | None) -> None:
    existing_run(airflow)
    airflow.control_steps = [("queued", {("request", -1): None}),
                             ("failed", {("request", -1): {"state": "failed", "try_number": 1}})]
    airflow.control_log = log
    code = td.main(attach_args(airflow.url, "--abort", "ci__live", "--reason", "players report desyncs", "--json"),
                   clock=time_.clock, sleep=time_.sleep)
    out, err = capsys.readouterr()
    assert code == 4
    (request,) = airflow.control_triggered
    assert request["dag_run_id"].startswith("abort__ci__live__") and request["logical_date"] is None
    assert request["conf"] == {"run_id": "ci__live", "action": "abort", "reason": "players report desyncs"}
    result = json.loads(out)
    control_url = f"{airflow.url}/dags/{CONTROL_DAG_ID}/runs/{request['dag_run_id']}"
    assert result["outcome"] == "abort_refused" and result["exit_code"] == 4 and result["ui_url"] == control_url
    if shown:
        assert result["reason"] == f"the abort was refused: {shown}"
    else:
        assert "the reason is in the log of deploy_control's request task" in result["reason"]
    assert f"result: abort_refused (exit 4) - {result['reason']} - {control_url}" in err
    assert airflow.log_queries == [("1", {"full_content": ["true"]})]
    assert airflow.polls == 0  # the deploy is not followed


def test_an_accepted_abort_follows_the_deploy_to_aborted_and_exits_2(airflow: FakeAirflow, capsys,
                                                                      time_: FakeTime) -> None:
    existing_run(airflow)
    airflow.outcome = outcome("aborted", "prod canary 25%: aborted by kim: players report desyncs")
    airflow.steps = walk("failed")[4:]
    code = td.main(attach_args(airflow.url, "--abort", "ci__live", "--reason", "players report desyncs"),
                   clock=time_.clock, sleep=time_.sleep)
    out = capsys.readouterr().out
    assert code == 2
    progress = progress_of(out)
    accepted = progress.index(f"abort accepted: following {DAG_ID} run ci__live to its end")
    assert progress[accepted - 2:accepted] == ["deploy_control request: success", "deploy_control dag run: success"]
    assert "finalize: success" in progress[accepted:]
    assert "result: aborted (exit 2) - prod canary 25%: aborted by kim: players report desyncs" in out
    assert airflow.log_queries == []


@pytest.mark.parametrize("extra, message", [
    (["--abort", "ci__live"], "--abort needs --reason"),
    (["--abort", "ci__live", "--reason", "  "], "--abort needs --reason"),
    (["--follow", "ci__live", "--reason", "why"], "--reason goes with --abort"),
    (["--follow", "ci__a", "--abort", "ci__b", "--reason", "why"], "not allowed with argument"),
    (["--follow", "ci__live", "--run-id", "ci__other"], "--run-id goes with a new deploy"),
])
def test_bad_follow_and_abort_options_exit_4(airflow: FakeAirflow, capsys, extra: list[str], message: str) -> None:
    assert td.main(attach_args(airflow.url, *extra)) == 4
    assert message in capsys.readouterr().err
    assert airflow.requests == []


def test_follow_and_abort_need_no_deploy_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_URL", "http://127.0.0.1:8080")
    monkeypatch.setenv("AIRFLOW_TOKEN", "minted-elsewhere")
    monkeypatch.delenv("GITHUB_ACTOR")
    monkeypatch.setattr(td, "_os_user", lambda: "")
    assert td.parse_args(["--follow", "ci__x"]).follow == "ci__x"
    args = td.parse_args(["--abort", "ci__x", "--reason", "bad build"])
    assert args.abort == "ci__x" and args.token == "minted-elsewhere" and args.username is None
    with pytest.raises(td.UsageError, match="missing --service, --version"):
        td.parse_args([])


# --- a given token ---------------------------------------------------------------------------------------------

def token_args(url: str, *extra: str) -> list[str]:
    args = deploy_args(url, *extra)
    del args[args.index("--username"):args.index("--password") + 2]
    return args


@pytest.mark.parametrize("via_env", [False, True])
def test_a_given_token_is_the_bearer_and_none_is_fetched(airflow: FakeAirflow, capsys, monkeypatch, time_: FakeTime,
                                                         via_env: bool) -> None:
    airflow.valid_tokens = {"jwt-minted-by-ci"}
    airflow.outcome = outcome("promoted")
    if via_env:
        monkeypatch.setenv("AIRFLOW_TOKEN", "jwt-minted-by-ci")
        args = token_args(airflow.url)
    else:
        args = token_args(airflow.url, "--token", "jwt-minted-by-ci")
    assert td.main(args, clock=time_.clock, sleep=time_.sleep) == 0
    out, err = capsys.readouterr()
    assert ("POST", "/auth/token") not in airflow.requests and airflow.tokens_issued == 0
    assert len(airflow.triggered) == 1
    assert "as a given token" in out and "jwt-minted-by-ci" not in out + err


def test_a_refused_token_exits_1_and_is_not_renewed(airflow: FakeAirflow, capsys, time_: FakeTime) -> None:
    airflow.valid_tokens = set()
    assert td.main(token_args(airflow.url, "--token", "expired-jwt"), clock=time_.clock, sleep=time_.sleep) == 1
    out = capsys.readouterr().out
    assert f"result: auth_failed (exit 1) - the token was refused by Airflow at {airflow.url} (401" in out
    assert ("POST", "/auth/token") not in airflow.requests and airflow.triggered == []
    assert "expired-jwt" not in out


def test_a_token_refused_while_following_exits_1(airflow: FakeAirflow, capsys, time_: FakeTime) -> None:
    airflow.valid_tokens = {"jwt"}
    airflow.revoke_tokens_at = {3}
    assert td.main(token_args(airflow.url, "--token", "jwt"), clock=time_.clock, sleep=time_.sleep) == 1
    assert "result: auth_failed (exit 1) - the token was refused" in capsys.readouterr().out
    assert airflow.polls == 3  # not retried, not renewed


# --- outages: retried within --timeout, refusals not ------------------------------------------------------------

def test_a_500_on_the_token_and_on_the_trigger_is_retried(airflow: FakeAirflow, capsys, time_: FakeTime) -> None:
    airflow.outcome = outcome("promoted")
    airflow.auth_failures = [500, 500]
    airflow.trigger_failures = [(500, False)]
    assert td.main(deploy_args(airflow.url, "--run-id", "ci__r"), clock=time_.clock, sleep=time_.sleep) == 0
    out, err = capsys.readouterr()
    assert err.count("answered 500 to POST /auth/token: (sqlite3.OperationalError) database is locked; retrying in") \
        == 2
    assert err.count(f"answered 500 to POST /api/v2/dags/{DAG_ID}/dagRuns") == 1
    assert airflow.requests.count(("POST", "/auth/token")) == 3 and [r["dag_run_id"] for r in airflow.triggered] == \
        ["ci__r"]
    assert time_.slept[:3] == [0.01, 0.02, 0.01]  # backoff on the injected clock, nothing slept for real
    assert "result: promoted (exit 0)" in out


def test_a_409_after_a_retried_trigger_means_it_was_created(airflow: FakeAirflow, capsys, time_: FakeTime) -> None:
    airflow.outcome = outcome("promoted")
    airflow.trigger_failures = [(500, True)]  # created, but the answer was a 500
    assert td.main(deploy_args(airflow.url, "--run-id", "ci__r"), clock=time_.clock, sleep=time_.sleep) == 0
    out = capsys.readouterr().out
    assert airflow.requests.count(("POST", f"/api/v2/dags/{DAG_ID}/dagRuns")) == 2 and len(airflow.triggered) == 1
    assert f"triggered {DAG_ID} run ci__r (Airflow lost its answer to an earlier attempt, which created the run)" in out
    assert "result: promoted (exit 0)" in out


def test_a_409_for_somebody_elses_run_is_a_refusal_even_after_a_retry(airflow: FakeAirflow, capsys,
                                                                      time_: FakeTime) -> None:
    # between our two attempts, a run with our id but another request was created: not ours to follow
    airflow.trigger_failures = [(503, {"service": "matchmaking", "version": "9.9.9"})]
    assert td.main(deploy_args(airflow.url, "--run-id", "ci__r"), clock=time_.clock, sleep=time_.sleep) == 4
    assert "result: invalid (exit 4) - Airflow rejected the run (409): Unique constraint violation" in \
        capsys.readouterr().out
    assert not any(path.endswith("/taskInstances") for _, path in airflow.requests)  # not followed


@pytest.mark.parametrize("where", ["auth", "trigger"])
def test_retries_running_out_report_unreachable_with_how_long(airflow: FakeAirflow, capsys, time_: FakeTime,
                                                              where: str) -> None:
    if where == "auth":
        airflow.auth_failures = [500] * 10_000
    else:
        airflow.trigger_failures = [(502, False)] * 10_000
    args = deploy_args(airflow.url, "--json")
    args[args.index("--timeout") + 1] = "45"
    assert td.main(args, clock=time_.clock, sleep=time_.sleep) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["outcome"] == "unreachable" and result["reason"].endswith("(gave up after retrying for 45s)")
    assert f"Airflow at {airflow.url} answered {500 if where == 'auth' else 502}" in result["reason"]
    assert sum(time_.slept) == pytest.approx(45) and max(time_.slept) <= td.MAX_BACKOFF_S
    assert airflow.triggered == []


def test_refusal_from_log_prefers_the_exception() -> None:
    assert td.refusal_from_log([{"event": "params: reason: x"},
                                {"event": "Task failed with exception",
                                 "error_detail": [{"exc_value": "action: the deploy is not paused"}]}]) == \
        "action: the deploy is not paused"
    assert td.refusal_from_log([{"event": "boom", "error_detail": [{"exc_value": "database is locked"}]}]) == \
        "database is locked"
    assert td.refusal_from_log(["nothing to see"]) is None


def test_the_example_workflow_can_abort_and_waits_for_reviews() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))
    assert {"abort_run_id", "abort_reason"} <= set(triggers["workflow_dispatch"]["inputs"])
    known = {o for a in td.build_parser()._actions for o in a.option_strings}
    (abort,) = [s for s in workflow["jobs"]["abort"]["steps"] if "scripts/trigger_deploy.py" in s.get("run", "")]
    used = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", abort["run"]))
    assert {"--abort", "--reason"} <= used <= known and "--password" not in abort["run"]
    assert "abort_run_id" in workflow["jobs"]["abort"]["if"] and "abort_run_id" in workflow["jobs"]["deploy"]["if"]
    deploy = workflow["jobs"]["deploy"]
    (step,) = [s for s in deploy["steps"] if "scripts/trigger_deploy.py" in s.get("run", "")]
    timeout = re.search(r"--timeout (\d+)", step["run"])
    assert timeout is not None
    timeout_s = float(timeout.group(1))
    assert timeout_s >= 4 * 3600  # the three prod reviews may take deploy.yaml's approvals.timeout (4h)
    assert deploy["timeout-minutes"] * 60 > timeout_s  # the script reports its own time-out first
    text = WORKFLOW.read_text()
    assert "5  rejected" in text and "3  blocked" in text
    assert "concurrency" not in workflow  # per job: an abort must not queue behind the deploy it aborts
