"""The checklists' analytics in pandas: pure functions over fetched data, each named for what it measures.

- SLO attainment over any period [start, end) from the per-minute ledger, raw and maintenance-adjusted.
  The SLO rules are the budget math's (gamesre.slo.budget): `minute_bad_units` per method, `tally` for the
  no-data policy, `sli`, `budget_total`; a period's budget follows `_budget_units` (events expected over the
  period for occurrences, its minutes otherwise). Over a rolling window ending at `at` the numbers equal
  `compute_snapshot`'s (a property test holds them to it).
- Budget spend per minute, and its patterns: by KST weekday and hour, and the periods that spent the most.
- Alerts from ALERTS samples: firing intervals, fires and durations per alert, noisy alerts, rules that never
  fired, and firings with no SLO impact (no bad minute in the related SLOs' ledgers).
- Policy states from policy_state_history: time in each state (stale and unknown time named as such), and
  the entries into deploy_freeze and rollback.
- Deploys from deployment records: outcomes, stuck runs and the DORA metrics.
- Data sanity: gaps in sample timestamps, staleness of the newest sample, stale documents.
- Chaos game-days: score trend and failed hypotheses.
- The SLO target review: tighten, keep or loosen from months of attainment.

Times in: epoch seconds or aware datetimes (naive ones are refused). Times out: epoch seconds.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from gamesre.core.time import KST, iso, to_epoch
from gamesre.slo.budget import (
    Exclusion,
    Ledger,
    WindowCounts,
    budget_consumed,
    budget_total,
    burn_rate,
    coverage,
    error_budget,
    evaluated_minutes,
    merge_exclusions,
    minute_bad_units,
    sli,
    tally,
)
from gamesre.slo.policy import severity_rank
from gamesre.slo.spec import Slo
from gamesre.slo.windows import MINUTE, ceil_minute, floor_minute

_EPOCH = pd.Timestamp(0, tz="UTC")
Instant = datetime | int | float


class DataError(ValueError):
    """Input data the analytics cannot use; the message says which data and what is wrong."""


# --- time -----------------------------------------------------------------------------------------------


def _epoch_value(value: Any, name: str) -> float:
    if value is None or value is pd.NaT:
        return math.nan
    if isinstance(value, bool):
        raise DataError(f"{name}: {value!r} is not a time")
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, datetime):
        if value != value:  # NaT
            return math.nan
        if value.tzinfo is None:
            raise DataError(f"{name}: naive timestamp {value.isoformat()}; give epoch seconds or aware datetimes")
        return value.timestamp()
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise DataError(f"{name}: {value!r} is not an ISO 8601 time") from None
        return _epoch_value(parsed, name)
    raise DataError(f"{name}: {type(value).__name__} is not a time")


def epoch_seconds(values: Any, name: str = "time") -> pd.Series:
    """Times as float epoch seconds (NaN for missing); numbers, aware datetimes or ISO strings with an offset."""
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object if not len(values) else None)
    if series.empty:
        return pd.Series([], index=series.index, dtype="float64")
    if pd.api.types.is_bool_dtype(series.dtype):
        raise DataError(f"{name}: booleans are not times")
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64")
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return (series - _EPOCH).dt.total_seconds()
    if pd.api.types.is_datetime64_dtype(series.dtype):
        raise DataError(f"{name}: naive timestamps; give epoch seconds or aware datetimes")
    return pd.Series([_epoch_value(v, name) for v in series], index=series.index, dtype="float64")


def _kst(epochs: Any) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(epochs, dtype=np.int64), unit="s", utc=True)).tz_convert(KST)


def _window(start: Instant, end: Instant) -> tuple[int, int]:
    a, b = floor_minute(to_epoch(start)), floor_minute(to_epoch(end))
    if b < a:
        raise DataError(f"period end {iso(b)} is before its start {iso(a)}")
    return a, b


def _need(frame: Any, columns: Iterable[str], name: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{name}: expected a table, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {', '.join(missing)}")
    return frame


# --- the ledger -----------------------------------------------------------------------------------------

LEDGER_COLUMNS = ("minute", "good", "total")  # and `span` (minutes covered), 1 where absent


def _empty_ledger() -> pd.DataFrame:
    return pd.DataFrame({"minute": np.zeros(0, np.int64), "good": np.zeros(0), "total": np.zeros(0),
                         "span": np.zeros(0, np.int64)})


def ledger_frame(data: Any) -> pd.DataFrame:
    """Ledger rows as a frame sorted by minute (minute int64 epoch seconds, good and total floats, span int64).

    Accepts a DataFrame, a Ledger or LedgerSlices (arrays `minutes`, `good`, `total`, optionally `span`) or
    (minute, good, total[, span]) rows. The budget math's Ledger rules apply: minute-aligned, unique,
    0 <= good <= total, span >= 1 (1 where not given).
    """
    if isinstance(data, pd.DataFrame):
        frame = _need(data, LEDGER_COLUMNS, "ledger")
    elif all(hasattr(data, a) for a in ("minutes", "good", "total")):
        frame = pd.DataFrame({"minute": np.asarray(data.minutes), "good": np.asarray(data.good),
                              "total": np.asarray(data.total)})
        if getattr(data, "span", None) is not None:
            frame["span"] = np.asarray(data.span)
    else:
        rows = list(data)
        width = max((len(r) for r in rows), default=3)
        frame = pd.DataFrame(rows, columns=[*LEDGER_COLUMNS, "span"][:width]) if rows else _empty_ledger()
    if frame.empty:
        return _empty_ledger()
    frame = frame.sort_values("minute", kind="stable")
    span = frame["span"].fillna(1).to_numpy() if "span" in frame.columns else None
    if span is not None and span.dtype.kind == "f" and np.all(span == np.round(span)):
        span = span.astype(np.int64)  # whole minutes read back as floats (a column with gaps); others are refused
    try:
        ledger = Ledger(frame["minute"].to_numpy(), frame["good"].to_numpy(dtype=np.float64),
                        frame["total"].to_numpy(dtype=np.float64), span)
    except (ValueError, TypeError) as exc:
        raise DataError(f"ledger: {exc}") from exc
    return pd.DataFrame({"minute": ledger.minutes, "good": ledger.good, "total": ledger.total, "span": ledger.span})


def as_ledger(frame: pd.DataFrame) -> Ledger:
    """The budget math's Ledger of a ledger frame."""
    checked = ledger_frame(frame)
    return Ledger(checked["minute"].to_numpy(), checked["good"].to_numpy(), checked["total"].to_numpy(),
                  checked["span"].to_numpy())


def _rows(frame: pd.DataFrame, start: int, end: int) -> pd.DataFrame:
    minutes = frame["minute"].to_numpy()
    i, j = np.searchsorted(minutes, (start, end), side="left")
    return frame.iloc[int(i):int(j)]


def _exclusion_mask(minutes: npt.NDArray[np.int64], exclusions: Sequence[Exclusion]) -> npt.NDArray[np.bool_]:
    starts, ends = merge_exclusions(exclusions)
    if starts.size == 0 or minutes.size == 0:
        return np.zeros(minutes.size, dtype=bool)
    idx = np.searchsorted(starts, minutes, side="right") - 1
    return (idx >= 0) & (minutes < ends[np.clip(idx, 0, None)])


def _excluded_minutes(start: int, end: int, exclusions: Sequence[Exclusion]) -> int:
    starts, ends = merge_exclusions(exclusions)
    if starts.size == 0 or end <= start:
        return 0
    overlap = np.minimum(ends, end) - np.maximum(starts, start)
    return int(overlap[overlap > 0].sum()) // MINUTE


# --- attainment -----------------------------------------------------------------------------------------


def period_counts(slo: Slo, frame: pd.DataFrame, start: Instant, end: Instant,
                  exclusions: Sequence[Exclusion] = (), *, adjusted: bool = True) -> WindowCounts:
    """The budget math's window sums over [start, end) of a ledger frame; adjusted: exclusions left out."""
    a, b = _window(start, end)
    rows = _rows(frame, a, b)
    elapsed = (b - a) // MINUTE
    if adjusted and exclusions:
        rows = rows[~_exclusion_mask(rows["minute"].to_numpy(), exclusions)]
        elapsed -= _excluded_minutes(a, b, exclusions)
    good = rows["good"].to_numpy(dtype=np.float64)
    total = rows["total"].to_numpy(dtype=np.float64)
    span = rows["span"].to_numpy(dtype=np.int64)
    events = max(float(total.sum()), 0.0)
    bad = min(max(float((total - good).sum()), 0.0), events)
    qualified = per_slice = 0.0
    if slo.budgeting_method != "occurrences":
        qualified = float(evaluated_minutes(slo, total, span).sum())
        per_slice = max(float(minute_bad_units(slo, good, total, span).sum()), 0.0)
    return WindowCounts(elapsed=elapsed, covered=float(span.sum()), total=events, bad=bad, qualified=qualified,
                        bad_slices=float(round(per_slice)), bad_ratio_sum=min(per_slice, qualified))


def _period_sli(slo: Slo, counts: WindowCounts) -> tuple[float | None, str | None]:
    # The rule of gamesre.slo.budget._sli_for_window, over a period instead of a window.
    t = tally(slo, counts)
    if slo.budgeting_method == "occurrences":
        if counts.total <= 0:
            return None, "no events in the period"
        if counts.total < slo.min_events:
            return None, f"insufficient data: {counts.total:g} events in the period, fewer than min_events " \
                         f"{slo.min_events}"
        return sli(t.good, t.counted), None
    if t.counted <= 0:
        if counts.elapsed <= 0:
            return None, "no minute of the period has elapsed outside exclusions"
        return None, f"no minute slice with at least {slo.min_events} event(s) in the period (no_data: {slo.no_data})"
    return sli(t.good, t.counted), None


def period_budget(slo: Slo, raw: WindowCounts, minutes: int) -> float | None:
    """The error budget of `minutes` minutes, in the SLO's unit: minutes for timeslice methods; for
    occurrences the events expected at the rate seen (events x minutes / minutes covered)."""
    if slo.budgeting_method != "occurrences":
        return budget_total(slo.target, minutes)
    if raw.total <= 0 or raw.covered <= 0:
        return None
    return budget_total(slo.target, raw.total * minutes / raw.covered)


@dataclass(frozen=True)
class Attainment:
    """An SLO's attainment over [start, end): adjusted (maintenance excluded) unless named raw."""

    slo: str
    service: str
    target: float
    start: int
    end: int
    unit: str  # events | minutes
    sli: float | None
    sli_raw: float | None
    good: float
    bad: float
    events: float  # raw events in the period, whatever the unit
    budget: float | None  # the period's error budget, in units
    budget_consumed: float | None  # bad / budget
    elapsed_minutes: int  # outside exclusions
    covered_minutes: float  # covered by ledger rows, outside exclusions
    excluded_minutes: int
    coverage: float | None
    reason: str | None = None

    @property
    def error_ratio(self) -> float | None:
        return None if self.sli is None else max(1.0 - self.sli, 0.0)

    @property
    def burn_rate(self) -> float | None:
        """1 spends exactly the period's budget; above 1 the target was missed."""
        return burn_rate(self.error_ratio, self.target)

    @property
    def met(self) -> bool | None:
        return None if self.sli is None else self.sli >= self.target - 1e-12

    def exhausted(self, share: float = 1.0) -> bool:
        return self.budget_consumed is not None and self.budget_consumed >= share

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(start=iso(self.start), end=iso(self.end), error_ratio=self.error_ratio, burn_rate=self.burn_rate,
                   met=self.met)
        return out


def attainment(slo: Slo, frame: pd.DataFrame, start: Instant, end: Instant,
               exclusions: Sequence[Exclusion] = ()) -> Attainment:
    """The SLI of [start, end) against the target, raw and with `exclusions` removed, and the budget spent."""
    frame = ledger_frame(frame)
    a, b = _window(start, end)
    raw = period_counts(slo, frame, a, b, exclusions, adjusted=False)
    adj = period_counts(slo, frame, a, b, exclusions, adjusted=True)
    sli_raw, _ = _period_sli(slo, raw)
    sli_adj, why = _period_sli(slo, adj)
    t = tally(slo, adj)
    units = period_budget(slo, raw, (b - a) // MINUTE)
    consumed = budget_consumed(t.bad, units) if sli_adj is not None and units else None
    return Attainment(
        slo=slo.name, service=slo.service, target=slo.target, start=a, end=b,
        unit="events" if slo.budgeting_method == "occurrences" else "minutes",
        sli=sli_adj, sli_raw=sli_raw, good=t.good, bad=t.bad, events=raw.total, budget=units,
        budget_consumed=consumed, elapsed_minutes=adj.elapsed, covered_minutes=adj.covered,
        excluded_minutes=raw.elapsed - adj.elapsed, coverage=coverage(adj.covered, adj.elapsed), reason=why,
    )


# --- budget spend and its patterns ----------------------------------------------------------------------


def budget_spend_by_minute(slo: Slo, frame: pd.DataFrame, start: Instant, end: Instant,
                           exclusions: Sequence[Exclusion] = ()) -> pd.Series:
    """Budget units spent in each elapsed minute of [start, end) outside exclusions (index: minute epoch).

    occurrences: the minute's bad events; timeslices: 1 for a bad slice; ratio-timeslices: the minute's error
    ratio. A row after a scrape gap spends for the whole gap in its own minute. A no-data minute (no row
    covers it, or its row has fewer than min_events per minute) spends 1 under `no_data: bad`, else 0. The
    sum is the period's adjusted bad units (`attainment(...).bad`).
    """
    frame = ledger_frame(frame)
    a, b = _window(start, end)
    minutes = np.arange(a, b, MINUTE, dtype=np.int64)
    if exclusions:
        minutes = minutes[~_exclusion_mask(minutes, exclusions)]
    rows = _rows(frame, a, b)
    indexed = rows.set_index("minute")
    good = indexed["good"].reindex(minutes).to_numpy(dtype=np.float64)
    total = indexed["total"].reindex(minutes).to_numpy(dtype=np.float64)
    span = indexed["span"].reindex(minutes).fillna(1).to_numpy(dtype=np.int64)
    good, total = np.nan_to_num(good), np.nan_to_num(total)
    if slo.budgeting_method == "occurrences":
        spent = np.clip(total - good, 0.0, None)
    else:
        spent = minute_bad_units(slo, good, total, span)
        if slo.no_data == "bad":
            judged = rows[evaluated_minutes(slo, rows["total"].to_numpy(), rows["span"].to_numpy()) > 0]
            spent = np.where(_covered(minutes, judged), spent, 1.0)
    return pd.Series(spent, index=pd.Index(minutes, name="minute"), name=slo.name, dtype="float64")


def _covered(minutes: npt.NDArray[np.int64], rows: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Which minutes the rows cover: a row at minute r with span s covers r - (s - 1) x 60 ... r."""
    row_minutes = rows["minute"].to_numpy(dtype=np.int64)
    if row_minutes.size == 0:
        return np.zeros(minutes.size, dtype=bool)
    j = np.clip(np.searchsorted(row_minutes, minutes, side="left"), 0, row_minutes.size - 1)
    reach = rows["span"].to_numpy(dtype=np.int64)[j] * MINUTE
    return (row_minutes[j] >= minutes) & (row_minutes[j] - minutes < reach)


def spend_by_weekday_hour(spend: pd.Series) -> pd.DataFrame:
    """Units spent per KST weekday (rows 0-6, Monday first) and hour (columns 0-23)."""
    table = pd.DataFrame(0.0, index=pd.RangeIndex(7, name="weekday"), columns=pd.RangeIndex(24, name="hour"))
    if spend.empty:
        return table
    local = _kst(spend.index.to_numpy())
    sums = pd.Series(spend.to_numpy(dtype=np.float64)).groupby([local.day_of_week, local.hour]).sum()
    for (weekday, hour), units in sums.items():
        table.iat[int(weekday), int(hour)] = float(units)
    return table


def spend_by_period(spend: pd.Series, freq: str = "1h") -> pd.Series:
    """Units spent per KST-aligned period (`1h`, `1D` ...), indexed by the period's start epoch."""
    if spend.empty:
        return pd.Series([], dtype="float64", index=pd.Index([], dtype=np.int64, name="start"))
    starts = _kst(spend.index.to_numpy()).floor(freq)
    epochs = ((starts - _EPOCH) // pd.Timedelta(seconds=1)).astype(np.int64)
    out = pd.Series(spend.to_numpy(dtype=np.float64), index=pd.Index(epochs, name="start")).groupby(level=0).sum()
    return out.astype("float64")


def top_spending_periods(spend: pd.Series, n: int = 5, freq: str = "1h") -> pd.DataFrame:
    """The `n` periods that spent the most (only periods that spent anything), most first."""
    per = spend_by_period(spend, freq)
    per = per[per > 0]
    width = int(pd.Timedelta(freq).total_seconds())
    top = per.sort_values(ascending=False, kind="stable").head(n)
    return pd.DataFrame({"start": top.index.to_numpy(dtype=np.int64),
                         "end": top.index.to_numpy(dtype=np.int64) + width,
                         "units": top.to_numpy(dtype=np.float64)})


# --- alerts ---------------------------------------------------------------------------------------------

INTERVAL_COLUMNS = ("alertname", "series", "labels", "start", "end", "duration", "samples")
_NOT_IDENTITY = {"alertname", "alertstate", "__name__"}


def series_key(alertname: str, labels: Mapping[str, Any]) -> str:
    """One alert series as PromQL writes it: `Name{a="1",b="2"}` (labels sorted, alertstate left out)."""
    pairs = sorted((str(k), str(v)) for k, v in labels.items() if k not in _NOT_IDENTITY)
    return alertname + "{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}"


def _labels(value: Any, name: str) -> dict[str, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise DataError(f"{name}: labels {value!r} are not a mapping") from None
    if not isinstance(value, Mapping):
        raise DataError(f"{name}: labels should be a mapping, got {type(value).__name__}")
    return {str(k): str(v) for k, v in value.items()}


def _empty_intervals() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype="float64" if c in ("start", "end", "duration") else object)
                         for c in INTERVAL_COLUMNS})


def firing_intervals(samples: pd.DataFrame, step: float, *, tolerance: float = 1.5) -> pd.DataFrame:
    """Firing intervals per alert series from ALERTS samples of a range query with this `step`.

    Samples of one series no more than `tolerance` x step apart belong to one firing. A firing seen from
    t0 to t1 is [t0, t1 + step): it ended somewhere in (t1, t1 + step], so durations are known to one step.
    """
    _need(samples, ("alertname", "labels", "timestamp"), "alert samples")
    if not step > 0:
        raise DataError(f"alert samples: step must be positive, got {step!r}")
    firing = samples[samples["alertstate"].astype(str) == "firing"] if "alertstate" in samples.columns else samples
    if firing.empty:
        return _empty_intervals()
    names = [str(n) for n in firing["alertname"]]
    labels = [_labels(v, "alert samples") for v in firing["labels"]]
    times = epoch_seconds(firing["timestamp"], "alert samples timestamp").to_numpy()
    if np.isnan(times).any():
        raise DataError("alert samples: a sample has no timestamp")
    work = pd.DataFrame({"alertname": names, "series": [series_key(n, lab) for n, lab in zip(names, labels,
                                                                                            strict=True)],
                         "labels": pd.Series(labels, dtype=object), "t": times})
    work = work.sort_values(["series", "t"], kind="stable").drop_duplicates(["series", "t"])
    series = work["series"].to_numpy()
    t = work["t"].to_numpy()
    new = np.ones(len(work), dtype=bool)
    new[1:] = (series[1:] != series[:-1]) | (np.diff(t) > step * tolerance)
    group = np.cumsum(new)
    grouped = work.groupby(group, sort=True)
    out = pd.DataFrame({
        "alertname": grouped["alertname"].first().to_numpy(),
        "series": grouped["series"].first().to_numpy(),
        "labels": pd.Series([work["labels"].iloc[i] for i in np.flatnonzero(new)], dtype=object).to_numpy(),
        "start": grouped["t"].min().to_numpy(),
        "end": grouped["t"].max().to_numpy() + step,
        "samples": grouped["t"].size().to_numpy(),
    })
    out["duration"] = out["end"] - out["start"]
    return out.loc[:, list(INTERVAL_COLUMNS)].sort_values(["start", "series"], kind="stable").reset_index(drop=True)


def _started_in(intervals: pd.DataFrame, start: float | None, end: float | None) -> pd.DataFrame:
    keep = np.ones(len(intervals), dtype=bool)
    if start is not None:
        keep &= intervals["start"].to_numpy() >= start
    if end is not None:
        keep &= intervals["start"].to_numpy() < end
    return intervals[keep]


def alert_stats(intervals: pd.DataFrame, start: float | None = None, end: float | None = None) -> pd.DataFrame:
    """Per alert name, over the firings that started in [start, end): fires, median, max and total duration
    (seconds) and the number of distinct series. Most fires first."""
    chosen = _started_in(intervals, start, end)
    columns = ["fires", "median_duration", "max_duration", "total_duration", "series"]
    if chosen.empty:
        return pd.DataFrame({c: pd.Series([], dtype="float64") for c in columns},
                            index=pd.Index([], name="alertname", dtype=object))
    grouped = chosen.groupby("alertname")
    stats = pd.DataFrame({
        "fires": grouped.size(),
        "median_duration": grouped["duration"].median(),
        "max_duration": grouped["duration"].max(),
        "total_duration": grouped["duration"].sum(),
        "series": grouped["series"].nunique(),
    })
    stats.index.name = "alertname"
    return stats.sort_values("fires", ascending=False, kind="stable")


def noisy_alerts(stats: pd.DataFrame, *, min_fires: int = 5, max_median_duration: float = 600) -> pd.DataFrame:
    """Alerts that fire often and resolve fast: at least `min_fires` fires with a median duration below
    `max_median_duration` seconds."""
    return stats[(stats["fires"] >= min_fires) & (stats["median_duration"] < max_median_duration)]


def _static_labels(labels: Mapping[str, Any]) -> dict[str, str]:
    # A templated label value ({{ $labels.x }}) is decided per alert; it says nothing about which fired.
    return {k: v for k, v in _labels(labels, "alert rules").items() if "{{" not in v and k not in _NOT_IDENTITY}


def rule_keys(rules: pd.DataFrame) -> list[str]:
    """One key per distinct alerting rule: its alert name and static labels (`SloBurnPageFast{slo="x",...}`)."""
    _need(rules, ("alertname", "labels"), "alert rules")
    keys = (series_key(str(n), _static_labels(lab)) for n, lab in zip(rules["alertname"], rules["labels"], strict=True))
    return list(dict.fromkeys(keys))


def never_fired(rules: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """The alerting rules with no firing: no interval of the rule's alert name carries all its static labels
    (so SloBurnPageFast of `availability` and of `latency` are two rules). Columns: alertname, rule, severity."""
    _need(rules, ("alertname", "labels"), "alert rules")
    fired: dict[str, list[dict[str, str]]] = {}
    for name, labels in zip(intervals["alertname"], intervals["labels"], strict=True):
        fired.setdefault(str(name), []).append(_labels(labels, "alert intervals"))
    rows = []
    seen: set[str] = set()
    for name, labels in zip(rules["alertname"], rules["labels"], strict=True):
        static = _static_labels(labels)
        key = series_key(str(name), static)
        if key in seen:
            continue
        seen.add(key)
        if not any(static.items() <= got.items() for got in fired.get(str(name), [])):
            rows.append({"alertname": str(name), "rule": key, "severity": static.get("severity", "")})
    return pd.DataFrame(rows, columns=["alertname", "rule", "severity"])


def bad_minute_flags(slo: Slo, frame: pd.DataFrame, *, burn_threshold: float = 1.0
                     ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """(judged minutes, whether each was bad): a minute is judged when it has events (occurrences) or at
    least min_events (timeslice methods); it is bad when its error ratio in the SLO's unit (bad events over
    events, a bad slice, the slice's error ratio) exceeds burn_threshold x (1 - target): it spent budget
    faster than the SLO can afford."""
    frame = ledger_frame(frame)
    good = frame["good"].to_numpy(dtype=np.float64)
    total = frame["total"].to_numpy(dtype=np.float64)
    span = frame["span"].to_numpy(dtype=np.int64)
    spent = minute_bad_units(slo, good, total, span)
    if slo.budgeting_method == "occurrences":
        judged = total > 0
        ratio = np.divide(spent, total, out=np.zeros_like(spent), where=judged)
    else:
        judged = evaluated_minutes(slo, total, span) > 0
        ratio = spent / span  # per minute covered
    bad = ratio > error_budget(slo.target) * burn_threshold
    return frame["minute"].to_numpy()[judged], bad[judged]


def _related_slos(labels: Mapping[str, str], slos: Sequence[Slo]) -> list[Slo]:
    if "slo" in labels:
        return [s for s in slos if s.name == labels["slo"]]
    if "service" in labels:
        return [s for s in slos if s.service == labels["service"]]
    return list(slos)


def firing_impact(intervals: pd.DataFrame, slos: Sequence[Slo], ledgers: Mapping[str, pd.DataFrame], *,
                  before: float = 300, burn_threshold: float = 1.0) -> pd.DataFrame:
    """Each firing with its SLO impact over [start - before, end): the related SLOs (the alert's `slo`
    label, else the SLOs of its `service` label, else all), their bad and judged minutes, and `impact`:
    bad (a bad minute), none (judged minutes, none bad) or unknown (no ledger data to judge)."""
    flags: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = {}
    for slo in slos:
        if slo.name in ledgers:
            minutes, bad = bad_minute_flags(slo, ledgers[slo.name], burn_threshold=burn_threshold)
            flags[slo.name] = (minutes, np.concatenate([[0], np.cumsum(bad, dtype=np.int64)]))
    out = intervals.copy()
    related_col, impact_col, bad_col, judged_col = [], [], [], []
    for labels, start, end in zip(out["labels"], out["start"], out["end"], strict=True):
        related = _related_slos(_labels(labels, "alert intervals"), slos)
        lo, hi = floor_minute(int(start - before)), ceil_minute(math.ceil(end))
        bad_total = judged_total = 0
        for slo in related:
            if slo.name not in flags:
                continue
            minutes, prefix = flags[slo.name]
            i, j = np.searchsorted(minutes, (lo, hi), side="left")
            judged_total += int(j - i)
            bad_total += int(prefix[j] - prefix[i])
        related_col.append([s.name for s in related])
        bad_col.append(bad_total)
        judged_col.append(judged_total)
        impact_col.append("bad" if bad_total else ("none" if judged_total else "unknown"))
    out["slos"] = pd.Series(related_col, index=out.index, dtype=object)
    out["bad_minutes"] = pd.Series(bad_col, index=out.index, dtype="int64")
    out["judged_minutes"] = pd.Series(judged_col, index=out.index, dtype="int64")
    out["impact"] = pd.Series(impact_col, index=out.index, dtype=object)
    return out


def alerts_without_impact(impact: pd.DataFrame) -> pd.DataFrame:
    """Per alert name: firings and how many had an SLO impact, none, or could not be judged; only the alerts
    none of whose firings had an impact and at least one was judged."""
    columns = ["firings", "with_impact", "without_impact", "unknown"]
    if impact.empty:
        return pd.DataFrame({c: pd.Series([], dtype="int64") for c in columns},
                            index=pd.Index([], name="alertname", dtype=object))
    counts = pd.crosstab(impact["alertname"], impact["impact"])
    table = pd.DataFrame({
        "firings": counts.sum(axis=1),
        "with_impact": counts.get("bad", 0),
        "without_impact": counts.get("none", 0),
        "unknown": counts.get("unknown", 0),
    }).astype("int64")
    table.index.name = "alertname"
    return table[(table["with_impact"] == 0) & (table["without_impact"] > 0)]


# --- policy states --------------------------------------------------------------------------------------

UNKNOWN = "unknown"  # before the first published state
STALE = "stale"  # a published state older than stale_after: gates treat it as blocking


def _history(history: pd.DataFrame) -> pd.DataFrame:
    _need(history, ("state", "computed_at"), "policy history")
    times = epoch_seconds(history["computed_at"], "policy history computed_at")
    if times.isna().any():
        raise DataError("policy history: a row has no computed_at")
    work = pd.DataFrame({"t": times.to_numpy(), "state": history["state"].astype(str).to_numpy()})
    return work.sort_values("t", kind="stable").reset_index(drop=True)


def state_segments(history: pd.DataFrame, start: Instant, end: Instant,
                   stale_after: float | None = None) -> pd.DataFrame:
    """The states of one SLO or service over [start, end) as segments (state, start, end, seconds).

    A published state holds from its computed_at until the next one; with `stale_after`, only that long,
    after which the time is `stale`. Time before the first known state is `unknown`.
    """
    a, b = to_epoch(start), to_epoch(end)
    work = _history(history)
    t, states = work["t"].to_numpy(), work["state"].to_numpy()
    k = int(np.searchsorted(t, a, side="left"))  # rows before k were published before the period
    events: list[tuple[float, str]] = []  # (published at, state) in time order
    if k > 0:
        events.append((float(t[k - 1]), str(states[k - 1])))
    events += [(float(x), str(s)) for x, s in zip(t[k:], states[k:], strict=True) if x < b]
    segments: list[tuple[str, float, float]] = []

    def add(state: str, lo: float, hi: float) -> None:
        lo, hi = max(lo, a), min(hi, b)
        if hi > lo:
            segments.append((state, lo, hi))

    add(UNKNOWN, a, events[0][0] if events else b)
    for i, (published, state) in enumerate(events):
        following = events[i + 1][0] if i + 1 < len(events) else float(b)
        valid_until = following if stale_after is None else min(following, published + stale_after)
        add(state, published, valid_until)
        add(STALE, valid_until, following)
    frame = pd.DataFrame(segments, columns=["state", "start", "end"])
    frame["seconds"] = frame["end"] - frame["start"]
    return frame


def state_at(history: pd.DataFrame, at: Instant, stale_after: float | None = None) -> tuple[str, float | None]:
    """The published state at `at` and when it was computed: `unknown` before any, `stale` when older than
    `stale_after` seconds (a gate would block on either)."""
    now = float(to_epoch(at))
    work = _history(history)
    known = work[work["t"] <= now]
    if known.empty:
        return UNKNOWN, None
    t, state = float(known["t"].iloc[-1]), str(known["state"].iloc[-1])
    if stale_after is not None and now - t > stale_after:
        return STALE, t
    return state, t


def time_in_states(segments: pd.DataFrame) -> dict[str, float]:
    """Seconds per state, worst state first (unknown and stale last)."""
    sums = segments.groupby("state")["seconds"].sum() if not segments.empty else pd.Series(dtype="float64")
    order = sorted(sums.index, key=lambda s: (s in (UNKNOWN, STALE), severity_rank(s), s))
    return {str(s): float(sums[s]) for s in order}


def state_entries(history: pd.DataFrame, start: Instant, end: Instant,
                  states: Sequence[str] = ("deploy_freeze", "rollback")) -> pd.DataFrame:
    """The times the policy entered one of `states` in [start, end): a published state that is worse than
    the one before it (rollback after deploy_freeze is an entry into rollback; deploy_freeze after rollback
    is a recovery, not a freeze). Columns: state, at, previous."""
    a, b = to_epoch(start), to_epoch(end)
    work = _history(history)
    previous = work["state"].shift(1)
    rows = []
    for t, state, prev in zip(work["t"], work["state"], previous, strict=True):
        if not (a <= t < b) or state not in states:
            continue
        prev_state = None if pd.isna(prev) else str(prev)
        if prev_state is None or (prev_state != state and severity_rank(prev_state) > severity_rank(state)):
            rows.append({"state": state, "at": float(t), "previous": prev_state})
    return pd.DataFrame(rows, columns=["state", "at", "previous"])


# --- deploys --------------------------------------------------------------------------------------------

DEPLOY_TIMES = ("requested_at", "started_at", "finished_at", "rolled_back_at")
FINISHED_OUTCOMES = ("promoted", "rolled_back", "timed_out", "failed")
FAILURE_OUTCOMES = ("rolled_back", "timed_out")


def _stages(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [str(v) for v in value]


def deployment_frame(records: pd.DataFrame) -> pd.DataFrame:
    """Deployment records with epoch-second times, `stages` as lists, dry runs left out."""
    _need(records, ("id", "service", "outcome", *DEPLOY_TIMES), "deployments")
    frame = records.copy()
    for column in DEPLOY_TIMES:
        frame[column] = epoch_seconds(frame[column], f"deployments {column}").to_numpy()
    frame["outcome"] = frame["outcome"].astype(str)
    frame["stages"] = pd.Series([_stages(v) for v in frame["stages"]] if "stages" in frame.columns
                                else [[] for _ in range(len(frame))], index=frame.index, dtype=object)
    dry = frame["dry_run"].fillna(False).astype(bool) if "dry_run" in frame.columns else False
    return frame[~(dry | (frame["outcome"] == "dry_run"))].reset_index(drop=True)


def _in(values: pd.Series, start: float, end: float) -> pd.Series:
    return (values >= start) & (values < end)


def deploy_outcomes(records: pd.DataFrame, start: Instant, end: Instant) -> pd.DataFrame:
    """Per service (and `all`): deploys finished in [start, end) by outcome, success rate (promoted over
    finished) and rollbacks (traffic moved back in the period)."""
    a, b = to_epoch(start), to_epoch(end)
    frame = deployment_frame(records)
    finished = frame[frame["outcome"].isin(FINISHED_OUTCOMES) & _in(frame["finished_at"], a, b)]
    rolled = frame[_in(frame["rolled_back_at"], a, b)]
    rows = []
    for service in [*sorted(set(frame["service"].astype(str))), "all"]:
        mine = finished if service == "all" else finished[finished["service"] == service]
        back = rolled if service == "all" else rolled[rolled["service"] == service]
        counts = {o: int((mine["outcome"] == o).sum()) for o in FINISHED_OUTCOMES}
        total = len(mine)
        rows.append({"service": service, "finished": total, **counts,
                     "success_rate": counts["promoted"] / total if total else None, "rollbacks": len(back)})
    return pd.DataFrame(rows).set_index("service")


def stuck_deploys(records: pd.DataFrame, at: Instant, stuck_after: float) -> pd.DataFrame:
    """Runs still `running` that were requested more than `stuck_after` seconds before `at`."""
    frame = deployment_frame(records)
    now = to_epoch(at)
    stuck = frame[(frame["outcome"] == "running") & (frame["requested_at"] <= now - stuck_after)].copy()
    stuck["age"] = now - stuck["requested_at"]
    return stuck


@dataclass(frozen=True)
class DoraMetrics:
    """The four DORA metrics of production deploys finished in [start, end)."""

    start: int
    end: int
    deploys: int  # promoted through production
    deploys_per_week: float
    lead_time_median: float | None  # seconds, requested -> finished, promoted deploys
    lead_time_p90: float | None
    finished: int
    failures: int  # rolled back or timed out
    change_failure_rate: float | None
    restores: int
    time_to_restore_median: float | None  # seconds, started -> rolled back
    time_to_restore_max: float | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(start=iso(self.start), end=iso(self.end))
        return out


def _quantile(values: pd.Series, q: float) -> float | None:
    clean = values.dropna()
    return None if clean.empty else float(clean.quantile(q))


def dora_metrics(records: pd.DataFrame, start: Instant, end: Instant, *, production_stage: str | None = "prod",
                 failure_outcomes: Sequence[str] = FAILURE_OUTCOMES,
                 finished_outcomes: Sequence[str] = FINISHED_OUTCOMES) -> DoraMetrics:
    """Deploy frequency, lead time, change failure rate and time to restore.

    Counted: deploys that went to `production_stage` (None: every deploy) and finished in the period.
    Frequency: promoted ones per week. Lead time: requested -> finished of promoted ones. Change failure
    rate: `failure_outcomes` over `finished_outcomes`. Time to restore: started -> rolled back.
    """
    a, b = to_epoch(start), to_epoch(end)
    frame = deployment_frame(records)
    if production_stage is not None:
        to_production = pd.Series([production_stage in stages for stages in frame["stages"]], index=frame.index,
                                  dtype=bool)
        frame = frame[to_production]
    done = frame[frame["outcome"].isin(finished_outcomes) & _in(frame["finished_at"], a, b)]
    promoted = done[done["outcome"] == "promoted"]
    failures = done[done["outcome"].isin(failure_outcomes)]
    restored = frame[_in(frame["rolled_back_at"], a, b) & frame["started_at"].notna()]
    lead = promoted["finished_at"] - promoted["requested_at"]
    restore = restored["rolled_back_at"] - restored["started_at"]
    return DoraMetrics(
        start=a, end=b, deploys=len(promoted), deploys_per_week=len(promoted) / ((b - a) / 604_800),
        lead_time_median=_quantile(lead, 0.5), lead_time_p90=_quantile(lead, 0.9), finished=len(done),
        failures=len(failures), change_failure_rate=len(failures) / len(done) if len(done) else None,
        restores=len(restored), time_to_restore_median=_quantile(restore, 0.5),
        time_to_restore_max=_quantile(restore, 1.0),
    )


# --- data sanity ----------------------------------------------------------------------------------------

GAP_COLUMNS = ("start", "end", "seconds", "edge")


def sample_gaps(timestamps: Any, start: Instant, end: Instant, max_gap: float) -> pd.DataFrame:
    """Stretches of [start, end) longer than `max_gap` seconds without a sample: between two samples
    (edge `inside`), before the first (`start`), after the last (`end`), or the whole period (`no data`)."""
    a, b = float(to_epoch(start)), float(to_epoch(end))
    t = epoch_seconds(pd.Series(timestamps) if not isinstance(timestamps, pd.Series) else timestamps,
                      "sample timestamps").dropna().to_numpy()
    t = np.unique(t[(t >= a) & (t < b)])
    if t.size == 0:
        rows = [(a, b, b - a, "no data")] if b - a > max_gap else []
        return pd.DataFrame(rows, columns=list(GAP_COLUMNS))
    edges = np.concatenate([[a], t, [b]])
    lengths = np.diff(edges)
    kinds = np.array(["inside"] * lengths.size, dtype=object)
    kinds[0], kinds[-1] = "start", "end"
    wide = lengths > max_gap
    frame = pd.DataFrame({"start": edges[:-1][wide], "end": edges[1:][wide], "seconds": lengths[wide],
                          "edge": kinds[wide]})
    return frame.reset_index(drop=True)


def series_gaps(samples: pd.DataFrame, start: Instant, end: Instant, max_gap: float,
                expected: Iterable[str] = ()) -> pd.DataFrame:
    """`sample_gaps` per series of a (series, timestamp) table; an `expected` series with no sample at all
    is one `no data` gap. Longest first."""
    _need(samples, ("series", "timestamp"), "sample timestamps")
    parts = []
    names = [*dict.fromkeys([*map(str, samples["series"].unique()), *expected])]
    for name in names:
        gaps = sample_gaps(samples.loc[samples["series"].astype(str) == name, "timestamp"], start, end, max_gap)
        if not gaps.empty:
            parts.append(gaps.assign(series=name))
    if not parts:
        return pd.DataFrame(columns=["series", *GAP_COLUMNS])
    out = pd.concat(parts, ignore_index=True)[["series", *GAP_COLUMNS]]
    return out.sort_values(["seconds", "series"], ascending=[False, True], kind="stable").reset_index(drop=True)


def staleness(newest: float | None, at: Instant) -> float | None:
    """Seconds since the newest sample, or None when there is none."""
    if newest is None or not math.isfinite(newest):
        return None
    return max(float(to_epoch(at)) - newest, 0.0)


def stale_series(freshness: pd.DataFrame, at: Instant, max_age: float) -> pd.DataFrame:
    """The rows of a (name, kind, query, newest) table with no sample, or whose newest sample is older than
    `max_age` seconds at `at`; with `age` (NaN for no data). Oldest first, no data first of all."""
    _need(freshness, ("name", "newest"), "series freshness")
    frame = freshness.copy()
    newest = epoch_seconds(frame["newest"], "series freshness newest")
    frame["age"] = float(to_epoch(at)) - newest
    stale = frame[frame["age"].isna() | (frame["age"] > max_age)]
    return stale.sort_values("age", ascending=False, na_position="first", kind="stable")


def stale_documents(documents: pd.DataFrame, at: Instant, max_age: float) -> pd.DataFrame:
    """Documents (path, updated_at) last changed more than `max_age` seconds before `at`, oldest first;
    with `age_days`. A document without a known change time counts as stale."""
    _need(documents, ("path", "updated_at"), "documents")
    frame = documents.copy()
    age = float(to_epoch(at)) - epoch_seconds(frame["updated_at"], "documents updated_at")
    frame["age_days"] = age / 86_400
    stale = frame[age.isna() | (age > max_age)]
    return stale.sort_values("age_days", ascending=False, na_position="first", kind="stable")


# --- chaos game-days ------------------------------------------------------------------------------------

FAILED_VERDICTS = ("fail", "aborted", "error")


def chaos_run_frame(runs: pd.DataFrame) -> pd.DataFrame:
    _need(runs, ("run_id", "experiment", "started_at", "finished_at", "verdict", "score"), "chaos runs")
    frame = runs.copy()
    for column in ("started_at", "finished_at"):
        frame[column] = epoch_seconds(frame[column], f"chaos runs {column}").to_numpy()
    frame["verdict"] = frame["verdict"].astype(str)
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce")
    return frame.sort_values("started_at", kind="stable").reset_index(drop=True)


def score_trend(runs: pd.DataFrame, start: Instant, end: Instant) -> dict[str, Any]:
    """Resilience scores of the runs started in [start, end): count, mean, first, last and the least-squares
    slope in points per week (None with fewer than two scored runs at distinct times)."""
    a, b = to_epoch(start), to_epoch(end)
    frame = chaos_run_frame(runs)
    scored = frame[_in(frame["started_at"], a, b) & frame["score"].notna()]
    scores, times = scored["score"].to_numpy(dtype=np.float64), scored["started_at"].to_numpy(dtype=np.float64)
    slope = None
    if scores.size >= 2 and np.ptp(times) > 0:
        slope = float(np.polyfit(times / 604_800, scores, 1)[0])
    return {"runs": int(scores.size), "mean": float(scores.mean()) if scores.size else None,
            "first": float(scores[0]) if scores.size else None, "last": float(scores[-1]) if scores.size else None,
            "slope_per_week": slope}


def failed_hypotheses(probes: pd.DataFrame, runs: pd.DataFrame, start: Instant, end: Instant) -> pd.DataFrame:
    """Steady-state probes that failed in runs started in [start, end): per (experiment, probe) the number of
    failures and the runs. Most failures first."""
    _need(probes, ("run_id", "experiment", "probe", "passed"), "chaos probes")
    a, b = to_epoch(start), to_epoch(end)
    frame = chaos_run_frame(runs)
    in_period = set(frame.loc[_in(frame["started_at"], a, b), "run_id"].astype(str))
    failed = probes[(~probes["passed"].astype(bool)) & probes["run_id"].astype(str).isin(in_period)]
    columns = ["experiment", "probe", "failures", "runs"]
    if failed.empty:
        return pd.DataFrame(columns=columns)
    grouped = failed.groupby(["experiment", "probe"], sort=True)
    out = pd.DataFrame({"failures": grouped.size(),
                        "runs": grouped["run_id"].agg(lambda ids: sorted(set(map(str, ids))))}).reset_index()
    return out.sort_values("failures", ascending=False, kind="stable").reset_index(drop=True)[columns]


def leftover_faults(active: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Faults injected now whose run is not running any more (finished, or not a known run): left behind."""
    _need(active, ("service", "target", "fault", "injected_at", "run_id"), "chaos active faults")
    frame = chaos_run_frame(runs)
    running = set(frame.loc[frame["finished_at"].isna() & (frame["verdict"] == "running"), "run_id"].astype(str))
    return active[~active["run_id"].astype(str).isin(running)]


# --- SLO target review ----------------------------------------------------------------------------------

# The targets people choose between; a review suggests the neighbouring step, one at a time.
TARGET_LADDER = (0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99995, 0.99999)
Recommendation = Literal["tighten", "keep", "loosen"]


@dataclass(frozen=True)
class TargetReview:
    """A recommendation for one SLO's target, with the months behind it."""

    slo: str
    target: float
    recommendation: Recommendation
    reason: str
    confident: bool  # False when too few months had enough data to judge
    suggested_target: float | None
    judged_months: int
    exhausted_months: int
    months: tuple[Attainment, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "months"}
        out["months"] = [
            {"start": iso(m.start), "end": iso(m.end), "sli": m.sli, "budget_consumed": m.budget_consumed,
             "coverage": m.coverage, "met": m.met, "reason": m.reason}
            for m in self.months
        ]
        return out


def _pct(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def next_target(target: float, direction: Literal["up", "down"]) -> float | None:
    """The neighbouring step of TARGET_LADDER above or below `target`."""
    if direction == "up":
        return next((t for t in TARGET_LADDER if t > target + 1e-12), None)
    return next((t for t in reversed(TARGET_LADDER) if t < target - 1e-12), None)


def recommend_target(slo: str, target: float, months: Sequence[Attainment], *, min_months: int = 3,
                     min_coverage: float = 0.9, tighten_max_consumed: float = 0.25,
                     loosen_min_exhaustions: int = 2, exhaustion_share: float = 1.0) -> TargetReview:
    """Tighten, keep or loosen an SLO target from its monthly attainment.

    loosen: the budget was exhausted (consumed >= exhaustion_share) in at least `loosen_min_exhaustions`
    months (the target, or the reliability work behind it, needs a decision).
    tighten: at least `min_months` judged months, each consuming at most `tighten_max_consumed` of its
    budget; the suggested target is the next step up when every month would have met it.
    keep: otherwise; not confident when fewer than `min_months` months had coverage >= min_coverage.
    """
    judged = [m for m in months
              if m.sli is not None and m.budget_consumed is not None and (m.coverage or 0) >= min_coverage]
    exhausted = [m for m in judged if m.exhausted(exhaustion_share)]
    consumed = [m.budget_consumed for m in judged if m.budget_consumed is not None]
    def review(recommendation: Recommendation, reason: str, *, confident: bool = True,
               suggested: float | None = None) -> TargetReview:
        return TargetReview(slo=slo, target=target, recommendation=recommendation, reason=reason,
                            confident=confident, suggested_target=suggested, judged_months=len(judged),
                            exhausted_months=len(exhausted), months=tuple(months))

    if len(exhausted) >= loosen_min_exhaustions:
        return review("loosen", f"budget exhausted in {len(exhausted)} of {len(judged)} judged months (at least "
                                f"{loosen_min_exhaustions} means the target is out of reach without reliability "
                                "work)", suggested=next_target(target, "down"))
    if not judged or len(judged) < min_months:
        return review("keep", f"only {len(judged)} of {len(months)} months had data for at least "
                              f"{_pct(min_coverage, 0)} of their minutes; {max(min_months, 1)} are needed to judge",
                      confident=False)
    if max(consumed) <= tighten_max_consumed:
        step = next_target(target, "up")
        worst = min(m.sli for m in judged if m.sli is not None)
        suggested = step if step is not None and worst >= step else None
        if step is None:
            tail = "; the target is already at the top of the ladder"
        elif suggested is None:
            tail = (f"; the worst month ({_pct(worst)}) would not have met the next step {_pct(step)}, so "
                    "consider a smaller step")
        else:
            tail = f"; every month would have met {_pct(step)}"
        return review("tighten", f"every one of {len(judged)} months consumed at most {_pct(max(consumed), 1)} of "
                                 f"its budget (tighten when at most {_pct(tighten_max_consumed, 0)}){tail}",
                      suggested=suggested)
    return review("keep", f"budget consumed per month {', '.join(_pct(c, 1) for c in consumed)}: neither exhausted "
                          f"{loosen_min_exhaustions}+ times nor always below {_pct(tighten_max_consumed, 0)}")

__all__ = [
    "FAILED_VERDICTS",
    "FAILURE_OUTCOMES",
    "FINISHED_OUTCOMES",
    "TARGET_LADDER",
    "Attainment",
    "DataError",
    "DoraMetrics",
    "TargetReview",
    "alert_stats",
    "alerts_without_impact",
    "as_ledger",
    "attainment",
    "bad_minute_flags",
    "budget_spend_by_minute",
    "chaos_run_frame",
    "deploy_outcomes",
    "deployment_frame",
    "dora_metrics",
    "epoch_seconds",
    "failed_hypotheses",
    "firing_impact",
    "firing_intervals",
    "ledger_frame",
    "leftover_faults",
    "never_fired",
    "next_target",
    "noisy_alerts",
    "period_budget",
    "period_counts",
    "recommend_target",
    "rule_keys",
    "sample_gaps",
    "score_trend",
    "series_gaps",
    "series_key",
    "spend_by_period",
    "spend_by_weekday_hour",
    "stale_documents",
    "stale_series",
    "staleness",
    "state_at",
    "state_entries",
    "state_segments",
    "stuck_deploys",
    "time_in_states",
    "top_spending_periods",
]
