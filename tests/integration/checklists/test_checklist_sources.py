"""The checklists on real data: every input fetched by fetch_inputs, every item's evidence checked by numbers.

The world of this module:
- the demo's backfilled history in a real Prometheus (the session fixture `history_prometheus`), ingested
  into a SQLite SRE store with gamesre.slo.ingest, as the slo_ingest DAG does;
- a second real Prometheus as the checklists meet one in production: the project's alerting rules loaded
  (include/prometheus/slo_rules.yml), scrape targets of its own (one of them down), a firing history of
  ALERTS planted as TSDB blocks, and the demo's history read through `remote_read`. OpenMetrics cannot
  carry staleness markers, so the planted firings end by a 1-minute lookback instead (`--query.lookback-
  delta=1m`): a firing is visible at the minute steps from its start to its last minute, as a real rule
  evaluation's staleness marker makes it;
- a real Alertmanager holding three alerts, one of them silenced;
- maintenance-window, policy-state, deployment and game-day rows this module writes to the store.

The daily, weekly and monthly checklists run at instants chosen inside the history (the daily one at 09:00
KST, the weekly and monthly ones at the period that overlaps the history most), and each item's evidence is
compared with numbers computed here on their own: SLIs from Prometheus counters or from ledger rows summed
here, alert firings from the planted list, targets from the configuration, gaps from raw samples, DORA and
chaos figures from the rows written, versions from the binaries.
"""
from __future__ import annotations

import importlib.metadata
import math
import re
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import sqlalchemy as sa
import yaml

from demo.procs import ManagedProcess, ProcessGroup, check_config, free_port, http_ok, require_binary
from demo.services import render_alertmanager_config, start_alertmanager
from gamesre.checklists import (
    InputData,
    ItemResult,
    Unavailable,
    default_registry,
    fetch_plan,
    load_checklists,
    run_checklist,
)
from gamesre.checklists.inputs import INPUTS, shape_problem
from gamesre.checklists.periods import Period, checklist_period, kst_month, kst_week, months_before
from gamesre.core.paths import PROMETHEUS_DIR, REPO_ROOT
from gamesre.core.time import iso
from gamesre.integrations.alertmanager import AlertmanagerClient
from gamesre.integrations.checklist_sources import MAX_POINTS, fetch_inputs, needs
from gamesre.integrations.prometheus import PrometheusClient
from gamesre.integrations.store import SREStore, policy_state_history
from gamesre.slo.ingest import ingest_all
from gamesre.slo.policy import BLOCKING_STATES, severity_rank
from gamesre.slo.spec import RatioSli, Slo, load_slos
from gamesre.slo.windows import window_bounds

pytestmark = pytest.mark.integration

MINUTE, HOUR, DAY, WEEK = 60, 3600, 86_400, 604_800
STEP = 60  # the ALERTS range query's step (SourceConfig.alert_step)
STALE_AFTER = 2 * HOUR  # policies.yaml state.stale_after
RULES_FILE = PROMETHEUS_DIR / "slo_rules.yml"
CADENCES = ("daily", "weekly", "monthly")


def dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def by_id(results: Iterable[ItemResult]) -> dict[str, ItemResult]:
    return {r.item_id: r for r in results}


@lru_cache(maxsize=1)
def rules_by_key() -> dict[tuple[str, str], dict[str, str]]:
    """(alertname, slo) -> the rule's static labels, straight from the generated rules file (read once)."""
    doc = yaml.safe_load(RULES_FILE.read_text())
    return {(r["alert"], r["labels"]["slo"]): dict(r["labels"]) for g in doc["groups"] for r in g["rules"]
            if "alert" in r}


def series_key(alertname: str, labels: Mapping[str, str]) -> str:
    return alertname + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


# --- the planted history of ALERTS --------------------------------------------------------------------------


@dataclass(frozen=True)
class Firing:
    """A planted firing of one alerting rule over [start, end) (whole minutes): seen at the minute steps
    start, start + 60 ... end - 60 of a range query."""

    alertname: str
    slo: str
    start: int
    end: int

    @property
    def labels(self) -> dict[str, str]:
        return dict(rules_by_key()[(self.alertname, self.slo)])

    @property
    def series(self) -> str:
        return series_key(self.alertname, self.labels)

    def samples(self) -> list[int]:
        # One sample every 15 s, 5 s off the minute grid so that an open or a closed lookback window agree:
        # the first is seen at `start`, the last (at end - 65) until end - 60 and no later.
        return list(range(self.start - 5, self.end - 64, 15))


def openmetrics(firings: Iterable[Firing]) -> str:
    lines = ["# HELP ALERTS planted firings", "# TYPE ALERTS gauge"]
    by_series: dict[str, list[tuple[int, dict[str, str], str]]] = {}
    for f in firings:
        by_series.setdefault(f.series, []).extend((t, f.labels, f.alertname) for t in f.samples())
    for series in sorted(by_series):
        for t, labels, name in sorted(by_series[series], key=lambda x: x[0]):
            pairs = {"alertname": name, "alertstate": "firing", **labels}
            text = ",".join(f'{k}="{v}"' for k, v in pairs.items())
            lines.append(f"ALERTS{{{text}}} 1 {t}")
    return "\n".join([*lines, "# EOF", ""])


# --- the world ----------------------------------------------------------------------------------------------


@dataclass
class World:
    history_url: str
    history_start: int
    history_end: int
    prometheus_url: str
    alertmanager_url: str
    dead_port: int
    store: SREStore
    at: dict[str, int]
    maintenance: tuple[int, int]
    firings: list[Firing]
    am_alerts: list[dict[str, Any]]
    deploys: list[dict[str, Any]]
    chaos: list[dict[str, Any]]
    states: list[tuple[str, str, str, int]]  # scope, name, state, computed_at
    plans: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    inputs: dict[str, dict[str, InputData | Unavailable]] = field(default_factory=dict)
    results: dict[str, dict[str, ItemResult]] = field(default_factory=dict)

    def period(self, cadence: str) -> Period:
        return checklist_period(cadence, self.at[cadence])

    def ledger(self, slo: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = self.store.ledger(slo)
        return rows.minutes, rows.good, rows.total

    def counter(self, selectors: Iterable[Any], at: int) -> float:
        """The sum of the SLI's counters at `at`, straight from the history Prometheus."""
        total = 0.0
        for selector in selectors:
            doc = requests.get(f"{self.history_url}/api/v1/query",
                               params={"query": f"sum({selector.promql()})", "time": str(at)}, timeout=30).json()
            (result,) = doc["data"]["result"]
            total += float(result["value"][1])
        return total


def choose_instants(first: int, end: int) -> dict[str, int]:
    """Run instants whose periods lie in the history [first, end) as far as the calendar allows."""
    at_daily = end - end % DAY  # 09:00 KST is 00:00 UTC: yesterday (KST) lies 9 to 33 hours before it
    monday = kst_week(end).start
    overlap_before = min(monday, end) - max(monday - 7 * DAY, first)
    overlap_after = end - max(monday, first)
    week_end = monday if overlap_before >= overlap_after else monday + 7 * DAY
    months = [kst_month(end - 1), kst_month(first)]
    month = max(months, key=lambda m: min(m.end, end) - max(m.start, first))
    return {"daily": at_daily, "weekly": week_end + 10 * HOUR, "monthly": month.end + 10 * HOUR}


def chunk_edges(span: tuple[int, int]) -> list[int]:
    """Where fetch_inputs splits the ALERTS range query of `span` into chunks Prometheus accepts."""
    first = -(-span[0] // STEP) * STEP
    return list(range(first + MAX_POINTS * STEP, span[1], MAX_POINTS * STEP))


def plant_firings(at: dict[str, int], first: int, end: int, span: tuple[int, int]) -> list[Firing]:
    """Firings for every alert item, one at the first step of the weekly ALERTS span and one across each
    edge between the chunks of its range query (a lost or doubled step there would show)."""
    week = checklist_period("weekly", at["weekly"])
    lo, hi = max(week.start, first) + HOUR, min(week.end, end)
    lo -= lo % HOUR
    day = at["daily"]
    firings = [
        # noisy: six short firings in the week (2-4 minutes each)
        *(Firing("SloBurnTicketFast", "latency", lo + 2 * HOUR + i * 3 * HOUR,
                 lo + 2 * HOUR + i * 3 * HOUR + m * MINUTE) for i, m in enumerate((2, 3, 2, 4, 3, 2))),
        # two long firings in the week, not noisy
        Firing("SloBurnPageSlow", "availability", lo + 21 * HOUR, lo + 21 * HOUR + 30 * MINUTE),
        Firing("SloBurnPageSlow", "availability", hi - 20 * HOUR, hi - 20 * HOUR + 45 * MINUTE),
        # quiet-hour firings of a data alert
        Firing("SloDataAbsent", "data-save-success", lo + 26 * HOUR, lo + 26 * HOUR + 10 * MINUTE),
        Firing("SloDataAbsent", "data-save-success", lo + 50 * HOUR, lo + 50 * HOUR + 12 * MINUTE),
        # the daily run: a page firing up to the run, one resolved in the last day, one resolved before it
        Firing("SloBurnPageFast", "availability", day - 30 * MINUTE, day),
        Firing("SloBurnTicketSlow", "error-rate", day - 5 * HOUR, day - 4 * HOUR),
        Firing("SloBurnTicketSlow", "matchmaking-success", day - 30 * HOUR, day - 29 * HOUR),
        Firing("SloBurnPageFast", "matchmaking-success", span[0], span[0] + 10 * MINUTE),
        # older than the weekly alert items look back: fetched only by a wider span, and never counted
        Firing("SloBurnPageSlow", "latency", span[0] - 7 * DAY, span[0] - 7 * DAY + 10 * MINUTE),
        *(Firing("SloBurnTicketSlow", "concurrent-sessions", edge - 5 * MINUTE, edge + 5 * MINUTE)
          for edge in chunk_edges(span) if edge + 10 * MINUTE < end),
    ]
    return sorted(set(firings), key=lambda f: (f.start, f.series))


def deploy_rows(at: dict[str, int], week: Period, month: Period) -> list[dict[str, Any]]:
    day = at["daily"]

    def row(id_: str, service: str, outcome: str, requested: int, *, started: int | None = None,
            finished: int | None = None, rolled_back: int | None = None, stages: tuple[str, ...] = ("canary", "prod"),
            dry_run: bool = False) -> dict[str, Any]:
        return {"id": id_, "service": service, "version": f"1.{len(id_)}.0", "outcome": outcome,
                "requested_at": requested, "started_at": started, "finished_at": finished,
                "rolled_back_at": rolled_back, "stages": list(stages), "dry_run": dry_run}

    rows = [
        row("d-promoted", "game-server", "promoted", day - 20 * HOUR, started=day - 20 * HOUR + 300,
            finished=day - 20 * HOUR + 2700),
        row("d-rolled-back", "matchmaking", "rolled_back", day - 10 * HOUR, started=day - 10 * HOUR + 120,
            finished=day - 10 * HOUR + 1800, rolled_back=day - 10 * HOUR + 1500),
        row("d-stuck", "game-server", "running", day - 3 * HOUR, started=day - 3 * HOUR + 60),
        row("d-dry", "game-server", "dry_run", day - 5 * HOUR, finished=day - 5 * HOUR + 60, dry_run=True),
        row("d-old", "game-server", "promoted", day - 30 * HOUR, started=day - 30 * HOUR + 60,
            finished=day - 30 * HOUR + 1200),
    ]
    outcomes = ["promoted"] * 7 + ["rolled_back", "timed_out", "failed"]
    for k, outcome in enumerate(outcomes):
        requested = week.start + 3 * HOUR + k * 14 * HOUR
        finish = requested + (20 + 7 * k) * MINUTE
        rows.append(row(f"w-{k}", ("game-server", "matchmaking")[k % 2], outcome, requested,
                        started=requested + 120, finished=finish,
                        rolled_back=finish - 300 if outcome == "rolled_back" else None))
    plan = [("promoted", ("canary", "prod")), ("promoted", ("canary", "prod")), ("rolled_back", ("canary", "prod")),
            ("promoted", ("canary",)), ("timed_out", ("canary", "prod")), ("promoted", ("canary", "prod")),
            ("blocked", ("canary", "prod")), ("promoted", ("canary", "prod")), ("rolled_back", ("canary", "prod"))]
    for k, (outcome, stages) in enumerate(plan):
        requested = month.start + 2 * HOUR + k * 3 * DAY
        finish = requested + (k + 1) * 17 * MINUTE
        rows.append(row(f"m-{k}", ("game-server", "matchmaking")[k % 2], outcome, requested,
                        started=None if outcome == "blocked" else requested + 240,
                        finished=finish, stages=stages,
                        rolled_back=finish - 120 if outcome == "rolled_back" else None))
    return rows


def chaos_rows(at: dict[str, int], week: Period, month: Period) -> list[dict[str, Any]]:
    day = at["daily"]

    def probes(failing: str | None, start: int) -> list[dict[str, Any]]:
        out = []
        for name in ("availability", "p99-latency"):
            samples = [[start + 10 * i, 0.999, not (name == failing and i in (3, 4))] for i in range(8)]
            out.append({"name": name, "query": f"probe:{name}", "samples": samples,
                        "success_pct": 100.0 * sum(s[2] for s in samples) / len(samples)})
        return out

    def run(id_: str, requested: int, verdict: str, score: float | None, *, failing: str | None = None,
            experiment: str = "gs-instance-kill", recovered: bool = True, finished: bool = True,
            targets: tuple[str, ...] = ("gs-stable-1",)) -> dict[str, Any]:
        injected = requested + 60
        return {"id": id_, "experiment": experiment, "title": experiment, "service": "game-server",
                "backend": "local", "environment": "prod", "fault": {"kind": "pod_delete", "params": {}},
                "targets": list(targets), "weight": 1.0, "verdict": verdict, "score": score,
                "requested_at": requested, "injected_at": None if verdict in ("refused",) else injected,
                "recovered_at": injected + 300 if recovered and verdict != "refused" else None,
                "finished_at": requested + 600 if finished else None,
                "probes": [] if verdict == "refused" else probes(failing, injected),
                "injection": None if verdict == "refused" else {"targets": list(targets)}}

    earlier = [90.0, 88.0, 92.0, 85.0, 87.0, 84.0, 86.0]
    rows = [run(f"c-before-{k}", week.start - k * 7 * DAY + 2 * DAY, "pass", score)
            for k, score in enumerate(earlier, start=1)]
    rows += [
        run("c-week-1", week.start + DAY + 2 * HOUR, "pass", 70.0),
        run("c-week-2", week.start + 3 * DAY + 2 * HOUR, "fail", 76.0, failing="p99-latency",
            experiment="gs-cpu-hog"),
        run("c-week-refused", week.start + 4 * DAY, "refused", None),
        run("c-month-1", month.start + 4 * DAY, "pass", 95.0, experiment="mm-queue-delay"),
        run("c-month-2", month.start + 12 * DAY, "aborted", 60.0, failing="availability",
            experiment="mm-queue-delay"),
        run("c-left", day - 2 * DAY, "error", None, recovered=False, targets=("gs-stable-2",)),
        run("c-running", day - 10 * MINUTE, "running", None, recovered=False, finished=False),
    ]
    return rows


def write_store(store: SREStore, world_rows: dict[str, Any]) -> None:
    for r in world_rows["deploys"]:
        times = {k: (dt(r[k]) if r[k] is not None else None)
                 for k in ("requested_at", "started_at", "finished_at", "rolled_back_at")}
        store.upsert_deployment({**r, **times, "image": f"registry/{r['service']}:{r['version']}", "strategy": "canary",
                                 "backend": "local", "change_ticket": "CHG-1", "requested_by": "ci", "forced": False,
                                 "run_url": f"http://airflow/dags/deploy/runs/{r['id']}"})
    for r in world_rows["chaos"]:
        times = {k: (dt(r[k]) if r[k] is not None else None)
                 for k in ("requested_at", "injected_at", "recovered_at", "finished_at")}
        store.upsert_chaos_run({**r, **times})
    history = []
    for scope, name, state, at in world_rows["states"]:
        history.append({"scope": scope, "name": name, "state": state, "computed_at": dt(at), "reasons": []})
    with store.engine.begin() as conn:
        conn.execute(sa.insert(policy_state_history), history)
    w0, w1 = world_rows["maintenance"]
    store.upsert_window({"id": "mw-checklists", "kind": "adhoc", "start": dt(w0), "end": dt(w1),
                         "services": ["game-server"], "reason": "database maintenance", "owner": "sre",
                         "ticket": "OPS-7", "status": "completed", "excludes_budget": True})


def policy_states(at: dict[str, int], month: Period) -> list[tuple[str, str, str, int]]:
    day = at["daily"]
    daily = {"availability": ("normal", "normal"), "latency": ("normal", "slow_burn"),
             "matchmaking-success": ("normal", "deploy_freeze"), "concurrent-sessions": ("normal", "normal"),
             "data-save-success": ("slow_burn", "normal"), "error-rate": ("normal", None)}
    rows = []
    for slo, (before, now) in daily.items():
        rows.append(("slo", slo, before, day - DAY - 30 * MINUTE))
        if now is not None:
            rows.append(("slo", slo, now, day - 30 * MINUTE))
    # game-server over the month, hourly: a freeze of 6 h, a rollback of 2 h, a 5-hour silence (stale)
    t = month.start - DAY
    while t < month.end:
        offset = t - month.start
        if 15 * DAY <= offset < 15 * DAY + 5 * HOUR:
            t += HOUR
            continue
        state = ("deploy_freeze" if 5 * DAY <= offset < 5 * DAY + 6 * HOUR else
                 "rollback" if 10 * DAY <= offset < 10 * DAY + 2 * HOUR else
                 "deploy_freeze" if 10 * DAY + 2 * HOUR <= offset < 10 * DAY + 3 * HOUR else "normal")
        rows.append(("service", "game-server", state, t))
        t += HOUR
    return rows


def start_alerting_prometheus(workdir: Path, port: int, history_url: str, dead_port: int,
                              firings: list[Firing]) -> ManagedProcess:
    """Rules loaded, own scrape targets (game-server down), the planted ALERTS, the history by remote_read."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    planted = workdir / "alerts.om"
    planted.write_text(openmetrics(firings))
    subprocess.run([require_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                    "--max-block-duration=24h", str(planted), str(data)], check=True, capture_output=True)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "24h"},  # no live rule evaluation in the run
        "rule_files": [str(RULES_FILE)],
        "scrape_configs": [
            {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
            {"job_name": "matchmaking", "static_configs": [{"targets": [f"127.0.0.1:{port}"],
                                                            "labels": {"instance": "mm-stable-1"}}]},
            {"job_name": "game-server", "static_configs": [{"targets": [f"127.0.0.1:{dead_port}"],
                                                            "labels": {"instance": "gs-stable-1"}}]},
        ],
        "remote_read": [{"url": f"{history_url}/api/v1/read", "read_recent": True}],
    }
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    check_config([require_binary("promtool"), "check", "config", str(path)], f"the Prometheus configuration {path}")
    process = ManagedProcess("prometheus-alerting", [
        require_binary("prometheus"), f"--config.file={path}", f"--storage.tsdb.path={data}",
        "--storage.tsdb.retention.time=60d", f"--web.listen-address=127.0.0.1:{port}",
        "--query.lookback-delta=1m", "--log.level=warn"], workdir / "prometheus.log").start()
    process.wait_ready(lambda: http_ok(f"http://127.0.0.1:{port}/-/ready"), timeout=60)

    def scraped() -> bool:
        targets = requests.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        return len(targets) == 3 and all(t["health"] != "unknown" for t in targets)

    process.wait_ready(scraped, timeout=30)
    return process


def post_alerts(url: str, at_daily: int) -> list[dict[str, Any]]:
    """Two active alerts (a page and a ticket) and a silenced one."""
    rules = rules_by_key()
    now = time.time()
    alerts = [{"labels": {"alertname": name, **rules[(name, slo)]},
               "annotations": {"summary": f"{name} {slo}"},
               "startsAt": iso(at_daily - 30 * MINUTE), "endsAt": iso(int(now) + 2 * HOUR)}
              for name, slo in (("SloBurnPageFast", "availability"), ("SloBurnTicketSlow", "latency"),
                                ("SloDataAbsent", "data-save-success"))]
    requests.post(f"{url}/api/v2/alerts", json=alerts, timeout=10).raise_for_status()
    client = AlertmanagerClient(url)
    client.ensure_silence("checklists-test", ['alertname="SloDataAbsent"', 'slo="data-save-success"'],
                          dt(now - 60), dt(now + 2 * HOUR), "test", "silenced for the checklist test")
    deadline = time.time() + 20
    while True:
        states = sorted(a.state for a in client.alerts())
        if states == ["active", "active", "suppressed"] or time.time() > deadline:
            break
        time.sleep(0.2)
    assert states == ["active", "active", "suppressed"], states
    return alerts


@pytest.fixture(scope="module")
def world(history_prometheus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    end = int(history_prometheus.end.timestamp())
    first = end - history_prometheus.days * DAY
    at = choose_instants(first, end)
    week, month = checklist_period("weekly", at["weekly"]), checklist_period("monthly", at["monthly"])
    yesterday = checklist_period("daily", at["daily"])
    maintenance = (yesterday.start + 2 * HOUR, yesterday.start + 4 * HOUR)  # 02:00-04:00 KST yesterday
    spec = load_checklists()
    plans = {cadence: fetch_plan(spec.for_cadence(cadence), at[cadence]) for cadence in CADENCES}
    firings = plant_firings(at, first, end, plans["weekly"]["alert_samples"])

    workdir = tmp_path_factory.mktemp("checklist-sources")
    store = SREStore(f"sqlite:///{workdir / 'sre.db'}")
    ingest_all(load_slos(), PrometheusClient(history_prometheus.url), store, first, end, chunk=DAY)
    rows: dict[str, Any] = {"deploys": deploy_rows(at, week, month), "chaos": chaos_rows(at, week, month),
            "states": policy_states(at, month), "maintenance": maintenance}
    write_store(store, rows)

    group = ProcessGroup()
    with group.running():
        dead_port = free_port()
        am_port, prom_port = free_port(), free_port()
        group.add(start_alertmanager(workdir / "alertmanager", am_port,
                                     render_alertmanager_config(f"http://127.0.0.1:{dead_port}/hook")))
        am_url = f"http://127.0.0.1:{am_port}"
        am_alerts = post_alerts(am_url, at["daily"])
        group.add(start_alerting_prometheus(workdir / "prometheus", prom_port, history_prometheus.url, dead_port,
                                            firings))
        w = World(history_prometheus.url, first, end, f"http://127.0.0.1:{prom_port}", am_url, dead_port, store, at,
                  maintenance, firings, am_alerts, rows["deploys"], rows["chaos"], rows["states"])
        prom, am = PrometheusClient(w.prometheus_url), AlertmanagerClient(am_url)
        for cadence in CADENCES:
            items = spec.for_cadence(cadence)
            w.plans[cadence] = plans[cadence]
            w.inputs[cadence] = fetch_inputs(w.plans[cadence], at[cadence], prometheus=prom, alertmanager=am,
                                             store=store)
            w.results[cadence] = by_id(run_checklist(items, w.inputs[cadence], at[cadence]))
        yield w


# --- numbers computed here ----------------------------------------------------------------------------------


def slo_named(name: str) -> Slo:
    return load_slos()[name]


def eb(target: float) -> float:
    return round(1 - target, 12)


@dataclass(frozen=True)
class Counts:
    good: float
    bad: float
    events: float
    covered: int  # minutes with a ledger row

    @property
    def sli(self) -> float | None:
        counted = self.good + self.bad
        return None if counted <= 0 else self.good / counted


def ledger_counts(w: World, slo: Slo, start: int, end: int, *, exclude: Iterable[tuple[int, int]] = ()) -> Counts:
    """The SLO's good and bad units over ledger minutes [start, end) outside `exclude`, summed here."""
    minutes, good, total = w.ledger(slo.name)
    keep = (minutes >= start) & (minutes < end)
    for a, b in exclude:
        keep &= ~((minutes >= a) & (minutes < b))
    g, t = good[keep], total[keep]
    if slo.budgeting_method == "occurrences":
        return Counts(float(g.sum()), float((t - g).sum()), float(t.sum()), int(keep.sum()))
    judged = t >= slo.min_events
    ratio = (t[judged] - g[judged]) / t[judged]
    if slo.budgeting_method == "timeslices":
        bad = float(np.count_nonzero(g[judged] / t[judged] < (slo.timeslice_target or 1.0)))
    else:
        bad = float(np.minimum(ratio, 1.0).sum())
    return Counts(float(judged.sum()) - bad, bad, float(t.sum()), int(keep.sum()))


def prometheus_counts(w: World, slo: Slo, pieces: Iterable[tuple[int, int]]) -> Counts:
    """Good and total events of a ratio SLO over (a, b] pieces, from counter differences in Prometheus (the
    history has no counter resets)."""
    sli = slo.sli
    assert isinstance(sli, RatioSli)
    good = total = 0.0
    for a, b in pieces:
        t = w.counter(sli.total_selectors(), b) - w.counter(sli.total_selectors(), a)
        if sli.uses_bad:
            g = t - (w.counter(sli.bad_selectors(), b) - w.counter(sli.bad_selectors(), a))
        else:
            g = w.counter(sli.good_selectors(), b) - w.counter(sli.good_selectors(), a)
        good, total = good + g, total + t
    return Counts(good, total - good, total, sum(b - a for a, b in pieces) // MINUTE)


def window_consumed(w: World, slo: Slo, at: int, exclude: Iterable[tuple[int, int]]) -> float:
    """Share of the SLO window's error budget spent by `at` (maintenance excluded), summed here."""
    bounds = window_bounds(slo.window, at)
    raw = ledger_counts(w, slo, bounds.start, bounds.now)
    adjusted = ledger_counts(w, slo, bounds.start, bounds.now, exclude=exclude)
    if slo.budgeting_method == "occurrences":
        budget = eb(slo.target) * raw.events * bounds.minutes / raw.covered
    else:
        budget = eb(slo.target) * bounds.minutes
    return adjusted.bad / budget


def evidence_slos(result: ItemResult) -> dict[str, dict[str, Any]]:
    return {row["slo"]: row for row in result.evidence["slos"]}


def intervals_started(w: World, start: int, end: int) -> list[Firing]:
    return [f for f in w.firings if start <= f.start < end]


def bad_minutes(slo: Slo, good: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(judged, bad) per ledger minute: bad when the minute's error ratio exceeds 1 - target."""
    if slo.budgeting_method == "occurrences":
        judged = total > 0
        ratio = np.divide(total - good, total, out=np.zeros_like(total), where=judged)
    else:
        judged = total >= slo.min_events
        safe = np.where(judged, total, 1.0)
        if slo.budgeting_method == "timeslices":
            ratio = (judged & (good / safe < (slo.timeslice_target or 1.0))).astype(float)
        else:
            ratio = np.where(judged, np.minimum((total - good) / safe, 1.0), 0.0)
    return judged, judged & (ratio > eb(slo.target))


# --- the inputs ---------------------------------------------------------------------------------------------


def test_every_input_of_the_plan_is_fetched_once_in_its_catalog_shape_with_provenance(world: World) -> None:
    planned = set().union(*(set(p) for p in world.plans.values()))
    assert planned == set(INPUTS)  # the three checklists together need every input of the catalog
    for cadence in CADENCES:
        inputs = world.inputs[cadence]
        assert set(inputs) == set(world.plans[cadence])
        for name, data in inputs.items():
            assert isinstance(data, InputData), f"{cadence} {name}: {data}"
            assert shape_problem(name, data) is None
            assert data.source and data.queries, name
            if needs(name) == "prometheus":
                assert data.source == "prometheus" and data.links and data.links[0].startswith(world.prometheus_url)
    freshness = world.inputs["daily"]["series_freshness"]
    assert isinstance(freshness, InputData) and "include/grafana/dashboards" in freshness.meta["dashboards"]
    samples = world.inputs["daily"]["alert_samples"]
    assert isinstance(samples, InputData) and samples.meta["step"] == STEP


def test_the_alert_samples_are_the_planted_firings(world: World) -> None:
    from gamesre.checklists.analytics import firing_intervals

    data = world.inputs["weekly"]["alert_samples"]
    assert isinstance(data, InputData)
    start, end = world.plans["weekly"]["alert_samples"]
    got = firing_intervals(data.value, STEP)
    expected = sorted((f.series, f.start, f.end) for f in world.firings if start <= f.start and f.end <= end)
    assert any(f.start == start for f in world.firings)  # the span's first step
    assert any(f.start < edge < f.end for f in world.firings for edge in chunk_edges((start, end)))
    assert sorted(zip(got["series"], got["start"].astype(int), got["end"].astype(int), strict=True)) == expected


# --- daily ------------------------------------------------------------------------------------------------


def test_daily_availability_per_slo_equals_prometheus_counters_and_the_ledger(world: World) -> None:
    day = world.period("daily")
    w0, w1 = world.maintenance
    for item, service in (("daily-availability-game-server", "game-server"),
                          ("daily-availability-matchmaking", "matchmaking")):
        result = world.results["daily"][item]
        rows = evidence_slos(result)
        slos = [s for s in load_slos() if s.service == service]
        assert set(rows) == {s.name for s in slos}
        exclude = [(w0, w1)] if service == "game-server" else []
        for slo in slos:
            row = rows[slo.name]
            if slo.budgeting_method == "occurrences":  # straight from the counters, outside the window
                pieces = [(day.start, w0), (w1, day.end)] if exclude else [(day.start, day.end)]
                expected = prometheus_counts(world, slo, pieces)
                raw = prometheus_counts(world, slo, [(day.start, day.end)])
                assert row["events"] == pytest.approx(raw.events, rel=1e-12)
                assert row["sli_raw"] == pytest.approx(raw.sli, rel=1e-12)
            else:
                expected = ledger_counts(world, slo, day.start, day.end, exclude=exclude)
            assert expected.sli is not None
            assert row["sli"] == pytest.approx(expected.sli, rel=1e-12), slo.name
            assert row["bad"] == pytest.approx(expected.bad, rel=1e-9, abs=1e-9), slo.name
            assert row["excluded_minutes"] == ((w1 - w0) // MINUTE if exclude else 0)
            assert row["coverage"] == pytest.approx(1.0)
            assert row["met"] == (expected.sli >= slo.target - 1e-12)
            assert row["status"] == ("pass" if row["met"] else "fail")
        assert result.status == ("pass" if all(r["met"] for r in rows.values()) else "fail")


def test_daily_budget_burn_states_and_consumption_since_yesterday(world: World) -> None:
    result = world.results["daily"]["daily-budget-burn"]
    at = world.at["daily"]
    rows = evidence_slos(result)
    published = {}  # (slo, instant) -> state at that instant
    for slo in load_slos():
        mine = sorted((t, s) for scope, name, s, t in world.states if scope == "slo" and name == slo.name)
        for when in (at, at - DAY):
            known = [(t, s) for t, s in mine if t <= when]
            published[(slo.name, when)] = ("unknown" if not known else
                                           "stale" if when - known[-1][0] > STALE_AFTER else known[-1][1])
    for slo in load_slos():
        row = rows[slo.name]
        exclude = [world.maintenance] if slo.service == "game-server" else []
        now, before = window_consumed(world, slo, at, exclude), window_consumed(world, slo, at - DAY, exclude)
        assert row["budget_consumed"] == pytest.approx(now, rel=1e-9), slo.name
        assert row["budget_consumed_day_ago"] == pytest.approx(before, rel=1e-9), slo.name
        assert row["budget_consumed_change"] == pytest.approx(now - before, rel=1e-6, abs=1e-12)
        state, state_before = published[(slo.name, at)], published[(slo.name, at - DAY)]
        assert (row["state"], row["state_day_ago"]) == (state, state_before)
        if state in BLOCKING_STATES or state in ("unknown", "stale"):
            expected = "fail"
        elif (state in ("slow_burn", "ticket") or severity_rank(state) < severity_rank(state_before)
              or now - before >= 0.1):
            expected = "warn"
        else:
            expected = "pass"
        assert row["status"] == expected, slo.name
    assert rows["error-rate"]["state"] == "stale" and rows["matchmaking-success"]["state"] == "deploy_freeze"
    assert result.status == "fail"


def test_daily_alerts_firing_now_and_resolved_in_the_last_day(world: World) -> None:
    result = world.results["daily"]["daily-alerts"]
    at = world.at["daily"]
    ev = result.evidence
    assert (ev["firing_total"], ev["suppressed_total"]) == (2, 1)
    assert sorted((a["alertname"], a["severity"], a["since"]) for a in ev["firing"]) == [
        ("SloBurnPageFast", "page", iso(at - 30 * MINUTE)), ("SloBurnTicketSlow", "ticket", iso(at - 30 * MINUTE))]
    active = {series_key(a["labels"]["alertname"], {k: v for k, v in a["labels"].items() if k != "alertname"})
              for a in world.am_alerts[:2]}
    resolved = [f for f in world.firings
                if f.series not in active and at - DAY < f.end < at - STEP and f.start < at]
    assert ev["resolved_total"] == len(resolved) > 0
    assert sorted((r["series"], r["start"], r["end"]) for r in ev["resolved"]) == sorted(
        (f.series, iso(f.start), iso(f.end)) for f in resolved)
    assert result.status == "fail" and "1 page alert(s) firing: SloBurnPageFast" in result.summary


def test_daily_freshness_of_every_contract_series_and_dashboard_selector(world: World) -> None:
    from gamesre.core.contract import load_contract
    from gamesre.observability.panel_queries import load_dashboards, panel_queries

    at = world.at["daily"]
    data = world.inputs["daily"]["series_freshness"]
    assert isinstance(data, InputData)
    frame = data.value
    contract_series = {s for m in load_contract().metrics.values() for s in m.series_names()}
    assert set(frame.loc[frame["kind"] == "metric", "name"]) == contract_series
    selectors = set(frame.loc[frame["kind"] == "dashboard", "query"])
    # every dashboard query is covered: each reads at least one checked selector, and each selector is in a query
    # with the template variables at All
    queries = [q.expr for q in panel_queries(load_dashboards())]
    all_values = [re.sub(r"\$(?!__)\{?\w+\}?", ".*", q) for q in queries]
    assert all(any(sel in q for sel in selectors) for q in all_values), "a dashboard query reads nothing checked"
    assert all(any(sel in q for q in all_values) for sel in selectors)
    assert {"up", 'ALERTS{alertstate="firing"}', 'slo:sli_error:ratio_rate1h{slo="availability"}'} <= selectors
    for name, query, newest in zip(frame["name"], frame["query"], frame["newest"], strict=True):
        # raw samples over the same lookback from the Prometheus the input read (its own rules and planted ALERTS,
        # the history through remote_read)
        doc = requests.get(f"{world.prometheus_url}/api/v1/query",
                           params={"query": f"{query}[{data.meta['lookback']}s]", "time": str(at)}, timeout=30).json()
        stamps = [float(v[0]) for r in doc["data"]["result"] for v in r["values"]]
        assert newest == (max(stamps) if stamps else pytest.approx(math.nan, nan_ok=True)), name
    ev = world.results["daily"]["daily-data-freshness"].evidence
    stale = [n for n, newest in zip(frame["name"], frame["newest"], strict=True) if not at - newest <= 300]
    assert ev["checked_total"] == len(contract_series) + len(selectors)
    assert ev["stale_total"] == len(stale) and sorted(r["name"] for r in ev["stale"]) == sorted(stale)
    assert world.results["daily"]["daily-data-freshness"].status == ("fail" if stale else "pass")


def test_daily_scrape_targets_name_the_one_down(world: World) -> None:
    result = world.results["daily"]["daily-scrape-targets"]
    ev = result.evidence
    assert ev["jobs"] == {"game-server": {"up": 0, "total": 1}, "matchmaking": {"up": 1, "total": 1},
                          "prometheus": {"up": 1, "total": 1}}
    (down,) = ev["down"]
    assert (down["job"], down["instance"], down["health"]) == ("game-server", "gs-stable-1", "down")
    assert f"127.0.0.1:{world.dead_port}" in down["last_error"] and "refused" in down["last_error"]
    assert ev["missing_jobs"] == [] and result.status == "fail"


def expected_gaps(w: World, at: int, lookback: int = DAY, max_gap: int = 300) -> tuple[set[str], list[tuple]]:
    """(series, [(series, seconds, edge)]) from the raw game_build_info samples in the history Prometheus."""
    doc = requests.get(f"{w.history_url}/api/v1/query",
                       params={"query": f'game_build_info{{track="stable"}}[{lookback}s]', "time": str(at)},
                       timeout=30).json()
    gaps, series = [], set()
    for r in doc["data"]["result"]:
        name = f"{r['metric']['job']}/{r['metric']['instance']}"
        series.add(name)
        t = np.array([float(v[0]) for v in r["values"]])
        t = t[(t >= at - lookback) & (t < at)]
        edges = np.concatenate([[at - lookback], t, [at]])
        lengths = np.diff(edges)
        kinds = ["start", *["inside"] * (len(lengths) - 2), "end"]
        gaps += [(name, float(x), kind) for x, kind in zip(lengths, kinds, strict=True) if x > max_gap]
    return series, sorted(gaps)


def test_daily_gaps_from_the_raw_sample_timestamps(world: World) -> None:
    series, gaps = expected_gaps(world, world.at["daily"])
    data = world.inputs["daily"]["sample_timestamps"]
    assert isinstance(data, InputData) and set(data.value["series"]) == series and len(series) >= 2
    ev = world.results["daily"]["daily-data-gaps"].evidence
    assert ev["series_total"] == len(series)
    assert sorted((g["series"], g["seconds"], g["edge"]) for g in ev["gaps"]) == gaps
    assert world.results["daily"]["daily-data-gaps"].status == ("fail" if gaps else "pass")


def test_gaps_at_the_start_of_the_history_are_found(world: World) -> None:
    at = world.history_start + 12 * HOUR  # the lookback's first 12 hours lie before the history
    item = load_checklists().get("daily-data-gaps")
    inputs = fetch_inputs(fetch_plan([item], at), at, prometheus=PrometheusClient(world.prometheus_url),
                          alertmanager=None, store=world.store)
    (result,) = run_checklist([item], inputs, at)
    series, gaps = expected_gaps(world, at)
    assert gaps and {g[2] for g in gaps} == {"start"} and {g[0] for g in gaps} == series
    assert sorted((g["series"], g["seconds"], g["edge"]) for g in result.evidence["gaps"]) == gaps
    assert result.status == "fail" and result.evidence["gaps_total"] == len(series)


def test_daily_chaos_status_finds_the_fault_left_behind(world: World) -> None:
    result = world.results["daily"]["daily-chaos-status"]
    at = world.at["daily"]
    ev = result.evidence
    counted = [r for r in world.chaos if r["verdict"] not in ("refused",) and at - 7 * DAY <= r["requested_at"] < at]
    failed = [r for r in counted if r["verdict"] in ("fail", "aborted", "error")]
    assert ev["runs_in_lookback"] == len(counted)
    assert sorted(r["run_id"] for r in ev["failed_runs"]) == sorted(r["id"] for r in failed)
    assert [r["run_id"] for r in ev["running"]] == ["c-running"]
    assert ev["active_faults_total"] == 2  # c-left and the running c-running
    (left,) = ev["left_injected"]
    left_row = next(r for r in world.chaos if r["id"] == "c-left")
    assert (left["run_id"], left["target"], left["fault"], left["injected_at"]) == (
        "c-left", "gs-stable-2", "pod_delete", iso(left_row["injected_at"]))
    assert result.status == "fail"


def _deploys(w: World) -> list[dict[str, Any]]:
    return [r for r in w.deploys if not r["dry_run"]]


def test_daily_deploy_pipeline_counts_and_the_stuck_run(world: World) -> None:
    result = world.results["daily"]["daily-deploy-status"]
    at = world.at["daily"]
    recent = [r for r in _deploys(world) if at - DAY <= r["requested_at"] < at]
    ev = result.evidence
    assert ev["recent_total"] == len(recent)
    outcomes: dict[str, int] = {}
    for r in recent:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    assert ev["by_outcome"] == outcomes
    assert [r["id"] for r in ev["stuck"]] == ["d-stuck"] and ev["stuck_total"] == 1
    assert sorted(r["id"] for r in ev["failed_or_rolled_back"]) == sorted(
        r["id"] for r in recent if r["outcome"] in ("rolled_back", "timed_out", "failed"))
    assert result.status == "fail"


# --- weekly -----------------------------------------------------------------------------------------------


def test_weekly_attainment_from_the_ledger_rows(world: World) -> None:
    week = world.period("weekly")
    for item, service in (("weekly-attainment-game-server", "game-server"),
                          ("weekly-attainment-matchmaking", "matchmaking")):
        rows = evidence_slos(world.results["weekly"][item])
        exclude = [world.maintenance] if service == "game-server" else []
        for slo in (s for s in load_slos() if s.service == service):
            expected = ledger_counts(world, slo, week.start, week.end, exclude=exclude)
            excluded = sum(max(0, min(b, week.end) - max(a, week.start)) for a, b in exclude) // MINUTE
            row = rows[slo.name]
            assert expected.sli is not None
            assert row["sli"] == pytest.approx(expected.sli, rel=1e-12), slo.name
            assert row["covered_minutes"] == expected.covered
            assert row["coverage"] == pytest.approx(expected.covered / (week.minutes - excluded), rel=1e-12)
            status = ("fail" if expected.sli < slo.target - 1e-12 else
                      "warn" if expected.covered / (week.minutes - excluded) < 0.9 else "pass")
            assert row["status"] == status, slo.name


def test_weekly_budget_patterns_spend_and_top_hour(world: World) -> None:
    week = world.period("weekly")
    rows = evidence_slos(world.results["weekly"]["weekly-budget-patterns"])
    for slo in load_slos():
        exclude = [world.maintenance] if slo.service == "game-server" else []
        row = rows[slo.name]
        spent = ledger_counts(world, slo, week.start, week.end, exclude=exclude)
        raw = ledger_counts(world, slo, week.start, week.end)
        minutes = window_bounds(slo.window, week.end).minutes
        budget = eb(slo.target) * (raw.events * minutes / raw.covered if slo.budgeting_method == "occurrences"
                                   else minutes)
        assert row["spent"] == pytest.approx(spent.bad, rel=1e-9, abs=1e-9), slo.name
        assert row["window_budget"] == pytest.approx(budget, rel=1e-12)
        assert sum(row["by_weekday"]) == pytest.approx(spent.bad, rel=1e-9, abs=1e-9)
        # the hour (KST hours are UTC hours shifted by 9) that spent the most
        m, g, t = world.ledger(slo.name)
        keep = (m >= week.start) & (m < week.end)
        for a, b in exclude:
            keep &= ~((m >= a) & (m < b))
        hourly: dict[int, float] = {}
        for minute, units in zip(m[keep], bad_units(slo, g[keep], t[keep]), strict=True):
            hourly[int(minute) - int(minute) % HOUR] = hourly.get(int(minute) - int(minute) % HOUR, 0.0) + units
        spending = {h: u for h, u in hourly.items() if u > 0}
        if spending:
            top_hour = max(spending, key=lambda h: (spending[h], -h))
            assert row["top_hours"][0]["start"] == iso(top_hour), slo.name
            assert row["top_hours"][0]["units"] == pytest.approx(spending[top_hour], rel=1e-9)
            share = spending[top_hour] / budget
            assert row["status"] == ("warn" if share >= 0.02 else "pass"), slo.name
        else:
            assert row["top_hours"] == []


def bad_units(slo: Slo, good: np.ndarray, total: np.ndarray) -> np.ndarray:
    if slo.budgeting_method == "occurrences":
        return total - good
    judged = total >= slo.min_events
    safe = np.where(judged, total, 1.0)
    if slo.budgeting_method == "timeslices":
        return (judged & (good / safe < (slo.timeslice_target or 1.0))).astype(float)
    return np.where(judged, np.minimum((total - good) / safe, 1.0), 0.0)


def test_weekly_noisy_alerts_from_the_planted_firings(world: World) -> None:
    week = world.period("weekly")
    result = world.results["weekly"]["weekly-noisy-alerts"]
    chosen = intervals_started(world, week.start, week.end)
    per_name: dict[str, list[int]] = {}
    for f in chosen:
        per_name.setdefault(f.alertname, []).append(f.end - f.start)
    got = {a["alertname"]: a for a in result.evidence["alerts"]}
    assert set(got) == set(per_name)
    for name, durations in per_name.items():
        assert got[name]["fires"] == len(durations)
        assert got[name]["median_duration"] == pytest.approx(float(np.median(durations)))
        assert got[name]["total_duration"] == pytest.approx(float(sum(durations)))
    noisy = sorted(n for n, d in per_name.items() if len(d) >= 5 and np.median(d) < 600)
    assert sorted(result.evidence.get("noisy", [])) == noisy == ["SloBurnTicketFast"]
    assert result.status == "warn"


def test_weekly_silent_alerts_are_the_rules_that_never_fired(world: World) -> None:
    week = world.period("weekly")
    result = world.results["weekly"]["weekly-silent-alerts"]
    rules = rules_by_key()
    fired = {(f.alertname, f.slo) for f in world.firings if f.start < week.end and f.end > week.end - 28 * DAY}
    never = sorted(series_key(name, labels) for (name, slo), labels in rules.items() if (name, slo) not in fired)
    ev = result.evidence
    assert ev["rules_total"] == len(rules) == 30
    assert ev["never_fired_total"] == len(never)
    assert sorted(r["rule"] for r in ev["never_fired"]) == never
    assert result.status == "warn"


def test_silent_alerts_count_only_the_firings_of_their_lookback(world: World) -> None:
    from gamesre.checklists.analytics import firing_intervals

    at = world.at["weekly"]
    item = load_checklists().get("weekly-silent-alerts")
    plan = fetch_plan([item], at)
    start, end = plan["alert_samples"]
    old = next(f for f in world.firings if f.end <= start)
    wider = {**plan, "alert_samples": (start - 14 * DAY, end)}  # as when another item looks further back
    inputs = fetch_inputs(wider, at, prometheus=PrometheusClient(world.prometheus_url), alertmanager=None,
                          store=world.store)
    samples = inputs["alert_samples"]
    assert isinstance(samples, InputData) and old.series in set(firing_intervals(samples.value, STEP)["series"])
    (result,) = run_checklist([item], inputs, at)
    assert old.series in {r["rule"] for r in result.evidence["never_fired"]}
    assert result.evidence["never_fired"] == world.results["weekly"]["weekly-silent-alerts"].evidence["never_fired"]


def test_weekly_alerts_without_slo_impact_judged_on_the_ledger(world: World) -> None:
    week = world.period("weekly")
    result = world.results["weekly"]["weekly-alerts-without-impact"]
    expected = {}
    for f in intervals_started(world, week.start, week.end):
        slo = slo_named(f.slo)
        m, g, t = world.ledger(slo.name)
        lo, hi = f.start - 300, f.end
        inside = (m >= lo) & (m < hi)
        judged, bad = bad_minutes(slo, g[inside], t[inside])
        impact = "bad" if bad.any() else ("none" if judged.any() else "unknown")
        expected[(f.series, iso(f.start))] = (impact, int(bad.sum()), int(judged.sum()))
    got = {(r["series"], r["start"]): (r["impact"], r["bad_minutes"], r["judged_minutes"])
           for r in result.evidence["firings"]}
    assert result.evidence["firings_total"] == len(expected) and got == expected
    by_name: dict[str, list[str]] = {}
    for (series, _), (impact, _, _) in expected.items():
        by_name.setdefault(series.split("{")[0], []).append(impact)
    quiet = sorted(n for n, impacts in by_name.items() if "bad" not in impacts and "none" in impacts)
    assert sorted(a["alertname"] for a in result.evidence["alerts"]) == quiet
    assert result.status == ("warn" if quiet or any(i == "unknown" for i, _, _ in expected.values()) else "pass")


def test_weekly_dashboard_review_is_assigned_to_a_person(world: World) -> None:
    result = world.results["weekly"]["weekly-dashboard-review"]
    assert result.status == "manual" and result.owner == "sre" and len(result.evidence["steps"]) == 4


def _slope_per_week(times: list[float], scores: list[float]) -> float:
    x = np.array(times) / WEEK
    y = np.array(scores)
    return float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())


def test_weekly_chaos_results_score_trend_and_failed_hypotheses(world: World) -> None:
    week = world.period("weekly")
    ev = world.results["weekly"]["weekly-chaos-results"].evidence
    runs = [r for r in world.chaos if r["verdict"] != "refused"]
    scored = sorted((r["requested_at"], r["score"]) for r in runs if r["score"] is not None)
    now = [s for t, s in scored if week.start <= t < week.end]
    before = [s for t, s in scored if week.end - 56 * DAY <= t < week.start]
    whole = [(t, s) for t, s in scored if week.end - 56 * DAY <= t < week.end]
    assert ev["score_period"]["runs"] == len(now) and ev["score_period"]["mean"] == pytest.approx(np.mean(now))
    assert ev["score_before"]["mean"] == pytest.approx(np.mean(before))
    assert ev["score_drop"] == pytest.approx(np.mean(before) - np.mean(now))
    assert ev["score_trend"]["slope_per_week"] == pytest.approx(
        _slope_per_week([t for t, _ in whole], [s for _, s in whole]), rel=1e-9)
    in_week = [r for r in runs if week.start <= r["requested_at"] < week.end]
    assert ev["runs_total"] == len(in_week)
    failed = sorted((r["experiment"], p["name"]) for r in in_week for p in r["probes"]
                    if any(s[2] is False for s in p["samples"]))
    assert sorted((h["experiment"], h["probe"]) for h in ev["failed_hypotheses"]) == failed
    assert world.results["weekly"]["weekly-chaos-results"].status == "warn"


def _finished_in(rows: list[dict[str, Any]], start: int, end: int) -> list[dict[str, Any]]:
    return [r for r in rows if r["outcome"] in ("promoted", "rolled_back", "timed_out", "failed")
            and r["finished_at"] is not None and start <= r["finished_at"] < end]


def test_weekly_deploy_success_rate_and_rollbacks(world: World) -> None:
    week = world.period("weekly")
    ev = world.results["weekly"]["weekly-deploy-success"].evidence
    rows = _deploys(world)
    for service in ("game-server", "matchmaking", "all"):
        mine = [r for r in rows if service == "all" or r["service"] == service]
        done = _finished_in(mine, week.start, week.end)
        promoted = sum(r["outcome"] == "promoted" for r in done)
        back = [r for r in mine if r["rolled_back_at"] is not None and week.start <= r["rolled_back_at"] < week.end]
        got = ev["services"][service]
        assert (got["finished"], got["promoted"], got["rollbacks"]) == (len(done), promoted, len(back))
        assert got["success_rate"] == pytest.approx(promoted / len(done))
    overall = ev["services"]["all"]
    warn = overall["success_rate"] < 0.9 or overall["rollbacks"] > 2
    assert world.results["weekly"]["weekly-deploy-success"].status == ("warn" if warn else "pass")


# --- monthly ----------------------------------------------------------------------------------------------


def test_monthly_target_review_months_from_the_ledger(world: World) -> None:
    result = world.results["monthly"]["monthly-slo-target-review"]
    months = months_before(world.at["monthly"], 3)
    reviews = {r["slo"]: r for r in result.evidence["reviews"]}
    for slo in load_slos():
        exclude = [world.maintenance] if slo.service == "game-server" else []
        review = reviews[slo.name]
        judged = 0
        for month, got in zip(months, review["months"], strict=True):
            counts = ledger_counts(world, slo, month.start, month.end, exclude=exclude)
            excluded = sum(max(0, min(b, month.end) - max(a, month.start)) for a, b in exclude) // MINUTE
            coverage = counts.covered / (month.minutes - excluded)
            assert got["coverage"] == pytest.approx(coverage, rel=1e-12)
            enough = counts.events >= slo.min_events if slo.budgeting_method == "occurrences" else counts.covered > 0
            if not enough:
                assert got["sli"] is None
                continue
            raw = ledger_counts(world, slo, month.start, month.end)
            budget = eb(slo.target) * (raw.events * month.minutes / raw.covered
                                       if slo.budgeting_method == "occurrences" else month.minutes)
            assert got["sli"] == pytest.approx(counts.sli, rel=1e-12), slo.name
            assert got["budget_consumed"] == pytest.approx(counts.bad / budget, rel=1e-9)
            judged += coverage >= 0.9
        assert review["judged_months"] == judged
        if judged < 3 and review["exhausted_months"] < 2:
            assert (review["recommendation"], review["confident"], review["status"]) == ("keep", False, "warn")


def test_monthly_policy_review_time_in_state_and_entries(world: World) -> None:
    month = world.period("monthly")
    result = world.results["monthly"]["monthly-budget-policy-review"]
    got = {(r["scope"], r["name"]): r for r in result.evidence["rows"]}
    fetched = [s for s in world.states if month.start - DAY <= s[3] < month.end]
    names = sorted({(scope, name) for scope, name, _, _ in fetched})
    assert sorted(got) == names and ("service", "game-server") in got
    minutes = np.arange(month.start, month.end, MINUTE)
    for scope, name in names:
        rows = sorted((t, s) for sc, n, s, t in fetched if (sc, n) == (scope, name))
        times = np.array([t for t, _ in rows])
        idx = np.searchsorted(times, minutes, side="right") - 1
        seconds: dict[str, float] = {}
        for m, i in zip(minutes, idx, strict=True):
            state = "unknown" if i < 0 else ("stale" if m - times[i] >= STALE_AFTER else rows[i][1])
            seconds[state] = seconds.get(state, 0.0) + MINUTE
        assert got[(scope, name)]["seconds_in_state"] == pytest.approx(seconds), (scope, name)
        entries = {"deploy_freeze": 0, "rollback": 0}
        for k, (t, state) in enumerate(rows):
            prev = rows[k - 1][1] if k else None
            if month.start <= t < month.end and state in entries and (
                    prev is None or (prev != state and severity_rank(prev) > severity_rank(state))):
                entries[state] += 1
        assert got[(scope, name)]["entries"] == entries, (scope, name)
    assert got[("service", "game-server")]["entries"] == {"deploy_freeze": 1, "rollback": 1}
    assert got[("service", "game-server")]["seconds_in_state"]["stale"] == pytest.approx(4 * HOUR)  # 5 h silent
    assert result.status == "warn"


def test_monthly_stack_versions_against_the_binaries_and_the_pins(world: World) -> None:
    result = world.results["monthly"]["monthly-stack-versions"]
    prometheus = re.search(r"version (\S+)", subprocess.run([require_binary("prometheus"), "--version"],
                                                            capture_output=True, text=True).stdout + "")
    alertmanager_out = subprocess.run([require_binary("prometheus-alertmanager"), "--version"], capture_output=True,
                                      text=True)
    alertmanager = re.search(r"version (\S+)", alertmanager_out.stdout + alertmanager_out.stderr)
    assert prometheus and alertmanager
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (REPO_ROOT / "requirements.txt").read_text(), re.M))
    components = {c["component"]: c for c in result.evidence["components"]}
    assert components["prometheus"]["running"] == prometheus.group(1)
    assert components["alertmanager"]["running"] == alertmanager.group(1)
    for name in ("apache-airflow", "apache-airflow-providers-slack", "apache-airflow-providers-cncf-kubernetes"):
        assert components[name]["running"] == importlib.metadata.version(name)
        assert components[name]["pinned"] == pins[name]
    drift = [c for c, row in components.items() if row["verdict"] != "match"]
    assert result.evidence["drift_total"] + result.evidence["unknown_total"] == len(drift)
    assert result.status == ("warn" if drift else "pass")


def test_monthly_runbook_ages_from_git(world: World) -> None:
    result = world.results["monthly"]["monthly-runbook-freshness"]
    at = world.at["monthly"]
    paths = sorted(p.relative_to(REPO_ROOT).as_posix() for g in ("include/runbooks/*.md", "docs/*.md")
                   for p in REPO_ROOT.glob(g))
    # --cc lists the files a merge commit changed against every parent (a conflict resolved in the merge): those are
    # changes too, as git log -- <path> counts them
    log = subprocess.run(["git", "-C", str(REPO_ROOT), "log", "--format=%ct", "--name-only", "--cc"],
                         capture_output=True, text=True, check=True).stdout
    newest: dict[str, float] = {}
    stamp = 0.0
    for line in log.splitlines():
        if line.strip().isdigit():
            stamp = float(line)
        elif line.strip():
            newest.setdefault(line.strip(), stamp)
    updated = {p: newest.get(p, (REPO_ROOT / p).stat().st_mtime) for p in paths}
    data = world.inputs["monthly"]["runbooks"]
    assert isinstance(data, InputData)
    assert dict(zip(data.value["path"], data.value["updated_at"], strict=True)) == updated
    stale = sorted(p for p, t in updated.items() if at - t > 90 * DAY)
    assert result.evidence["documents_total"] == len(paths)
    assert sorted(r["path"] for r in result.evidence["stale"]) == stale
    assert result.status == ("warn" if stale else "pass")


def test_monthly_resilience_inputs_are_the_failed_probes_of_the_month(world: World) -> None:
    month = world.period("monthly")
    ev = world.results["monthly"]["monthly-resilience-inputs"].evidence
    in_month = [r for r in world.chaos if r["verdict"] != "refused" and month.start <= r["requested_at"] < month.end]
    failed: dict[tuple[str, str], list[str]] = {}
    for r in in_month:
        for p in r["probes"]:
            if any(s[2] is False for s in p["samples"]):
                failed.setdefault((r["experiment"], p["name"]), []).append(r["id"])
    assert {(h["experiment"], h["probe"]): h["runs"] for h in ev["failed_hypotheses"]} == {
        k: sorted(v) for k, v in failed.items()}
    assert ev["runs_total"] == len(in_month)
    assert world.results["monthly"]["monthly-resilience-inputs"].status == "warn"


def test_monthly_dora_from_the_deployment_rows(world: World) -> None:
    month = world.period("monthly")
    ev = world.results["monthly"]["monthly-dora"].evidence["overall"]
    prod = [r for r in _deploys(world) if "prod" in r["stages"]]
    done = _finished_in(prod, month.start, month.end)
    promoted = [r for r in done if r["outcome"] == "promoted"]
    failures = [r for r in done if r["outcome"] in ("rolled_back", "timed_out")]
    restored = [r for r in prod if r["rolled_back_at"] is not None and r["started_at"] is not None
                and month.start <= r["rolled_back_at"] < month.end]
    assert (ev["deploys"], ev["finished"], ev["failures"], ev["restores"]) == (
        len(promoted), len(done), len(failures), len(restored))
    assert len(promoted) >= 4 and restored
    assert ev["deploys_per_week"] == pytest.approx(len(promoted) / (month.seconds / WEEK))
    assert ev["lead_time_median"] == pytest.approx(float(np.median([r["finished_at"] - r["requested_at"]
                                                                    for r in promoted])))
    assert ev["change_failure_rate"] == pytest.approx(len(failures) / len(done))
    assert ev["time_to_restore_median"] == pytest.approx(float(np.median([r["rolled_back_at"] - r["started_at"]
                                                                          for r in restored])))
    assert world.results["monthly"]["monthly-dora"].status == (
        "warn" if len(failures) / len(done) > 0.15 else "pass")


# --- Prometheus down --------------------------------------------------------------------------------------


def test_with_prometheus_down_its_inputs_are_unavailable_and_only_their_items_error(world: World) -> None:
    closed = free_port()
    prometheus = PrometheusClient(f"http://127.0.0.1:{closed}", retries=0, timeout=5)
    registry = default_registry()
    spec = load_checklists()
    for cadence in CADENCES:
        items = spec.for_cadence(cadence)
        at = world.at[cadence]
        inputs = fetch_inputs(fetch_plan(items, at), at, prometheus=prometheus,
                              alertmanager=AlertmanagerClient(world.alertmanager_url), store=world.store)
        from_prometheus = {name for name in inputs if needs(name) == "prometheus"}
        for name, data in inputs.items():
            if name in from_prometheus:
                assert isinstance(data, Unavailable), name
                assert data.source == "prometheus" and f"127.0.0.1:{closed} is unreachable" in data.reason
            else:
                assert isinstance(data, InputData), f"{name}: {data}"
        if "versions_running" in inputs:
            versions = inputs["versions_running"]
            assert isinstance(versions, InputData) and versions.value["prometheus"] is None
            assert f"127.0.0.1:{closed} is unreachable" in versions.meta["errors"]["prometheus"]
            running = world.inputs["monthly"]["versions_running"]
            assert isinstance(running, InputData) and versions.value["alertmanager"] == running.value["alertmanager"]
        for result in run_checklist(items, inputs, at):
            needed = set(registry.get(next(i for i in items if i.id == result.item_id).check).inputs)
            if needed & from_prometheus:
                assert result.status == "error", result.item_id
                assert f"Prometheus at http://127.0.0.1:{closed} is unreachable" in result.summary
                assert result.evidence["inputs"][next(iter(needed & from_prometheus))]["unavailable"]
            elif result.item_id == "monthly-stack-versions":  # the Prometheus version is unknown now: a warn
                prometheus_row = next(c for c in result.evidence["components"] if c["component"] == "prometheus")
                assert (result.status, prometheus_row["verdict"]) == ("warn", "unknown")
                assert result.evidence["unknown_total"] == 1 + world.results[cadence][result.item_id].evidence[
                    "unknown_total"]
            else:
                assert result.status == world.results[cadence][result.item_id].status, result.item_id


def test_a_system_without_a_client_makes_its_inputs_unavailable_saying_so(world: World) -> None:
    at = world.at["daily"]
    plan = fetch_plan(load_checklists().for_cadence("daily"), at)
    inputs = fetch_inputs(plan, at, prometheus=None, alertmanager=None, store=world.store)
    reasons = {"prometheus": "prometheus: no Prometheus client configured",
               "alertmanager": "alertmanager: no Alertmanager client configured"}
    for name, data in inputs.items():
        if needs(name) in reasons:
            assert isinstance(data, Unavailable) and (data.source, data.reason) == (needs(name), reasons[needs(name)])
        else:
            assert isinstance(data, InputData), name
    results = by_id(run_checklist(load_checklists().for_cadence("daily"), inputs, at))
    assert results["daily-alerts"].status == "error" and reasons["alertmanager"] in results["daily-alerts"].summary
