"""Concrete calendar windows: one maintenance window, event period or holiday with UTC bounds, half-open [start, end).

Every query of the calendar answers with Occurrence objects; each has a stable id (a recurrence's id is the
recurrence id and its local date, e.g. `recurring-tue-2026-12-01`), so silences, store rows and messages
made for it on one run are found again on the next.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from gamesre.core.time import KST, as_utc

Kind = Literal["recurring", "one-off", "adhoc", "event", "holiday"]
MAINTENANCE_KINDS: frozenset[str] = frozenset({"recurring", "one-off", "adhoc"})
KINDS: tuple[Kind, ...] = ("recurring", "one-off", "adhoc", "event", "holiday")


@dataclass(frozen=True)
class ServiceScaling:
    """How one service is scaled for an event: services.yaml defaults with the event's overrides applied."""

    service: str
    backend: str  # local | kubernetes
    min_replicas: int  # kubernetes: the HPA's minReplicas during the event
    extra_instances: int  # local: extra demo fleet instances during the event
    instance_prefix: str  # local: names of the extra instances, e.g. gs-event -> gs-event-1


@dataclass(frozen=True)
class Occurrence:
    """One concrete window, [start, end) in UTC."""

    id: str
    kind: Kind
    start: datetime
    end: datetime
    services: tuple[str, ...]
    reason: str
    owner: str
    ticket: str
    source: str  # the calendar item it came from: recurrence id, window id, event id or holiday date
    name: str = ""
    chaos_forbidden: bool = True
    strict_slo: bool = False
    scaling: tuple[ServiceScaling, ...] = ()
    scale_up_lead: timedelta = timedelta(0)
    scale_down_delay: timedelta = timedelta(0)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"window {self.id}: start and end must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"window {self.id}: end {self.end.isoformat()} is not after start "
                             f"{self.start.isoformat()}")

    # --- what it is ---------------------------------------------------------------------------------------
    @property
    def is_maintenance(self) -> bool:
        return self.kind in MAINTENANCE_KINDS

    @property
    def is_event(self) -> bool:
        return self.kind == "event"

    @property
    def excludes_budget(self) -> bool:
        """Maintenance is left out of the SLO budgets of its services; events and holidays never are."""
        return self.is_maintenance

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    # --- half-open time logic -----------------------------------------------------------------------------
    def covers(self, at: datetime | int | float) -> bool:
        """start <= at < end: a window ending at 06:00 does not cover 06:00."""
        t = as_utc(at)
        return self.start <= t < self.end

    def overlaps(self, a: datetime | int | float, b: datetime | int | float) -> bool:
        """The window shares at least an instant with [a, b); an empty interval overlaps nothing."""
        lo, hi = as_utc(a), as_utc(b)
        return lo < hi and self.start < hi and lo < self.end

    def affects(self, service: str | None) -> bool:
        return service is None or service in self.services

    # --- events: when capacity moves ----------------------------------------------------------------------
    @property
    def scaling_start(self) -> datetime:
        """When an event's services are scaled up: lead_time before the event starts."""
        return self.start - self.scale_up_lead

    @property
    def scaling_end(self) -> datetime:
        """When they are scaled back: scale_down_delay after the event ends."""
        return self.end + self.scale_down_delay

    def scaling_for(self, service: str) -> ServiceScaling | None:
        return next((s for s in self.scaling if s.service == service), None)

    # --- presentation -------------------------------------------------------------------------------------
    def local_start(self, tz: ZoneInfo = KST) -> datetime:
        return self.start.astimezone(tz)

    def local_end(self, tz: ZoneInfo = KST) -> datetime:
        return self.end.astimezone(tz)

    def describe(self, tz: ZoneInfo = KST) -> str:
        """One line for people: `recurring-tue-2026-12-01 (2026-12-01 02:00-06:00 KST; game-server, matchmaking)`."""
        return f"{self.id} ({format_span(self.start, self.end, tz)}; {', '.join(self.services)})"

    def to_store_row(self, *, status: str = "scheduled", created_by: str | None = None) -> dict[str, Any]:
        """The fields of the SRE store's maintenance_window table (SREStore.upsert_window)."""
        row: dict[str, Any] = {
            "id": self.id, "kind": self.kind, "start": self.start, "end": self.end, "services": list(self.services),
            "reason": self.reason, "owner": self.owner, "ticket": self.ticket, "status": status,
            "excludes_budget": self.excludes_budget,
        }
        if created_by is not None:
            row["created_by"] = created_by
        return row


def format_span(start: datetime, end: datetime, tz: ZoneInfo = KST) -> str:
    """`2026-12-01 02:00-06:00 KST`, or both dates when the span crosses local midnight."""
    a, b = start.astimezone(tz), end.astimezone(tz)
    zone = a.strftime("%Z") or str(tz)
    if a.date() == b.date():
        return f"{a:%Y-%m-%d %H:%M}-{b:%H:%M} {zone}"
    return f"{a:%Y-%m-%d %H:%M} - {b:%Y-%m-%d %H:%M} {zone}"


def occurrence_from_store_row(row: Mapping[str, Any]) -> Occurrence:
    """A window recorded in the SRE store (e.g. an ad-hoc one registered from the UI) as an Occurrence."""
    kind = str(row["kind"])
    if kind not in KINDS:
        raise ValueError(f"window {row.get('id')!r}: unknown kind {kind!r} in the store")
    return Occurrence(
        id=str(row["id"]), kind=kind,  # type: ignore[arg-type]
        start=as_utc(row["start"]), end=as_utc(row["end"]),
        services=tuple(sorted(row["services"])), reason=str(row["reason"]), owner=str(row["owner"]),
        ticket=str(row["ticket"]), source=str(row["id"]),
        chaos_forbidden=True, strict_slo=kind in ("event", "holiday"),
    )


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which a local date starts."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
