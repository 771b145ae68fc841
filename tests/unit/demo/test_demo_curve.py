"""The daily load curve: night low, evening peak band 18-22 KST, weekend uplift, continuous in time."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from demo.curve import KST, PEAK_END_HOUR, PEAK_START_HOUR, WEEKEND_UPLIFT, load_factor, load_factor_at_hour

WEDNESDAY = datetime(2025, 6, 4, tzinfo=KST)


def day_profile(day: datetime, step_min: int = 5) -> list[tuple[float, float]]:
    return [(m / 60, load_factor(day + timedelta(minutes=m))) for m in range(0, 24 * 60, step_min)]


def test_evening_peak_is_far_above_the_night() -> None:
    assert load_factor(WEDNESDAY.replace(hour=20)) == pytest.approx(1.0)
    assert load_factor(WEDNESDAY.replace(hour=4)) < 0.25 * load_factor(WEDNESDAY.replace(hour=20))


def test_the_daily_maximum_lies_in_the_18_to_22_band() -> None:
    profile = day_profile(WEDNESDAY)
    peak_hour, _ = max(profile, key=lambda p: p[1])
    assert PEAK_START_HOUR <= peak_hour < PEAK_END_HOUR
    inside = [v for h, v in profile if PEAK_START_HOUR <= h <= PEAK_END_HOUR]
    outside = [v for h, v in profile if h < PEAK_START_HOUR - 1 or h > PEAK_END_HOUR + 1]
    assert min(inside) > max(outside)


def test_18_to_22_is_the_busiest_four_hours_of_the_day() -> None:
    profile = day_profile(WEDNESDAY, step_min=15)
    values = [v for _, v in profile] * 2  # wrap around midnight
    window = 16  # 4 h of 15-minute steps
    sums = [sum(values[i:i + window]) for i in range(len(profile))]
    best_start_hour = profile[max(range(len(sums)), key=sums.__getitem__)][0]
    assert best_start_hour == pytest.approx(PEAK_START_HOUR, abs=0.5)


def test_the_small_hours_are_the_quietest() -> None:
    profile = day_profile(WEDNESDAY)
    low_hour, _ = min(profile, key=lambda p: p[1])
    assert 3 <= low_hour <= 7


@pytest.mark.parametrize(
    "start", [WEDNESDAY, datetime(2025, 6, 6, 12, tzinfo=KST), datetime(2025, 6, 8, 12, tzinfo=KST)])
def test_continuous_minute_to_minute_including_midnight_and_weekends(start: datetime) -> None:
    values = [load_factor(start + timedelta(minutes=m)) for m in range(0, 2 * 24 * 60)]
    assert max(abs(b - a) for a, b in itertools.pairwise(values)) < 0.01


def test_weekend_uplift_and_timezone_independence() -> None:
    saturday = datetime(2025, 6, 7, 20, tzinfo=KST)
    assert load_factor(saturday) == pytest.approx(WEEKEND_UPLIFT * load_factor(WEDNESDAY.replace(hour=20)))
    same_instant_utc = WEDNESDAY.replace(hour=20).astimezone(datetime.now().astimezone().tzinfo)
    assert load_factor(same_instant_utc) == load_factor(WEDNESDAY.replace(hour=20))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        load_factor(datetime(2025, 6, 4, 20))


def test_fixed_hour_helper_matches_the_curve() -> None:
    assert load_factor_at_hour(20.0) == load_factor(WEDNESDAY.replace(hour=20))
    with pytest.raises(ValueError):
        load_factor_at_hour(24.0)
