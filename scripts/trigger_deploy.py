#!/usr/bin/env python3
"""Ship a build from CI: trigger the game_service_deploy DAG through Airflow's REST API and follow it to the end.

Standard library and `requests` only, so a CI job needs nothing but `pip install requests`.

What it does:
1. gets a JWT from `POST {url}/auth/token` (Airflow 3's simple auth manager or the FAB auth manager), or uses the
   one given with --token (minted elsewhere: never fetched, never renewed);
2. triggers `POST /api/v2/dags/{dag_id}/dagRuns` with the deploy request as the run's conf;
3. polls the run and its task instances, printing one line per task state change, and what the tasks report as a
   person would follow it: each review as it waits and when it is answered (`hitlDetails`), each gate's result
   (`gates_<stage>`'s return value), each rollout step with its decision and every SLI's numbers (`rollout_<stage>`'s
   XComs `plan` and `step-<index>`);
4. when the run has ended, reads the outcome the `finalize` task returned (its `return_value` XCom) and
   prints one summary line with the outcome, its reason and the run's page in the Airflow UI.

Connection errors and 5xx answers (e.g. SQLite's "database is locked" under load) are retried with backoff
within --timeout, getting the token and triggering included; an expired token is renewed once. A trigger retried
after a lost answer that finds its own run id taken (409) goes on following that run.

`--follow RUN_ID` reattaches to a running deploy and follows it to its end (nothing is triggered).
`--abort RUN_ID --reason TEXT` asks the `deploy_control` DAG to abort that deploy (roll back now, or end it where
it waits for a review), then follows the deploy to its end: a refused abort exits 4 with the reason.

A rollback (`--rollback --version 1.5.0`, or `--rollback-of <deployment run id>`) goes back to a version that
served the service before, all traffic at once; it exits like a deploy (0: the old version serves and verified).

Exit codes (CI fails the job on anything but 0):
    0  promoted (a rollback: back on the old version, verified), or a dry run that Airflow accepted
    2  rolled back, aborted by a person, or the analysis timed out (outcomes `rolled_back`, `aborted`, `timed_out`)
    3  blocked by a gate (lock, page alert, error budget, maintenance calendar) or a review not given in time
    4  invalid input: a bad option, Airflow rejected the request (bad params, unknown DAG or run, duplicate run id),
       or deploy_control refused the abort (unknown or finished run, a dry run, a rollback)
    5  rejected by a reviewer (outcome `rejected`)
    1  anything else: the run failed without an outcome, the client gave up after --timeout, Airflow was
       unreachable (after retrying until --timeout) or refused the credentials or the token
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

import requests

DEFAULT_DAG_ID = "game_service_deploy"
CONTROL_DAG_ID = "deploy_control"  # pause, resume, promote, abort a running deploy (dags/deploy_control.py)
CONTROL_TASK = "request"
STRATEGIES = ("canary", "blue-green", "rolling")
FINALIZE_TASK = "finalize"
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
# task instance states with something to read: started (running, or waiting deferred) or finished
STARTED_TI_STATES = frozenset({"running", "deferred", "awaiting_input", "up_for_reschedule", "up_for_retry",
                               "restarting", "success", "failed"})
FINISHED_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})

EXIT_PROMOTED = 0
EXIT_OTHER = 1
EXIT_ROLLED_BACK = 2
EXIT_BLOCKED = 3
EXIT_INVALID = 4
EXIT_REJECTED = 5

# The outcomes the DAG's finalize task reports; anything not listed here exits 1.
OUTCOME_EXIT_CODES = {
    "promoted": EXIT_PROMOTED,
    "dry_run": EXIT_PROMOTED,
    "rolled_back": EXIT_ROLLED_BACK,
    "aborted": EXIT_ROLLED_BACK,  # a person aborted it: rolled back
    "timed_out": EXIT_ROLLED_BACK,
    "blocked": EXIT_BLOCKED,
    "invalid": EXIT_INVALID,
    "rejected": EXIT_REJECTED,
    "failed": EXIT_OTHER,
}

PAGE_LIMIT = 100  # Airflow's default [api] maximum_page_limit: larger pages are cut to this anyway
MAX_BACKOFF_S = 30.0
REQUEST_TIMEOUT_S = 30.0
PROGRESS_RETRY_S = 30.0  # a progress read failing longer than this is skipped for this poll, not the follow
OUTCOME_RETRY_S = 60.0
# Airflow's default [scheduler] allowed_run_id_pattern is ^[A-Za-z0-9_.~:+-]+$; ":" and "/" are left out of the
# generated run id as well, so it can sit in a URL path unchanged.
_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.~+-]")
_STEP_KEY = re.compile(r"step-(\d+)")
# what deploy_control's refusals start with (gamesre.deploy.control.refusal): the field that makes it impossible
_REFUSAL = re.compile(r"\b(?:run_id|action|reason): .+")

EPILOG = """\
example:
  AIRFLOW_URL=https://airflow.example.org AIRFLOW_USERNAME=ci AIRFLOW_PASSWORD=*** \\
  python scripts/trigger_deploy.py --service game-server --version 1.4.2 \\
      --change-ticket CHG-1234 --strategy canary --stages staging,prod

  # reattach to a deploy that is running (e.g. after the CI job was cancelled)
  python scripts/trigger_deploy.py --follow ci__game-server__1.4.2__20261126T090005Z

  # abort it (rolled back now, or ended where it waits for a review), then follow it to its end
  AIRFLOW_TOKEN=eyJ... python scripts/trigger_deploy.py --abort ci__game-server__1.4.2__20261126T090005Z \\
      --reason "players report desyncs since the canary"

exit codes:
  0  promoted, or a dry run that Airflow accepted
  2  rolled back, aborted by a person, or the analysis timed out (outcomes rolled_back, aborted, timed_out)
  3  blocked by a gate (lock, page alert, error budget, maintenance calendar) or a review not given in time
  4  invalid input: a bad option, Airflow rejected the request (bad params, unknown DAG or run, duplicate run id),
     or deploy_control refused the abort (unknown or finished run, a dry run, a rollback)
  5  rejected by a reviewer (outcome rejected)
  1  anything else: the run failed without an outcome, the client gave up after --timeout,
     Airflow was unreachable (after retrying until --timeout) or refused the credentials or the token

Progress lines are "HH:MM:SS <text>" in UTC: each task state change ("rollout_prod: running"), each review as it
waits and when it is answered, each gate's result and each rollout step with its SLIs. With --json they go to
stderr and stdout carries only the final outcome as one JSON line. Ctrl-C or a cancelled CI job stops following,
not the run: it goes on in Airflow (--follow RUN_ID reattaches).
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
    """Airflow 3's public REST API (v2) with a JWT: fetched with the user's password and renewed once when Airflow
    answers 401, or given (`token`, minted elsewhere), then used as is: a 401 means the token was refused."""

    def __init__(self, base_url: str, username: str | None = None, password: str | None = None, *,
                 token: str | None = None, session: requests.Session | None = None,
                 request_timeout: float = REQUEST_TIMEOUT_S):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self._session = session or requests.Session()
        self._request_timeout = request_timeout
        self._given_token = bool(token)
        self._token: str | None = token or None

    def __repr__(self) -> str:
        return f"AirflowClient({self.base_url!r}, {self.identity})"

    @property
    def identity(self) -> str:
        """Who the requests are made as, for progress lines (never the secret)."""
        return "a given token" if self._given_token else f"user {self.username!r}"

    def authenticate(self) -> None:
        """Fetch a token with the password; nothing to do with a given token (it is never fetched or renewed)."""
        if self._given_token:
            return
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
                                         headers={"Authorization": f"Bearer {self._token}",
                                                  "Accept": "application/json"},
                                         timeout=self._request_timeout)
        except requests.RequestException as exc:
            raise AirflowUnreachable(self.base_url, exc) from exc
        if resp.status_code == 401 and self._given_token:  # not ours to renew
            raise AuthenticationFailed(f"the token was refused by Airflow at {self.base_url} (401 to {method} "
                                       f"{path}: {_response_detail(resp)}): mint a new one, it may have expired")
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

    def _paged(self, path: str, items_key: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every item of a paginated collection (`{items_key: [...], "total_entries": N}`)."""
        found: list[dict[str, Any]] = []
        while True:
            page = self._request("GET", path, params={**(params or {}), "limit": PAGE_LIMIT, "offset": len(found)})
            items = page.get(items_key, []) if isinstance(page, dict) else []
            found.extend(i for i in items if isinstance(i, dict))
            if not items or len(found) >= int(page.get("total_entries", 0)):
                return found

    @staticmethod
    def _run_path(dag_id: str, run_id: str) -> str:
        return f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"

    def _task_path(self, dag_id: str, run_id: str, task_id: str) -> str:
        return f"{self._run_path(dag_id, run_id)}/taskInstances/{quote(task_id, safe='')}"

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
        return self._paged(f"{self._run_path(dag_id, run_id)}/taskInstances", "task_instances")

    def hitl_details(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's human-in-the-loop requests (the reviews), answered or not."""
        return self._paged(f"{self._run_path(dag_id, run_id)}/hitlDetails", "hitl_details")

    def xcom_keys(self, dag_id: str, run_id: str, task_id: str) -> list[str]:
        entries = self._paged(f"{self._task_path(dag_id, run_id, task_id)}/xcomEntries", "xcom_entries")
        return [str(e["key"]) for e in entries if e.get("key") is not None]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str) -> dict[str, Any] | None:
        """The task's XCom `key` as a dict; None when there is none (404); OutcomeUnreadable when it is no dict."""
        path = f"{self._task_path(dag_id, run_id, task_id)}/xcomEntries/{quote(key, safe='')}"
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
            raise OutcomeUnreadable(f"the {task_id} task's {key} is not a dict: {str(raw)[:300]!r}")
        return value

    def task_result(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any] | None:
        """The task's `return_value` XCom as a dict; None when the task pushed none (404)."""
        return self.xcom(dag_id, run_id, task_id, "return_value")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[Any]:
        """The try's whole log: structured entries ({"event", "level", "error_detail", ...}) or plain lines."""
        page = self._request("GET", f"{self._task_path(dag_id, run_id, task_id)}/logs/{try_number}",
                             params={"full_content": "true"})
        content = page.get("content") if isinstance(page, dict) else None
        if isinstance(content, str):
            return content.splitlines()
        return list(content) if isinstance(content, list) else []


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


def _duration(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"


# --- what the deploy's tasks report, as a person follows it ------------------------------------------------------

def _user(user: Any) -> str:
    if isinstance(user, dict):
        return str(user.get("name") or user.get("id") or "?")
    return str(user or "?")


def _review_of(task_id: str, detail: dict[str, Any] | None) -> tuple[str, str]:
    """(review, stage) of an `approve_<stage>_<review>` task, else from the subject "Technical review: ... to prod"."""
    stage, _, review = task_id.removeprefix("approve_").rpartition("_")
    if stage and review:
        return review, stage
    match = re.match(r"(\w+) review: .* to (\S+)$", str((detail or {}).get("subject") or ""))
    return (match.group(1).lower(), match.group(2)) if match else (task_id, "its stage")


def review_lines(task_id: str, state: str | None, detail: dict[str, Any], shown: set[tuple[str, str]]) -> list[str]:
    """The review's news not printed yet (`shown` is updated): it waits, it was answered, or it ended unanswered."""
    review, stage = _review_of(task_id, detail)
    if detail.get("response_received"):
        event = "answered"
        chosen = ", ".join(str(o) for o in detail.get("chosen_options") or []) or "answered"
        reason = str((detail.get("params_input") or {}).get("reason") or "").strip()
        text = f"{review} review before {stage}: {chosen} by {_user(detail.get('responded_by_user'))}"
        text += f": {reason}" if reason else ""
    elif state in FINISHED_TI_STATES:
        event, text = "ended", f"{review} review before {stage}: not answered ({task_id} {state})"
    else:
        event = "waiting"
        who = ", ".join(_user(u) for u in detail.get("assigned_users") or []) or "its reviewers"
        text = f"waiting for the {review} review before {stage} from {who}"
    if (task_id, event) in shown:
        return []
    shown.add((task_id, event))
    return [text]


def gate_lines(stage: str, result: dict[str, Any]) -> list[str]:
    """One line per gate of `gates_<stage>`'s result ({"strictness", "gates": [{"gate", "passed", "reason"}],
    "approvals": [{"review", "reviewers"}]}), and the stage's reviews."""
    lines = [f"gate {g.get('gate')} before {stage}: {'passed' if g.get('passed') else 'BLOCKED'} - {g.get('reason')}"
             for g in result.get("gates") or [] if isinstance(g, dict)]
    strictness = result.get("strictness")
    if isinstance(strictness, int | float) and strictness != 1:
        lines.append(f"analysis strictness in {stage}: {strictness:g} (thresholds tightened)")
    reviews = [r for r in result.get("approvals") or [] if isinstance(r, dict)]
    if reviews:  # given before the gates; a dry run lists what a deploy would need
        lines.append(f"reviews of {stage}: " + ", ".join(f"{r.get('review')} ({r.get('reviewers')})" for r in reviews))
    return lines


def _counts(cohort: Any) -> str:
    """"bad/total bad (ratio)" of a cohort's counts, e.g. "2/7300 bad (0.027%)"."""
    if not isinstance(cohort, dict) or cohort.get("total") is None:
        return "no counts"
    try:
        total, bad = float(cohort["total"]), float(cohort.get("bad") or 0)
        ratio = cohort.get("ratio")
        ratio = float(ratio) if ratio is not None else (bad / total if total else 0.0)
    except (TypeError, ValueError):
        return "no counts"
    return f"{bad:g}/{total:g} bad ({ratio:.3%})"


def plan_lines(plan: dict[str, Any]) -> list[str]:
    steps = [str(s) for s in plan.get("steps") or []]
    first = plan.get("first") or 0
    line = f"{plan.get('stage')} rollout: {' → '.join(steps) or 'no steps'}"
    if isinstance(first, int) and 0 <= first < len(steps):
        line += f"; applied {steps[first]}"
    return [line]


def step_lines(step: dict[str, Any]) -> list[str]:
    """A decided rollout step: its decision and reason, each SLI's verdict and numbers, who decided, what is next."""
    stage, label, decision = step.get("stage"), step.get("label"), step.get("decision")
    reason = str(step.get("reason") or "")
    lines = [f"{stage} {label}: {decision}" + (f" - {reason}" if reason else "")]
    control = step.get("control")
    if isinstance(control, dict) and control:
        why = str(control.get("reason") or "")
        lines.append(f"  decided by {control.get('actor') or '?'} ({control.get('action') or '?'})"
                     + (f": {why}" if why else ""))
    for sli in step.get("slis") or []:
        if not isinstance(sli, dict):
            continue
        line = f"  {sli.get('slo')}: {sli.get('decision')}"
        new, old = _counts(sli.get("candidate")), _counts(sli.get("baseline"))
        if (new, old) != ("no counts", "no counts"):  # threshold SLIs are not counted per version
            line += f" - new version {new}, baseline {old}"
        lines.append(line + (f" - {sli['reason']}" if sli.get("reason") else ""))
    if step.get("next"):
        lines.append(f"  next: {step['next']}")
    elif decision == "pass":
        lines.append(f"  that was the last step in {stage}")
    return lines


def _step_order(key: str) -> tuple[int, int]:
    match = _STEP_KEY.fullmatch(key)
    return (1, int(match.group(1))) if match else (0, 0)


Retry = Callable[[Callable[[], Any]], Any]


def _once(call: Callable[[], T]) -> T:
    return call()


@dataclass
class ProgressReader:
    """Reads what the deploy's tasks report beyond their state: reviews (`approve_*`), gate results (`gates_*`) and
    rollout steps (`rollout_*`), each printed once. Only tasks that started are read; a task read after it finished
    is not read again. A missing XCom (404) is no news. A read that fails (its transient errors retried for up to
    PROGRESS_RETRY_S) is warned about once and tried again at each poll, without retries until it works again: it
    never stops the following."""

    client: AirflowClient
    dag_id: str
    run_id: str
    warn: Callable[[str], None]
    shown_reviews: set[tuple[str, str]] = field(default_factory=set)
    xcoms_read: dict[str, set[str]] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)  # tasks read after they finished: nothing more to come
    warned: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)  # reads that failed last time: one attempt per poll

    def read(self, tis: Iterable[dict[str, Any]], retry: Retry) -> dict[str, list[str]]:
        """New lines per task id, from the task instances of one poll."""
        states = {str(ti.get("task_id")): ti.get("state") for ti in tis if ti.get("map_index") in (None, -1)}
        for task_id, state in states.items():
            if state not in FINISHED_TI_STATES:
                self.done.discard(task_id)  # cleared and run again: it reports again
        active = {t: s for t, s in states.items() if s in STARTED_TI_STATES and t not in self.done}
        lines: dict[str, list[str]] = {}
        read_ok = dict.fromkeys(active, True)
        reviews = [t for t in active if t.startswith("approve_")]
        if reviews and not self._guarded("the reviews (hitlDetails)", partial(self._reviews, reviews, active, lines),
                                         retry):
            read_ok.update(dict.fromkeys(reviews, False))
        for task_id, state in active.items():
            if task_id.startswith("gates_") and state == "success":
                read_ok[task_id] = self._guarded(f"the results of {task_id}", partial(self._gates, task_id, lines),
                                                 retry)
            elif task_id.startswith("rollout_"):
                read_ok[task_id] = self._guarded(f"the steps of {task_id}", partial(self._steps, task_id, lines),
                                                 retry)
        self.done.update(t for t, ok in read_ok.items() if ok and active[t] in FINISHED_TI_STATES)
        return {t: ls for t, ls in lines.items() if ls}

    def _guarded(self, what: str, read: Callable[[Retry], bool], retry: Retry) -> bool:
        try:
            ok = read(_once if what in self.failing else retry)
        except AuthenticationFailed:
            raise  # the token is gone: following cannot go on either
        except AirflowError as exc:
            self.failing.add(what)
            message = f"warning: could not read {what} (the follow goes on): {exc}"
            if message not in self.warned:
                self.warned.add(message)
                self.warn(message)
            return False
        self.failing.discard(what)
        return ok

    def _reviews(self, task_ids: list[str], states: dict[str, Any], lines: dict[str, list[str]],
                 retry: Retry) -> bool:
        details = retry(lambda: self.client.hitl_details(self.dag_id, self.run_id))
        by_task = {}
        for detail in details:
            ti = detail.get("task_instance") or {}
            if ti.get("map_index") in (None, -1):
                by_task[str(ti.get("task_id"))] = detail
        for task_id in task_ids:
            if task_id in by_task:  # none: skipped, or the gates blocked before anybody was asked
                lines.setdefault(task_id, []).extend(
                    review_lines(task_id, states[task_id], by_task[task_id], self.shown_reviews))
        return True

    def _gates(self, task_id: str, lines: dict[str, list[str]], retry: Retry) -> bool:
        result = retry(lambda: self.client.xcom(self.dag_id, self.run_id, task_id, "return_value"))
        if result is not None:
            lines.setdefault(task_id, []).extend(gate_lines(task_id.removeprefix("gates_"), result))
        return True

    def _steps(self, task_id: str, lines: dict[str, list[str]], retry: Retry) -> bool:
        keys = retry(lambda: self.client.xcom_keys(self.dag_id, self.run_id, task_id))
        read = self.xcoms_read.setdefault(task_id, set())
        complete = True
        for key in sorted((k for k in keys if k not in read and (k == "plan" or _STEP_KEY.fullmatch(k))),
                          key=_step_order):
            try:
                value = retry(partial(self.client.xcom, self.dag_id, self.run_id, task_id, key))
            except OutcomeUnreadable as exc:
                read.add(key)  # it will not become readable
                self.warn(f"warning: {exc}")
                continue
            if value is None:  # listed, but not there (yet): the next poll
                complete = False
                continue
            read.add(key)
            lines.setdefault(task_id, []).extend(plan_lines(value) if key == "plan" else step_lines(value))
        return complete


def follow(client: AirflowClient, dag_id: str, run_id: str, *, timeout: float, poll: float,
           progress: Callable[[str], None], warn: Callable[[str], None],
           clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
           now: Callable[[], str] = _utc_clock, reader: ProgressReader | None = None,
           deadline: float | None = None, prefix: str = "") -> str:
    """Poll the run until it ends; print each task state change (and the `reader`'s news); return the final state.

    Raises FollowTimeout when the run has not ended by `deadline` (default: `timeout` seconds from now), and the
    last transient error when Airflow kept failing until then. A task's news is printed after its state change,
    or before it when the change ends the task ("rollout_prod: success" after its last step).
    """
    deadline = clock() + timeout if deadline is None else deadline
    end = deadline  # a name the closures can hold without mypy's Optional

    def retry(call: Callable[[], T]) -> T:
        return retrying(call, deadline=end, first_delay=poll, warn=warn, clock=clock, sleep=sleep)

    def retry_progress(call: Callable[[], T]) -> T:
        return retrying(call, deadline=min(end, clock() + PROGRESS_RETRY_S), first_delay=poll, warn=warn,
                        clock=clock, sleep=sleep)

    seen: dict[tuple[str, int], str | None] = {}
    run_state: str | None = None
    while True:
        run = retry(lambda: client.dag_run(dag_id, run_id))
        tis = retry(lambda: client.task_instances(dag_id, run_id))
        state = str(run.get("state") or "queued")
        ended = state in TERMINAL_RUN_STATES
        if state != run_state and not ended:
            progress(f"{now()} {prefix}dag run: {state}")
        changes = []
        changed_at: dict[str, str] = {}
        for ti in tis:
            map_index = ti.get("map_index")
            key = (str(ti.get("task_id")), -1 if map_index is None else int(map_index))
            changed_at.setdefault(key[0], _changed_at(ti))
            ti_state = ti.get("state")
            if seen.get(key) == ti_state or (key not in seen and ti_state is None):
                continue  # a task that has not started yet is no news
            seen[key] = ti_state
            changes.append((_changed_at(ti), key, ti_state))
        news = reader.read(tis, retry_progress) if reader is not None else {}
        entries: list[tuple[str, list[str]]] = []
        for at, (task_id, map_index), ti_state in changes:
            line = f"{task_id if map_index < 0 else f'{task_id}[{map_index}]'}: {ti_state or 'none'}"
            extra = news.pop(task_id, []) if map_index < 0 else []
            entries.append((at, [*extra, line] if ti_state in FINISHED_TI_STATES else [line, *extra]))
        entries += [(changed_at.get(task_id, ""), extra) for task_id, extra in news.items()]
        # in the order they happened; Airflow's own order where it gives no time (sorted() is stable)
        for _, lines in sorted(entries, key=lambda e: e[0]):
            for text in lines:
                progress(f"{now()} {prefix}{text}")
        if state != run_state and ended:  # after the last tasks' lines, as it happened
            progress(f"{now()} {prefix}dag run: {state}")
        run_state = state
        if ended:
            return state
        remaining = deadline - clock()
        if remaining <= 0:
            raise FollowTimeout(timeout, state)
        sleep(min(poll, remaining))


@dataclass(frozen=True)
class DeployResult:
    # the DAG's outcome, or the client's: unreachable, auth_failed, client_timeout, no_outcome, abort_refused, error
    outcome: str
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


def _stamp(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def default_run_id(service: str, version: str, at: datetime | None = None) -> str:
    """ci__<service>__<version>__<UTC timestamp>, with characters a run id or a URL path cannot hold replaced."""
    return "__".join(("ci", _RUN_ID_UNSAFE.sub("-", service), _RUN_ID_UNSAFE.sub("-", version), _stamp(at)))


def control_run_id(run_id: str, at: datetime | None = None) -> str:
    """abort__<deploy run id>__<UTC timestamp>: the client's own id, so a retried trigger cannot ask twice."""
    return f"abort__{_RUN_ID_UNSAFE.sub('-', run_id)[:200]}__{_stamp(at)}"


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
    conn.add_argument("--token", default=env.get("AIRFLOW_TOKEN") or None,
                      help="a JWT for Airflow's API minted elsewhere, used instead of --username and --password "
                           "(none is fetched, and it is not renewed: a refused token exits 1) (default: "
                           "$AIRFLOW_TOKEN; prefer the variable)")
    conn.add_argument("--dag-id", default=DEFAULT_DAG_ID, help="default: %(default)s")

    req = p.add_argument_group("the deploy request (the run's conf)")
    req.add_argument("--service", help="the service to deploy, as named in services.yaml (required to deploy)")
    req.add_argument("--version", help="the image tag to ship, e.g. 1.4.2 (required to deploy, except with "
                                       "--rollback-of)")
    req.add_argument("--rollback", action="store_true",
                     help="a rollback to --version, a version that served the service before: all traffic at once, "
                          "gated only by the deploy lock and the backend's health")
    req.add_argument("--rollback-of", metavar="DEPLOYMENT",
                     help="a rollback of this deployment (its run id) to the version it replaced; implies --rollback")
    req.add_argument("--strategy", choices=STRATEGIES, help="default: the service's own strategy")
    req.add_argument("--stages", help="comma-separated stages, e.g. staging,prod (default: all of the service's)")
    req.add_argument("--canary-steps", help="comma-separated canary weights in percent ending at 100, e.g. 25,50,100 "
                                            "(default: include/config/deploy.yaml's)")
    req.add_argument("--change-ticket", help="the approved change, e.g. CHG-1234 (required to deploy)")
    req.add_argument("--requested-by", default=env.get("GITHUB_ACTOR") or _os_user(),
                     help="who asks for the deploy (default: $GITHUB_ACTOR, else the OS user: %(default)s)")
    req.add_argument("--dry-run", action="store_true", help="run the gates and the plan, change nothing")
    req.add_argument("--force", action="store_true", help="bypass the error-budget freeze (needs --force-reason)")
    req.add_argument("--force-reason", help="why the freeze may be bypassed; required with --force")

    run = p.add_argument_group("following the run")
    run.add_argument("--run-id", help="default: ci__<service>__<version>__<UTC timestamp>")
    existing = run.add_mutually_exclusive_group()
    existing.add_argument("--follow", metavar="RUN_ID",
                          help="trigger nothing: reattach to this running deploy and follow it to its end")
    existing.add_argument("--abort", metavar="RUN_ID",
                          help=f"abort this running deploy through the {CONTROL_DAG_ID} DAG (rolled back now, or ended "
                               "where it waits for a review; needs --reason), then follow it to its end; a refused "
                               "abort exits 4 with the reason")
    run.add_argument("--reason", help="with --abort: why (recorded with the token's or user's name and posted to the "
                                      "service's channel)")
    run.add_argument("--timeout", type=float, default=3600.0,
                     help="seconds to follow the run before giving up (exit 1; the run goes on), Airflow's outages "
                          "retried within it included; default %(default)g")
    run.add_argument("--poll", type=float, default=5.0, help="seconds between polls; default %(default)g")
    run.add_argument("--json", action="store_true",
                     help="print the final outcome as one JSON line on stdout (progress goes to stderr)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, checked as far as possible without Airflow; UsageError says what is wrong."""
    args = build_parser().parse_args(argv)
    attach = args.follow or args.abort
    required = [("--airflow-url (or $AIRFLOW_URL)", args.airflow_url)]
    if not args.token:
        required += [("--username (or $AIRFLOW_USERNAME)", args.username),
                     ("--password (or $AIRFLOW_PASSWORD)", args.password)]
    if not attach:  # a new deploy: the request
        required += [("--service", args.service), ("--version (or --rollback-of)", args.version or args.rollback_of),
                     ("--change-ticket", args.change_ticket),
                     ("--requested-by (or $GITHUB_ACTOR)", args.requested_by)]
    missing = [opt for opt, value in required if not value]
    if missing:
        hint = "" if args.token or (args.username and args.password) else \
            " (or --token / $AIRFLOW_TOKEN instead of --username and --password)"
        raise UsageError(f"missing {', '.join(missing)}{hint}")
    if not re.match(r"^https?://[^/]", args.airflow_url):
        raise UsageError(f"--airflow-url {args.airflow_url!r} is not an http(s) URL like http://127.0.0.1:8080")
    if args.timeout <= 0 or args.poll <= 0:
        raise UsageError("--timeout and --poll must be positive numbers of seconds")
    if attach and args.run_id:
        raise UsageError(f"--run-id goes with a new deploy: --{'follow' if args.follow else 'abort'} takes the run id")
    if args.reason is not None and not args.abort:
        raise UsageError("--reason goes with --abort RUN_ID (a forced deploy takes --force-reason)")
    if args.abort and not (args.reason or "").strip():
        raise UsageError("--abort needs --reason: say why (it is recorded and posted to the service's channel)")
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


def refusal_from_log(content: Iterable[Any]) -> str | None:
    """Why deploy_control's task failed, from its log: the exception's message ("run_id: this deploy has ended
    ..."), found in a structured entry's `error_detail` or in a plain line; None if the log does not say."""
    errors: list[str] = []
    lines: list[str] = []
    for entry in content:
        if isinstance(entry, dict):
            for error in entry.get("error_detail") or []:
                if isinstance(error, dict) and error.get("exc_value"):
                    errors.append(str(error["exc_value"]).strip())
            lines.append(str(entry.get("event") or ""))
        else:
            lines.extend(str(entry).splitlines())
    for text in [*errors, *reversed(lines)]:  # the exception first, else the last line that looks like one
        match = _REFUSAL.search(text)
        if match:
            return match.group(0).strip()
    return errors[0] if errors else None


@dataclass
class _Driver:
    """One invocation's dealings with Airflow: retries within --timeout, mapping every failure to a DeployResult."""

    client: AirflowClient
    timeout: float
    poll: float
    progress: Callable[[str], None]
    warn: Callable[[str], None]
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    started: float = field(init=False)
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()
        self.deadline = self.started + self.timeout

    def retry(self, call: Callable[[], T], *, deadline: float | None = None) -> T:
        return retrying(call, deadline=self.deadline if deadline is None else deadline, first_delay=self.poll,
                        warn=self.warn, clock=self.clock, sleep=self.sleep)

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> bool:
        """Trigger the run, retrying outages; True when an attempt whose answer was lost (a 5xx, a dropped
        connection) had created it, found by the retry's 409 for the client's own run id."""
        attempts = 0

        def post() -> bool:
            nonlocal attempts
            attempts += 1
            try:
                self.client.trigger(dag_id, run_id, conf)
                return False
            except AirflowRejected as exc:
                if exc.status != 409 or attempts == 1:
                    raise
                try:
                    existing = self.client.dag_run(dag_id, run_id)
                except AirflowRejected:
                    raise exc from None
                if existing.get("conf") not in (None, conf):  # somebody else's run with this id
                    raise exc from None
                return True

        return self.retry(post)

    def setup_failure(self, exc: AirflowError, run_id: str, what: str) -> DeployResult:
        """Authenticating or triggering failed: refused (4xx), or Airflow stayed unreachable until the deadline."""
        if isinstance(exc, AuthenticationFailed):
            return DeployResult("auth_failed", str(exc), EXIT_OTHER, run_id)
        if isinstance(exc, AirflowRejected):
            return DeployResult("invalid", f"Airflow rejected {what} ({exc.status}): {exc.detail}", EXIT_INVALID,
                                run_id)
        if isinstance(exc, TransientAirflowError):
            return DeployResult("unreachable", f"{exc} (gave up after retrying for "
                                               f"{_duration(self.clock() - self.started)})", EXIT_OTHER, run_id)
        return DeployResult("error", str(exc), EXIT_OTHER, run_id)

    def follow_failure(self, exc: AirflowError, run_id: str, url: str, what: str = "") -> DeployResult:
        if isinstance(exc, FollowTimeout):
            return DeployResult("client_timeout", f"{what}{exc}", EXIT_OTHER, run_id, exc.state, url)
        if isinstance(exc, AuthenticationFailed):
            return DeployResult("auth_failed", f"{what}{exc}", EXIT_OTHER, run_id, None, url)
        if isinstance(exc, TransientAirflowError):
            return DeployResult("unreachable", f"{what}gave up following after {self.timeout:g}s: {exc}", EXIT_OTHER,
                                run_id, None, url)
        return DeployResult("error", f"{what}{exc}", EXIT_OTHER, run_id, None, url)

    def outcome(self, dag_id: str, run_id: str) -> DeployResult:
        """Follow the deploy run to its end, printing its progress, and read the outcome finalize returned."""
        url = ui_url(self.client.base_url, dag_id, run_id)
        reader = ProgressReader(self.client, dag_id, run_id, self.warn)
        try:
            state = follow(self.client, dag_id, run_id, timeout=self.timeout, poll=self.poll, progress=self.progress,
                           warn=self.warn, clock=self.clock, sleep=self.sleep, reader=reader, deadline=self.deadline)
        except AirflowError as exc:
            return self.follow_failure(exc, run_id, url)
        try:
            # the run has ended, so the result is there: allow a minute of retries even if --timeout is spent
            value = self.retry(lambda: self.client.task_result(dag_id, run_id, FINALIZE_TASK),
                               deadline=self.clock() + OUTCOME_RETRY_S)
        except AirflowError as exc:
            return DeployResult("no_outcome", f"the run ended {state}, but its outcome could not be read: {exc}",
                                EXIT_OTHER, run_id, state, url)
        if value is None or not value.get("outcome"):
            return DeployResult("no_outcome", f"the run ended {state} without an outcome from task {FINALIZE_TASK}",
                                EXIT_OTHER, run_id, state, url, value or {})
        outcome = str(value["outcome"])
        return DeployResult(outcome, str(value.get("reason") or ""), OUTCOME_EXIT_CODES.get(outcome, EXIT_OTHER),
                            run_id, state, url, value)

    def refusal(self, control_id: str) -> str | None:
        """Why the control run failed, from its task's log; None when that cannot be read."""
        deadline = self.clock() + OUTCOME_RETRY_S
        try:
            tis = self.retry(lambda: self.client.task_instances(CONTROL_DAG_ID, control_id), deadline=deadline)
            ti = next((t for t in tis if t.get("task_id") == CONTROL_TASK), {})
            try_number = max(int(ti.get("try_number") or 1), 1)
            content = self.retry(lambda: self.client.task_log(CONTROL_DAG_ID, control_id, CONTROL_TASK, try_number),
                                 deadline=deadline)
        except (AirflowError, TypeError, ValueError) as exc:
            self.warn(f"warning: could not read why {CONTROL_DAG_ID} refused the abort: {exc}")
            return None
        return refusal_from_log(content)


def deploy(client: AirflowClient, dag_id: str, run_id: str, conf: dict[str, Any], *, timeout: float, poll: float,
           progress: Callable[[str], None], warn: Callable[[str], None],
           clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> DeployResult:
    """Trigger, follow and read the outcome; every way this can end is a DeployResult with its exit code."""
    driver = _Driver(client, timeout, poll, progress, warn, clock, sleep)
    url = ui_url(client.base_url, dag_id, run_id)
    try:
        driver.retry(client.authenticate)
        if driver.retry(lambda: client.dag(dag_id)).get("is_paused"):
            # not unpaused from here: a paused deploy DAG may be an operator's freeze
            warn(f"warning: {dag_id} is paused in Airflow; the run waits in 'queued' until someone unpauses it")
        recovered = driver.trigger(dag_id, run_id, conf)
    except AirflowError as exc:
        return driver.setup_failure(exc, run_id, "the run")
    if recovered:
        progress(f"{_utc_clock()} triggered {dag_id} run {run_id} (Airflow lost its answer to an earlier attempt, "
                 f"which created the run): {url}")
    else:
        progress(f"{_utc_clock()} triggered {dag_id} run {run_id}: {url}")
    return driver.outcome(dag_id, run_id)


def attach(client: AirflowClient, dag_id: str, run_id: str, *, timeout: float, poll: float,
           progress: Callable[[str], None], warn: Callable[[str], None],
           clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> DeployResult:
    """--follow: nothing triggered; follow an existing run to its end (its history first) and read the outcome."""
    driver = _Driver(client, timeout, poll, progress, warn, clock, sleep)
    try:
        driver.retry(client.authenticate)
        run = driver.retry(lambda: client.dag_run(dag_id, run_id))
    except AirflowError as exc:
        return driver.setup_failure(exc, run_id, "the run to follow")
    progress(f"{_utc_clock()} following {dag_id} run {run_id}, {run.get('state') or 'queued'}: "
             f"{ui_url(client.base_url, dag_id, run_id)}")
    return driver.outcome(dag_id, run_id)


def abort(client: AirflowClient, dag_id: str, run_id: str, reason: str, *, timeout: float, poll: float,
          progress: Callable[[str], None], warn: Callable[[str], None],
          clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
          at: datetime | None = None) -> DeployResult:
    """--abort: a deploy_control run asks to abort the deploy `run_id`. Refused (the control run failed): exit 4
    with the reason from its task's log. Accepted: the deploy is followed to its end, and exits with its outcome."""
    driver = _Driver(client, timeout, poll, progress, warn, clock, sleep)
    control_id = control_run_id(run_id, at)
    control_url = ui_url(client.base_url, CONTROL_DAG_ID, control_id)
    conf = {"run_id": run_id, "action": "abort", "reason": reason.strip()}
    try:
        driver.retry(client.authenticate)
        if driver.retry(lambda: client.dag(CONTROL_DAG_ID)).get("is_paused"):
            warn(f"warning: {CONTROL_DAG_ID} is paused in Airflow; the abort waits in 'queued' until someone "
                 "unpauses it")
        driver.trigger(CONTROL_DAG_ID, control_id, conf)
    except AirflowError as exc:
        return driver.setup_failure(exc, run_id, "the abort request")
    progress(f"{_utc_clock()} asked {CONTROL_DAG_ID} to abort {dag_id} run {run_id}: {control_url}")
    try:
        state = follow(client, CONTROL_DAG_ID, control_id, timeout=timeout, poll=poll, progress=progress, warn=warn,
                       clock=clock, sleep=sleep, deadline=driver.deadline, prefix=f"{CONTROL_DAG_ID} ")
    except AirflowError as exc:
        return driver.follow_failure(exc, run_id, control_url, f"the abort request {control_id}: ")
    if state != "success":
        why = driver.refusal(control_id)
        text = f"the abort was refused: {why}" if why else \
            f"the abort was refused; the reason is in the log of {CONTROL_DAG_ID}'s {CONTROL_TASK} task"
        return DeployResult("abort_refused", text, EXIT_INVALID, run_id, state, control_url,
                            {"control_run_id": control_id})
    progress(f"{_utc_clock()} abort accepted: following {dag_id} run {run_id} to its end")
    return driver.outcome(dag_id, run_id)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _stdout(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None, *, clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
        conf = {} if args.follow or args.abort else build_conf(args)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except UsageError as exc:
        _stderr(f"trigger_deploy.py: error: {exc} (see --help)")
        if "--json" in argv:
            _stdout(DeployResult("invalid", str(exc), EXIT_INVALID).to_json(DEFAULT_DAG_ID))
        return EXIT_INVALID

    progress = _stderr if args.json else _stdout
    client = AirflowClient(args.airflow_url, args.username, args.password, token=args.token)
    common: dict[str, Any] = {"timeout": args.timeout, "poll": args.poll, "progress": progress, "warn": _stderr,
                              "clock": clock, "sleep": sleep}
    if args.abort:
        run_id = args.abort
        progress(f"{_utc_clock()} aborting {args.dag_id} run {run_id} via {client.base_url} as {client.identity}: "
                 f"{args.reason.strip()}")
    elif args.follow:
        run_id = args.follow
        progress(f"{_utc_clock()} reattaching via {client.base_url} as {client.identity}")
    else:
        run_id = args.run_id or default_run_id(args.service, args.version or f"rollback-of-{args.rollback_of}")
        shown = {k: v for k, v in conf.items() if v not in (None, "", False)}
        progress(f"{_utc_clock()} deploying via {client.base_url} as {client.identity}: {json.dumps(shown)}")
    try:
        if args.abort:
            result = abort(client, args.dag_id, run_id, args.reason, **common)
        elif args.follow:
            result = attach(client, args.dag_id, run_id, **common)
        else:
            result = deploy(client, args.dag_id, run_id, conf, **common)
    except KeyboardInterrupt:
        _stderr(f"interrupted: stopped following; the run goes on in Airflow (--follow {run_id} reattaches): "
                f"{ui_url(client.base_url, args.dag_id, run_id)}")
        return EXIT_OTHER
    progress(result.summary())
    if args.json:
        _stdout(result.to_json(args.dag_id))
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
