"""Counter histories for the ledger tests: an in-memory Prometheus over known samples, an in-memory ledger, and
the ledger's expected rows computed the slow, obvious way from the whole history.

The reference (`expected_rows`) is written from the definition in docs/slo.md, independently of
gamesre.slo.slicing: plain loops over every sample of every series, no chunks, no lookback, no lookups.
"""
from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

SLICE = 60


@dataclass(frozen=True)
class CounterSeries:
    """Every sample ever stored of one counter series (times in seconds, sorted)."""

    labels: Mapping[str, str]
    t: np.ndarray
    v: np.ndarray

    def cumulative(self) -> list[float]:
        """Events counted up to each sample: the first value (the series was born at zero), then every increase,
        a drop being a restart from zero."""
        out: list[float] = []
        for i, value in enumerate(self.v.tolist()):
            if i == 0:
                out.append(value)
            else:
                before = self.v[i - 1]
                out.append(out[-1] + (value - before if value >= before else value))
        return out


class FakePrometheus:
    """The two Prometheus reads the ingest makes, over fixed series per selector (`metric{matchers}`).

    A look-up may also name one series by all its labels, as `{__name__="metric",label="value",...}`.
    `left_open` picks Prometheus 3's range selectors (start, end]; Prometheus 2 includes the start.
    """

    def __init__(self, series: Mapping[str, Sequence[CounterSeries]], *, left_open: bool = False):
        self.series = {selector: [CounterSeries({"__name__": selector.split("{")[0], **s.labels}, s.t, s.v)
                                  for s in found] for selector, found in series.items()}
        self.left_open = left_open
        self.calls: list[tuple[str, Sequence[str], float, float]] = []

    def _inside(self, t: np.ndarray, start: float, end: float) -> np.ndarray:
        return ((t > start) if self.left_open else (t >= start)) & (t <= end)

    def _select(self, selector: str) -> list[CounterSeries]:
        if selector in self.series:
            return list(self.series[selector])
        pinned = dict(re.findall(r'([a-zA-Z_]+)="([^"]*)"', selector))
        every = {tuple(sorted(s.labels.items())): s for found in self.series.values() for s in found}
        return [s for s in every.values() if dict(s.labels) == pinned]

    def raw_samples(self, selector: str, start: float, end: float) -> list[CounterSeries]:
        self.calls.append(("raw", [selector], start, end))
        out = []
        for s in self._select(selector):
            keep = self._inside(s.t, start, end)
            if keep.any():
                out.append(CounterSeries(s.labels, s.t[keep], s.v[keep]))
        return out

    def last_values(self, selectors: Sequence[str], at: float, lookback: float) -> list[tuple[dict[str, str], float]]:
        self.calls.append(("last", selectors, at, lookback))
        out = []
        for selector in selectors:
            for s in self._select(selector):
                keep = np.flatnonzero(self._inside(s.t, at - lookback, at))
                if keep.size:
                    out.append(({k: v for k, v in s.labels.items() if k != "__name__"}, float(s.v[keep[-1]])))
        return out

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        raise AssertionError("a ratio SLI never asks for a range query")


@dataclass
class MemoryLedger:
    """The ledger sink in memory: (minute -> (good, total, span)) per SLO."""

    rows: dict[str, dict[int, tuple[float, float, int]]] = field(default_factory=dict)

    def upsert_ledger(self, slo: str, slices: Iterable[tuple[int, float, float, int]]) -> int:
        items = list(slices)
        for minute, good, total, span in items:
            assert minute % SLICE == 0 and 0 <= good <= total and span >= 1, (minute, good, total, span)
            self.rows.setdefault(slo, {})[minute] = (good, total, span)
        return len(items)

    def ledger_row_before(self, slo: str, minute: int) -> int | None:
        earlier = [m for m in self.rows.get(slo, {}) if m < minute]
        return max(earlier) if earlier else None

    def ledger_extent(self, slo: str) -> tuple[int, int] | None:
        minutes = self.rows.get(slo, {})
        return (min(minutes), max(minutes)) if minutes else None

    def table(self, slo: str) -> list[tuple[int, float, float, int]]:
        return [(m, *v) for m, v in sorted(self.rows.get(slo, {}).items())]


def _value_at(times: list[float], cum: list[float], at: float) -> float:
    """Events counted up to the last sample at or before `at` (0 before the first sample)."""
    i = bisect.bisect_right(times, at)
    return cum[i - 1] if i else 0.0


def _sampled(times: list[float], a: float, b: float) -> bool:
    i = bisect.bisect_right(times, a)
    return i < len(times) and times[i] <= b


def minute_increase(series: Sequence[CounterSeries], start: int, end: int) -> dict[int, tuple[float, bool, bool]]:
    """Per minute m in [start, end): (events counted in (m, m+60], some series sampled in it, some series sampled
    in it that also has a sample at or before m)."""
    histories = [(s.t.tolist(), s.cumulative()) for s in series]
    out = {}
    for m in range(start, end, SLICE):
        count, sampled, carried = 0.0, False, False
        for times, cum in histories:
            if _sampled(times, m, m + SLICE):
                count += _value_at(times, cum, m + SLICE) - _value_at(times, cum, m)
                sampled = True
                carried |= times[0] <= m
        out[m] = (count, sampled, carried)
    return out


def expected_rows(total: Sequence[CounterSeries], good: Sequence[CounterSeries], start: int, end: int, *,
                  good_is_bad: bool = False) -> list[tuple[int, float, float, int]]:
    """The ledger rows of [start, end), ingested into an empty ledger: (minute, good, total, span).

    A row exists where a total series has a sample in the minute. Its span reaches back to the previous row
    when one of its series has a sample from before the minute (it carries the gap's events), else it is 1.
    """
    totals = minute_increase(total, start, end)
    goods = minute_increase(good, start, end)
    rows, previous = [], None
    for m in range(start, end, SLICE):
        tot, sampled, carried = totals[m]
        if not sampled:
            continue
        g = goods[m][0]
        g = tot - min(g, tot) if good_is_bad else g
        g = min(max(g, 0.0), tot)
        span = (m - previous) // SLICE if carried and previous is not None else 1
        rows.append((m, g, tot, span))
        previous = m
    return rows
