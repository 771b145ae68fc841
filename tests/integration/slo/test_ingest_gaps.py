"""The ledger through scrape gaps, against a real Prometheus holding a promtool-backfilled history.

The history: three game-server instances scraped every 15 s for three hours; instance i1 is unscraped for
20 minutes while it keeps serving (a target flap), i2 restarts (its counters reset), a fourth instance is born
mid-history. Ingested in 5-minute runs as the slo_ingest DAG runs (each run starts where the ledger stops), the
ledger must equal the rows computed from the whole history, exactly; so must one long ingest.
"""
from __future__ import annotations

import math
import subprocess
from datetime import UTC, datetime

import numpy as np
import pytest

from demo.procs import free_port
from demo.services import render_prometheus_config, start_prometheus
from gamesre.integrations.prometheus import PrometheusClient
from gamesre.integrations.store import SREStore
from gamesre.slo.budget import Ledger, compute_snapshot
from gamesre.slo.ingest import PRIOR_HORIZON, catch_up_start, ingest_all, ingest_slo, series_selector
from gamesre.slo.spec import load_slos
from tests.fakes.counter_history import CounterSeries, expected_rows

pytestmark = pytest.mark.integration

SCRAPE = 15
HOURS = 3
FLAP = (3600 + 7, 3600 + 1207)  # i1 unscraped for 20 minutes, still serving
OUTAGE = (9000 + 3, 9600 + 3)  # nothing scraped for 10 minutes (Prometheus down)


def build_history(start: int) -> tuple[list[CounterSeries], dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]]:
    """The stored series, and what each served: (tick times, events per tick), scraped or not."""
    rng = np.random.default_rng(3)
    series, served = [], {}
    instances = {"i0": (start, None, None), "i1": (start, FLAP, None), "i2": (start, None, start + 5400 + 3),
                 "i3": (start + 2 * 3600 + 1234, None, None)}
    for instance, (born, flap, restart) in instances.items():
        ticks = np.arange(born, start + HOURS * 3600, SCRAPE, dtype=np.float64)
        unscraped = (ticks >= start + OUTAGE[0]) & (ticks < start + OUTAGE[1])
        if flap is not None:
            unscraped |= (ticks >= start + flap[0]) & (ticks < start + flap[1])
        events = {"200": rng.integers(20, 60, ticks.size), "500": rng.integers(0, 2, ticks.size)}
        for code, increments in events.items():
            values = np.cumsum(increments).astype(np.float64)
            if restart is not None:  # the process restarted: its counters start again from zero
                after = ticks >= restart
                values[after] = np.cumsum(increments[after])
            series.append(CounterSeries({"service": "game-server", "instance": instance, "code": code},
                                        ticks[~unscraped], values[~unscraped]))
            served[(instance, code)] = (ticks, increments.astype(np.float64))
    return series, served


def openmetrics(series: list[CounterSeries]) -> str:
    lines = ["# HELP game_action_requests Game actions.", "# TYPE game_action_requests counter"]
    for s in series:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        lines += [f"game_action_requests_total{{{labels}}} {v:.0f} {t:.3f}" for t, v in zip(s.t, s.v, strict=True)]
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def gap_history(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("gap-history")
    end = int(datetime.now(UTC).timestamp()) // 3600 * 3600 - 3600
    start = end - HOURS * 3600
    series, served = build_history(start)
    source = work / "history.om"
    source.write_text(openmetrics(series))
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(work / "data")],
                   check=True, capture_output=True, timeout=300)
    port = free_port()
    prometheus = start_prometheus(work, port, render_prometheus_config([]), data_dir=work / "data", timeout=120)
    try:
        yield PrometheusClient(f"http://127.0.0.1:{port}"), series, served, start, end
    finally:
        prometheus.stop()


def test_five_minute_runs_through_scrape_gaps_give_the_exact_ledger(gap_history, tmp_path) -> None:
    prom, series, served, start, end = gap_history
    slo = load_slos()["availability"]
    first = start + 600
    truth = expected_rows(series, [s for s in series if s.labels["code"] == "200"], first, end)
    runs = SREStore(f"sqlite:///{tmp_path / 'runs.db'}")
    for run_end in range(first + 300, end + 1, 300):  # the DAG's runs, each from where the ledger stops
        extent = runs.ledger_extent(slo.name)
        run_start = max(first, catch_up_start(extent[1] if extent else None, run_end - 300, run_end, 86400))
        ingest_all([slo], prom, runs, run_end - 300, run_end, starts={slo.name: run_start})
    once = SREStore(f"sqlite:///{tmp_path / 'once.db'}")
    ingest_slo(slo, prom, once, first, end)
    for store in (runs, once):
        got = store.ledger(slo.name)
        assert list(zip(got.minutes.tolist(), got.good.tolist(), got.total.tolist(), got.span.tolist(),
                        strict=True)) == truth

    # every event served after the ledger's first minute is counted once, the unscraped ones included
    events = sum(float(inc[ticks > first].sum()) for ticks, inc in served.values())
    assert sum(r[2] for r in truth) == events
    # i1's 20 unscraped minutes land in the minute it is scraped again; the others kept the minutes covered
    back = next(r for r in truth if r[0] == start + FLAP[1] // 60 * 60)
    assert back[2] > 5 * np.median([r[2] for r in truth]) and back[3] == 1
    # Prometheus down for 10 minutes: the first minute after carries them and covers the 10 minutes
    spans = {r[0]: r[3] for r in truth if r[3] > 1}
    assert spans == {start + 9600: 11}

    # the budget is what a Prometheus that missed nothing would give: every event served, in its own minute
    seen = {m: [0.0, 0.0] for m in range(first, end, 60)}
    for (_, code), (ticks, inc) in served.items():
        for t, n in zip(ticks.tolist(), inc.tolist(), strict=True):
            m = math.ceil(t / 60) * 60 - 60  # the minute (m, m+60] holding t
            if m in seen:
                seen[m][1] += n
                seen[m][0] += n if code == "200" else 0.0
    served_ledger = Ledger.from_rows([(m, g, t) for m, (g, t) in seen.items()])
    ingested = runs.ledger(slo.name)
    for window in ("rolling-30d", "calendar-month"):
        exact = compute_snapshot(slo, served_ledger, end, window_override=window)
        got = compute_snapshot(slo, Ledger(ingested.minutes, ingested.good, ingested.total, ingested.span), end,
                               window_override=window)
        assert got.coverage == exact.coverage == pytest.approx(len(seen) / exact.elapsed_minutes)
        assert got.budget_consumed == pytest.approx(exact.budget_consumed, rel=1e-12), window


def test_a_look_up_pins_each_unknown_series_and_finds_its_last_value_far_back(gap_history) -> None:
    prom, series, _, start, _ = gap_history
    at = start + FLAP[0] + 900  # 15 minutes into i1's flap
    i1 = [s for s in series if s.labels["instance"] == "i1"]
    pinned = [series_selector({"__name__": "game_action_requests_total", **s.labels}) for s in i1]
    never = series_selector({"__name__": "game_action_requests_total", "instance": "i9", "code": "200",
                             "service": "game-server"})
    found = prom.last_values([*pinned, never], at, PRIOR_HORIZON, batch=2)  # two queries of `or`-ed look-ups
    assert sorted((labels["code"], value) for labels, value in found) == sorted(
        (s.labels["code"], float(s.v[s.t <= at][-1])) for s in i1)
