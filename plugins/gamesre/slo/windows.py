"""SLO time windows: durations, rolling and Asia/Seoul calendar-month bounds, all on minute-aligned UTC epochs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from gamesre.core.durations import parse_duration
from gamesre.core.time import KST, to_epoch

MINUTE = 60

WindowName = Literal["rolling-28d", "rolling-30d", "calendar-month"]
WINDOWS: tuple[WindowName, ...] = ("rolling-28d", "rolling-30d", "calendar-month")
ROLLING_DAYS = {"rolling-28d": 28, "rolling-30d": 30}
# The short names the CLI accepts (`--window 30d|28d|month`).
WINDOW_ALIASES: dict[str, WindowName] = {"28d": "rolling-28d", "30d": "rolling-30d", "month": "calendar-month"}



def floor_minute(epoch: int) -> int:
    return epoch - epoch % MINUTE


def ceil_minute(epoch: int) -> int:
    return -(-epoch // MINUTE) * MINUTE


def resolve_window(name: str) -> WindowName:
    """A window name from the spec or its CLI alias (30d, 28d, month)."""
    if name in WINDOW_ALIASES:
        return WINDOW_ALIASES[name]
    if name in WINDOWS:
        return name  # type: ignore[return-value]
    raise ValueError(f"unknown window {name!r}: use one of {', '.join([*WINDOWS, *WINDOW_ALIASES])}")


@dataclass(frozen=True)
class WindowBounds:
    """A compliance window at an instant: [start, end) is the whole window, [start, now) the elapsed part."""

    name: WindowName
    start: int
    now: int
    end: int

    @property
    def minutes(self) -> int:
        """Minutes in the whole window (a calendar month's length varies from 40,320 to 44,640)."""
        return (self.end - self.start) // MINUTE

    @property
    def elapsed_minutes(self) -> int:
        return (self.now - self.start) // MINUTE

    @property
    def complete(self) -> bool:
        return self.now == self.end


def kst_month_bounds(epoch: int) -> tuple[int, int]:
    """UTC epochs of the start of the Asia/Seoul calendar month containing `epoch` and of the next one."""
    local = datetime.fromtimestamp(epoch, KST)
    start = datetime(local.year, local.month, 1, tzinfo=KST)
    following = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=KST)
    return int(start.timestamp()), int(following.timestamp())


def window_bounds(name: str, at: datetime | int | float) -> WindowBounds:
    """The window ending at `at` (floored to the minute): only whole minutes before it count as elapsed."""
    window = resolve_window(name)
    now = floor_minute(to_epoch(at))
    if window == "calendar-month":
        start, end = kst_month_bounds(now)
        return WindowBounds(window, start, now, end)
    start = now - ROLLING_DAYS[window] * 86400
    return WindowBounds(window, start, now, now)


def nominal_window_seconds(name: str) -> int:
    """Length of a rolling window; a calendar month has none (use its bounds or days_in_month)."""
    window = resolve_window(name)
    if window == "calendar-month":
        raise ValueError("a calendar month has no fixed length")
    return ROLLING_DAYS[window] * 86400


def as_timedelta(value: timedelta | str | int | float) -> timedelta:
    """A duration given as a timedelta, a '1h'-style string or seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return timedelta(seconds=parse_duration(value))
    return timedelta(seconds=value)
