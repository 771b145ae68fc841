"""The models of include/config/calendar.yaml: recurring and one-off maintenance, holidays, live-ops events.

Pure pydantic. Validation needs a context: `{"tz": ZoneInfo, "services": (service names, ...)}`; times
without an offset are in the calendar's timezone, `services: all` means every known service, and a service
that is not known is refused. Cross-item rules (overlaps, limits, duplicate ids) live in `load.py`.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationInfo, field_validator, model_validator

from gamesre.core.durations import parse_duration
from gamesre.core.time import KST, LocalDate, LocalTime

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # RRULE BYDAY names, in date.weekday() order
Weekday = Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
ALL_SERVICES = "all"

_ID = r"^[a-z0-9]+(-[a-z0-9]+)*$"
_OWNER = r"^[a-z0-9][a-z0-9._-]*$"
_TICKET = r"^[A-Z][A-Z0-9]*-[0-9]+$"


def context_tz(info: ValidationInfo | None) -> ZoneInfo:
    context = info.context if info is not None and isinstance(info.context, dict) else {}
    tz = context.get("tz")
    return tz if isinstance(tz, ZoneInfo) else KST


def parse_instant(value: object, tz: ZoneInfo = KST) -> datetime:
    """An aware UTC datetime from a datetime or an ISO 8601 string; no offset means `tz`."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a date and time like 2026-12-10T01:00:00+09:00") from None
    if not isinstance(value, datetime):
        if isinstance(value, date):
            raise ValueError(f"{value} is a date alone; give a time as well, e.g. {value}T02:00:00+09:00")
        raise ValueError(f"expected a date and time like 2026-12-10T01:00:00+09:00, got {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _instant(value: object, info: ValidationInfo) -> datetime:
    return parse_instant(value, context_tz(info))


def parse_duration_value(value: object) -> timedelta:
    """A positive duration written like '4h', '90m' or '31d' (or a timedelta)."""
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise ValueError(f"a duration must be positive, got {value}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like 4h, 90m or 31d, got {value!r}")
    return timedelta(seconds=parse_duration(value.strip()))


def check_services(value: object, known: tuple[str, ...] | None) -> tuple[str, ...]:
    """The services named by `value` (a list or 'all'), sorted; unknown names are refused."""
    if value == ALL_SERVICES:
        if known is None:
            raise ValueError("'all' needs the list of known services")
        return tuple(sorted(known))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError("expected 'all' or a non-empty list of service names")
    if len(set(value)) != len(value):
        raise ValueError(f"a service is listed twice in {list(value)}")
    if known is not None:
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(f"unknown service(s) {', '.join(map(repr, unknown))} (known: {', '.join(known)})")
    return tuple(sorted(value))


def _services(value: object, info: ValidationInfo) -> tuple[str, ...]:
    context = info.context if isinstance(info.context, dict) else {}
    known = context.get("services")
    return check_services(value, tuple(known) if known is not None else None)


Instant = Annotated[datetime, PlainValidator(_instant)]
Duration = Annotated[timedelta, PlainValidator(parse_duration_value)]
Services = Annotated[tuple[str, ...], PlainValidator(_services)]
WindowId = Annotated[str, Field(pattern=_ID, max_length=100)]
Owner = Annotated[str, Field(pattern=_OWNER, max_length=128)]
Ticket = Annotated[str, Field(pattern=_TICKET, max_length=128)]
Reason = Annotated[str, Field(min_length=5, max_length=500)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class Limits(_Model):
    max_maintenance: Duration = timedelta(hours=8)
    max_event: Duration = timedelta(days=31)
    adhoc_past_grace: Duration = timedelta(minutes=15)

    @field_validator("max_maintenance")
    @classmethod
    def _below_a_day(cls, value: timedelta) -> timedelta:
        if value >= timedelta(days=1):
            raise ValueError("a maintenance window longer than a day is an outage plan, not a window; keep it < 1d")
        return value


class RecurringWindow(_Model):
    """A weekly maintenance window: FREQ=WEEKLY;BYDAY=<weekday> at `start` local time, for `duration`."""

    id: WindowId
    freq: Literal["weekly"] = "weekly"
    weekday: Weekday
    start: LocalTime
    duration: Duration
    from_: LocalDate | None = Field(default=None, alias="from")  # first local date it may occur on
    until: LocalDate | None = None  # last local date it may occur on
    services: Services
    reason: Reason
    owner: Owner
    ticket: Ticket

    @model_validator(mode="after")
    def _range(self) -> RecurringWindow:
        if self.from_ is not None and self.until is not None and self.until < self.from_:
            raise ValueError(f"until: {self.until} is before from ({self.from_})")
        return self

    @property
    def weekday_index(self) -> int:
        return WEEKDAYS.index(self.weekday)


class OneOffWindow(_Model):
    """A single planned maintenance window."""

    id: WindowId
    start: Instant
    end: Instant
    services: Services
    reason: Reason
    owner: Owner
    ticket: Ticket

    @model_validator(mode="after")
    def _order(self, info: ValidationInfo) -> OneOffWindow:
        if self.end <= self.start:
            tz = context_tz(info)
            raise ValueError(f"end: {self.end.astimezone(tz).isoformat()} is not after start "
                             f"{self.start.astimezone(tz).isoformat()} (an inverted or empty window)")
        return self


class HolidayPolicy(_Model):
    chaos_forbidden: bool = True
    strict_slo: bool = True


class Holiday(_Model):
    date: LocalDate
    name: Annotated[str, Field(min_length=1, max_length=200)]


class Holidays(_Model):
    policy: HolidayPolicy = HolidayPolicy()
    days: list[Holiday] = []


class ServiceScaleUp(_Model):
    """Overrides of services.yaml `scaling.event` for one event; a missing field takes the service default."""

    min_replicas: Annotated[int, Field(ge=1, le=1000)] | None = None
    extra_instances: Annotated[int, Field(ge=0, le=10)] | None = None


class EventScaleUp(_Model):
    lead_time: Duration = timedelta(hours=1)
    scale_down_delay: Duration | None = None
    services: Annotated[dict[str, ServiceScaleUp], Field(min_length=1)]


class EventPeriod(_Model):
    """A live-ops event: it tightens policy (chaos forbidden, strict SLOs) and may scale services up."""

    id: WindowId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    start: Instant
    end: Instant
    services: Services
    chaos_forbidden: bool = True
    strict_slo: bool = True
    scale_up: EventScaleUp | None = None

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> EventPeriod:
        if self.end <= self.start:
            tz = context_tz(info)
            raise ValueError(f"end: {self.end.astimezone(tz).isoformat()} is not after start "
                             f"{self.start.astimezone(tz).isoformat()} (an inverted or empty event)")
        if self.scale_up is not None:
            extra = sorted(set(self.scale_up.services) - set(self.services))
            if extra:
                raise ValueError(f"scale_up.services: {', '.join(map(repr, extra))} not among the event's services "
                                 f"({', '.join(self.services)})")
        return self


class Maintenance(_Model):
    recurring: list[RecurringWindow] = []
    one_off: list[OneOffWindow] = []


class CalendarSpec(_Model):
    version: Literal[1]
    timezone: str
    limits: Limits = Limits()
    maintenance: Maintenance = Maintenance()
    holidays: Holidays = Holidays()
    events: list[EventPeriod] = []

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as Asia/Seoul") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def validation_context(tz: ZoneInfo, services: tuple[str, ...]) -> dict[str, Any]:
    return {"tz": tz, "services": services}
