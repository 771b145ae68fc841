"""Benchmark: a 30-day error-budget report for 100 SLOs, read from the ledger of a real SRE store.

Fills a fresh store (SQLite file by default, or --store URL) with 31 days of per-minute slices for 100 SLOs
(copies of the six spec SLOs under new names, with random traffic and errors), then times what the hourly
report does: read each SLO's ledger, compute its snapshot, evaluate its policy state. For comparison, in the
same run, it also times reading the same rows one per minute from slo_ledger (what the packed days avoid).

    python benchmarks/slo_report.py [--slos 100] [--days 31] [--store URL] [--repeat 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "plugins")]

from gamesre.integrations.store import SREStore, slo_ledger  # noqa: E402
from gamesre.slo.evaluation import evaluate_slos  # noqa: E402
from gamesre.slo.spec import load_policies, load_slos  # noqa: E402


def build_catalog(n: int) -> list:
    base = list(load_slos())
    return [base[i % len(base)].model_copy(update={"name": f"{base[i % len(base)].name}-{i:03d}"})
            for i in range(n)]


def fill(store: SREStore, slos: list, end: datetime, days: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    start = int((end - timedelta(days=days)).timestamp()) // 60 * 60
    minutes = np.arange(start, int(end.timestamp()) // 60 * 60, 60)
    rows = 0
    for slo in slos:
        total = rng.poisson(600, minutes.size).astype(float)
        if slo.sli.kind == "threshold":
            total = np.ones(minutes.size)
        good = total - rng.binomial(total.astype(int), 0.0005)
        rows += store.upsert_ledger(slo.name, zip(minutes.tolist(), good.tolist(), total.tolist(), strict=True))
    return rows


def time_report(store: SREStore, slos: list, at: datetime) -> float:
    policy = load_policies()
    started = time.perf_counter()
    evaluated = evaluate_slos(slos, policy, store, at)
    elapsed = time.perf_counter() - started
    assert len(evaluated) == len(slos) and all(e.snapshot.sli is not None for e in evaluated)
    return elapsed


def time_row_reads(store: SREStore, slos: list, at: datetime) -> float:
    lo = int((at - timedelta(days=35)).timestamp())
    started = time.perf_counter()
    with store.engine.connect() as conn:
        for slo in slos:
            q = sa.select(slo_ledger.c.minute, slo_ledger.c.good, slo_ledger.c.total).where(
                slo_ledger.c.slo == slo.name, slo_ledger.c.minute >= lo).order_by(slo_ledger.c.minute)
            np.asarray(conn.execute(q).all(), dtype=np.float64)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slos", type=int, default=100)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--store", help="SQLAlchemy URL of an EMPTY store (default: a temp SQLite file)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SREStore(args.store or f"sqlite:///{Path(tmp) / 'sre.db'}")
        slos = build_catalog(args.slos)
        at = datetime.now(UTC).replace(second=0, microsecond=0)
        started = time.perf_counter()
        rows = fill(store, slos, at, args.days, seed=1)
        print(f"filled {rows:,} ledger slices for {len(slos)} SLOs in {time.perf_counter() - started:.1f} s "
              f"({store.dialect})")
        report = [time_report(store, slos, at) for _ in range(args.repeat)]
        rows_read = [time_row_reads(store, slos, at) for _ in range(args.repeat)]
        r, w = statistics.median(report), statistics.median(rows_read)
        print(f"30-day report for {len(slos)} SLOs (read + snapshot + policy): median {r:.2f} s of {report}")
        print(f"reading the same minutes row by row (no snapshot at all):   median {w:.2f} s")
        print(f"ratio row reads / packed report: {w / r:.1f}x; target: report under 2 s -> "
              f"{'met' if r < 2 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
