"""The periods a checklist run looks back on, in Asia/Seoul: yesterday, last week, last month.

A run at instant `at` judges the last complete period before it, whatever the exact minute the scheduler
started it: the daily run (09:00 KST) judges yesterday 00:00-24:00 KST, the weekly run (Monday 10:00 KST)
the week Monday 00:00 to Monday 00:00 KST that ended before it, the monthly run (the 1st, 10:00 KST) the
previous calendar month. Bounds are whole-minute UTC epoch seconds, [start, end).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from gamesre.core.time import KST, TIMEZONE, iso, to_epoch
from gamesre.slo.windows import MINUTE

Cadence = Literal["daily", "weekly", "monthly"]
CADENCES: tuple[Cadence, ...] = ("daily", "weekly", "monthly")
DAY = 86_400
WEEK = 7 * DAY


@dataclass(frozen=True)
class Period:
    """A half-open span [start, end) of UTC epoch seconds, with the label people read (KST dates)."""

    start: int
    end: int
    label: str

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"period {self.label!r}: end {iso(self.end)} is not after start {iso(self.start)}")

    @property
    def seconds(self) -> int:
        return self.end - self.start

    @property
    def minutes(self) -> int:
        return self.seconds // MINUTE

    def contains(self, epoch: float) -> bool:
        return self.start <= epoch < self.end

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "start": iso(self.start), "end": iso(self.end), "timezone": TIMEZONE}


def _local_midnight(epoch: int) -> datetime:
    local = datetime.fromtimestamp(epoch, KST)
    return datetime(local.year, local.month, local.day, tzinfo=KST)


def _month_start(year: int, month: int) -> datetime:
    return datetime(year + (month - 1) // 12, (month - 1) % 12 + 1, 1, tzinfo=KST)


def kst_day(epoch: int) -> Period:
    """The KST calendar day containing `epoch`."""
    start = _local_midnight(epoch)
    return Period(int(start.timestamp()), int((start + timedelta(days=1)).timestamp()), f"{start:%Y-%m-%d} KST")


def kst_week(epoch: int) -> Period:
    """The KST week (Monday 00:00 to the next Monday 00:00) containing `epoch`, labelled by its ISO week."""
    midnight = _local_midnight(epoch)
    start = midnight - timedelta(days=midnight.weekday())
    year, week, _ = start.isocalendar()
    return Period(int(start.timestamp()), int((start + timedelta(days=7)).timestamp()), f"{year}-W{week:02d} KST")


def kst_month(epoch: int) -> Period:
    """The KST calendar month containing `epoch`."""
    local = datetime.fromtimestamp(epoch, KST)
    start = _month_start(local.year, local.month)
    end = _month_start(local.year, local.month + 1)
    return Period(int(start.timestamp()), int(end.timestamp()), f"{start:%Y-%m} KST")


def checklist_period(cadence: str, at: datetime | int | float) -> Period:
    """The last complete day, week or month (KST) before `at`."""
    now = to_epoch(at)
    if cadence == "daily":
        return kst_day(kst_day(now).start - 1)
    if cadence == "weekly":
        return kst_week(kst_week(now).start - 1)
    if cadence == "monthly":
        return kst_month(kst_month(now).start - 1)
    raise ValueError(f"unknown cadence {cadence!r}: use one of {', '.join(CADENCES)}")


def months_before(at: datetime | int | float, count: int) -> list[Period]:
    """The `count` complete KST calendar months before the month of `at`, oldest first."""
    if count < 1:
        raise ValueError("count must be at least 1")
    months: list[Period] = []
    edge = kst_month(to_epoch(at)).start
    for _ in range(count):
        month = kst_month(edge - 1)
        months.append(month)
        edge = month.start
    return months[::-1]


__all__ = [
    "CADENCES",
    "Cadence",
    "Period",
    "checklist_period",
    "kst_day",
    "kst_month",
    "kst_week",
    "months_before",
]
