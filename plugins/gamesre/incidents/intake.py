"""The intake decision: what one Alertmanager notification does to the open incidents (open, join or ignore).

Pure: the notification, the open incidents, the time and the settings in, one IntakeDecision out; the store
assigns ids and records the decision (`apply_decision` is what it records, so that a replayed notification
joins the incident it opened: Alertmanager re-sends a group every repeat_interval, and a webhook may be retried).

The rules, in order:
1. The notification's group key, or one of its alerts' fingerprints, belongs to an open incident: join it (the
   same alert group notified again). Both, for two different incidents: join the owner of the group key.
2. No page alert (severity label = intake.page_severity): ignore.
3. A resolved notification, or no firing page alert: ignore. Resolved notifications never open and never
   close an incident: people resolve incidents.
4. A firing page alert's service has an incident opened less than intake.join_window ago: join the most
   recently opened one (one outage, several alert groups).
5. Otherwise open. A page whose service label is missing or unknown is never dropped: it is `unowned` and
   intake.default_team owns it.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from gamesre.core.time import as_utc

if TYPE_CHECKING:
    from gamesre.core.services import ServiceCatalog
    from gamesre.incidents.payload import Alert, Notification
    from gamesre.incidents.spec import IncidentsSpec

Action = Literal["open", "join", "ignore"]


@dataclass(frozen=True)
class OpenIncident:
    """What intake needs to know of an open incident: its services, alert groups and alerts, and when it opened."""

    id: str
    services: tuple[str, ...]
    group_keys: frozenset[str]
    fingerprints: frozenset[str]
    opened_at: datetime


@dataclass(frozen=True)
class IntakeDecision:
    """What a notification does; `why` is the sentence the incident timeline shows."""

    action: Action
    incident_id: str | None  # the incident joined; None to open one (the store assigns the id) or to ignore
    page_alerts: tuple[Alert, ...]  # the alerts with severity == page_severity, by fingerprint
    resolved_fingerprints: tuple[str, ...]  # resolved alerts of the page alerts or of the joined incident
    services: tuple[str, ...]  # known services of the page alerts, sorted
    unowned: tuple[str, ...]  # service label values of page alerts that are unknown, as written ('' for missing)
    team: str  # the owning team of the first known service, else intake.default_team
    why: str


def service_teams(catalog: ServiceCatalog) -> dict[str, str]:
    """service -> owning team, as services.yaml says."""
    return {spec.name: spec.team for spec in catalog}


def decide_intake(notification: Notification, open_incidents: Collection[OpenIncident], now: datetime,
                  spec: IncidentsSpec, teams: Mapping[str, str]) -> IntakeDecision:
    """What `notification` does, given the open incidents at `now`; `teams` maps each known service to its team."""
    intake = spec.intake
    page = tuple(sorted((a for a in notification.alerts if a.severity == intake.page_severity),
                        key=lambda a: a.fingerprint))
    services = tuple(sorted({a.service for a in page if a.service is not None and a.service in teams}))
    unowned = tuple(sorted({a.service or "" for a in page if a.service is None or a.service not in teams}))
    team = teams[services[0]] if services else intake.default_team
    owner = "" if not unowned else (
        f"; service label {', '.join(_label(s) for s in unowned)}: owned by {intake.default_team}"
        if not services else f"; also service label {', '.join(_label(s) for s in unowned)}")

    page_fingerprints = {a.fingerprint for a in page}

    def decision(action: Action, incident: OpenIncident | None, why: str) -> IntakeDecision:
        ours = page_fingerprints | (incident.fingerprints if incident is not None else frozenset())
        resolved = sorted({a.fingerprint for a in notification.alerts
                           if a.status == "resolved" and a.fingerprint in ours})
        if resolved and action == "join":
            why += f"; resolved: {len(resolved)} alert{'s' if len(resolved) > 1 else ''}"
        return IntakeDecision(action, incident.id if incident is not None else None, page, tuple(resolved),
                              services, unowned, team, why + (owner if page else ""))

    by_group = _latest(i for i in open_incidents if notification.group_key in i.group_keys)
    owning_alerts = [i for i in open_incidents if i.fingerprints & notification.fingerprints]
    by_alert = _latest(owning_alerts)
    if by_group is not None:
        why = f"the same alert group notified again: joins {by_group.id}"
        if by_alert is not None and by_alert.id != by_group.id:
            why = (f"ambiguous: the alert group belongs to {by_group.id} and alerts of it to {by_alert.id}; "
                   f"joins {by_group.id}, the owner of the group key")
        return decision("join", by_group, why)
    if by_alert is not None:
        shared = sorted(by_alert.fingerprints & notification.fingerprints)
        why = f"alert {', '.join(shared)} is already part of {by_alert.id}: joins it"
        if len(owning_alerts) > 1:
            others = sorted(i.id for i in owning_alerts if i.id != by_alert.id)
            why = (f"ambiguous: alerts of this group belong to {by_alert.id} and {', '.join(others)}; "
                   f"joins {by_alert.id}, the most recently opened")
        return decision("join", by_alert, why)

    if not page:
        seen = sorted({a.severity if a.severity is not None else "(no severity label)" for a in notification.alerts})
        return decision("ignore", None, f"no {intake.page_severity} alert (severities seen: {', '.join(seen)}) "
                                        "and no open incident owns this alert group")
    firing = [a for a in page if a.status == "firing"]
    if notification.status == "resolved" or not firing:
        return decision("ignore", None, "resolved notification for an alert group with no open incident")

    window = timedelta(seconds=intake.join_window_s)
    firing_services = {a.service for a in firing if a.service is not None and a.service in teams}
    recent = [i for i in open_incidents
              if firing_services & set(i.services) and as_utc(now) - as_utc(i.opened_at) < window]
    joined = _latest(recent)
    if joined is not None:
        service = sorted(firing_services & set(joined.services))[0]
        return decision("join", joined, f"second alert group for {service} within {intake.join_window} "
                                        f"of {joined.id}: joins it")
    names = ", ".join(sorted({a.alertname or "(no alertname)" for a in firing}))
    about = f" for {', '.join(services)}" if services else ""
    return decision("open", None, f"{len(firing)} firing {intake.page_severity} alert{'s' if len(firing) > 1 else ''} "
                                  f"({names}){about} with no open incident: opens one")


def apply_decision(decision: IntakeDecision, notification: Notification, open_incidents: Iterable[OpenIncident],
                   *, new_id: str, now: datetime) -> tuple[OpenIncident, ...]:
    """The open incidents after recording `decision`: an opened or joined incident owns the notification's group
    key, its page alerts' fingerprints and their known services (so that a replay joins it). `new_id` is the id the
    store assigned, used when the decision opens one."""
    incidents = tuple(open_incidents)
    if decision.action == "ignore":
        return incidents
    fingerprints = frozenset(a.fingerprint for a in decision.page_alerts)
    if decision.action == "open":
        opened = OpenIncident(new_id, decision.services, frozenset({notification.group_key}), fingerprints, now)
        return (*incidents, opened)
    return tuple(
        replace(i, services=tuple(sorted({*i.services, *decision.services})),
                group_keys=i.group_keys | {notification.group_key}, fingerprints=i.fingerprints | fingerprints)
        if i.id == decision.incident_id else i
        for i in incidents)


def _latest(incidents: Iterable[OpenIncident]) -> OpenIncident | None:
    """The most recently opened incident (the larger id on a tie, so that the choice never depends on order)."""
    return max(incidents, key=lambda i: (as_utc(i.opened_at), i.id), default=None)


def _label(value: str) -> str:
    return "missing" if value == "" else repr(value)
