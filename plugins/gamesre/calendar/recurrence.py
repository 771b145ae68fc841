"""Expansion of weekly recurring maintenance windows into concrete occurrences over a time range.

An occurrence starts at the recurrence's local start time on a matching local date and lasts exactly its
duration (elapsed time, so an occurrence crossing midnight simply ends on the next day). Its id is the
recurrence id and the local date it starts on: `recurring-tue-2026-12-01`.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from gamesre.calendar.occurrence import Occurrence
from gamesre.calendar.spec import RecurringWindow
from gamesre.core.time import as_utc

WEEK = timedelta(days=7)


def occurrence_id(recurrence: RecurringWindow, local_date: date) -> str:
    return f"{recurrence.id}-{local_date.isoformat()}"


def _active_on(recurrence: RecurringWindow, day: date) -> bool:
    if day.weekday() != recurrence.weekday_index:
        return False
    if recurrence.from_ is not None and day < recurrence.from_:
        return False
    return recurrence.until is None or day <= recurrence.until


def occurrence_on(recurrence: RecurringWindow, tz: ZoneInfo, local_date: date) -> Occurrence | None:
    """The occurrence starting on a local date, or None when the recurrence has none that day."""
    if not _active_on(recurrence, local_date):
        return None
    start = datetime.combine(local_date, recurrence.start, tzinfo=tz).astimezone(UTC)
    return Occurrence(
        id=occurrence_id(recurrence, local_date), kind="recurring", start=start, end=start + recurrence.duration,
        services=recurrence.services, reason=recurrence.reason, owner=recurrence.owner, ticket=recurrence.ticket,
        source=recurrence.id, chaos_forbidden=True, strict_slo=False,
    )


def expand(recurrence: RecurringWindow, tz: ZoneInfo, a: datetime | int | float,
           b: datetime | int | float) -> Iterator[Occurrence]:
    """Occurrences overlapping [a, b), in time order (including one that started before a and is still on)."""
    lo, hi = as_utc(a), as_utc(b)
    if hi <= lo:
        return
    # An occurrence starting up to `duration` before `lo` may still overlap it.
    day = (lo - recurrence.duration).astimezone(tz).date() - timedelta(days=1)
    day += timedelta(days=(recurrence.weekday_index - day.weekday()) % 7)
    last = hi.astimezone(tz).date()
    if recurrence.until is not None:
        last = min(last, recurrence.until)
    while day <= last:
        occurrence = occurrence_on(recurrence, tz, day)
        if occurrence is not None and occurrence.overlaps(lo, hi):
            yield occurrence
        day += WEEK


def occurrence_by_id(recurrence: RecurringWindow, tz: ZoneInfo, window_id: str) -> Occurrence | None:
    """The occurrence with this id (`<recurrence id>-YYYY-MM-DD`), or None if it is not one of this recurrence."""
    prefix = f"{recurrence.id}-"
    if not window_id.startswith(prefix):
        return None
    try:
        day = date.fromisoformat(window_id.removeprefix(prefix))
    except ValueError:
        return None
    return occurrence_on(recurrence, tz, day)
