"""Benchmark: backfill the ledger with 35 days x 6 SLOs from a real Prometheus holding the demo's history.

Starts a Prometheus (the Debian package) on a free loopback port over 35 days of the demo's backfilled history,
then times the ingest of every SLO of include/config/slos.yaml over those 35 days into a fresh store, with
the same code the slo_ingest DAG runs (chunked raw-sample queries). Also reports the number of queries,
against the one-query-per-slice alternative it avoids.

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
from gamesre.slo.ingest import ingest_slo  # noqa: E402
from gamesre.slo.spec import load_slos  # noqa: E402


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
        finally:
            prom_process.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
