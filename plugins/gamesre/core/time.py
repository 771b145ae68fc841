"""Time: schedules and calendars are in Asia/Seoul (KST), storage in UTC; instants as aware datetimes or epochs."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import PlainValidator

TIMEZONE = "Asia/Seoul"
KST = ZoneInfo(TIMEZONE)


def as_utc(at: datetime | int | float) -> datetime:
    """An instant as an aware UTC datetime; a datetime must carry its timezone, a number is epoch seconds."""
    if isinstance(at, datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"{at.isoformat()} has no timezone; pass an aware datetime (UTC or Asia/Seoul)")
        # a plain datetime in UTC, also for subclasses such as pendulum's DateTime (Airflow's instants), whose
        # arithmetic would otherwise follow pendulum's own rules
        return datetime.fromtimestamp(0, UTC) + (at - datetime.fromtimestamp(0, at.tzinfo))
    return datetime.fromtimestamp(at, UTC)


def to_epoch(at: datetime | int | float) -> int:
    """Whole epoch seconds of an instant; a datetime must be timezone-aware (storage is UTC, people are KST)."""
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError(f"{at.isoformat()} has no timezone; pass an aware datetime (UTC or Asia/Seoul)")
        return int(at.timestamp() // 1)
    return int(at // 1)


def iso(epoch: int) -> str:
    """An epoch as an ISO 8601 UTC string with a Z, as stored and reported."""
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


# --- local (KST) wall-clock values as the config files write them ------------------------------------------------

_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def parse_local_time(value: object) -> time:
    """'10:00' as a time of day; YAML 1.1 reads an unquoted 10:00 as the number 600, which is refused with a hint."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f'write the time in quotes, e.g. "10:00" (YAML read it as the number {value})')
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValueError(f'expected a KST local time like "10:00", got {value!r}')
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def parse_local_date(value: object) -> date:
    """A date (YAML's, or '2026-01-06'); a date and time is refused."""
    if isinstance(value, datetime):
        raise ValueError(f"expected a date like 2026-01-06, got a date and time {value.isoformat()}")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a date like 2026-01-06, got {value!r}")


LocalTime = Annotated[time, PlainValidator(parse_local_time)]  # a config field holding '10:00' (KST)
LocalDate = Annotated[date, PlainValidator(parse_local_date)]  # a config field holding a date
