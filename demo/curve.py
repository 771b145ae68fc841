"""The daily player-load curve in Asia/Seoul: one pure function shared by the load generator and the history.

`load_factor(dt)` is 1.0 at the weekday evening peak (20:00 KST) and about 0.14 in the small hours. It is
continuous in time: hourly anchor values are joined by cosine interpolation, and the weekend uplift
(Saturday and Sunday, x1.12) fades in and out over the first hour of a day instead of jumping at midnight.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

KST = timezone(timedelta(hours=9), "KST")  # Asia/Seoul has no daylight saving time

# Load at each full hour (KST), 00:00 .. 23:00, relative to the weekday peak. Low at 03:00-07:00, a lunch
# bump, rising through the afternoon, evening peak band 18:00-22:00.
HOURLY_ANCHORS: tuple[float, ...] = (
    0.52, 0.40, 0.29, 0.21, 0.16, 0.14, 0.15, 0.20,  # 00-07
    0.27, 0.33, 0.37, 0.42, 0.52, 0.50, 0.47, 0.49,  # 08-15
    0.55, 0.70, 0.90, 0.97, 1.00, 0.98, 0.84, 0.68,  # 16-23
)
PEAK_START_HOUR = 18
PEAK_END_HOUR = 22
WEEKEND_UPLIFT = 1.12  # Saturday and Sunday


def _day_multiplier(weekday: int) -> float:
    return WEEKEND_UPLIFT if weekday >= 5 else 1.0


def _smooth(a: float, b: float, fraction: float) -> float:
    """Cosine interpolation from a to b: continuous, and flat at both ends."""
    w = (1.0 - math.cos(math.pi * fraction)) / 2.0
    return a + (b - a) * w


def load_factor(dt: datetime) -> float:
    """Relative player load at an instant (timezone-aware); evaluated in Asia/Seoul local time."""
    if dt.tzinfo is None:
        raise ValueError("load_factor needs a timezone-aware datetime (naive times are ambiguous)")
    local = dt.astimezone(KST)
    hours = local.hour + local.minute / 60.0 + (local.second + local.microsecond / 1e6) / 3600.0
    index = int(hours)
    base = _smooth(HOURLY_ANCHORS[index], HOURLY_ANCHORS[(index + 1) % 24], hours - index)
    today = _day_multiplier(local.weekday())
    if hours < 1.0:
        yesterday = _day_multiplier((local.weekday() - 1) % 7)
        multiplier = _smooth(yesterday, today, hours)
    else:
        multiplier = today
    return base * multiplier


def load_factor_at_hour(hour: float, weekday: int = 2) -> float:
    """Load at a KST hour of day (0 <= hour < 24) on a given weekday (0 = Monday); for --fixed-hour."""
    if not 0.0 <= hour < 24.0:
        raise ValueError(f"hour must be in [0, 24), got {hour}")
    # 2024-01-01 was a Monday; any week works because the curve only depends on weekday and time of day.
    midnight = datetime(2024, 1, 1 + weekday, tzinfo=KST)
    return load_factor(midnight + timedelta(hours=hour))
