"""Every panel query of every generated dashboard returns data from the demo's Prometheus (issue 8's acceptance test).

The real demo stack runs without Airflow (`python -m demo.run --no-airflow --history-days 1`) in a copy of the
repository, so its run folder (.demo/) and ports never touch a stack someone is running from the checkout: a
day of backfilled history plus live scrapes of the fleet, HAProxy, node-exporter and the Kubernetes stand-in,
with every rule file of include/prometheus/ loaded. Each target of each committed dashboard JSON is executed
the way Grafana would: template variables at their default, All (their `allValue`, `.*`); `$__range` the
panel's relative time or else the dashboard's range; `$__interval` and `$__rate_interval` computed as Grafana
does for the provisioned datasource's 30 s interval; range targets as a range query over that time range,
instant targets as an instant query now. Every variable's own `label_values()` query must find values too.

Rules evaluated once a minute (the timeslice SLOs) first run up to a minute after Prometheus starts, so empty
queries are retried until a deadline; the failure names every dashboard, panel and query still empty.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from demo.procs import free_port, port_in_use

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "include" / "grafana" / "dashboards"
SCRAPE_INTERVAL_S = 30  # the provisioned datasource's timeInterval (Grafana's floor for $__interval)
MAX_DATA_POINTS = 600  # about the pixel width of a half-width panel: Grafana's interval = range / width
START_TIMEOUT_S = 120
# After "up", how long empty queries are retried. The timeslice SLOs' rules (slo:timeslice_error:ratio1m and the
# burn rates over it) run in 1-minute groups, and their first useful evaluation needs a whole minute of live
# samples (the live counters restart below the backfilled history, so the minute straddling the boundary has no
# events): between 60 and 120 s after start.
DATA_DEADLINE_S = 130
SEOUL = ZoneInfo("Asia/Seoul")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: str
    expr: str  # as written in the dashboard
    instant: bool
    range_s: int

    def where(self) -> str:
        return f"{self.dashboard} / {self.panel!r}: {self.expr}"


# --- Grafana's variable substitution ------------------------------------------------------------------------


def duration_s(text: str) -> int:
    match = re.fullmatch(r"(?:now-)?(\d+)([smhdw])", text)
    if not match:
        raise ValueError(f"not a relative duration: {text!r}")
    return int(match.group(1)) * UNITS[match.group(2)]


def relative_range_s(text: str, now: float) -> int:
    """Seconds covered by a relative time: 'now-6h', '30d', or 'now/M' (this month so far, in Asia/Seoul)."""
    if text == "now/M":
        local = datetime.fromtimestamp(now, SEOUL)
        return max(60, int(now - local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()))
    return duration_s(text)


def intervals(range_s: int) -> tuple[int, int]:
    """($__interval, $__rate_interval) in seconds as Grafana computes them for this range."""
    interval = max(SCRAPE_INTERVAL_S, math.ceil(range_s / MAX_DATA_POINTS))
    return interval, max(interval + SCRAPE_INTERVAL_S, 4 * SCRAPE_INTERVAL_S)


def substitute(expr: str, range_s: int, variables: dict[str, str]) -> str:
    interval, rate_interval = intervals(range_s)
    out = (expr.replace("$__rate_interval", f"{rate_interval}s").replace("$__interval", f"{interval}s")
           .replace("$__range", f"{range_s}s"))
    for name, value in sorted(variables.items(), key=lambda kv: -len(kv[0])):
        out = out.replace(f"${{{name}}}", value).replace(f"${name}", value)
    leftover = re.findall(r"\$\{?\w+", out)
    assert not leftover, f"unsubstituted variables {leftover} in {expr}"
    return out


def all_values(board: dict) -> dict[str, str]:
    """Each query variable at its default, All: its allValue (the generator always sets `.*`)."""
    values = {}
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            assert var.get("includeAll") and var.get("allValue"), f"{board['uid']}: variable {var['name']} has no All"
            values[var["name"]] = var["allValue"]
    return values


def targets(board: dict, now: float) -> Iterator[Target]:
    board_range = relative_range_s(board["time"]["from"], now)
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        range_s = relative_range_s(panel["timeFrom"], now) if panel.get("timeFrom") else board_range
        for target in panel["targets"]:
            yield Target(board["uid"], panel["title"], target["expr"], bool(target.get("instant")), range_s)


def load_boards() -> list[dict]:
    boards = [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]
    assert len(boards) == 4, f"expected the four generated dashboards in {DASHBOARDS}"
    return boards


# --- the demo stack -----------------------------------------------------------------------------------------


def consecutive_free_ports(count: int) -> int:
    for _ in range(100):
        base = free_port()
        if all(not port_in_use(base + i) for i in range(1, count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports")


def demo_ports() -> dict[str, str]:
    """A free port for every port the demo has (demo/run.py PORTS), the fleet's consecutive block included."""
    from demo.run import PORTS
    from demo.topology import DEFAULT_TOPOLOGY

    fleet_base = consecutive_free_ports(len(DEFAULT_TOPOLOGY))
    fleet = range(fleet_base, fleet_base + len(DEFAULT_TOPOLOGY))
    env = {}
    for key, (variable, _default) in PORTS.items():
        port = fleet_base if key == "fleet_base" else free_port()
        while key != "fleet_base" and port in fleet:
            port = free_port()
        env[variable] = str(port)
    return env


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    log: Path
    prometheus: str
    up_at: float

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for binary in ("prometheus", "promtool", "prometheus-alertmanager", "amtool", "haproxy",
                   "prometheus-node-exporter"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed")
    root = tmp_path_factory.mktemp("demo") / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("demo", "plugins", "include"):
        shutil.copytree(REPO / folder, root / folder, ignore=ignore)
    env = {**os.environ, **demo_ports(), "GAMESRE_REPO": str(root), "PYTHONUNBUFFERED": "1"}
    env.pop("GAMESRE_CONFIG_DIR", None)
    log = root / "demo.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "demo.run", "--no-airflow", "--history-days", "1"],
                                   cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    stack = Stack(process, log, f"http://127.0.0.1:{env['GAMESRE_PROMETHEUS_PORT']}", 0.0)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while " up in " not in log.read_text(errors="replace"):
            if process.poll() is not None:
                pytest.fail(f"the demo stack exited with {process.returncode}:\n{stack.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the demo stack was not up within {START_TIMEOUT_S} s:\n{stack.log_tail()}")
            time.sleep(0.5)
        stack.up_at = time.monotonic()
        yield stack
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT, as Ctrl-C: the demo stops every process it started. SIGTERM (also a clean stop) when SIGINT is
    ignored (a shell's background job inherits that); the whole session is killed only if the demo hangs."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # our own session (start_new_session): only what we started
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def api(base: str, path: str, params: dict[str, str | float]) -> list[dict]:
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", f"{path} {params}: {body}"
    data = body["data"]
    return data["result"] if isinstance(data, dict) else data


def run(base: str, target: Target, variables: dict[str, str], now: float) -> int:
    """Series returned by one target; a PromQL error fails at once, naming the target."""
    expr = substitute(target.expr, target.range_s, variables)
    interval, _ = intervals(target.range_s)
    try:
        if target.instant:
            return len(api(base, "query", {"query": expr, "time": now}))
        return len(api(base, "query_range", {"query": expr, "start": now - target.range_s, "end": now,
                                             "step": interval}))
    except urllib.error.HTTPError as exc:
        pytest.fail(f"{target.where()}\n  Prometheus refused {expr}: {exc.read().decode(errors='replace')}")


# --- the test -----------------------------------------------------------------------------------------------


def test_every_dashboard_variable_and_panel_query_returns_data(demo_stack: Stack) -> None:
    boards = load_boards()
    pending: list[tuple[Target, dict[str, str]]] = []
    for board in boards:
        variables = all_values(board)
        pending += [(t, variables) for t in targets(board, time.time())]
    assert len(pending) > 50, "suspiciously few panel queries"
    variable_queries = [(b["uid"], v) for b in boards for v in b["templating"]["list"] if v["type"] == "query"]

    deadline = demo_stack.up_at + DATA_DEADLINE_S
    time.sleep(5)  # a scrape or two first: rate() needs two samples of the live-only series
    empty_variables: list[str] = []
    while True:
        now = time.time()
        still = [(t, v) for t, v in pending if run(demo_stack.prometheus, t, v, now) == 0]
        empty_variables = []
        for uid, var in variable_queries:
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", query)
            assert match, f"{uid}: variable {var['name']}: not a label_values() query: {query}"
            series = substitute(match.group(1), 3600, all_values(next(b for b in boards if b["uid"] == uid)))
            values = {s.get(match.group(2)) for s in api(demo_stack.prometheus, "series",
                                                        {"match[]": series, "start": now - 3600, "end": now})}
            if not values - {None}:
                empty_variables.append(f"{uid}: variable {var['name']}: {query}")
        pending = still
        if not pending and not empty_variables:
            print(f"every query returned data {time.monotonic() - demo_stack.up_at:.0f} s after the stack was up")
            break
        if time.monotonic() > deadline:
            break
        time.sleep(5)
    problems = [f"no data: {t.where()}" for t, _ in pending] + [f"no values: {v}" for v in empty_variables]
    assert not problems, (f"{len(problems)} dashboard queries returned nothing from the demo Prometheus "
                          f"({demo_stack.prometheus}):\n" + "\n".join(problems))
