"""Time: schedules and calendars are in Asia/Seoul (KST), storage in UTC; instants as aware datetimes or epochs."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

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
