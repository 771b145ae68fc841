"""Benchmark: backfill the ledger with 35 days x 6 SLOs from a real Prometheus holding the demo's history.

Starts a Prometheus (the Debian package) on a free loopback port over 35 days of the demo's backfilled history,
then times the ingest of every SLO of include/config/slos.yaml over those 35 days into a fresh store, with
the same code the slo_ingest DAG runs (chunked raw-sample queries). Also reports the number of queries,
against the one-query-per-slice alternative it avoids; what one 5-minute run costs once the ledger is caught
up; and what the look-back for a gap or a new series costs per selector (1 hour, then 35 days).

    python benchmarks/slo_backfill.py [--days 35] [--chunk-hours 6]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "plugins")]

from demo.history import backfill  # noqa: E402
from demo.procs import free_port  # noqa: E402
from demo.services import render_prometheus_config, start_prometheus  # noqa: E402
from gamesre.integrations.prometheus import PrometheusClient  # noqa: E402
from gamesre.integrations.store import SREStore  # noqa: E402
from gamesre.slo.ingest import PRIOR_HORIZON, SHORT_LOOKUP, ingest_slo, series_selector  # noqa: E402
from gamesre.slo.spec import RatioSli, load_slos  # noqa: E402


def five_minute_run(prom: PrometheusClient, store: SREStore, end: int) -> None:
    """What one slo_ingest run costs once the ledger is caught up: its queries per SLO and its time."""
    print("one 5-minute run over the last 5 minutes (ledger caught up):")
    for slo in load_slos():
        t = time.perf_counter()
        result = ingest_slo(slo, prom, store, end - 300, end)
        print(f"  {slo.name:22s} queries: {len(result.queries)}, {1000 * (time.perf_counter() - t):5.0f} ms")


def lookups(prom: PrometheusClient, end: int) -> None:
    """The look-ups a chunk makes for series without a sample in its lookback (a gap across its start, or new
    series): the whole selector an hour back; then each still unknown series, pinned by its labels, over the
    whole horizon (timed here for one series and for every series of the selector)."""
    print("looking up the last value before a chunk, per selector (only for gaps and new series):")
    at = end - 3600
    for slo in load_slos():
        if not isinstance(slo.sli, RatioSli):
            continue
        part = slo.sli.bad_selectors() if slo.sli.uses_bad else slo.sli.good_selectors()
        for selector in sorted({s.promql() for s in [*slo.sli.total_selectors(), *part]}):
            t = time.perf_counter()
            found = prom.last_values([selector], at, SHORT_LOOKUP)
            short = time.perf_counter() - t
            pinned = [series_selector({"__name__": selector.split("{")[0], **labels}) for labels, _ in found]
            t = time.perf_counter()
            prom.last_values(pinned[:1], at, PRIOR_HORIZON)
            one = time.perf_counter() - t
            t = time.perf_counter()
            prom.last_values(pinned, at, PRIOR_HORIZON)
            every = time.perf_counter() - t
            print(f"  {selector[:70]:70s} {len(found):3d} series; 1 h: {1000 * short:4.0f} ms; 35 d: one series "
                  f"{1000 * one:4.0f} ms, all {1000 * every:5.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--chunk-hours", type=int, default=6)
    args = parser.parse_args()
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        backfill(work / "data", end=end, days=args.days, seed=1)
        print(f"history: {args.days} days backfilled into TSDB blocks in {time.perf_counter() - t:.0f} s")
        port = free_port()
        prom_process = start_prometheus(work, port, render_prometheus_config([]), data_dir=work / "data",
                                        timeout=180)
        try:
            prom = PrometheusClient(f"http://127.0.0.1:{port}", timeout=120)
            store = SREStore(f"sqlite:///{work / 'sre.db'}")
            start = int((end - timedelta(days=args.days)).timestamp())
            stop = int(end.timestamp())
            total_start = time.perf_counter()
            queries = slices = 0
            for slo in load_slos():
                t = time.perf_counter()
                result = ingest_slo(slo, prom, store, start, stop, chunk=args.chunk_hours * 3600)
                queries += len(result.queries)
                slices += result.slices_written
                print(f"  {slo.name:22s} {result.slices_written:7,d} slices, {len(result.queries):4d} queries, "
                      f"{time.perf_counter() - t:5.1f} s")
            elapsed = time.perf_counter() - total_start
            per_slice = slices * 2  # one query for good and one for total per slice, the naive way
            print(f"backfill of {args.days} days x {len(load_slos())} SLOs: {elapsed:.0f} s, {slices:,} slices, "
                  f"{queries} queries (one per slice would be ~{per_slice:,}); target under 300 s -> "
                  f"{'met' if elapsed < 300 else 'NOT met'}")
            five_minute_run(prom, store, stop)
            lookups(prom, stop)
        finally:
            prom_process.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
