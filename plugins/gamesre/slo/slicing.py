"""Exact per-minute counts from raw counter samples: the arithmetic of the SLO ledger.

A counter's value at an instant is its last sample at or before that instant, however far back (as PromQL
evaluates an instant vector, without the 5-minute lookback limit). The count of a one-minute slice
(m, m+60] is the value at m+60 minus the value at m, after undoing counter resets. So:
- good and total are evaluated at the same exact instants (the minute edges), whatever the scrape jitter;
- every event is counted once: consecutive slices share their edges, so the counts add up exactly;
- a counter reset (a sample lower than the one before) counts the new value as the increase since the reset;
- a scrape gap: the slices with no sample are "no data"; the events of the gap are counted in the first
  slice that has a sample again, so totals stay exact, and that slice's row *covers* the gap (its `span`);
- a series is "born" when it has no sample at all before its first one (a new label combination, a new
  pod): it started from zero, so its first value is counted as increase, in the slice of its first sample.

Born or continuing is decided from facts, never from where a fetch happens to start: the caller fetches the
raw samples of [start - lookback, end], and for every series without a sample at or before `start` it looks
up the series' last value before `start` further back (`Series.prior`). A series with a prior value continues
from it; one without is born. The counts are therefore the same however the history is cut into ingests.

A slice has data (a ledger row) when at least one series has a sample inside it. A row's span is the number
of minutes whose events it carries: 1, plus the no-data minutes right before it when one of its series
continues across them (docs/slo.md, "What the ingest stores").
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SLICE = 60


@dataclass(frozen=True)
class Series:
    """Raw samples of one counter series: timestamps (seconds) and values, sorted by time.

    `prior` matters only for a series without a sample at or before the first slice edge: its last value
    before that edge (looked up further back), or None when it has none (born inside the range).
    """

    t: np.ndarray
    v: np.ndarray
    prior: float | None = None


@dataclass(frozen=True)
class MinuteCounts:
    minutes: np.ndarray  # int64 slice starts m: the slice is (m, m+60]
    counts: np.ndarray  # float64 events in the slice, summed over series
    has_data: np.ndarray  # bool: some series has a sample inside the slice
    carries: np.ndarray  # bool: some series sampled in the slice has a real sample before it (not just born)
    last_seen: np.ndarray  # float64: the latest real sample at or before the slice start, -inf if none fetched


@dataclass(frozen=True)
class Row:
    """One ledger row: the slice (minute, minute+60], its counts, and the minutes it covers (>= 1)."""

    minute: int
    good: float
    total: float
    span: int = 1

    def astuple(self) -> tuple[int, float, float, int]:
        return self.minute, self.good, self.total, self.span


def cumulative_increase(v: np.ndarray) -> np.ndarray:
    """Running increase of a counter from its first sample, undoing resets (a drop means it restarted at 0)."""
    if v.size == 0:
        return v.astype(np.float64)
    d = np.diff(v.astype(np.float64))
    d = np.where(d < 0, v[1:], d)  # after a reset the new value is all increase since the reset
    return np.concatenate(([0.0], np.cumsum(d)))


def minute_edges(start: int, end: int) -> np.ndarray:
    """Slice starts m with start <= m < end; start and end must be minute-aligned."""
    if start % SLICE or end % SLICE:
        raise ValueError(f"slice bounds must be minute-aligned, got {start}..{end}")
    return np.arange(start, end, SLICE, dtype=np.int64)


def minute_counts(series: Sequence[Series], start: int, end: int) -> MinuteCounts:
    """Sum over series of the per-slice increase for slices starting in [start, end).

    A series with no sample at or before `start` continues from its `prior` value, or starts from zero
    when it has none (see the module docstring).
    """
    minutes = minute_edges(start, end)
    counts = np.zeros(minutes.size, dtype=np.float64)
    has_data = np.zeros(minutes.size, dtype=bool)
    carries = np.zeros(minutes.size, dtype=bool)
    last_seen = np.full(minutes.size, -np.inf)
    if minutes.size == 0:
        return MinuteCounts(minutes, counts, has_data, carries, last_seen)
    edges = np.append(minutes, minutes[-1] + SLICE).astype(np.float64)
    for s in series:
        if s.t.size == 0:
            continue
        order = np.argsort(s.t, kind="stable")
        real_t, v = s.t[order].astype(np.float64), s.v[order].astype(np.float64)
        t = real_t
        seen_before = real_t[0] <= start
        if not seen_before:
            # the value at the first edge: the prior value found further back, or zero for a new series
            seen_before = s.prior is not None
            t = np.concatenate(([float(start)], real_t))
            v = np.concatenate(([0.0 if s.prior is None else float(s.prior)], v))
        cum = cumulative_increase(v)
        idx = np.searchsorted(t, edges, side="right") - 1  # last sample at or before each edge
        value = cum[np.clip(idx, 0, None)]
        # a sample inside (m, m+60] exists when the last-sample index moved across the slice
        sampled = (idx[1:] > idx[:-1]) & (idx[:-1] >= 0)
        counts += np.where(sampled, value[1:] - value[:-1], 0.0)
        has_data |= sampled
        real = np.searchsorted(real_t, minutes, side="right") - 1  # last real sample at or before m
        carries |= sampled & ((real >= 0) | seen_before)
        last_seen = np.maximum(last_seen, np.where(real >= 0, real_t[np.clip(real, 0, None)], -np.inf))
    return MinuteCounts(minutes, counts, has_data, carries, last_seen)


def row_spans(total: MinuteCounts, previous_row: int | None) -> np.ndarray:
    """Minutes each slice's row covers: itself, plus the no-data minutes before it whose events it carries.

    A row carries a gap's events when one of its series had a real sample before it. It covers the minutes
    back to the previous row (`previous_row`, the ledger's newest row before the range, for the first one),
    and no further back than the latest sample fetched before it (the ledger may have a hole where nothing
    was ingested). Without a previous row it covers its own minute only.
    """
    spans = np.ones(total.minutes.size, dtype=np.int64)
    rows = np.flatnonzero(total.has_data)
    if rows.size == 0:
        return spans
    m = total.minutes[rows]
    before = np.concatenate(([-1 if previous_row is None else previous_row], m[:-1]))
    seen = total.last_seen[rows]
    edge = np.ceil(np.where(np.isfinite(seen), seen, 0.0) / SLICE).astype(np.int64) * SLICE
    first = np.maximum(before + SLICE, edge)  # the first minute whose events the row carries
    carried = total.carries[rows] & (before >= 0)
    spans[rows] = np.where(carried, (m - np.minimum(first, m)) // SLICE + 1, 1)
    return spans


def ratio_rows(good: MinuteCounts, total: MinuteCounts, spans: np.ndarray, *,
               good_is_bad: bool = False) -> list[Row]:
    """Ledger rows for the slices where the total has data.

    With `good_is_bad`, the first argument holds bad events and good = total - bad. Counts are clamped so
    good never exceeds total: a bad/good series scraped a moment apart from the total can otherwise
    disagree by an event at a slice edge.
    """
    if not np.array_equal(good.minutes, total.minutes):
        raise ValueError("good and total must cover the same slices")
    keep = total.has_data
    g = good.counts[keep]
    tot = total.counts[keep]
    if good_is_bad:
        g = tot - np.minimum(g, tot)
    g = np.clip(g, 0.0, tot)
    return [Row(int(m), float(a), float(b), int(s))
            for m, a, b, s in zip(total.minutes[keep], g, tot, spans[keep], strict=True)]
