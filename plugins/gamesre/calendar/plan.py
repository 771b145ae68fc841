"""What the maintenance_windows DAG must do at an instant: records, silences, expiries, scaling, exact-time steps.

Pure: from the calendar (already merged with the store's ad-hoc windows and cancellations) and an instant, the
plan says which windows to record (so SLO budgets exclude them), which need a live Alertmanager silence, which
cancelled windows' silences to expire, which events to scale up or back now, and which transitions fall inside
the next cycle, to be done at their exact time by a deferred task.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from gamesre.calendar.occurrence import Occurrence
from gamesre.calendar.schedule import Calendar
from gamesre.core.time import as_utc

TransitionKind = Literal["window_start", "window_end", "scale_up", "scale_down"]

HORIZON = timedelta(hours=1)  # silences are created this long before a window starts (pending until then)
CYCLE = timedelta(minutes=15)  # the DAG's schedule: transitions inside it are waited for, deferred
HISTORY = timedelta(days=35)  # windows this far back are recorded, so budgets over any window exclude them
SCALE_BACK_LOOKBACK = timedelta(days=1)  # an event whose scaling ended this recently is scaled back (idempotent)


def status_at(window: Occurrence, now: datetime) -> str:
    if now < window.start:
        return "scheduled"
    return "active" if now < window.end else "completed"


@dataclass(frozen=True)
class Transition:
    at: datetime
    kind: TransitionKind
    window_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "kind": self.kind, "window_id": self.window_id}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Transition:
        return cls(datetime.fromisoformat(raw["at"]), raw["kind"], raw["window_id"])


@dataclass(frozen=True)
class ReconcilePlan:
    now: datetime
    record: tuple[Occurrence, ...]  # maintenance windows and events to write to the store, with status_at(now)
    silence: tuple[Occurrence, ...]  # maintenance windows that need a live silence (active, or starting soon)
    expire: tuple[str, ...]  # cancelled windows whose silences must go
    scale_up: tuple[Occurrence, ...]  # events whose scaling period covers now
    scale_down: tuple[Occurrence, ...]  # events whose scaling period ended recently
    transitions: tuple[Transition, ...]  # exact-time steps in (now, now + cycle], earliest first

    def summary(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "record": [w.id for w in self.record],
            "silence": [w.id for w in self.silence],
            "expire": list(self.expire),
            "scale_up": [e.id for e in self.scale_up],
            "scale_down": [e.id for e in self.scale_down],
            "transitions": [t.to_dict() for t in self.transitions],
        }


def plan_reconcile(calendar: Calendar, now: datetime, *, horizon: timedelta = HORIZON, cycle: timedelta = CYCLE,
                   history: timedelta = HISTORY) -> ReconcilePlan:
    now = as_utc(now)
    maintenance = calendar.windows_overlapping(now - history, now + horizon,
                                               kinds=("recurring", "one-off", "adhoc"))
    events = calendar.events_overlapping(now - history, now + max(horizon, cycle) + timedelta(days=1))
    silence = tuple(w for w in maintenance if w.end > now and w.start < now + horizon)
    expire = tuple(sorted(wid for wid in calendar.cancelled))
    scale_up = tuple(calendar.events_scaled_at(now))
    scale_down = tuple(e for e in events if e.scaling and now - SCALE_BACK_LOOKBACK < e.scaling_end <= now)

    transitions: list[Transition] = []
    window_end = now + cycle
    for w in maintenance:
        for at, kind in ((w.start, "window_start"), (w.end, "window_end")):
            if now < at <= window_end:
                transitions.append(Transition(at, kind, w.id))  # type: ignore[arg-type]
    for e in events:
        if not e.scaling:
            continue
        for at, kind in ((e.scaling_start, "scale_up"), (e.scaling_end, "scale_down")):
            if now < at <= window_end:
                transitions.append(Transition(at, kind, e.id))  # type: ignore[arg-type]
    record = tuple(w for w in (*maintenance, *events) if w.start < now + horizon)
    return ReconcilePlan(now, record, silence, expire, scale_up, scale_down,
                         tuple(sorted(transitions, key=lambda t: (t.at, t.kind, t.window_id))))
