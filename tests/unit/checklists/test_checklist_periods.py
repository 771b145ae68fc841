"""The periods checklists judge: yesterday, last week and last month in Asia/Seoul."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamesre.checklists.periods import Period, checklist_period, kst_month, months_before
from gamesre.core.time import KST


def kst(*args: int) -> int:
    return int(datetime(*args, tzinfo=KST).timestamp())  # type: ignore[misc]


def test_the_daily_run_at_nine_judges_yesterday_in_seoul() -> None:
    day = checklist_period("daily", kst(2026, 3, 2, 9, 0))
    assert (day.start, day.end, day.label) == (kst(2026, 3, 1), kst(2026, 3, 2), "2026-03-01 KST")
    # 00:30 KST is still the previous UTC day: the period is the KST day before, not the UTC one
    assert checklist_period("daily", kst(2026, 3, 2, 0, 30)).label == "2026-03-01 KST"
    assert day.to_dict() == {"label": "2026-03-01 KST", "start": "2026-02-28T15:00:00Z",
                             "end": "2026-03-01T15:00:00Z", "timezone": "Asia/Seoul"}


def test_the_weekly_run_judges_monday_to_monday() -> None:
    week = checklist_period("weekly", kst(2026, 3, 2, 10, 0))
    assert (week.start, week.end, week.label) == (kst(2026, 2, 23), kst(2026, 3, 2), "2026-W09 KST")
    assert checklist_period("weekly", kst(2026, 3, 4, 10)).label == "2026-W09 KST"  # a late run: same week
    assert checklist_period("weekly", kst(2026, 1, 5, 10)).label == "2026-W01 KST"  # 29 Dec 2025 - 5 Jan 2026


def test_the_monthly_run_judges_the_previous_calendar_month() -> None:
    month = checklist_period("monthly", kst(2026, 1, 1, 10))
    assert (month.start, month.end, month.label) == (kst(2025, 12, 1), kst(2026, 1, 1), "2025-12 KST")
    assert checklist_period("monthly", kst(2026, 3, 1, 10)).minutes == 28 * 1440
    assert [m.label for m in months_before(kst(2026, 3, 1, 10), 3)] == ["2025-12 KST", "2026-01 KST", "2026-02 KST"]
    assert kst_month(kst(2026, 2, 28, 23, 59)).end == kst(2026, 3, 1)


def test_bad_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown cadence 'hourly'"):
        checklist_period("hourly", 0)
    with pytest.raises(ValueError, match="is not after start"):
        Period(10, 10, "empty")
    with pytest.raises(ValueError, match="has no timezone"):
        checklist_period("daily", datetime(2026, 3, 2))
    with pytest.raises(ValueError, match="at least 1"):
        months_before(0, 0)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)),
       st.sampled_from(["daily", "weekly", "monthly"]))
def test_a_period_is_the_last_complete_one_before_the_run(at: datetime, cadence: str) -> None:
    period = checklist_period(cadence, at)
    now = int(at.timestamp())
    assert period.end <= now
    local_start = datetime.fromtimestamp(period.start, KST)
    assert (local_start.hour, local_start.minute) == (0, 0)
    assert checklist_period(cadence, period.end) == period  # complete from its very end on
    assert checklist_period(cadence, period.end - 1).end == period.start  # not yet complete a second before
    length = {"daily": (1, 1), "weekly": (7, 7), "monthly": (28, 31)}[cadence]
    assert length[0] * 86_400 <= period.seconds <= length[1] * 86_400
    if cadence == "weekly":
        assert local_start.weekday() == 0
    if cadence == "monthly":
        assert local_start.day == 1
    following = checklist_period(cadence, now + period.seconds + 86_400 * 31)
    assert following.start >= period.end
