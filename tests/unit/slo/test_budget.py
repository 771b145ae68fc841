"""Error-budget math: hand-checked cases from the SRE Workbook, calendar months, exclusions, each method."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from gamesre.core.time import KST
from gamesre.slo.budget import (
    Ledger,
    budget_consumed,
    budget_remaining,
    budget_total,
    burn_factor,
    burn_rate,
    compute_snapshot,
    coverage,
    sli,
)
from gamesre.slo.spec import BURN_WINDOWS, Slo, load_slos
from gamesre.slo.windows import window_bounds

AT = datetime(2026, 3, 20, 0, 0, tzinfo=UTC)
END = int(AT.timestamp())
DAY = 86400
CATALOG = load_slos()


def slo(name: str = "availability", **changes: object) -> Slo:
    return CATALOG[name].model_copy(update=changes)


def steady(days: float, per_minute: float, end: int = END, error_ratio: float = 0.0) -> Ledger:
    """`days` of constant traffic ending at `end`, with a constant error ratio."""
    n = int(days * 1440)
    minutes = np.arange(end - n * 60, end, 60, dtype=np.int64)
    total = np.full(n, per_minute)
    return Ledger(minutes, total * (1 - error_ratio), total)


def with_burn(base: Ledger, minutes: int, error_ratio: float, end: int = END) -> Ledger:
    """The ledger with the given error ratio over its last `minutes` minutes before `end`."""
    good = base.good.copy()
    last = (base.minutes >= end - minutes * 60) & (base.minutes < end)
    good[last] = base.total[last] * (1 - error_ratio)
    return Ledger(base.minutes, good, base.total)


# --- the domain functions -------------------------------------------------------------------------------


def test_burn_factor_matches_the_workbook_and_is_exact_for_28_days() -> None:
    assert burn_factor("30d", "1h", 0.02) == pytest.approx(14.4, rel=1e-12)
    assert burn_factor(timedelta(days=30), timedelta(hours=6), 0.05) == pytest.approx(6.0, rel=1e-12)
    assert burn_factor("30d", "1d", 0.10) == pytest.approx(3.0, rel=1e-12)
    assert burn_factor("30d", "3d", 0.10) == pytest.approx(1.0, rel=1e-12)
    assert burn_factor("28d", "1h", 0.02) == pytest.approx(13.44, rel=1e-12)
    assert burn_factor(28 * DAY, 6 * 3600, 0.05) == pytest.approx(5.6, rel=1e-12)


def test_small_functions_refuse_to_invent_numbers() -> None:
    assert sli(0, 0) is None
    assert sli(5, 4) == 1.0  # never above 1
    assert budget_total(0.999, 43200) == pytest.approx(43.2)
    assert budget_consumed(21.6, 43.2) == pytest.approx(0.5)
    assert budget_consumed(1, 0) is None
    assert budget_remaining(None) is None and budget_remaining(0.25) == 0.75
    assert burn_rate(0.0144, 0.999) == pytest.approx(14.4)
    assert burn_rate(None, 0.999) is None
    assert coverage(0, 0) is None and coverage(30, 60) == 0.5


# --- SRE Workbook: burn sustained for a while consumes a known share --------------------------------------


@pytest.mark.parametrize(
    ("burn", "minutes", "share"), [(14.4, 60, 0.02), (6.0, 360, 0.05), (3.0, 1440, 0.10), (1.0, 4320, 0.10)]
)
def test_a_burn_rate_held_for_a_while_consumes_the_workbook_share(burn: float, minutes: int, share: float) -> None:
    ledger = with_burn(steady(30, 1000), minutes, burn * 0.001)
    snap = compute_snapshot(slo("availability"), ledger, AT)
    assert snap.window_minutes == 43200
    assert snap.budget_consumed == pytest.approx(share, rel=1e-9)
    assert snap.budget_remaining == pytest.approx(1 - share, rel=1e-9)
    assert snap.budget_total == pytest.approx(0.001 * 1000 * 43200)
    long = {60: "1h", 360: "6h", 1440: "1d", 4320: "3d"}[minutes]
    assert snap.burn_rates[long] == pytest.approx(burn, rel=1e-9)
    assert snap.burn_rates["5m"] == pytest.approx(burn, rel=1e-9)


def test_the_workbook_share_holds_in_minutes_for_ratio_timeslices() -> None:
    spec = slo("availability", budgeting_method="ratio-timeslices", min_events=1)
    snap = compute_snapshot(spec, with_burn(steady(30, 1000), 60, 0.0144), AT)
    assert snap.budget_unit == "minutes"
    assert snap.budget_total == pytest.approx(43.2)
    assert snap.budget_consumed == pytest.approx(0.02, rel=1e-9)
    assert snap.bad == pytest.approx(0.864, rel=1e-9)  # 60 minutes x 1.44% of a minute


def test_on_28_days_the_same_hour_consumes_a_28th_share() -> None:
    snap = compute_snapshot(slo("matchmaking-success"), with_burn(steady(28, 100), 60, 13.44 * 0.05), AT)
    assert snap.window_minutes == 28 * 1440
    assert snap.budget_consumed == pytest.approx(0.02, rel=1e-9)


def test_consumption_does_not_depend_on_coverage_for_the_burn_it_saw() -> None:
    # only the burning hour is in the ledger: still 14.4 x 1h / 30d = 2%
    snap = compute_snapshot(slo("availability", min_events=1), with_burn(steady(1 / 24, 1000), 60, 0.0144), AT)
    assert snap.budget_consumed == pytest.approx(0.02, rel=1e-9)
    assert snap.coverage == pytest.approx(60 / 43200)


# --- a scrape gap: its events in the row after it, which covers its minutes ----------------------------------


def with_gap(base: Ledger, gap_end: int, minutes: int) -> Ledger:
    """The same events with `minutes` unscraped minutes before `gap_end`: the row at gap_end carries them."""
    gap = (base.minutes >= gap_end - minutes * 60) & (base.minutes < gap_end)
    at = int(np.flatnonzero(base.minutes == gap_end)[0])
    good, total, span = base.good.copy(), base.total.copy(), base.spans.copy()
    good[at] += good[gap].sum()
    total[at] += total[gap].sum()
    span[at] += int(gap.sum())
    keep = ~gap
    return Ledger(base.minutes[keep], good[keep], total[keep], span[keep])


def test_the_same_events_with_and_without_a_gap_consume_the_same_budget() -> None:
    # a day of 0.5% errors two weeks back and a bad hour today; Prometheus saw nothing for 30 minutes at noon
    base = with_burn(with_burn(steady(30, 1000), 1440, 0.005, end=END - 14 * DAY), 60, 0.05)
    gapped = with_gap(base, END - 12 * 3600, 30)
    assert len(gapped) == len(base) - 30 and gapped.total.sum() == base.total.sum()
    exact = compute_snapshot(slo("availability"), base, AT)
    with_hole = compute_snapshot(slo("availability"), gapped, AT)
    assert with_hole.coverage == exact.coverage == 1.0
    assert with_hole.budget_total == pytest.approx(exact.budget_total, rel=1e-12)
    assert with_hole.budget_consumed == pytest.approx(exact.budget_consumed, rel=1e-12)


def test_a_row_after_a_gap_stands_for_every_minute_of_it_in_the_timeslice_methods() -> None:
    ledger = Ledger.from_rows([(END - 600, 900, 1000, 1), (END - 60, 7200, 8000, 9)])  # 10% errors over 9 minutes
    ratio = compute_snapshot(slo("availability", budgeting_method="ratio-timeslices", min_events=20), ledger, AT)
    assert ratio.bad == pytest.approx(0.1 * 10)
    slices = compute_snapshot(slo("availability", budgeting_method="timeslices", timeslice_target=0.95,
                                  min_events=20), ledger, AT)
    assert (slices.good, slices.bad) == (0, 10)
    assert slices.burn_windows["30m"].slices == 10 and slices.burn_windows["30m"].covered == 10
    # too few events per covered minute: a no-data row for the timeslice methods, still covered
    thin = compute_snapshot(slo("availability", budgeting_method="timeslices", timeslice_target=0.95,
                                min_events=1001), ledger, AT)
    assert thin.sli is None and thin.burn_windows["30m"].covered == 10


# --- each budgeting method on a small hand-computed ledger ------------------------------------------------

SMALL = Ledger.from_rows(
    [
        (END - 600, 90, 100),  # 10% bad
        (END - 540, 100, 100),  # perfect
        (END - 480, 5, 10),  # below min_events 20
        (END - 420, 0, 0),  # no traffic, but data
    ]
)


def test_occurrences_on_a_small_ledger() -> None:
    snap = compute_snapshot(slo("availability", target=0.9, min_events=1), SMALL, AT)
    assert snap.sli == pytest.approx(195 / 210)
    assert (snap.good, snap.bad, snap.events) == (195, 15, 210)
    expected_events = 210 * 43200 / 4  # events seen x window minutes / minutes with data
    assert snap.budget_total == pytest.approx(0.1 * expected_events)
    assert snap.budget_consumed == pytest.approx(15 / (0.1 * expected_events))
    assert snap.coverage == pytest.approx(4 / 43200)


@pytest.mark.parametrize(
    ("no_data", "sli_value", "bad_minutes"),
    [("skip", 1 / 2, 1), ("good", 43199 / 43200, 1), ("bad", 1 / 43200, 43199)],
)
def test_timeslices_on_a_small_ledger(no_data: str, sli_value: float, bad_minutes: int) -> None:
    spec = slo(
        "availability", target=0.9, budgeting_method="timeslices", timeslice_target=0.95, min_events=20, no_data=no_data
    )
    snap = compute_snapshot(spec, SMALL, AT)
    assert snap.budget_unit == "minutes"
    assert snap.sli == pytest.approx(sli_value)
    assert snap.bad == bad_minutes
    assert snap.budget_total == pytest.approx(4320)
    assert snap.budget_consumed == pytest.approx(bad_minutes / 4320)


def test_ratio_timeslices_on_a_small_ledger() -> None:
    spec = slo("availability", target=0.9, budgeting_method="ratio-timeslices", min_events=20)
    snap = compute_snapshot(spec, SMALL, AT)
    assert snap.sli == pytest.approx(1.9 / 2)  # mean of the evaluated minutes' good shares 0.9 and 1.0
    assert snap.bad == pytest.approx(0.1)
    assert snap.budget_consumed == pytest.approx(0.1 / 4320)


def test_a_minute_exactly_at_the_timeslice_target_is_good() -> None:
    spec = slo("availability", budgeting_method="timeslices", timeslice_target=0.999, min_events=1)
    snap = compute_snapshot(spec, Ledger.from_rows([(END - 60, 999, 1000), (END - 120, 998, 1000)]), AT)
    assert (snap.good, snap.bad) == (1, 1)


def test_threshold_sli_minutes() -> None:
    # the ingest stores good=1/0 and total=1 per evaluated minute
    rows = [(END - 60 * i, 1.0 if i % 4 else 0.0, 1.0) for i in range(1, 41)]
    snap = compute_snapshot(slo("concurrent-sessions"), Ledger.from_rows(rows), AT)
    assert (snap.good, snap.bad) == (30, 10)
    assert snap.sli == 0.75
    assert snap.budget_total == pytest.approx(0.001 * 28 * 1440)
    assert snap.budget_consumed == pytest.approx(10 / (0.001 * 28 * 1440))
    assert snap.burn_windows["1h"].slices == 40


# --- calendar months in Asia/Seoul ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "start", "days"),
    [
        (datetime(2026, 2, 15, 12, tzinfo=KST), datetime(2026, 2, 1, tzinfo=KST), 28),
        (datetime(2024, 2, 29, 23, 59, tzinfo=KST), datetime(2024, 2, 1, tzinfo=KST), 29),
        (datetime(2026, 3, 31, 23, 59, 59, tzinfo=KST), datetime(2026, 3, 1, tzinfo=KST), 31),
        (datetime(2026, 4, 1, 0, 0, tzinfo=KST), datetime(2026, 4, 1, tzinfo=KST), 30),
        (datetime(2026, 12, 31, 20, 0, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=KST), 31),  # already January in Seoul
    ],
)
def test_calendar_month_bounds_are_seoul_months(at: datetime, start: datetime, days: int) -> None:
    bounds = window_bounds("calendar-month", at)
    assert bounds.start == int(start.timestamp())
    assert bounds.minutes == days * 1440
    assert bounds.start % 86400 == 15 * 3600  # 00:00 KST is 15:00 UTC the day before


def test_calendar_month_budget_is_the_whole_months_and_consumption_is_so_far() -> None:
    at = datetime(2026, 2, 15, 0, 0, tzinfo=KST)  # 14 of February's 28 days elapsed
    start = int(datetime(2026, 2, 1, tzinfo=KST).timestamp())
    ledger = steady(14, 100, end=int(at.timestamp()), error_ratio=0.0002)  # 2x burn for the first half
    snap = compute_snapshot(slo("data-save-success"), ledger, at)
    assert snap.window_start == "2026-01-31T15:00:00Z"
    assert snap.window_end == "2026-02-28T15:00:00Z"
    assert snap.elapsed_minutes == 14 * 1440
    assert snap.budget_total == pytest.approx(0.0001 * 100 * 28 * 1440)  # the whole month's expected events
    assert snap.budget_consumed == pytest.approx(2 * 14 / 28)  # burn 2 for half the month: 100%
    assert snap.coverage == 1.0
    # the ledger rows of the previous month do not count
    older = steady(20, 100, end=int(at.timestamp()), error_ratio=0.0002)
    assert compute_snapshot(slo("data-save-success"), older, at).events == pytest.approx(100 * 14 * 1440)
    assert start == int(at.timestamp()) - 14 * DAY


def test_timeslice_budget_in_a_february_is_28_days_of_minutes() -> None:
    at = datetime(2026, 2, 10, 0, 0, tzinfo=KST)
    rows = [(int(at.timestamp()) - 60 * i, 0.0 if i <= 4 else 1000.0, 1000.0) for i in range(1, 100)]
    snap = compute_snapshot(slo("error-rate"), Ledger.from_rows(rows), at)
    assert snap.window_minutes == 40320
    assert snap.budget_total == pytest.approx(40.32)
    assert snap.budget_consumed == pytest.approx(4 / 40.32)


def test_the_first_instant_of_a_month_has_no_data_yet() -> None:
    at = datetime(2026, 4, 1, 0, 0, tzinfo=KST)
    snap = compute_snapshot(slo("data-save-success"), steady(30, 100, end=int(at.timestamp())), at)
    assert snap.elapsed_minutes == 0
    assert snap.sli is None and snap.status == "no_data"
    assert snap.budget_consumed is None and snap.coverage is None
    assert snap.burn_rates["1h"] == 0.0  # burn rates look back across the month's start


def test_window_override_switches_to_the_calendar_month() -> None:
    snap = compute_snapshot(slo("availability"), steady(30, 10), AT, window_override="month")
    assert snap.window == "calendar-month"
    assert snap.window_start == "2026-02-28T15:00:00Z"


# --- exclusions -----------------------------------------------------------------------------------------


def test_exclusions_crossing_the_window_edges_remove_only_their_minutes_inside() -> None:
    spec = slo("availability")
    start = END - 30 * DAY
    ledger = with_burn(steady(31, 1000, error_ratio=0.0), 30 * 1440 + 1440, 0.0)
    good = ledger.good.copy()
    bad_hour = (ledger.minutes >= start - 1800) & (ledger.minutes < start + 1800)  # straddles the window start
    good[bad_hour] = 0
    recent = ledger.minutes >= END - 900  # the last 15 minutes are all bad
    good[recent] = 0
    ledger = Ledger(ledger.minutes, good, ledger.total)
    exclusions = [
        (datetime.fromtimestamp(start - 3600, UTC), datetime.fromtimestamp(start + 1800, UTC)),
        (END - 600, END + 3600),  # crosses the evaluation instant
    ]
    snap = compute_snapshot(spec, ledger, AT, exclusions=exclusions)
    assert snap.excluded_minutes == 30 + 10
    assert snap.bad == pytest.approx(1000 * (30 + 15))
    assert snap.bad_adjusted == pytest.approx(1000 * 5)
    assert snap.budget_total == pytest.approx(0.001 * 1000 * 43200)  # exclusions never shrink the budget
    assert snap.budget_consumed_adjusted == pytest.approx(5000 / 43200)
    assert snap.budget_consumed == pytest.approx(45000 / 43200)
    assert snap.sli_adjusted == pytest.approx(1 - 5000 / (1000 * (43200 - 40)))
    assert snap.burn_rates_adjusted["5m"] is None  # every minute of the last 5 is excluded
    assert snap.burn_rates["5m"] == pytest.approx(1000.0)
    assert snap.coverage == 1.0 and snap.coverage_adjusted == 1.0


def test_exclusion_bounds_are_widened_to_whole_minutes() -> None:
    ledger = with_burn(steady(30, 100), 3, 1.0)
    exclusion = [(END - 150, END - 61)]  # touches minutes END-180 (partly) and END-120
    snap = compute_snapshot(slo("availability"), ledger, AT, exclusions=exclusion)
    assert snap.excluded_minutes == 2
    assert snap.bad_adjusted == pytest.approx(100)


def test_an_exclusion_must_not_be_reversed() -> None:
    with pytest.raises(ValueError, match="empty or reversed"):
        compute_snapshot(slo(), Ledger.empty(), AT, exclusions=[(END, END - 60)])


# --- no data, never NaN ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [s.name for s in CATALOG])
def test_no_traffic_is_an_explicit_no_data_for_every_slo(name: str) -> None:
    for ledger in (Ledger.empty(), Ledger.from_rows([(END - 60 * i, 0, 0) for i in range(1, 500)])):
        snap = compute_snapshot(CATALOG[name], ledger, AT)
        assert snap.sli is None and snap.status == "no_data"
        assert snap.budget_consumed is None and snap.budget_remaining_adjusted is None
        assert snap.reasons
        json.dumps(snap.to_dict(), allow_nan=False)


def test_occurrences_below_min_events_is_insufficient_data() -> None:
    snap = compute_snapshot(slo("availability"), Ledger.from_rows([(END - 60, 999, 999)]), AT)
    assert snap.sli is None
    assert "insufficient data: 999 events in the window, fewer than min_events 1000" in snap.reasons[0]


def test_ledger_rejects_malformed_input() -> None:
    with pytest.raises(ValueError, match="minute-aligned"):
        Ledger(np.array([61]), np.array([1.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="sorted and unique"):
        Ledger(np.array([120, 60]), np.array([1.0, 1.0]), np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="exceeds total"):
        Ledger(np.array([60]), np.array([2.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="finite and non-negative"):
        Ledger(np.array([60]), np.array([np.nan]), np.array([1.0]))
    with pytest.raises(ValueError, match="no timezone"):
        compute_snapshot(slo(), Ledger.empty(), datetime(2026, 1, 1))


def test_snapshot_has_every_burn_window_and_a_json_safe_dict() -> None:
    snap = compute_snapshot(slo("latency"), steady(30, 50, error_ratio=0.01), AT)
    assert tuple(snap.burn_rates) == BURN_WINDOWS
    d = snap.to_dict()
    for key in (
        "name",
        "target",
        "window",
        "method",
        "sli",
        "budget_consumed",
        "budget_remaining",
        "budget_remaining_adjusted",
        "burn_rates",
        "coverage",
    ):
        assert key in d
    assert d["burn_rates"]["1h"] == pytest.approx(0.2)  # 1% errors on a 5% budget
    assert json.loads(json.dumps(d, allow_nan=False)) == d


def test_rows_after_the_evaluation_instant_are_ignored() -> None:
    ledger = steady(31, 100, end=END + DAY, error_ratio=0.0)
    future_bad = with_burn(ledger, 1440, 1.0, end=END + DAY)
    assert compute_snapshot(slo(), future_bad, AT) == compute_snapshot(slo(), ledger, AT)


def test_a_hundred_thirty_day_snapshots_take_well_under_two_seconds() -> None:
    rng = np.random.default_rng(7)
    total = rng.integers(0, 5000, 43200).astype(np.float64)
    ledger = Ledger(
        np.arange(END - 43200 * 60, END, 60, dtype=np.int64), total - rng.binomial(total.astype(np.int64), 0.001), total
    )
    specs = list(CATALOG)
    compute_snapshot(specs[0], ledger, AT)  # warm up imports
    started = time.perf_counter()
    for i in range(100):
        compute_snapshot(specs[i % len(specs)], ledger, AT, exclusions=[(END - 5 * DAY, END - 5 * DAY + 4 * 3600)])
    assert time.perf_counter() - started < 2.0
