"""The calendar's questions: which windows cover an instant or an interval, and what they allow there.

`Calendar` joins the validated calendar.yaml with the service catalog and, optionally, the windows recorded
in the SRE store (ad-hoc windows registered from the UI, cancellations). Everything is half-open: a window
[start, end) covers `start` and not `end`. Pure: no clock, no I/O; callers pass the instants.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gamesre.calendar.occurrence import (
    MAINTENANCE_KINDS,
    Occurrence,
    ServiceScaling,
    local_midnight,
    occurrence_from_store_row,
)
from gamesre.calendar.recurrence import expand, occurrence_by_id
from gamesre.calendar.spec import CalendarSpec, EventPeriod, OneOffWindow
from gamesre.core.services import ServiceCatalog
from gamesre.core.time import as_utc


@dataclass(frozen=True)
class Verdict:
    """An answer a gate can act on and a person can read: allowed or not, why, and the windows behind it."""

    allowed: bool
    reason: str
    windows: tuple[Occurrence, ...] = ()


def one_off_occurrence(item: OneOffWindow) -> Occurrence:
    return Occurrence(id=item.id, kind="one-off", start=item.start, end=item.end, services=item.services,
                      reason=item.reason, owner=item.owner, ticket=item.ticket, source=item.id,
                      chaos_forbidden=True, strict_slo=False)


def resolve_scaling(event: EventPeriod, services: ServiceCatalog) -> tuple[ServiceScaling, ...]:
    """Per scaled service: services.yaml `scaling.event` with the event's overrides applied."""
    if event.scale_up is None:
        return ()
    resolved = []
    for name, override in sorted(event.scale_up.services.items()):
        spec = services.get(name).scaling
        resolved.append(ServiceScaling(
            service=name, backend=spec.backend,
            min_replicas=override.min_replicas if override.min_replicas is not None else spec.event.min_replicas,
            extra_instances=(override.extra_instances if override.extra_instances is not None
                             else spec.event.extra_instances),
            instance_prefix=spec.event.instance_prefix,
        ))
    return tuple(resolved)


def event_occurrence(event: EventPeriod, services: ServiceCatalog) -> Occurrence:
    scale = event.scale_up
    return Occurrence(
        id=event.id, kind="event", start=event.start, end=event.end, services=event.services,
        reason=f"live-ops event: {event.name}", owner="live-ops", ticket="", source=event.id, name=event.name,
        chaos_forbidden=event.chaos_forbidden, strict_slo=event.strict_slo,
        scaling=resolve_scaling(event, services),
        scale_up_lead=scale.lead_time if scale else timedelta(0),
        scale_down_delay=(scale.scale_down_delay or timedelta(0)) if scale else timedelta(0),
    )


@dataclass(frozen=True)
class Calendar:
    """The validated calendar; query it with aware datetimes (or epoch seconds)."""

    spec: CalendarSpec
    services: ServiceCatalog
    source: str = "calendar.yaml"
    adhoc: tuple[Occurrence, ...] = ()  # windows registered outside the file (the SRE store)
    cancelled: frozenset[str] = frozenset()  # ids of cancelled occurrences
    _one_offs: tuple[Occurrence, ...] = field(default=(), init=False, repr=False, compare=False)
    _events: tuple[Occurrence, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_one_offs", tuple(one_off_occurrence(w) for w in self.spec.maintenance.one_off))
        object.__setattr__(self, "_events", tuple(event_occurrence(e, self.services) for e in self.spec.events))

    @property
    def tz(self) -> ZoneInfo:
        return self.spec.tz

    @property
    def max_maintenance(self) -> timedelta:
        return self.spec.limits.max_maintenance

    # --- windows from elsewhere ---------------------------------------------------------------------------
    def with_windows(self, windows: Iterable[Occurrence] = (), cancelled: Iterable[str] = ()) -> Calendar:
        """A calendar that also knows these windows (replacing ones with the same id) and cancellations."""
        extra = {w.id: w for w in self.adhoc}
        extra.update({w.id: w for w in windows})
        return replace(self, adhoc=tuple(sorted(extra.values(), key=lambda w: (w.start, w.id))),
                       cancelled=self.cancelled | frozenset(cancelled))

    def with_store_rows(self, rows: Iterable[Mapping[str, Any]]) -> Calendar:
        """Add the store's ad-hoc windows and every cancellation it records (rows of SREStore.windows)."""
        rows = list(rows)
        cancelled = [str(r["id"]) for r in rows if r.get("status") == "cancelled"]
        adhoc = [occurrence_from_store_row(r) for r in rows
                 if r.get("kind") == "adhoc" and r.get("status") != "cancelled"]
        return self.with_windows(adhoc, cancelled)

    # --- which windows ------------------------------------------------------------------------------------
    def windows_overlapping(self, a: datetime | int | float, b: datetime | int | float, *,
                            service: str | None = None, kinds: Iterable[str] | None = None) -> list[Occurrence]:
        """Every occurrence sharing an instant with [a, b), sorted by start then id (an empty range has none)."""
        lo, hi = as_utc(a), as_utc(b)
        wanted = frozenset(kinds) if kinds is not None else None
        found: list[Occurrence] = []
        if wanted is None or "recurring" in wanted:
            for recurrence in self.spec.maintenance.recurring:
                found.extend(expand(recurrence, self.tz, lo, hi))
        fixed: list[Occurrence] = [*self._one_offs, *self.adhoc, *self._events]
        if wanted is None or "holiday" in wanted:
            fixed.extend(self._holidays_between(lo, hi))
        found.extend(w for w in fixed if wanted is None or w.kind in wanted)
        return sorted((w for w in found if w.id not in self.cancelled and w.affects(service) and w.overlaps(lo, hi)),
                      key=lambda w: (w.start, w.id))

    def windows_covering(self, at: datetime | int | float, *, service: str | None = None,
                         kinds: Iterable[str] | None = None) -> list[Occurrence]:
        """Every occurrence with start <= at < end."""
        t = as_utc(at)
        return [w for w in self.windows_overlapping(t, t + timedelta(microseconds=1), service=service, kinds=kinds)
                if w.covers(t)]

    def maintenance_overlapping(self, a: datetime | int | float, b: datetime | int | float, *,
                                service: str | None = None) -> list[Occurrence]:
        return self.windows_overlapping(a, b, service=service, kinds=MAINTENANCE_KINDS)

    def events_overlapping(self, a: datetime | int | float, b: datetime | int | float, *,
                           service: str | None = None) -> list[Occurrence]:
        return self.windows_overlapping(a, b, service=service, kinds=("event",))

    def events_scaled_at(self, at: datetime | int | float, *, service: str | None = None) -> list[Occurrence]:
        """Events whose services should be scaled up at `at`: [start - lead_time, end + scale_down_delay)."""
        t = as_utc(at)
        return [e for e in self._events
                if e.scaling and e.id not in self.cancelled and e.scaling_start <= t < e.scaling_end
                and (service is None or e.scaling_for(service) is not None)]

    def find(self, window_id: str) -> Occurrence | None:
        """The occurrence with this id (one-off, ad-hoc, event, holiday or `<recurrence>-YYYY-MM-DD`)."""
        for w in (*self._one_offs, *self.adhoc, *self._events):
            if w.id == window_id:
                return w
        for recurrence in self.spec.maintenance.recurring:
            found = occurrence_by_id(recurrence, self.tz, window_id)
            if found is not None:
                return found
        if window_id.startswith("holiday-"):
            for day in self.spec.holidays.days:
                if f"holiday-{day.date.isoformat()}" == window_id:
                    return self._holiday(day.date, day.name)
        return None

    # --- what they mean -----------------------------------------------------------------------------------
    def is_maintenance(self, at: datetime | int | float, service: str) -> bool:
        self._known(service)
        return bool(self.windows_covering(at, service=service, kinds=MAINTENANCE_KINDS))

    def is_event_period(self, at: datetime | int | float, service: str) -> bool:
        self._known(service)
        return bool(self.windows_covering(at, service=service, kinds=("event",)))

    def is_holiday(self, at: datetime | int | float) -> bool:
        return bool(self.windows_covering(at, kinds=("holiday",)))

    def strict_slo(self, at: datetime | int | float, service: str) -> Verdict:
        """Whether SLOs of the service are evaluated strictly at `at` (an event or holiday that says so)."""
        self._known(service)
        tightening = tuple(w for w in self.windows_covering(at, service=service, kinds=("event", "holiday"))
                           if w.strict_slo)
        if tightening:
            return Verdict(True, "strict SLO evaluation: " + "; ".join(_label(w, self.tz) for w in tightening),
                           tightening)
        return Verdict(False, "normal SLO evaluation: no event or holiday asks for strict evaluation")

    def chaos_allowed(self, at: datetime | int | float, service: str,
                      duration: timedelta | None = None) -> Verdict:
        """Chaos never runs inside maintenance, nor in an event or holiday that forbids it.

        With a duration the whole experiment [at, at + duration) must stay clear of such windows.
        """
        self._known(service)
        t = as_utc(at)
        if duration is not None and duration <= timedelta(0):
            raise ValueError(f"an experiment duration must be positive, got {duration}")
        end = t + (duration or timedelta(microseconds=1))
        blocking = tuple(w for w in self.windows_overlapping(t, end, service=service) if w.chaos_forbidden)
        if blocking:
            return Verdict(False, f"chaos is forbidden for {service}: " +
                           "; ".join(_label(w, self.tz) for w in blocking), blocking)
        span = "at " + t.astimezone(self.tz).strftime("%Y-%m-%d %H:%M %Z") if duration is None else (
            "from " + t.astimezone(self.tz).strftime("%Y-%m-%d %H:%M %Z") + f" for {duration}")
        return Verdict(True, f"no maintenance, event or holiday forbids chaos for {service} {span}")

    def deploy_allowed_in_maintenance(self, service: str) -> bool:
        """The per-service setting of services.yaml (maintenance.deploy_during_maintenance)."""
        return self.services.get(service).deploy_during_maintenance

    def deploy_allowed(self, at: datetime | int | float, service: str) -> Verdict:
        """The calendar's part of a deploy gate: inside maintenance only where services.yaml allows it."""
        self._known(service)
        windows = tuple(self.windows_covering(at, service=service, kinds=MAINTENANCE_KINDS))
        if not windows:
            return Verdict(True, f"{service} is not in a maintenance window")
        labels = "; ".join(_label(w, self.tz) for w in windows)
        if self.deploy_allowed_in_maintenance(service):
            return Verdict(True, f"{service} deploys during maintenance (services.yaml): {labels}", windows)
        return Verdict(False, f"{service} does not deploy during maintenance (services.yaml "
                              f"maintenance.deploy_during_maintenance is false): {labels}", windows)

    # --- helpers ------------------------------------------------------------------------------------------
    def _known(self, service: str) -> None:
        if service not in self.services:
            raise KeyError(f"unknown service {service!r} (known: {', '.join(self.services.names)})")

    def _holiday(self, day: date, name: str) -> Occurrence:
        policy = self.spec.holidays.policy
        start = local_midnight(day, self.tz)
        end = local_midnight(day + timedelta(days=1), self.tz)
        return Occurrence(id=f"holiday-{day.isoformat()}", kind="holiday", start=start, end=end,
                          services=self.services.names, reason=f"public holiday: {name}", owner="calendar",
                          ticket="", source=day.isoformat(), name=name, chaos_forbidden=policy.chaos_forbidden,
                          strict_slo=policy.strict_slo)

    def _holidays_between(self, lo: datetime, hi: datetime) -> list[Occurrence]:
        first = lo.astimezone(self.tz).date() - timedelta(days=1)
        last = hi.astimezone(self.tz).date()
        return [self._holiday(d.date, d.name) for d in self.spec.holidays.days if first <= d.date <= last]


def _label(window: Occurrence, tz: ZoneInfo) -> str:
    what = {"recurring": "maintenance", "one-off": "maintenance", "adhoc": "ad-hoc maintenance",
            "event": "live-ops event", "holiday": "holiday"}[window.kind]
    return f"{what} {window.describe(tz)}"

