"""Data sanity: gaps in sample timestamps, stale series and documents, and times as the analytics read them."""
from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesre.checklists.analytics import (
    DataError,
    epoch_seconds,
    sample_gaps,
    series_gaps,
    stale_documents,
    stale_series,
    staleness,
)
from gamesre.checklists.inputs import InputData
from gamesre.checklists.runner import run_item
from gamesre.checklists.spec import ChecklistSpec
from tests.unit.checklists.conftest import AT, AT_EPOCH


def test_gaps_inside_and_at_the_edges() -> None:
    gaps = sample_gaps([100, 160, 700, 760, 1000], 0, 1400, 300)
    assert gaps.values.tolist() == [[160.0, 700.0, 540.0, "inside"], [1000.0, 1400.0, 400.0, "end"]]
    assert sample_gaps([400], 0, 600, 300).values.tolist() == [[0.0, 400.0, 400.0, "start"]]
    assert sample_gaps([], 0, 600, 300).values.tolist() == [[0.0, 600.0, 600.0, "no data"]]
    assert sample_gaps([], 0, 300, 300).empty  # exactly max_gap is not longer than it
    assert sample_gaps([-50, 5000, 100, 100], 0, 400, 300).empty  # outside the period ignored, duplicates too


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 3600), max_size=40), st.integers(1, 900))
def test_gaps_are_exactly_the_stretches_longer_than_max_gap(times: list[int], max_gap: int) -> None:
    gaps = sample_gaps(times, 0, 3600, max_gap)
    points = sorted({0, *times, 3600})
    expected = [(a, b) for a, b in itertools.pairwise(points) if b - a > max_gap]
    assert list(zip(gaps["start"], gaps["end"], strict=True)) == expected
    assert all(not ((gaps["start"] < t) & (t < gaps["end"])).any() for t in times)


def test_gaps_per_series_longest_first_with_expected_series() -> None:
    samples = pd.DataFrame({"series": ["a", "a", "b", "b"], "timestamp": [0, 1000, 0, 1790]})
    gaps = series_gaps(samples, 0, 1800, 300, expected=["c"])
    assert gaps[["series", "seconds", "edge"]].values.tolist() == [
        ["c", 1800.0, "no data"], ["b", 1790.0, "inside"], ["a", 1000.0, "inside"], ["a", 800.0, "end"]]


def test_stale_series_and_documents() -> None:
    freshness = pd.DataFrame({"name": ["fresh", "old", "empty"], "kind": ["metric", "dashboard", "metric"],
                              "query": ["a", "b", "c"], "newest": [AT_EPOCH - 30, AT_EPOCH - 900, np.nan]})
    stale = stale_series(freshness, AT, 300)
    assert stale["name"].tolist() == ["empty", "old"] and stale["age"].iloc[1] == 900
    assert staleness(AT_EPOCH - 30, AT) == 30 and staleness(None, AT) is None and staleness(float("nan"), AT) is None
    docs = pd.DataFrame({"path": ["new.md", "old.md", "unknown.md"],
                         "updated_at": [AT - timedelta(days=10), AT - timedelta(days=120), None]})
    old = stale_documents(docs, AT, 90 * 86_400)
    assert old["path"].tolist() == ["unknown.md", "old.md"] and old["age_days"].iloc[1] == pytest.approx(120)


def test_times_are_epochs_aware_datetimes_or_iso_strings_never_naive() -> None:
    kst = timezone(timedelta(hours=9))
    mixed = epoch_seconds(pd.Series([datetime(2026, 3, 2, 10, tzinfo=kst), "2026-03-02T01:00:00Z", None, 5],
                                    dtype=object))
    assert mixed.iloc[0] == mixed.iloc[1] == AT_EPOCH and np.isnan(mixed.iloc[2]) and mixed.iloc[3] == 5
    aware = epoch_seconds(pd.Series(pd.to_datetime([AT_EPOCH], unit="s", utc=True)))
    assert aware.tolist() == [AT_EPOCH]
    assert epoch_seconds([]).empty
    with pytest.raises(DataError, match="naive timestamps"):
        epoch_seconds(pd.Series(pd.to_datetime(["2026-03-02"])))
    with pytest.raises(DataError, match="naive timestamp 2026-03-02T00:00:00"):
        epoch_seconds(pd.Series([datetime(2026, 3, 2)], dtype=object))
    with pytest.raises(DataError, match="'yesterday' is not an ISO 8601 time"):
        epoch_seconds(pd.Series(["yesterday"]))
    assert datetime.fromtimestamp(AT_EPOCH, UTC) == AT


def test_the_daily_data_items(checklists: ChecklistSpec) -> None:
    freshness = pd.DataFrame({"name": ["game_action_requests_total", "Availability panel"],
                              "kind": ["metric", "dashboard"], "query": ["game_action_requests_total", "slo:sli"],
                              "newest": [AT_EPOCH - 20, AT_EPOCH - 3600]})
    r = run_item(checklists.get("daily-data-freshness"), {"series_freshness": freshness}, AT)
    assert r.status == "fail"
    assert r.summary == "1 of 2 metrics or queries have no data newer than 5m: Availability panel (1h 00m)"
    assert r.evidence["stale"][0]["newest"] == "2026-03-02T00:00:00Z"
    assert r.evidence["checked_by_kind"] == {"metric": 1, "dashboard": 1}
    empty = run_item(checklists.get("daily-data-freshness"), {"series_freshness": freshness.iloc[0:0]}, AT)
    assert empty.status == "error"

    targets = pd.DataFrame({"job": ["game-server", "game-server", "matchmaking"],
                            "instance": ["gs-stable-1", "gs-canary-1", "mm-stable-1"],
                            "health": ["up", "down", "up"], "last_scrape": [AT_EPOCH - 5, AT_EPOCH - 7, AT_EPOCH - 3],
                            "last_error": ["", "connection refused", ""]})
    r = run_item(checklists.get("daily-scrape-targets"), {"scrape_targets": targets}, AT)
    assert r.status == "fail"
    assert r.summary == ("1 target(s) not up, 0 required job(s) missing: game-server/gs-canary-1 down "
                         "(connection refused)")
    assert r.evidence["jobs"] == {"game-server": {"up": 1, "total": 2}, "matchmaking": {"up": 1, "total": 1}}
    r = run_item(checklists.get("daily-scrape-targets"), {"scrape_targets": targets.iloc[[0]]}, AT)
    assert r.status == "fail" and r.evidence["missing_jobs"] == ["matchmaking"]

    minutes = list(range(AT_EPOCH - 86_400, AT_EPOCH, 60))
    holey = [t for t in minutes if not (AT_EPOCH - 7200 <= t < AT_EPOCH - 6600)]  # 10 samples missing
    samples = pd.DataFrame({"series": ["up{instance=\"gs-1\"}"] * len(holey) + ["up{instance=\"mm-1\"}"] * len(minutes),
                            "timestamp": holey + minutes})
    r = run_item(checklists.get("daily-data-gaps"), {"sample_timestamps": InputData(samples, source="prometheus")}, AT)
    assert r.status == "fail"
    assert r.evidence["gaps"] == [{"series": "up{instance=\"gs-1\"}", "start": "2026-03-01T22:59:00Z",
                                   "end": "2026-03-01T23:10:00Z", "seconds": 660.0, "edge": "inside",
                                   "length": "11m"}]
    assert r.evidence["series_total"] == 2
    r = run_item(checklists.get("daily-data-gaps"), {"sample_timestamps": samples.iloc[len(holey):]}, AT)
    assert r.status == "pass"
