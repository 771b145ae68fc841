"""SLO attainment over a period: numbers checked by hand, and equal to the budget math's on rolling windows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gamesre.checklists.analytics import (
    DataError,
    as_ledger,
    attainment,
    budget_spend_by_minute,
    ledger_frame,
)
from gamesre.slo.budget import compute_snapshot
from gamesre.slo.spec import Slo, load_slos
from tests.unit.checklists.conftest import AT, AT_EPOCH, flat_ledger, slo_like, with_bad

DAY_START = AT_EPOCH - 86_400 - 10 * 3600  # 2026-02-28 15:00 UTC = Sunday 1 March 00:00 KST
DAY_END = DAY_START + 86_400
CATALOG = load_slos()


def test_an_occurrences_slo_below_target_for_a_day() -> None:
    slo = CATALOG["availability"]  # 99.9%, occurrences, min_events 1000
    frame = with_bad(flat_ledger(DAY_START, DAY_END, 1000.0), DAY_START + 3600, DAY_START + 7200, 900.0)
    a = attainment(slo, frame, DAY_START, DAY_END)
    assert a.bad == 60 * 100 and a.events == 1440 * 1000
    assert a.sli == pytest.approx(1 - 6000 / 1_440_000)
    assert a.budget == pytest.approx(0.001 * 1_440_000)
    assert a.budget_consumed == pytest.approx(6000 / 1440)
    assert a.burn_rate == pytest.approx(6000 / 1_440_000 / 0.001)
    assert a.met is False and a.exhausted() and a.unit == "events"
    assert (a.elapsed_minutes, a.covered_minutes, a.excluded_minutes, a.coverage) == (1440, 1440, 0, 1.0)
    d = a.to_dict()
    assert d["start"] == "2026-02-28T15:00:00Z" and d["met"] is False and d["burn_rate"] == pytest.approx(4.1666667)


def test_a_maintenance_window_leaves_the_adjusted_sli_and_keeps_the_raw_one() -> None:
    slo = CATALOG["availability"]
    frame = with_bad(flat_ledger(DAY_START, DAY_END, 1000.0), DAY_START + 3600, DAY_START + 7200, 900.0)
    a = attainment(slo, frame, DAY_START, DAY_END, [(DAY_START + 3600 + 30, DAY_START + 7200 - 30)])
    assert a.sli == 1.0 and a.met is True
    assert a.sli_raw == pytest.approx(1 - 6000 / 1_440_000)
    assert (a.elapsed_minutes, a.excluded_minutes) == (1380, 60)  # any minute an exclusion touches
    assert a.budget == pytest.approx(1440)  # an exclusion never shrinks the budget
    assert a.budget_consumed == 0


def test_a_timeslices_slo_counts_bad_minutes_and_skips_no_data() -> None:
    slo = CATALOG["concurrent-sessions"]  # 99.9% of minutes, slice good at 100%, no_data skip
    frame = flat_ledger(DAY_START, DAY_END, 1.0)
    frame = with_bad(frame, DAY_START, DAY_START + 120, 0.0)  # 2 bad slices
    frame = frame[(frame["minute"] < DAY_START + 600) | (frame["minute"] >= DAY_START + 1200)]  # 10 minutes missing
    a = attainment(slo, frame, DAY_START, DAY_END)
    assert (a.good, a.bad, a.unit) == (1428, 2, "minutes")
    assert a.sli == pytest.approx(1428 / 1430)
    assert a.budget == pytest.approx(0.001 * 1440) and a.budget_consumed == pytest.approx(2 / 1.44)
    assert a.coverage == pytest.approx(1430 / 1440)
    bad_when_missing = attainment(slo_like(slo, no_data="bad"), frame, DAY_START, DAY_END)
    assert (bad_when_missing.good, bad_when_missing.bad) == (1428, 12)


def test_a_ratio_timeslices_slo_averages_the_minutes_error_ratios() -> None:
    slo = CATALOG["error-rate"]  # 99.9%, ratio-timeslices, min_events 20
    frame = flat_ledger(DAY_START, DAY_START + 100 * 60, 100.0)
    frame = with_bad(frame, DAY_START, DAY_START + 60, 95.0)  # one minute at 5% errors
    frame.loc[frame.index[-1], ["good", "total"]] = [10.0, 10.0]  # too few events: a no-data minute
    a = attainment(slo, frame, DAY_START, DAY_START + 100 * 60)
    assert a.bad == pytest.approx(0.05) and a.good == pytest.approx(98.95)
    assert a.sli == pytest.approx(1 - 0.05 / 99)


def test_no_data_and_too_little_data_have_no_sli_and_say_why() -> None:
    slo = CATALOG["availability"]
    empty = attainment(slo, pd.DataFrame(columns=["minute", "good", "total"]), DAY_START, DAY_END)
    assert (empty.sli, empty.met, empty.budget_consumed, empty.reason) == (None, None, None, "no events in the period")
    assert empty.coverage == 0.0 and empty.burn_rate is None
    few = attainment(slo, flat_ledger(DAY_START, DAY_START + 60, 500.0), DAY_START, DAY_END)
    assert few.sli is None and few.reason == "insufficient data: 500 events in the period, fewer than min_events 1000"
    assert few.sli_raw is None


def test_ledger_frames_are_checked_with_the_ledger_rules() -> None:
    assert list(ledger_frame([(120, 1, 2), (60, 3, 3)])["minute"]) == [60, 120]
    with pytest.raises(DataError, match="not minute-aligned"):
        ledger_frame([(61, 1, 1)])
    with pytest.raises(DataError, match="exceeds total"):
        ledger_frame(pd.DataFrame({"minute": [60], "good": [2.0], "total": [1.0]}))
    with pytest.raises(DataError, match="sorted and unique"):
        ledger_frame([(60, 1, 1), (60, 1, 1)])
    with pytest.raises(DataError, match="missing column"):
        ledger_frame(pd.DataFrame({"minute": [60]}))
    ledger = as_ledger(flat_ledger(0, 600))
    assert len(ledger_frame(ledger)) == len(ledger) == 10


# --- the same numbers as the budget math ----------------------------------------------------------------

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPAN = 31 * 1440


@st.composite
def rolling_specs(draw: st.DrawFn) -> Slo:
    base = draw(st.sampled_from([s for s in CATALOG if s.sli.kind == "ratio"]))
    method = draw(st.sampled_from(["occurrences", "timeslices", "ratio-timeslices"]))
    return base.model_copy(update={
        "budgeting_method": method,
        "target": draw(st.sampled_from([0.9, 0.99, 0.999, 0.9999])),
        "window": draw(st.sampled_from(["rolling-28d", "rolling-30d"])),
        "timeslice_target": draw(st.sampled_from([0.5, 0.999, 1.0])) if method == "timeslices" else None,
        "no_data": "skip" if method == "occurrences" else draw(st.sampled_from(["good", "bad", "skip"])),
        "min_events": draw(st.integers(1, 50)),
    })


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    offsets = draw(st.lists(st.integers(-5, SPAN), unique=True, max_size=80))
    rows = []
    for off in offsets:
        total = float(draw(st.integers(0, 5000)))
        share = draw(st.sampled_from([0.0, 0.5, 0.999, 1.0]) | st.floats(0, 1))
        rows.append((AT_EPOCH - off * 60, min(total * share, total), total))
    return ledger_frame(rows)


exclusion_lists = st.lists(
    st.tuples(st.integers(-600, SPAN * 60), st.integers(1, 3 * 86_400)).map(
        lambda p: (AT_EPOCH - p[0], AT_EPOCH - p[0] + p[1])), max_size=3)


def same(x: float | None, y: float | None) -> bool:
    if x is None or y is None:
        return x is y
    return x == pytest.approx(y, rel=1e-9, abs=1e-9)


@SETTINGS
@given(slo=rolling_specs(), frame=frames(), exclusions=exclusion_lists)
def test_attainment_over_a_rolling_window_equals_the_snapshot(slo: Slo, frame: pd.DataFrame,
                                                              exclusions: list[tuple[int, int]]) -> None:
    snap = compute_snapshot(slo, as_ledger(frame), AT, exclusions)
    days = 28 if slo.window == "rolling-28d" else 30
    a = attainment(slo, frame, AT_EPOCH - days * 86_400, AT_EPOCH, exclusions)
    assert same(a.sli_raw, snap.sli) and same(a.sli, snap.sli_adjusted)
    assert same(a.good, snap.good_adjusted) and same(a.bad, snap.bad_adjusted)
    assert same(a.budget, snap.budget_total)
    assert same(a.budget_consumed, snap.budget_consumed_adjusted)
    assert same(a.coverage, snap.coverage_adjusted)
    assert a.excluded_minutes == snap.excluded_minutes
    assert a.events == pytest.approx(snap.events)


@SETTINGS
@given(slo=rolling_specs(), frame=frames(), exclusions=exclusion_lists, days=st.integers(1, 31))
def test_the_spend_per_minute_adds_up_to_the_periods_bad_units(slo: Slo, frame: pd.DataFrame,
                                                               exclusions: list[tuple[int, int]], days: int) -> None:
    start = AT_EPOCH - days * 86_400
    spend = budget_spend_by_minute(slo, frame, start, AT_EPOCH, exclusions)
    a = attainment(slo, frame, start, AT_EPOCH, exclusions)
    assert len(spend) == a.elapsed_minutes
    assert float(spend.sum()) == pytest.approx(a.bad, rel=1e-9, abs=1e-6)
    assert (spend >= 0).all() and np.isfinite(spend.to_numpy()).all()
    if slo.budgeting_method != "occurrences":
        assert (spend <= 1).all()
