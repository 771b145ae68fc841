"""Exact per-minute counts from raw counter samples: the arithmetic of the SLO ledger.

A counter's value at an instant is its last sample at or before that instant (as PromQL evaluates an
instant vector). The count of a one-minute slice (m, m+60] is the value at m+60 minus the value at m, after
undoing counter resets. So:
- good and total are evaluated at the same exact instants (the minute edges), whatever the scrape jitter;
- every event is counted once: consecutive slices share their edges, so the counts add up exactly;
- a counter reset (a sample lower than the one before) counts the new value as the increase since the reset;
- a scrape gap: the slices with no sample are "no data"; the events of the gap are counted in the first
  slice that has a sample again, so totals stay exact;
- a series born inside the fetched range (a new label combination, or a process that restarted during a
  scrape gap) started from zero: its first value is counted as increase, in the slice of its first sample.
  "Born" means its first sample comes more than BIRTH_MARGIN after the start of the fetch, which always
  includes a lookback, so a long-lived series has a sample near the fetch start.
A slice has data when at least one series has a sample inside it and a value at its start.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SLICE = 60
BIRTH_MARGIN = 90  # seconds; above the longest scrape interval (60 s for backfilled history)


@dataclass(frozen=True)
class Series:
    """Raw samples of one counter series: timestamps (seconds) and values, sorted by time."""

    t: np.ndarray
    v: np.ndarray


@dataclass(frozen=True)
class MinuteCounts:
    minutes: np.ndarray  # int64 slice starts m: the slice is (m, m+60]
    counts: np.ndarray  # float64 events in the slice, summed over series
    has_data: np.ndarray  # bool


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


def minute_counts(series: Sequence[Series], start: int, end: int, fetch_start: float | None = None) -> MinuteCounts:
    """Sum over series of the per-slice increase for slices starting in [start, end).

    `fetch_start` is where the raw-sample query began (start minus its lookback); with it, series born
    inside the range count their first value (see the module docstring).
    """
    minutes = minute_edges(start, end)
    counts = np.zeros(minutes.size, dtype=np.float64)
    has_data = np.zeros(minutes.size, dtype=bool)
    if minutes.size == 0:
        return MinuteCounts(minutes, counts, has_data)
    edges = np.append(minutes, minutes[-1] + SLICE).astype(np.float64)
    for s in series:
        if s.t.size == 0:
            continue
        order = np.argsort(s.t, kind="stable")
        t, v = s.t[order].astype(np.float64), s.v[order].astype(np.float64)
        if fetch_start is not None and t[0] > fetch_start + BIRTH_MARGIN:
            t, v = np.concatenate(([float(fetch_start)], t)), np.concatenate(([0.0], v))
        cum = cumulative_increase(v)
        idx = np.searchsorted(t, edges, side="right") - 1  # last sample at or before each edge
        defined = idx >= 0
        value = np.where(defined, cum[np.clip(idx, 0, None)], 0.0)
        start_defined = defined[:-1]
        # a sample inside (m, m+60] exists when the last-sample index moved across the slice
        sampled = idx[1:] > idx[:-1]
        ok = start_defined & sampled
        counts += np.where(ok, value[1:] - value[:-1], 0.0)
        has_data |= ok
    return MinuteCounts(minutes, counts, has_data)


def slice_ratio_pairs(
    good: MinuteCounts, total: MinuteCounts, *, good_is_bad: bool = False
) -> list[tuple[int, float, float]]:
    """Ledger rows (minute, good, total) for slices where the total has data.

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
    return [(int(m), float(a), float(b)) for m, a, b in zip(total.minutes[keep], g, tot, strict=True)]
