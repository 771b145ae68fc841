"""SLO ingest: Prometheus -> per-minute (good, total) slices of every SLO -> the ledger.

Pure orchestration over two small ports (a Prometheus source and a ledger sink), so it can be driven by the
Airflow DAG, the CLI and the benchmarks alike. Backfills use one raw-sample query per selector per chunk of
up to `chunk` seconds (never one query per slice), so 35 days of history take a few hundred queries.

Ratio SLIs: raw counter samples -> exact minute counts (see gamesre.slo.slicing). A series without a sample
in the chunk's lookback (a scrape gap across the chunk's start, or a new series) has its last value before
the chunk looked up: first an hour back for the whole selector, then up to PRIOR_HORIZON for the series still
unknown, each pinned by all its labels (so the long look-up reads the samples of those series only). Found,
it continues from that value; not found, it is new and counts from zero. So the ledger does not depend on
where an ingest starts.
Threshold SLIs: the SLI's per-minute PromQL evaluated by a range query at step 60 s on the minute edges;
1 means a good minute, 0 a bad one, no value no data.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from gamesre.core.time import iso
from gamesre.slo.selectors import escape
from gamesre.slo.slicing import SLICE, MinuteCounts, Row, Series, minute_counts, ratio_rows, row_spans
from gamesre.slo.spec import RatioSli, Selector, Slo, ThresholdSli

LOOKBACK = 300  # seconds before a chunk fetched with its samples: a series scraped at least this often needs no lookup
SHORT_LOOKUP = 3600  # the first look-up, for the whole selector: answers every scrape gap shorter than an hour
PRIOR_HORIZON = 35 * 86400  # how far back a series' last value is looked for before it counts as new
DEFAULT_CHUNK = 6 * 3600


class RawSeriesLike(Protocol):
    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def t(self) -> np.ndarray: ...

    @property
    def v(self) -> np.ndarray: ...


class PrometheusSource(Protocol):
    def raw_samples(self, selector: str, start: float, end: float) -> Sequence[RawSeriesLike]: ...

    def last_values(self, selectors: Sequence[str], at: float, lookback: float
                    ) -> Sequence[tuple[Mapping[str, str], float]]: ...

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]: ...


class LedgerSink(Protocol):
    def upsert_ledger(self, slo: str, slices: Iterable[tuple[int, float, float, int]]) -> int: ...

    def ledger_row_before(self, slo: str, minute: int) -> int | None: ...


@dataclass
class IngestResult:
    """What one SLO's ingest wrote: [start, written_until) is done; [written_until, end) is not (after an error)."""

    slo: str
    start: int
    end: int
    written_until: int = 0
    slices_written: int = 0
    minutes_without_data: int = 0
    queries: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.written_until >= self.end

    def describe(self) -> str:
        """One line for a task log or a terminal: the range written, and the range not written and why."""
        done = (self.written_until - self.start) // SLICE
        whole = (self.end - self.start) // SLICE
        queries = len(self.queries)
        counts = (f"{self.slices_written:,} slices, {self.minutes_without_data:,} minutes without data, "
                  f"{queries} quer{'y' if queries == 1 else 'ies'}")
        if self.complete:
            return f"{self.slo}: written {_span(self.start, self.end)} in full ({counts})"
        written = f"written {_span(self.start, self.written_until)}" if done else "nothing written"
        return (f"{self.slo}: {written} ({done:,} of {whole:,} minutes; {counts}); NOT written "
                f"{_span(self.written_until, self.end)}: {self.error}")

    def to_dict(self) -> dict[str, Any]:
        return {"slo": self.slo, "start": self.start, "end": self.end, "written_until": self.written_until,
                "slices_written": self.slices_written, "minutes_without_data": self.minutes_without_data,
                "queries": len(self.queries), "error": self.error}


def _span(start: int, end: int) -> str:
    return f"{iso(start)}..{iso(end)}"


class SloIngestFailed(RuntimeError):
    """One SLO's ingest stopped; `result` says what was written before it did."""

    def __init__(self, result: IngestResult):
        self.result = result
        super().__init__(result.describe())


class IngestError(RuntimeError):
    """Ingest failed for one or more SLOs; the message names each SLO, what was written and why the rest was
    not. The other SLOs were written (`results`), and the next run continues each SLO where it stopped."""

    def __init__(self, failed: Sequence[IngestResult], results: Sequence[IngestResult] = ()):
        self.failed = list(failed)
        self.results = list(results)
        self.failures = {r.slo: r.error or "" for r in self.failed}
        super().__init__("; ".join(r.describe() for r in sorted(self.failed, key=lambda r: r.slo)))


def align_down(ts: float) -> int:
    return int(math.floor(ts / SLICE) * SLICE)


def chunks(start: int, end: int, size: int) -> list[tuple[int, int]]:
    if size % SLICE:
        raise ValueError("chunk size must be a whole number of minutes")
    return [(s, min(s + size, end)) for s in range(start, end, size)]


Key = frozenset[tuple[str, str]]


def _key(labels: Mapping[str, str]) -> Key:
    return frozenset((k, v) for k, v in labels.items() if k != "__name__")


def series_selector(labels: Mapping[str, str]) -> str:
    """A selector of exactly one series: every label of it pinned, the metric name included."""
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in sorted(labels.items())) + "}"


def _priors(prom: PrometheusSource, expr: str, start: int, pending: Mapping[Key, Mapping[str, str]],
            queries: list[str]) -> dict[Key, float]:
    """The last value before `start` of each pending series that has one within PRIOR_HORIZON."""
    found: dict[Key, float] = {}
    queries.append(f"last_over_time({expr}[{SHORT_LOOKUP}s]) @ {start}")
    for labels, value in prom.last_values([expr], start, SHORT_LOOKUP):
        if _key(labels) in pending:
            found[_key(labels)] = value
    unknown = [series_selector(labels) for key, labels in pending.items() if key not in found]
    if unknown:
        queries.append(f"last_over_time(<{len(unknown)} series>[{PRIOR_HORIZON}s]) @ {start}")
        for labels, value in prom.last_values(unknown, start, PRIOR_HORIZON):
            if _key(labels) in pending:
                found[_key(labels)] = value
    return found


def _counts(prom: PrometheusSource, selectors: Sequence[Selector], start: int, end: int,
            queries: list[str]) -> MinuteCounts:
    fetch_start = start - LOOKBACK
    series: list[Series] = []
    for selector in selectors:
        expr = selector.promql()
        queries.append(f"{expr}[{end - fetch_start}s] @ {end}")
        raw = [s for s in prom.raw_samples(expr, fetch_start, end) if s.t.size]
        pending = {_key(s.labels): s.labels for s in raw if float(np.min(s.t)) > start}
        priors = _priors(prom, expr, start, pending, queries) if pending else {}
        series.extend(Series(s.t, s.v, priors.get(_key(s.labels))) for s in raw)
    return minute_counts(series, start, end)


def _ratio_rows(prom: PrometheusSource, sli: RatioSli, start: int, end: int, previous_row: int | None,
                queries: list[str]) -> list[Row]:
    total = _counts(prom, sli.total_selectors(), start, end, queries)
    if previous_row is not None and previous_row < start - PRIOR_HORIZON:
        previous_row = None  # a gap longer than the horizon: its events cannot be in the rows after it
    spans = row_spans(total, previous_row)
    if sli.uses_bad:
        bad = _counts(prom, sli.bad_selectors(), start, end, queries)
        return ratio_rows(bad, total, spans, good_is_bad=True)
    good = _counts(prom, sli.good_selectors(), start, end, queries)
    return ratio_rows(good, total, spans)


def _threshold_rows(prom: PrometheusSource, sli: ThresholdSli, start: int, end: int,
                    queries: list[str]) -> list[Row]:
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
        rows.append(Row(minute, v, 1.0))
    return rows


def ingest_slo(slo: Slo, prom: PrometheusSource, sink: LedgerSink, start: int, end: int,
               *, chunk: int = DEFAULT_CHUNK) -> IngestResult:
    """Write the ledger rows of one SLO for the minutes [start, end); re-running overwrites identically.

    Chunks are written in time order, each in one transaction. When one fails, SloIngestFailed carries the
    result: the chunks before it are written, nothing after it is.
    """
    if start % SLICE or end % SLICE or end <= start:
        raise ValueError(f"ingest interval must be whole minutes with end after start, got {start}..{end}")
    result = IngestResult(slo.name, start, end, written_until=start)
    try:
        previous_row = sink.ledger_row_before(slo.name, start) if isinstance(slo.sli, RatioSli) else None
        for cs, ce in chunks(start, end, chunk):
            if isinstance(slo.sli, RatioSli):
                rows = _ratio_rows(prom, slo.sli, cs, ce, previous_row, result.queries)
            else:
                rows = _threshold_rows(prom, slo.sli, cs, ce, result.queries)
            result.slices_written += sink.upsert_ledger(slo.name, [r.astuple() for r in rows])
            result.minutes_without_data += (ce - cs) // SLICE - len(rows)
            result.written_until = ce
            if rows:
                previous_row = rows[-1].minute
    except Exception as exc:  # handed on with what was written: the caller reports it, the next run continues
        result.error = f"{type(exc).__name__}: {exc}"
        raise SloIngestFailed(result) from exc
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
    results, failed = [], []
    for slo in slos:
        slo_start = (starts or {}).get(slo.name, start)
        try:
            results.append(ingest_slo(slo, prom, sink, slo_start, end, chunk=chunk))
        except SloIngestFailed as exc:
            failed.append(exc.result)
        except Exception as exc:  # a bad interval: nothing written, named like any other failure
            failed.append(IngestResult(slo.name, slo_start, end, slo_start, error=f"{type(exc).__name__}: {exc}"))
    if failed:
        raise IngestError(failed, results)
    return results
