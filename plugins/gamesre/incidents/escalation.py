"""When an incident brings in the next on-call level, and when its next status-page update is due (pure).

The escalation (include/config/incidents.yaml `escalation`, the runbook's timings):
- not acknowledged `secondary_unacknowledged_after` (5 min) after it opened -> the Secondary;
- not resolved `tertiary_unresolved_after` (30 min) after it opened -> the Tertiary (the team lead);
- not resolved `executive_unresolved_after` (1 h) after it opened -> the Executive (the CTO).
An acknowledgement before the first deadline cancels the first step, never the later ones (an acknowledged
incident that lasts still needs more hands); a resolved incident escalates no further. A step is taken once,
however late the watch comes round to it (a triggerer restart), and the timeline says how late.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from gamesre.core.time import as_utc
from gamesre.incidents.spec import EscalationSettings


@dataclass(frozen=True)
class EscalationStep:
    level: str  # secondary | tertiary | executive
    due_at: datetime
    condition: str  # "unacknowledged" | "unresolved"
    after_s: int

    @property
    def why(self) -> str:
        minutes = self.after_s // 60
        span = f"{minutes} min" if minutes < 60 else f"{minutes // 60} h" + (f" {minutes % 60} min" if minutes % 60
                                                                               else "")
        return f"{self.condition} {span} after it opened"


def schedule(opened_at: datetime, settings: EscalationSettings) -> tuple[EscalationStep, ...]:
    opened = as_utc(opened_at)
    return tuple(EscalationStep(level, opened + timedelta(seconds=after), condition, after) for level, after, condition
                 in (("secondary", settings.secondary_unacknowledged_after_s, "unacknowledged"),
                     ("tertiary", settings.tertiary_unresolved_after_s, "unresolved"),
                     ("executive", settings.executive_unresolved_after_s, "unresolved")))


def due_steps(opened_at: datetime, acknowledged_at: datetime | None, resolved: bool, now: datetime,
              settings: EscalationSettings, done: Collection[str]) -> tuple[EscalationStep, ...]:
    """The steps to take now: due, not taken yet, and still called for."""
    if resolved:
        return ()
    now = as_utc(now)
    return tuple(step for step in schedule(opened_at, settings)
                 if step.level not in done and step.due_at <= now and _called_for(step, acknowledged_at))


def cancelled_steps(opened_at: datetime, acknowledged_at: datetime | None,
                    settings: EscalationSettings) -> tuple[EscalationStep, ...]:
    """The steps an acknowledgement in time made unnecessary."""
    return tuple(step for step in schedule(opened_at, settings) if not _called_for(step, acknowledged_at))


def next_escalation(opened_at: datetime, acknowledged_at: datetime | None, resolved: bool, now: datetime,
                    settings: EscalationSettings, done: Collection[str]) -> EscalationStep | None:
    """The next step still to come after `now`, if any."""
    if resolved:
        return None
    now = as_utc(now)
    return next((step for step in schedule(opened_at, settings)
                 if step.level not in done and step.due_at > now and _called_for(step, acknowledged_at)), None)


def _called_for(step: EscalationStep, acknowledged_at: datetime | None) -> bool:
    if step.condition == "unacknowledged" and acknowledged_at is not None:
        return as_utc(acknowledged_at) > step.due_at  # acknowledged too late: the step stands
    return True


def next_update_at(last_update_at: datetime, every_s: int | None) -> datetime | None:
    """When the next status-page update is due (None for a severity without updates)."""
    return None if every_s is None else as_utc(last_update_at) + timedelta(seconds=every_s)


__all__ = ["EscalationStep", "cancelled_steps", "due_steps", "next_escalation", "next_update_at", "schedule"]
