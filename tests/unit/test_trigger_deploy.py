"""scripts/trigger_deploy.py against a fake Airflow REST API: exit codes, progress lines, re-auth, retries, conf."""
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
class FakeAirflow:
    """Airflow 3's auth and REST endpoints the client uses, scripted poll by poll.

    Each GET of the dag run moves one step along `steps` (staying on the last); the task instances answer
    with the current step. Tokens are plain counters; `revoke_tokens_at` answers 401 to those dag-run polls
    (an expired token), `fail_polls` answers them with 503 or drops the connection.
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

    def step(self) -> tuple[str, dict[tuple[str, int], Any]]:
        return self.steps[min(max(self.polls - 1, 0), len(self.steps) - 1)]

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, Any] | None:
        """(status, JSON body), or None to drop the connection without an answer."""
        split = urlsplit(raw_path)
        parts = [unquote(p) for p in split.path.strip("/").split("/")]
        query = parse_qs(split.query)
        with self.lock:
            self.requests.append((method, split.path))
            if parts == ["auth", "token"] and method == "POST":
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
                return 200, {"dag_id": DAG_ID, "dag_run_id": run_id, "state": self.step()[0]}
            if parts[4:] == ["taskInstances"]:
                tis = [{"task_id": t, "map_index": m, **(s if isinstance(s, dict) else {"state": s})}
                       for (t, m), s in self.step()[1].items()]
                limit = min(int(query.get("limit", ["50"])[0]) or 50, self.max_page)
                offset = int(query.get("offset", ["0"])[0])
                return 200, {"task_instances": tis[offset:offset + limit], "total_entries": len(tis)}
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
        self.triggered.append(body)
        return 200, {"dag_id": DAG_ID, "dag_run_id": body["dag_run_id"], "state": "queued"}


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
    for name in ("AIRFLOW_URL", "AIRFLOW_USERNAME", "AIRFLOW_PASSWORD"):
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
    ("rolled_back", 2), ("timed_out", 2), ("blocked", 3), ("invalid", 4), ("failed", 1), ("dry_run", 0),
    ("something_new", 1),
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


def test_airflow_unreachable_exits_1_naming_the_url(capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert td.main(deploy_args(url)) == 1
    out = capsys.readouterr().out
    assert f"result: unreachable (exit 1) - Airflow at {url} is unreachable" in out


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
    for code in ("0  promoted", "2  rolled back", "3  blocked", "4  invalid input", "1  anything else"):
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
