#!/usr/bin/env python3
"""Ship a build from CI: trigger the game_service_deploy DAG through Airflow's REST API and follow it to the end.

Standard library and `requests` only, so a CI job needs nothing but `pip install requests`.

What it does:
1. gets a JWT from `POST {url}/auth/token` (Airflow 3's simple auth manager or the FAB auth manager);
2. triggers `POST /api/v2/dags/{dag_id}/dagRuns` with the deploy request as the run's conf;
3. polls the run and its task instances, printing one line per task state change; connection errors and 5xx
   answers are retried with backoff, and an expired token is renewed once;
4. when the run has ended, reads the outcome the `finalize` task returned (its `return_value` XCom) and
   prints one summary line with the outcome, its reason and the run's page in the Airflow UI.

A rollback (`--rollback --version 1.5.0`, or `--rollback-of <deployment run id>`) goes back to a version that
served the service before, all traffic at once; it exits like a deploy (0: the old version serves and verified).

Exit codes (CI fails the job on anything but 0):
    0  promoted (a rollback: back on the old version, verified), or a dry run that Airflow accepted
    2  rolled back, or the analysis timed out (outcomes `rolled_back`, `timed_out`)
    3  blocked by a gate (lock, page alert, error budget, maintenance calendar)
    4  invalid input: a bad option, or Airflow rejected the request (bad params, unknown DAG, duplicate run id)
    1  anything else: the run failed without an outcome, the client gave up after --timeout, Airflow was
       unreachable or refused the credentials
"""
from __future__ import annotations

import argparse
import ast
import getpass
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

import requests

DEFAULT_DAG_ID = "game_service_deploy"
STRATEGIES = ("canary", "blue-green", "rolling")
FINALIZE_TASK = "finalize"
TERMINAL_RUN_STATES = frozenset({"success", "failed"})

EXIT_PROMOTED = 0
EXIT_OTHER = 1
EXIT_ROLLED_BACK = 2
EXIT_BLOCKED = 3
EXIT_INVALID = 4

# The outcomes the DAG's finalize task reports; anything not listed here exits 1.
OUTCOME_EXIT_CODES = {
    "promoted": EXIT_PROMOTED,
    "dry_run": EXIT_PROMOTED,
    "rolled_back": EXIT_ROLLED_BACK,
    "timed_out": EXIT_ROLLED_BACK,
    "blocked": EXIT_BLOCKED,
    "invalid": EXIT_INVALID,
    "failed": EXIT_OTHER,
}

PAGE_LIMIT = 100  # Airflow's default [api] maximum_page_limit: larger pages are cut to this anyway
MAX_BACKOFF_S = 30.0
REQUEST_TIMEOUT_S = 30.0
# Airflow's default [scheduler] allowed_run_id_pattern is ^[A-Za-z0-9_.~:+-]+$; ":" and "/" are left out of the
# generated run id as well, so it can sit in a URL path unchanged.
_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.~+-]")

EPILOG = """\
example:
  AIRFLOW_URL=https://airflow.example.org AIRFLOW_USERNAME=ci AIRFLOW_PASSWORD=*** \\
  python scripts/trigger_deploy.py --service game-server --version 1.4.2 \\
      --change-ticket CHG-1234 --strategy canary --stages staging,prod

exit codes:
  0  promoted, or a dry run that Airflow accepted
  2  rolled back, or the analysis timed out (outcomes rolled_back, timed_out)
  3  blocked by a gate (lock, page alert, error budget, maintenance calendar)
  4  invalid input: a bad option, or Airflow rejected the request (bad params, unknown DAG, duplicate run id)
  1  anything else: the run failed without an outcome, the client gave up after --timeout,
     Airflow was unreachable or refused the credentials

Progress lines are "HH:MM:SS task_id[map_index]: state" in UTC. With --json they go to stderr and stdout
carries only the final outcome as one JSON line. Ctrl-C or a cancelled CI job stops following, not the run:
it goes on in Airflow.
"""


class UsageError(ValueError):
    """A bad command line or a request that cannot be valid; nothing was sent to Airflow."""


class AirflowError(RuntimeError):
    """Airflow could not be used for this request; the message names the URL and what went wrong."""


class TransientAirflowError(AirflowError):
    """Worth retrying: a connection error, a timeout or a 5xx answer."""


class AirflowUnreachable(TransientAirflowError):
    def __init__(self, base_url: str, cause: Exception):
        self.base_url = base_url
        text = str(cause)
        super().__init__(f"Airflow at {base_url} is unreachable ({type(cause).__name__}: "
                         f"{text[:300]}{'...' if len(text) > 300 else ''})")


class AirflowServerError(TransientAirflowError):
    def __init__(self, base_url: str, status: int, method: str, path: str, detail: str):
        self.status = status
        super().__init__(f"Airflow at {base_url} answered {status} to {method} {path}: {detail}")


class AirflowRejected(AirflowError):
    """A 4xx answer: retrying the same request will not help."""

    def __init__(self, base_url: str, status: int, method: str, path: str, detail: str):
        self.status = status
        self.detail = detail
        super().__init__(f"Airflow at {base_url} answered {status} to {method} {path}: {detail}")


class AuthenticationFailed(AirflowError):
    pass


class FollowTimeout(AirflowError):
    def __init__(self, timeout_s: float, state: str):
        self.state = state
        super().__init__(f"gave up following after {timeout_s:g}s; the run is still {state} in Airflow")


class OutcomeUnreadable(AirflowError):
    pass


def format_detail(detail: Any) -> str:
    """Airflow's `detail` as one line: a plain message, FastAPI's validation errors, or a database error dict."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    if isinstance(detail, dict):
        reason, message = detail.get("reason"), detail.get("message")
        if reason:
            return f"{reason}: {message}" if message else str(reason)
        return json.dumps(detail, sort_keys=True)
    return str(detail)


def _response_detail(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:500] or resp.reason or "no detail"
    return format_detail(body.get("detail", body) if isinstance(body, dict) else body)


def parse_xcom_value(value: Any) -> dict[str, Any] | None:
    """The finalize task's dict from an XCom `value`, whichever way Airflow serialised it; None if it is no dict.

    Airflow 3.3 answers `deserialize=true` with a JSON object for a plain dict; a value stored through
    `XCom.serialize_value` comes back as the JSON string the table holds (sometimes JSON inside JSON), and
    `stringify=true` or an XCom backend gives Python's repr.
    """
    for _ in range(3):  # at most a JSON string holding a JSON string holding the dict
        if isinstance(value, dict):
            return value
        if not isinstance(value, str):
            return None
        text = value.strip()
        try:
            value = json.loads(text)
            continue
        except ValueError:
            pass
        try:
            value = ast.literal_eval(text)  # a Python repr: {'outcome': 'promoted', 'dry_run': False}
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


T = TypeVar("T")


class AirflowClient:
    """Airflow 3's public REST API (v2) with a JWT, renewed once when Airflow answers 401."""

    def __init__(self, base_url: str, username: str, password: str, *, session: requests.Session | None = None,
                 request_timeout: float = REQUEST_TIMEOUT_S):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self._session = session or requests.Session()
        self._request_timeout = request_timeout
        self._token: str | None = None

    def __repr__(self) -> str:
        return f"AirflowClient({self.base_url!r}, user={self.username!r})"

    def authenticate(self) -> None:
        url = f"{self.base_url}/auth/token"
        try:
            resp = self._session.post(url, json={"username": self.username, "password": self._password},
                                      timeout=self._request_timeout)
        except requests.RequestException as exc:
            raise AirflowUnreachable(self.base_url, exc) from exc
        if resp.status_code >= 500:
            raise AirflowServerError(self.base_url, resp.status_code, "POST", "/auth/token", _response_detail(resp))
        if resp.status_code not in (200, 201):
            raise AuthenticationFailed(f"Airflow at {self.base_url} refused the credentials of user "
                                       f"{self.username!r} ({resp.status_code}: {_response_detail(resp)})")
        try:
            token = resp.json()["access_token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthenticationFailed(f"Airflow at {self.base_url} answered POST /auth/token without an "
                                       "access_token: is the URL the Airflow API server?") from exc
        self._token = str(token)

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                 body: dict[str, Any] | None = None, renew_token: bool = True) -> Any:
        if self._token is None:
            self.authenticate()
        try:
            resp = self._session.request(method, f"{self.base_url}{path}", params=params, json=body,
                                         headers={"Authorization": f"Bearer {self._token}"},
                                         timeout=self._request_timeout)
        except requests.RequestException as exc:
            raise AirflowUnreachable(self.base_url, exc) from exc
        if resp.status_code == 401 and renew_token:  # the token expired during a long rollout
            self.authenticate()
            return self._request(method, path, params=params, body=body, renew_token=False)
        if resp.status_code >= 500:
            raise AirflowServerError(self.base_url, resp.status_code, method, path, _response_detail(resp))
        if resp.status_code >= 400:
            raise AirflowRejected(self.base_url, resp.status_code, method, path, _response_detail(resp))
        try:
            return resp.json()
        except ValueError as exc:  # an HTML error page from a proxy in front of Airflow
            raise AirflowServerError(self.base_url, resp.status_code, method, path,
                                     f"not JSON: {resp.text.strip()[:200]!r}") from exc

    @staticmethod
    def _run_path(dag_id: str, run_id: str) -> str:
        return f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"

    def dag(self, dag_id: str) -> dict[str, Any]:
        result = self._request("GET", f"/api/v2/dags/{quote(dag_id, safe='')}")
        return result if isinstance(result, dict) else {}

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        result = self._request("POST", f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns", body=body)
        return result if isinstance(result, dict) else {}

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        result = self._request("GET", self._run_path(dag_id, run_id))
        return result if isinstance(result, dict) else {}

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"{self._run_path(dag_id, run_id)}/taskInstances"
        found: list[dict[str, Any]] = []
        while True:
            page = self._request("GET", path, params={"limit": PAGE_LIMIT, "offset": len(found)})
            items = page.get("task_instances", []) if isinstance(page, dict) else []
            found.extend(i for i in items if isinstance(i, dict))
            if not items or len(found) >= int(page.get("total_entries", 0)):
                return found

    def task_result(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any] | None:
        """The task's `return_value` XCom as a dict; None when the task pushed none (404)."""
        path = f"{self._run_path(dag_id, run_id)}/taskInstances/{quote(task_id, safe='')}/xcomEntries/return_value"
        try:
            # deserialize=true: a plain dict comes back as a JSON object rather than the stored JSON string
            entry = self._request("GET", path, params={"deserialize": "true"})
        except AirflowRejected as exc:
            if exc.status == 404:
                return None
            raise
        raw = entry.get("value") if isinstance(entry, dict) else None
        value = parse_xcom_value(raw)
        if value is None:
            raise OutcomeUnreadable(f"the {task_id} task's return_value is not a dict: {str(raw)[:300]!r}")
        return value


def retrying(call: Callable[[], T], *, deadline: float, first_delay: float, warn: Callable[[str], None],
             clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> T:
    """`call()`, retried with doubling delays while it fails transiently and the deadline allows."""
    delay = max(first_delay, 0.01)
    while True:
        try:
            return call()
        except TransientAirflowError as exc:
            remaining = deadline - clock()
            if remaining <= 0:
                raise
            wait = min(delay, remaining, MAX_BACKOFF_S)
            warn(f"{exc}; retrying in {wait:.1f}s")
            sleep(wait)
            delay = min(delay * 2, MAX_BACKOFF_S)


def _utc_clock() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")


def _changed_at(ti: dict[str, Any]) -> str:
    """When the task instance reached its state, as Airflow's ISO timestamp ("" if it gives none)."""
    return str(ti.get("end_date") or ti.get("start_date") or ti.get("queued_when") or ti.get("scheduled_when") or "")


def follow(client: AirflowClient, dag_id: str, run_id: str, *, timeout: float, poll: float,
           progress: Callable[[str], None], warn: Callable[[str], None],
           clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
           now: Callable[[], str] = _utc_clock) -> str:
    """Poll the run until it ends; print each task state change; return the run's final state.

    Raises FollowTimeout when the run has not ended within `timeout` seconds, and the last transient error
    when Airflow kept failing until then.
    """
    deadline = clock() + timeout
    seen: dict[tuple[str, int], str | None] = {}
    run_state: str | None = None
    while True:
        run = retrying(lambda: client.dag_run(dag_id, run_id), deadline=deadline, first_delay=poll, warn=warn,
                       clock=clock, sleep=sleep)
        tis = retrying(lambda: client.task_instances(dag_id, run_id), deadline=deadline, first_delay=poll,
                       warn=warn, clock=clock, sleep=sleep)
        state = str(run.get("state") or "queued")
        ended = state in TERMINAL_RUN_STATES
        if state != run_state and not ended:
            progress(f"{now()} dag run: {state}")
        changes = []
        for ti in tis:
            map_index = ti.get("map_index")
            key = (str(ti.get("task_id")), -1 if map_index is None else int(map_index))
            ti_state = ti.get("state")
            if seen.get(key) == ti_state or (key not in seen and ti_state is None):
                continue  # a task that has not started yet is no news
            seen[key] = ti_state
            changes.append((_changed_at(ti), key, ti_state))
        # in the order they happened; Airflow's own order where it gives no time (sorted() is stable)
        for _, (task_id, map_index), ti_state in sorted(changes, key=lambda c: c[0]):
            label = task_id if map_index < 0 else f"{task_id}[{map_index}]"
            progress(f"{now()} {label}: {ti_state or 'none'}")
        if state != run_state and ended:  # after the last tasks' lines, as it happened
            progress(f"{now()} dag run: {state}")
        run_state = state
        if ended:
            return state
        remaining = deadline - clock()
        if remaining <= 0:
            raise FollowTimeout(timeout, state)
        sleep(min(poll, remaining))


@dataclass(frozen=True)
class DeployResult:
    outcome: str  # the DAG's outcome, or the client's: unreachable, auth_failed, client_timeout, no_outcome, error
    reason: str
    exit_code: int
    run_id: str | None = None
    run_state: str | None = None
    ui_url: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # what the finalize task returned

    def to_json(self, dag_id: str) -> str:
        out = {**self.details, "outcome": self.outcome, "reason": self.reason, "exit_code": self.exit_code,
               "dag_id": dag_id, "run_id": self.run_id, "run_state": self.run_state, "ui_url": self.ui_url}
        return json.dumps(out, sort_keys=True, default=str)

    def summary(self) -> str:
        line = f"result: {self.outcome} (exit {self.exit_code})"
        if self.reason:
            line += f" - {self.reason}"
        if self.ui_url:
            line += f" - {self.ui_url}"
        return line


def ui_url(base_url: str, dag_id: str, run_id: str) -> str:
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def default_run_id(service: str, version: str, at: datetime | None = None) -> str:
    """ci__<service>__<version>__<UTC timestamp>, with characters a run id or a URL path cannot hold replaced."""
    stamp = (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return "__".join(("ci", _RUN_ID_UNSAFE.sub("-", service), _RUN_ID_UNSAFE.sub("-", version), stamp))


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # a container user without a passwd entry
        return ""


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a bad option, which here means "rolled back": raise UsageError (exit 4) instead."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    env = os.environ
    p = _Parser(prog="trigger_deploy.py", description=__doc__.split("\n\n")[0],
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    conn = p.add_argument_group("Airflow")
    conn.add_argument("--airflow-url", default=env.get("AIRFLOW_URL"),
                      help="the Airflow API server, e.g. http://127.0.0.1:8080 (default: $AIRFLOW_URL)")
    conn.add_argument("--username", default=env.get("AIRFLOW_USERNAME"), help="default: $AIRFLOW_USERNAME")
    conn.add_argument("--password", default=env.get("AIRFLOW_PASSWORD"),
                      help="default: $AIRFLOW_PASSWORD (prefer the variable: arguments show in process lists)")
    conn.add_argument("--dag-id", default=DEFAULT_DAG_ID, help="default: %(default)s")

    req = p.add_argument_group("the deploy request (the run's conf)")
    req.add_argument("--service", help="the service to deploy, as named in services.yaml (required)")
    req.add_argument("--version", help="the image tag to ship, e.g. 1.4.2 (required, except with --rollback-of)")
    req.add_argument("--rollback", action="store_true",
                     help="a rollback to --version, a version that served the service before: all traffic at once, "
                          "gated only by the deploy lock and the backend's health")
    req.add_argument("--rollback-of", metavar="DEPLOYMENT",
                     help="a rollback of this deployment (its run id) to the version it replaced; implies --rollback")
    req.add_argument("--strategy", choices=STRATEGIES, help="default: the service's own strategy")
    req.add_argument("--stages", help="comma-separated stages, e.g. staging,prod (default: all of the service's)")
    req.add_argument("--canary-steps", help="comma-separated canary weights in percent ending at 100, e.g. 25,50,100 "
                                            "(default: include/config/deploy.yaml's)")
    req.add_argument("--change-ticket", help="the approved change, e.g. CHG-1234 (required)")
    req.add_argument("--requested-by", default=env.get("GITHUB_ACTOR") or _os_user(),
                     help="who asks for the deploy (default: $GITHUB_ACTOR, else the OS user: %(default)s)")
    req.add_argument("--dry-run", action="store_true", help="run the gates and the plan, change nothing")
    req.add_argument("--force", action="store_true", help="bypass the error-budget freeze (needs --force-reason)")
    req.add_argument("--force-reason", help="why the freeze may be bypassed; required with --force")

    run = p.add_argument_group("following the run")
    run.add_argument("--run-id", help="default: ci__<service>__<version>__<UTC timestamp>")
    run.add_argument("--timeout", type=float, default=3600.0,
                     help="seconds to follow the run before giving up (exit 1; the run goes on); default %(default)g")
    run.add_argument("--poll", type=float, default=5.0, help="seconds between polls; default %(default)g")
    run.add_argument("--json", action="store_true",
                     help="print the final outcome as one JSON line on stdout (progress goes to stderr)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, checked as far as possible without Airflow; UsageError says what is wrong."""
    args = build_parser().parse_args(argv)
    missing = [opt for opt, value in (("--airflow-url (or $AIRFLOW_URL)", args.airflow_url),
                                      ("--username (or $AIRFLOW_USERNAME)", args.username),
                                      ("--password (or $AIRFLOW_PASSWORD)", args.password),
                                      ("--service", args.service),
                                      ("--version (or --rollback-of)", args.version or args.rollback_of),
                                      ("--change-ticket", args.change_ticket),
                                      ("--requested-by (or $GITHUB_ACTOR)", args.requested_by)) if not value]
    if missing:
        raise UsageError(f"missing {', '.join(missing)}")
    if not re.match(r"^https?://[^/]", args.airflow_url):
        raise UsageError(f"--airflow-url {args.airflow_url!r} is not an http(s) URL like http://127.0.0.1:8080")
    if args.timeout <= 0 or args.poll <= 0:
        raise UsageError("--timeout and --poll must be positive numbers of seconds")
    return args


def build_conf(args: argparse.Namespace) -> dict[str, Any]:
    """The run's conf from the options; UsageError for a request the DAG would reject anyway."""
    if args.force and not (args.force_reason or "").strip():
        raise UsageError("--force needs --force-reason: say why the error-budget freeze may be bypassed")
    if args.force_reason and not args.force:
        raise UsageError("--force-reason given without --force: add --force or drop the reason")
    conf: dict[str, Any] = {"service": args.service}
    if args.version:
        conf["version"] = args.version
    if args.rollback or args.rollback_of:
        if args.force or args.canary_steps is not None:
            raise UsageError("a rollback takes neither --force nor --canary-steps: it moves all traffic at once and "
                             "no budget gate blocks it")
        conf["kind"] = "rollback"
        if args.rollback_of:
            conf["rollback_of"] = args.rollback_of
    if args.strategy:
        conf["strategy"] = args.strategy
    if args.stages is not None:
        stages = [s.strip() for s in args.stages.split(",") if s.strip()]
        if not stages:
            raise UsageError(f"--stages {args.stages!r} names no stage (give e.g. staging,prod)")
        conf["stages"] = stages
    if args.canary_steps is not None:
        try:
            conf["canary_steps"] = [int(s) for s in args.canary_steps.split(",") if s.strip()]
        except ValueError:
            raise UsageError(f"--canary-steps {args.canary_steps!r}: give whole percentages, e.g. 25,50,100") from None
    conf.update(change_ticket=args.change_ticket, requested_by=args.requested_by, dry_run=bool(args.dry_run),
                force=bool(args.force), force_reason=(args.force_reason or "").strip())
    return conf


def deploy(client: AirflowClient, dag_id: str, run_id: str, conf: dict[str, Any], *, timeout: float, poll: float,
           progress: Callable[[str], None], warn: Callable[[str], None]) -> DeployResult:
    """Trigger, follow and read the outcome; every way this can end is a DeployResult with its exit code."""
    url = ui_url(client.base_url, dag_id, run_id)
    try:
        client.authenticate()
        if client.dag(dag_id).get("is_paused"):
            # not unpaused from here: a paused deploy DAG may be an operator's freeze
            warn(f"warning: {dag_id} is paused in Airflow; the run waits in 'queued' until someone unpauses it")
        client.trigger(dag_id, run_id, conf)
    except AirflowRejected as exc:
        return DeployResult("invalid", f"Airflow rejected the run ({exc.status}): {exc.detail}", EXIT_INVALID, run_id)
    except AuthenticationFailed as exc:
        return DeployResult("auth_failed", str(exc), EXIT_OTHER, run_id)
    except AirflowError as exc:
        return DeployResult("unreachable", str(exc), EXIT_OTHER, run_id)
    progress(f"{_utc_clock()} triggered {dag_id} run {run_id}: {url}")

    try:
        state = follow(client, dag_id, run_id, timeout=timeout, poll=poll, progress=progress, warn=warn)
    except FollowTimeout as exc:
        return DeployResult("client_timeout", str(exc), EXIT_OTHER, run_id, exc.state, url)
    except TransientAirflowError as exc:
        return DeployResult("unreachable", f"gave up following after {timeout:g}s: {exc}", EXIT_OTHER, run_id,
                            None, url)
    except AirflowError as exc:
        return DeployResult("error", str(exc), EXIT_OTHER, run_id, None, url)

    try:
        # the run has ended, so the result is there: allow a minute of retries even if --timeout is spent
        value = retrying(lambda: client.task_result(dag_id, run_id, FINALIZE_TASK),
                         deadline=time.monotonic() + 60, first_delay=poll, warn=warn)
    except AirflowError as exc:
        return DeployResult("no_outcome", f"the run ended {state}, but its outcome could not be read: {exc}",
                            EXIT_OTHER, run_id, state, url)
    if value is None or not value.get("outcome"):
        return DeployResult("no_outcome", f"the run ended {state} without an outcome from task {FINALIZE_TASK}",
                            EXIT_OTHER, run_id, state, url, value or {})
    outcome = str(value["outcome"])
    return DeployResult(outcome, str(value.get("reason") or ""), OUTCOME_EXIT_CODES.get(outcome, EXIT_OTHER),
                        run_id, state, url, value)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _stdout(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
        conf = build_conf(args)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except UsageError as exc:
        _stderr(f"trigger_deploy.py: error: {exc} (see --help)")
        if "--json" in argv:
            _stdout(DeployResult("invalid", str(exc), EXIT_INVALID).to_json(DEFAULT_DAG_ID))
        return EXIT_INVALID

    run_id = args.run_id or default_run_id(args.service, args.version or f"rollback-of-{args.rollback_of}")
    progress = _stderr if args.json else _stdout
    client = AirflowClient(args.airflow_url, args.username, args.password)
    shown = {k: v for k, v in conf.items() if v not in (None, "", False)}
    progress(f"{_utc_clock()} deploying via {client.base_url} as {args.username}: {json.dumps(shown)}")
    try:
        result = deploy(client, args.dag_id, run_id, conf, timeout=args.timeout, poll=args.poll,
                        progress=progress, warn=_stderr)
    except KeyboardInterrupt:
        _stderr(f"interrupted: stopped following; the run goes on in Airflow: "
                f"{ui_url(client.base_url, args.dag_id, run_id)}")
        return EXIT_OTHER
    progress(result.summary())
    if args.json:
        _stdout(result.to_json(args.dag_id))
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
