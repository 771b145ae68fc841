"""Error-budget math over the per-minute ledger: SLI, budget, burn rates and coverage, raw and adjusted.

The ledger of one SLO is four aligned numpy arrays for the minutes that have data: `minutes` (int64 UTC
epoch seconds of the slice start, minute-aligned, sorted, unique), `good` and `total` (float64, 0 <= good
<= total) and `span` (int64 >= 1: the minutes the row covers, its own and those of a scrape gap right before
it, whose events it carries). A minute absent from the arrays, and not covered by the row after it, has no
data. Every window is a sum over the ledger computed with searchsorted on prefix sums: no Python loop over
minutes.

Definitions (docs/slo.md has the reasoning):
- A window at instant `at` covers whole minutes [start, now), now = `at` floored to the minute. Rolling
  windows end at now; a calendar month (Asia/Seoul) runs to the month's end, elapsed up to now.
- Units: occurrences count events; timeslices and ratio-timeslices count one-minute slices.
- A row belongs to a window by its own minute and brings its whole span: the minutes it covers and the
  events it carries come together.
- Slices: a row with total >= min_events x span is evaluated, as `span` slices alike (timeslices: good when
  good/total >= timeslice_target; ratio-timeslices: its good share good/total). Any other elapsed minute (no
  row, or too few events) is a no-data minute and counts as good, bad or nothing by the SLO's `no_data` policy.
- Budget total: (1 - target) x the window's units. In minutes: the whole window's minutes. In events:
  the events expected in the whole window, events seen x window minutes / minutes covered, so that a
  calendar month's budget is the whole month's and a burn rate b held for d consumes b x d / window of it,
  whatever the coverage. A gap's events are counted once: in the row after it, which covers its minutes.
- Consumed = bad units / budget total; remaining = 1 - consumed (negative when overspent).
- Exclusions (maintenance windows, [start, end) UTC) remove the minutes they touch from the adjusted
  figures: their bad units consume nothing, and the budget total is not reduced, so an exclusion never
  increases consumption. Raw figures ignore exclusions; both are kept.
- No NaN, no Inf, no SLI above 1: a quantity without a denominator is None, with a reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from gamesre.core.durations import parse_duration
from gamesre.core.time import iso, to_epoch
from gamesre.slo.spec import BURN_WINDOWS, Slo
from gamesre.slo.windows import (
    MINUTE,
    WindowBounds,
    as_timedelta,
    ceil_minute,
    floor_minute,
    resolve_window,
    window_bounds,
)

Instant = datetime | int | float


@runtime_checkable
class _Interval(Protocol):
    start: Any
    end: Any


Exclusion = tuple[Instant, Instant] | _Interval


# --- the ledger -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ledger:
    """Per-minute good/total counts of one SLO, for the minutes that have data."""

    minutes: npt.NDArray[np.int64]
    good: npt.NDArray[np.float64]
    total: npt.NDArray[np.float64]
    span: npt.NDArray[np.int64] | None = None  # None: every row covers its own minute only

    def __post_init__(self) -> None:
        minutes = np.asarray(self.minutes)
        if minutes.dtype.kind == "f":
            if not np.all(np.isfinite(minutes)) or not np.all(minutes == np.floor(minutes)):
                raise ValueError("ledger minutes must be whole epoch seconds")
        elif minutes.size and minutes.dtype.kind not in "iu":
            raise ValueError(f"ledger minutes must be integers, got {minutes.dtype}")
        minutes = minutes.astype(np.int64, copy=False).reshape(-1)
        good = np.asarray(self.good, dtype=np.float64).reshape(-1)
        total = np.asarray(self.total, dtype=np.float64).reshape(-1)
        span = np.ones(minutes.size, np.int64) if self.span is None else np.asarray(self.span).reshape(-1)
        if not (minutes.size == good.size == total.size == span.size):
            raise ValueError(f"ledger arrays differ in length: {minutes.size}, {good.size}, {total.size}, {span.size}")
        if span.size and (span.dtype.kind not in "iu" or np.any(span < 1)):
            raise ValueError("ledger spans must be whole minutes, at least 1")
        span = span.astype(np.int64, copy=False)
        if minutes.size:
            if np.any(minutes % MINUTE):
                bad = int(minutes[np.argmax(minutes % MINUTE != 0)])
                raise ValueError(f"ledger minute {bad} is not minute-aligned")
            if np.any(np.diff(minutes) <= 0):
                raise ValueError("ledger minutes must be sorted and unique")
            for name, arr in (("good", good), ("total", total)):
                if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                    raise ValueError(f"ledger {name} counts must be finite and non-negative")
            over = good > total
            if np.any(over):
                i = int(np.argmax(over))
                raise ValueError(f"ledger minute {iso(int(minutes[i]))}: good {good[i]} exceeds total {total[i]}")
        object.__setattr__(self, "minutes", minutes)
        object.__setattr__(self, "good", good)
        object.__setattr__(self, "total", total)
        object.__setattr__(self, "span", span)

    @property
    def spans(self) -> npt.NDArray[np.int64]:
        """The minutes each row covers (never None once constructed)."""
        assert self.span is not None
        return self.span

    @classmethod
    def empty(cls) -> Ledger:
        return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[Instant, float, float] | tuple[Instant, float, float, int]]) -> Ledger:
        """From (minute, good, total[, span]) rows in any order; minutes as epoch seconds or aware datetimes."""
        items = sorted((to_epoch(r[0]), float(r[1]), float(r[2]), int(r[3]) if len(r) > 3 else 1) for r in rows)
        if not items:
            return cls.empty()
        minutes, good, total, span = zip(*items, strict=True)
        return cls(np.array(minutes, np.int64), np.array(good), np.array(total), np.array(span, np.int64))

    def __len__(self) -> int:
        return int(self.minutes.size)


# --- the domain functions -------------------------------------------------------------------------------


def sli(good: float, total: float) -> float | None:
    """Good share of total, in [0, 1]; None when there is nothing to measure (no data is not 100%)."""
    if not total > 0:
        return None
    return min(max(good / total, 0.0), 1.0)


def error_budget(target: float) -> float:
    """1 - target without float noise: 1 - 0.999 is 0.001, not 0.0010000000000000009."""
    return float(1 - Fraction(repr(float(target))))


def budget_total(target: float, units: float) -> float:
    """The error budget in units (events or minutes): the share 1 - target of the window's units."""
    return error_budget(target) * units


def budget_consumed(bad_units: float, total_budget: float) -> float | None:
    """Share of the budget spent by `bad_units`; None without a budget."""
    if not total_budget > 0:
        return None
    return max(bad_units, 0.0) / total_budget


def budget_remaining(consumed: float | None) -> float | None:
    """Share of the budget left; below 0 when overspent."""
    return None if consumed is None else 1.0 - consumed


def burn_rate(error_ratio: float | None, target: float) -> float | None:
    """How fast the budget burns: 1 spends exactly the whole budget over the whole window."""
    return None if error_ratio is None else error_ratio / error_budget(target)


def burn_factor(
    window: timedelta | str | int | float, long_window: timedelta | str | int | float, budget_fraction: float
) -> float:
    """The burn rate that consumes `budget_fraction` of a `window`'s budget in `long_window`.

    burn_factor('30d', '1h', 0.02) == 14.4 (SRE Workbook); on 28 days it is 13.44.
    """
    span = as_timedelta(window).total_seconds()
    long = as_timedelta(long_window).total_seconds()
    if long <= 0 or span <= 0:
        raise ValueError("windows must be positive")
    return budget_fraction * span / long


def coverage(minutes_with_data: float, minutes_elapsed: float) -> float | None:
    """Share of the elapsed minutes that have data; None when no minute has elapsed."""
    if not minutes_elapsed > 0:
        return None
    return min(max(minutes_with_data / minutes_elapsed, 0.0), 1.0)


# --- window sums ----------------------------------------------------------------------------------------


def merge_exclusions(exclusions: Iterable[Exclusion]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Exclusion intervals widened to whole minutes (any minute they touch) and merged; sorted starts/ends."""
    spans: list[tuple[int, int]] = []
    for item in exclusions:
        start, end = (item.start, item.end) if isinstance(item, _Interval) else item
        s, e = to_epoch(start), to_epoch(end)
        if isinstance(end, datetime) and end.timestamp() > e:
            e += 1  # a fractional end still touches its second
        if e <= s:
            raise ValueError(f"exclusion [{iso(s)}, {iso(e)}) is empty or reversed")
        spans.append((floor_minute(s), ceil_minute(e)))
    spans.sort()
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    starts = np.array([m[0] for m in merged], dtype=np.int64)
    ends = np.array([m[1] for m in merged], dtype=np.int64)
    return starts, ends


def _excluded_mask(
    minutes: npt.NDArray[np.int64], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    if starts.size == 0:
        return np.zeros(minutes.size, dtype=bool)
    idx = np.searchsorted(starts, minutes, side="right") - 1
    return (idx >= 0) & (minutes < ends[np.clip(idx, 0, None)])


def _excluded_minutes(a: int, b: int, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> int:
    if starts.size == 0 or b <= a:
        return 0
    overlap = np.minimum(ends, b) - np.maximum(starts, a)
    return int(overlap[overlap > 0].sum()) // MINUTE


@dataclass(frozen=True)
class WindowCounts:
    """Sums over the ledger rows of [a, b): events, minutes covered, evaluated minutes, bad slices."""

    elapsed: int  # minutes in [a, b), less excluded minutes for adjusted counts
    covered: float  # minutes the rows cover (a row after a scrape gap covers the gap)
    total: float  # events
    bad: float  # events: total - good
    qualified: float  # minutes with total >= min_events (evaluated slices)
    bad_slices: float  # evaluated minutes with good/total below timeslice_target
    bad_ratio_sum: float  # sum over evaluated minutes of their bad share (total - good) / total


@dataclass(frozen=True)
class Tally:
    """Good and bad units of a window under the SLO's method and no-data policy."""

    good: float
    bad: float

    @property
    def counted(self) -> float:
        return self.good + self.bad

    @property
    def error_ratio(self) -> float | None:
        return None if not self.counted > 0 else min(self.bad / self.counted, 1.0)


def evaluated_minutes(slo: Slo, total: npt.NDArray[np.float64], span: npt.NDArray[np.int64] | None = None
                      ) -> npt.NDArray[np.float64]:
    """The slices each ledger row stands for (timeslice methods): its span when it has at least min_events
    events per minute covered, else 0 (its minutes are no-data minutes)."""
    spans = np.ones(total.size) if span is None else np.asarray(span, dtype=np.float64)
    return np.where(total >= slo.min_events * spans, spans, 0.0)


def minute_bad_units(slo: Slo, good: npt.NDArray[np.float64], total: npt.NDArray[np.float64],
                     span: npt.NDArray[np.int64] | None = None) -> npt.NDArray[np.float64]:
    """What each ledger row spends of the budget, in the SLO's unit.

    occurrences: its bad events; timeslices: 1 per minute covered when the row is a bad slice;
    ratio-timeslices: its error ratio per minute covered. For the timeslice methods a row with fewer than
    `min_events` events per minute is a no-data row and spends 0 here (the no-data policy is applied to the
    window's tally).
    """
    bad = total - good
    if slo.budgeting_method == "occurrences":
        return bad
    slices = evaluated_minutes(slo, total, span)
    qualified = slices > 0
    denominator = np.where(qualified, total, 1.0)
    if slo.budgeting_method == "timeslices":
        slice_target = slo.timeslice_target if slo.timeslice_target is not None else 1.0
        return np.where(qualified & (good / denominator < slice_target), slices, 0.0)
    return np.where(qualified, np.minimum(bad / denominator, 1.0) * slices, 0.0)


class _RowSums:
    """Sums of the per-minute figures over windows that all end at the evaluation instant.

    Rows (per ledger row): span, total, bad, and for timeslice methods the evaluated minutes plus bad_slices
    or bad_ratio.
    A window [a, b) is a contiguous slice of the sorted rows (searchsorted), summed with numpy; adjusted
    sums are raw sums less the sums over the excluded rows inside the window.
    """

    def __init__(
        self, slo: Slo, ledger: Ledger, lo: int, hi: int, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
    ):
        i0, i1 = np.searchsorted(ledger.minutes, (lo, hi), side="left")
        self.minutes = ledger.minutes[i0:i1]
        self.starts, self.ends = starts, ends
        good, total, span = ledger.good[i0:i1], ledger.total[i0:i1], ledger.spans[i0:i1]
        bad = total - good  # per row, so that all-good minutes sum to an exact 0
        rows: list[npt.NDArray[np.float64]] = [span.astype(np.float64), total, bad]
        if slo.budgeting_method != "occurrences":
            rows += [evaluated_minutes(slo, total, span), minute_bad_units(slo, good, total, span)]
        self.values = np.array(rows, dtype=np.float64)
        excluded = np.flatnonzero(_excluded_mask(self.minutes, starts, ends))
        self.excluded_minutes = self.minutes[excluded]
        self.excluded_values = self.values[:, excluded]

    def counts(self, a: int, b: int, *, adjusted: bool) -> WindowCounts:
        i, j = np.searchsorted(self.minutes, (a, b), side="left")
        sums = self.values[:, i:j].sum(axis=1)
        elapsed = max(b - a, 0) // MINUTE
        if adjusted and self.excluded_minutes.size:
            k, m = np.searchsorted(self.excluded_minutes, (a, b), side="left")
            sums = sums - self.excluded_values[:, k:m].sum(axis=1)
        if adjusted:
            elapsed -= _excluded_minutes(a, b, self.starts, self.ends)
        covered, total, bad, qualified, per_slice = (max(float(x), 0.0) for x in (*sums, 0.0, 0.0)[:5])
        qualified = float(round(qualified))
        return WindowCounts(
            elapsed=elapsed,
            covered=float(round(covered)),
            total=total,
            bad=min(bad, total),
            qualified=qualified,
            bad_slices=float(round(per_slice)),
            bad_ratio_sum=min(per_slice, qualified),
        )


def tally(slo: Slo, counts: WindowCounts) -> Tally:
    """Good and bad units of a window: events (occurrences) or minutes (timeslice methods)."""
    if slo.budgeting_method == "occurrences":
        return Tally(good=max(counts.total - counts.bad, 0.0), bad=counts.bad)
    bad = counts.bad_slices if slo.budgeting_method == "timeslices" else counts.bad_ratio_sum
    good = max(counts.qualified - bad, 0.0)
    no_data = max(counts.elapsed - counts.qualified, 0.0)
    if slo.no_data == "good":
        good += no_data
    elif slo.no_data == "bad":
        bad += no_data
    return Tally(good=good, bad=bad)


# --- the snapshot ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BurnWindow:
    """A burn-rate window ending at the snapshot instant, with the traffic behind it (adjusted)."""

    minutes: int  # length of the window
    burn_rate: float | None
    burn_rate_raw: float | None
    events: float  # total events in the window (minutes for a threshold SLI)
    slices: float  # minutes with at least min_events events
    covered: float  # minutes covered by rows
    elapsed: int  # minutes not excluded

    @property
    def coverage(self) -> float | None:
        return coverage(self.covered, self.elapsed)


@dataclass(frozen=True)
class SloSnapshot:
    """Everything the report, the CLI and the policy need about one SLO at one instant."""

    name: str
    service: str
    owner: str
    target: float
    window: str
    method: str
    at: str  # ISO UTC of the evaluation instant (floored to the minute)
    window_start: str
    window_end: str  # the end of the whole window (a calendar month's end lies in the future)
    window_minutes: int
    elapsed_minutes: int
    excluded_minutes: int
    budget_unit: Literal["events", "minutes"]
    budget_total: float | None  # in budget_unit; the same raw and adjusted
    sli: float | None
    sli_adjusted: float | None
    good: float  # units (events or minutes) in the elapsed window, raw
    bad: float
    good_adjusted: float
    bad_adjusted: float
    events: float  # events in the elapsed window (raw), whatever the unit
    budget_consumed: float | None
    budget_remaining: float | None
    budget_consumed_adjusted: float | None
    budget_remaining_adjusted: float | None
    budget_remaining_units: float | None
    budget_remaining_units_adjusted: float | None
    burn_rates: Mapping[str, float | None]  # raw, by window: 5m ... 3d
    burn_rates_adjusted: Mapping[str, float | None]
    burn_windows: Mapping[str, BurnWindow]  # adjusted traffic behind each burn rate
    coverage: float | None
    coverage_adjusted: float | None
    status: Literal["ok", "no_data"]
    reasons: tuple[str, ...] = field(default=())

    @property
    def at_epoch(self) -> int:
        return to_epoch(datetime.fromisoformat(self.at))

    @property
    def budget_consumed_units(self) -> float:
        return self.bad

    @property
    def budget_consumed_units_adjusted(self) -> float:
        return self.bad_adjusted

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: floats are finite or None, instants are ISO strings."""
        out = asdict(self)
        out["burn_rates"] = dict(self.burn_rates)
        out["burn_rates_adjusted"] = dict(self.burn_rates_adjusted)
        out["burn_windows"] = {k: {**asdict(v), "coverage": v.coverage} for k, v in self.burn_windows.items()}
        out["reasons"] = list(self.reasons)
        _assert_finite(out)
        return out


def _assert_finite(value: object) -> None:
    if isinstance(value, float) and not np.isfinite(value):
        raise AssertionError(f"non-finite number in a snapshot: {value}")
    if isinstance(value, dict):
        for v in value.values():
            _assert_finite(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _assert_finite(v)


def _sli_for_window(slo: Slo, counts: WindowCounts, t: Tally) -> tuple[float | None, str | None]:
    if slo.budgeting_method == "occurrences":
        if counts.total <= 0:
            return None, "no events in the window"
        if counts.total < slo.min_events:
            return (
                None,
                f"insufficient data: {counts.total:g} events in the window, fewer than min_events {slo.min_events}",
            )
        return sli(t.good, t.counted), None
    if t.counted <= 0:
        if counts.elapsed <= 0:
            return None, "no minute of the window has elapsed outside exclusions"
        return None, f"no minute slice with at least {slo.min_events} event(s) in the window (no_data: {slo.no_data})"
    return sli(t.good, t.counted), None


def _budget_units(slo: Slo, bounds: WindowBounds, raw: WindowCounts) -> float | None:
    if slo.budgeting_method != "occurrences":
        return budget_total(slo.target, bounds.minutes)
    if raw.total <= 0 or raw.covered <= 0:
        return None
    expected_events = raw.total * bounds.minutes / raw.covered
    return budget_total(slo.target, expected_events)


def compute_snapshot(
    slo: Slo,
    ledger: Ledger,
    at: Instant,
    exclusions: Sequence[Exclusion] = (),
    window_override: str | None = None,
) -> SloSnapshot:
    """The SLO's SLI, budget, burn rates and coverage at `at`, raw and with `exclusions` removed.

    `window_override` (rolling-28d, rolling-30d, calendar-month or 28d, 30d, month) replaces the SLO's window.
    """
    window = resolve_window(window_override) if window_override else slo.window
    bounds = window_bounds(window, at)
    starts, ends = merge_exclusions(exclusions)
    longest_burn = max(parse_duration(w) for w in BURN_WINDOWS)
    sums = _RowSums(slo, ledger, min(bounds.start, bounds.now - longest_burn), bounds.now, starts, ends)
    raw = sums.counts(bounds.start, bounds.now, adjusted=False)
    adj = sums.counts(bounds.start, bounds.now, adjusted=True)
    raw_tally, adj_tally = tally(slo, raw), tally(slo, adj)
    sli_raw, why_raw = _sli_for_window(slo, raw, raw_tally)
    sli_adj, why_adj = _sli_for_window(slo, adj, adj_tally)

    units = _budget_units(slo, bounds, raw)
    consumed = budget_consumed(raw_tally.bad, units) if sli_raw is not None and units else None
    consumed_adj = budget_consumed(adj_tally.bad, units) if sli_adj is not None and units else None

    burn_raw: dict[str, float | None] = {}
    burn_adj: dict[str, float | None] = {}
    burn_windows: dict[str, BurnWindow] = {}
    for name in BURN_WINDOWS:
        a = bounds.now - parse_duration(name)
        r, c = sums.counts(a, bounds.now, adjusted=False), sums.counts(a, bounds.now, adjusted=True)
        burn_raw[name] = burn_rate(tally(slo, r).error_ratio, slo.target)
        burn_adj[name] = burn_rate(tally(slo, c).error_ratio, slo.target)
        burn_windows[name] = BurnWindow(
            minutes=parse_duration(name) // MINUTE,
            burn_rate=burn_adj[name],
            burn_rate_raw=burn_raw[name],
            events=c.total,
            slices=c.qualified,
            covered=c.covered,
            elapsed=c.elapsed,
        )

    reasons: list[str] = []
    if why_raw:
        reasons.append(f"raw: {why_raw}")
    if why_adj and why_adj != why_raw:
        reasons.append(f"adjusted: {why_adj}")
    cov, cov_adj = coverage(raw.covered, raw.elapsed), coverage(adj.covered, adj.elapsed)
    excluded = bounds.elapsed_minutes - adj.elapsed
    if excluded:
        reasons.append(f"{excluded} minute(s) excluded by maintenance windows")
    return SloSnapshot(
        name=slo.name,
        service=slo.service,
        owner=slo.owner,
        target=slo.target,
        window=window,
        method=slo.budgeting_method,
        at=iso(bounds.now),
        window_start=iso(bounds.start),
        window_end=iso(bounds.end),
        window_minutes=bounds.minutes,
        elapsed_minutes=bounds.elapsed_minutes,
        excluded_minutes=excluded,
        budget_unit="events" if slo.budgeting_method == "occurrences" else "minutes",
        budget_total=units,
        sli=sli_raw,
        sli_adjusted=sli_adj,
        good=raw_tally.good,
        bad=raw_tally.bad,
        good_adjusted=adj_tally.good,
        bad_adjusted=adj_tally.bad,
        events=raw.total,
        budget_consumed=consumed,
        budget_remaining=budget_remaining(consumed),
        budget_consumed_adjusted=consumed_adj,
        budget_remaining_adjusted=budget_remaining(consumed_adj),
        budget_remaining_units=None if consumed is None or units is None else units - raw_tally.bad,
        budget_remaining_units_adjusted=None if consumed_adj is None or units is None else units - adj_tally.bad,
        burn_rates=burn_raw,
        burn_rates_adjusted=burn_adj,
        burn_windows=burn_windows,
        coverage=cov,
        coverage_adjusted=cov_adj,
        status="no_data" if sli_adj is None else "ok",
        reasons=tuple(reasons),
    )


__all__ = [
    "BurnWindow",
    "Exclusion",
    "Ledger",
    "SloSnapshot",
    "Tally",
    "WindowCounts",
    "budget_consumed",
    "budget_remaining",
    "budget_total",
    "burn_factor",
    "burn_rate",
    "compute_snapshot",
    "coverage",
    "error_budget",
    "evaluated_minutes",
    "merge_exclusions",
    "sli",
    "tally",
]
