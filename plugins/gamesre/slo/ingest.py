"""SLO ingest: Prometheus -> per-minute (good, total) slices of every SLO -> the ledger.

Pure orchestration over two small ports (a Prometheus source and a ledger sink), so it can be driven by the
Airflow DAG, the CLI and the benchmarks alike. Backfills use one raw-sample query per selector per chunk of
up to `chunk` seconds (never one query per slice), so 35 days of history take a few hundred queries.

Ratio SLIs: raw counter samples -> exact minute counts (see gamesre.slo.slicing).
Threshold SLIs: the SLI's per-minute PromQL evaluated by a range query at step 60 s on the minute edges;
1 means a good minute, 0 a bad one, no value no data.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from gamesre.slo.slicing import SLICE, MinuteCounts, Series, minute_counts, slice_ratio_pairs
from gamesre.slo.spec import RatioSli, Selector, Slo, ThresholdSli

LOOKBACK = 300  # seconds before a chunk fetched to know each counter's value at the chunk's first edge
DEFAULT_CHUNK = 6 * 3600


class RawSeriesLike(Protocol):
    @property
    def t(self) -> np.ndarray: ...

    @property
    def v(self) -> np.ndarray: ...


class PrometheusSource(Protocol):
    def raw_samples(self, selector: str, start: float, end: float) -> Sequence[RawSeriesLike]: ...

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]: ...


class LedgerSink(Protocol):
    def upsert_ledger(self, slo: str, slices: Iterable[tuple[int, float, float]]) -> int: ...


class IngestError(RuntimeError):
    """Ingest failed for one or more SLOs; the message names each SLO and why. Other SLOs were written."""

    def __init__(self, failures: dict[str, str]):
        self.failures = failures
        super().__init__("; ".join(f"SLO {name!r}: {reason}" for name, reason in sorted(failures.items())))


@dataclass
class IngestResult:
    slo: str
    start: int
    end: int
    slices_written: int = 0
    minutes_without_data: int = 0
    queries: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"slo": self.slo, "start": self.start, "end": self.end, "slices_written": self.slices_written,
                "minutes_without_data": self.minutes_without_data, "queries": len(self.queries)}


def align_down(ts: float) -> int:
    return int(math.floor(ts / SLICE) * SLICE)


def chunks(start: int, end: int, size: int) -> list[tuple[int, int]]:
    if size % SLICE:
        raise ValueError("chunk size must be a whole number of minutes")
    return [(s, min(s + size, end)) for s in range(start, end, size)]


def _counts(prom: PrometheusSource, selectors: Sequence[Selector], start: int, end: int,
            queries: list[str]) -> MinuteCounts:
    fetch_start = start - LOOKBACK
    series: list[Series] = []
    for selector in selectors:
        expr = selector.promql()
        queries.append(f"{expr}[{end - fetch_start}s] @ {end}")
        series.extend(Series(s.t, s.v) for s in prom.raw_samples(expr, fetch_start, end))
    return minute_counts(series, start, end, fetch_start=fetch_start)


def _ratio_slices(prom: PrometheusSource, sli: RatioSli, start: int, end: int,
                  queries: list[str]) -> list[tuple[int, float, float]]:
    total = _counts(prom, sli.total_selectors(), start, end, queries)
    if sli.uses_bad:
        bad = _counts(prom, sli.bad_selectors(), start, end, queries)
        return slice_ratio_pairs(bad, total, good_is_bad=True)
    good = _counts(prom, sli.good_selectors(), start, end, queries)
    return slice_ratio_pairs(good, total)


def _threshold_slices(prom: PrometheusSource, sli: ThresholdSli, start: int, end: int,
                      queries: list[str]) -> list[tuple[int, float, float]]:
    expr = sli.promql()
    queries.append(f"query_range({expr}, {start + SLICE}..{end}, step=60s)")
    result = prom.query_range(expr, start + SLICE, end, SLICE)
    if len(result) > 1:
        raise ValueError(f"the threshold SLI query returned {len(result)} series, expected one: {expr}")
    rows = []
    for ts, value in (result[0].get("values", []) if result else []):
        minute = round(float(ts)) - SLICE
        v = float(value)
        if not math.isfinite(v) or minute < start or minute >= end:
            continue
        if v not in (0.0, 1.0):
            raise ValueError(f"the threshold SLI query must give 0 or 1 per minute, got {v} at {minute + SLICE}")
        rows.append((minute, v, 1.0))
    return rows


def ingest_slo(slo: Slo, prom: PrometheusSource, sink: LedgerSink, start: int, end: int,
               *, chunk: int = DEFAULT_CHUNK) -> IngestResult:
    """Write the ledger slices of one SLO for the minutes [start, end); re-running overwrites identically."""
    if start % SLICE or end % SLICE or end <= start:
        raise ValueError(f"ingest interval must be whole minutes with end after start, got {start}..{end}")
    result = IngestResult(slo.name, start, end)
    for cs, ce in chunks(start, end, chunk):
        if isinstance(slo.sli, RatioSli):
            rows = _ratio_slices(prom, slo.sli, cs, ce, result.queries)
        else:
            rows = _threshold_slices(prom, slo.sli, cs, ce, result.queries)
        result.slices_written += sink.upsert_ledger(slo.name, rows)
        result.minutes_without_data += (ce - cs) // SLICE - len(rows)
    return result


def catch_up_start(last_minute: int | None, start: int, end: int, max_backfill: int) -> int:
    """Where an interval's ingest really starts: back at the first minute missing from the ledger.

    `last_minute` is the ledger's newest slice of the SLO (None when it has none). A gap behind `start`
    is filled, but never from further back than `end - max_backfill` seconds.
    """
    floor = end - max_backfill
    if last_minute is None:
        return min(start, floor)
    if last_minute + SLICE < start:
        return max(last_minute + SLICE, floor)
    return start


def ingest_all(slos: Iterable[Slo], prom: PrometheusSource, sink: LedgerSink, start: int, end: int,
               *, chunk: int = DEFAULT_CHUNK, starts: Mapping[str, int] | None = None) -> list[IngestResult]:
    """Ingest every SLO; one SLO's failure does not stop the others, and all failures are raised together.

    `starts` may give an SLO its own start (e.g. from catch_up_start); the others start at `start`.
    """
    results, failures = [], {}
    for slo in slos:
        try:
            slo_start = (starts or {}).get(slo.name, start)
            results.append(ingest_slo(slo, prom, sink, slo_start, end, chunk=chunk))
        except Exception as exc:  # collected per SLO and raised below: no SLO is skipped silently
            failures[slo.name] = f"{type(exc).__name__}: {exc}"
    if failures:
        raise IngestError(failures)
    return results
