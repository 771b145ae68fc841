"""Exact per-minute counts from raw counter samples (the ledger's arithmetic)."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesre.slo.slicing import Series, cumulative_increase, minute_counts, ratio_rows, row_spans

T0 = 1_767_225_600  # minute-aligned


def s(t: list[float], v: list[float]) -> Series:
    return Series(np.array(t, dtype=np.float64), np.array(v, dtype=np.float64))


def test_counts_are_differences_of_last_sample_at_each_minute_edge() -> None:
    # 5 s scrapes with jitter; value = 10 events per second
    t = np.arange(T0 - 300, T0 + 180, 5) + 0.7
    counts = minute_counts([Series(t, (t - t[0]) * 10)], T0, T0 + 180)
    assert counts.minutes.tolist() == [T0, T0 + 60, T0 + 120]
    assert counts.counts.tolist() == [600.0, 600.0, 600.0]
    assert counts.has_data.all()


def test_counter_reset_counts_the_new_value_as_increase() -> None:
    t = [T0 - 60, T0, T0 + 30, T0 + 60, T0 + 90, T0 + 120]
    v = [100, 110, 120, 5, 15, 25]  # restarted between T0+30 and T0+60
    counts = minute_counts([s(t, v)], T0, T0 + 120)
    assert counts.counts.tolist() == [10 + 5, 10 + 10]
    assert cumulative_increase(np.array(v, dtype=float)).tolist() == [0, 10, 20, 25, 35, 45]


def test_scrape_gap_is_no_data_and_its_events_land_in_the_next_sampled_minute_which_covers_the_gap() -> None:
    t = [T0 - 60, T0, T0 + 60, T0 + 240, T0 + 300]  # nothing scraped in (T0+60, T0+240)
    v = [0, 60, 120, 300, 360]
    counts = minute_counts([s(t, v)], T0, T0 + 300)
    assert counts.has_data.tolist() == [True, False, False, True, True]
    assert counts.counts.tolist() == [60, 0, 0, 180, 60]
    assert counts.counts.sum() == 360 - 60
    assert row_spans(counts, previous_row=T0 - 60).tolist() == [1, 1, 1, 3, 1]


def test_a_gap_across_the_start_continues_from_the_prior_value_and_reaches_back_to_the_previous_row() -> None:
    # the series was last scraped at T0 - 600 (value 1000): the ingest looked its value up further back
    gap = s([T0 + 65, T0 + 125], [1210, 1250])
    counts = minute_counts([Series(gap.t, gap.v, prior=1000.0)], T0, T0 + 180)
    assert counts.counts.tolist() == [0, 210, 40]
    assert row_spans(counts, previous_row=T0 - 660).tolist() == [1, 12, 1]  # minutes T0-600 .. T0+60
    assert row_spans(counts, previous_row=None).tolist() == [1, 1, 1]  # nothing before it in the ledger


def test_series_born_inside_the_range_counts_its_first_value_and_covers_only_its_minute() -> None:
    old = s([T0 - 300 + 5 * i for i in range(121)], [0.0] * 121)
    born = s([T0 + 65, T0 + 125], [3, 7])  # first 3 errors ever, at T0+65
    counts = minute_counts([old, born], T0, T0 + 180)
    assert counts.counts.tolist() == [0, 3, 4]
    alone = minute_counts([born], T0, T0 + 180)  # a new series after nothing: a new start, not a gap
    assert alone.counts.tolist() == [0, 3, 4]
    assert row_spans(alone, previous_row=T0 - 600).tolist() == [1, 1, 1]


def test_a_counter_that_restarted_during_a_gap_counts_its_new_value() -> None:
    restarted = s([T0 + 90], [25])  # was 1000 before the gap; restarted at zero and counted 25 since
    counts = minute_counts([Series(restarted.t, restarted.v, prior=1000.0)], T0, T0 + 120)
    assert counts.counts.tolist() == [0, 25]


def test_bad_counts_become_good_and_never_exceed_total() -> None:
    total = minute_counts([s([T0 - 60, T0, T0 + 60], [0, 10, 20])], T0, T0 + 60)
    spans = row_spans(total, None)
    bad = minute_counts([s([T0 - 60, T0, T0 + 60], [0, 0, 12])], T0, T0 + 60)
    assert [r.astuple() for r in ratio_rows(bad, total, spans, good_is_bad=True)] == [(T0, 0.0, 10.0, 1)]
    good = minute_counts([s([T0 - 60, T0, T0 + 60], [0, 0, 3])], T0, T0 + 60)
    assert [r.astuple() for r in ratio_rows(good, total, spans)] == [(T0, 3.0, 10.0, 1)]


increments = st.lists(st.integers(min_value=0, max_value=50), min_size=2, max_size=200)


@settings(max_examples=200, deadline=None)
@given(incs=increments, jitter=st.lists(st.floats(min_value=0, max_value=4.9), min_size=200, max_size=200),
       split=st.integers(min_value=1, max_value=9))
def test_counts_add_up_exactly_and_splitting_the_interval_changes_nothing(
    incs: list[int], jitter: list[float], split: int
) -> None:
    t = T0 - 60 + np.arange(len(incs)) * 5.0 + np.array(jitter[: len(incs)])
    v = np.cumsum(incs).astype(np.float64)
    end = T0 + 600
    whole = minute_counts([Series(t, v)], T0, end)
    # every event after the last sample at or before T0 and up to `end` is counted exactly once
    before = v[np.searchsorted(t, T0, side="right") - 1] if (t <= T0).any() else None
    if before is not None:
        upto = v[np.searchsorted(t, end, side="right") - 1]
        assert whole.counts.sum() == upto - before
    mid = T0 + 60 * split
    series = [Series(t, v)]
    parts = np.concatenate([minute_counts(series, T0, mid).counts, minute_counts(series, mid, end).counts])
    assert parts.tolist() == whole.counts.tolist()
    assert (whole.counts >= 0).all()


def test_catch_up_starts_at_the_first_missing_minute_but_no_further_back_than_allowed() -> None:
    from gamesre.slo.ingest import catch_up_start

    day = 86_400
    start, end = T0, T0 + 300
    assert catch_up_start(T0 - 60, start, end, 35 * day) == start  # no gap: just the interval
    assert catch_up_start(T0 - 3600, start, end, 35 * day) == T0 - 3540  # the hour behind is filled
    assert catch_up_start(T0 - 90 * day, start, end, 35 * day) == end - 35 * day  # capped
    assert catch_up_start(None, start, end, 35 * day) == end - 35 * day  # first run: the whole backfill
    assert catch_up_start(None, start, end, 0) == start  # backfill off: the interval only
