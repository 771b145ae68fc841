"""Maintenance windows and live-ops events: reconcile, exact-time transitions, ad-hoc windows, event scaling.

Everything here is idempotent (DESIGN.md, decision 9): it reads the store, Alertmanager or the scaling backend
before acting, so a retry or a re-run converges on the same state and makes no duplicates. The calendar is
include/config/calendar.yaml plus the windows people registered (store rows); the plan is pure
(gamesre.calendar.plan). Notices go to the Slack channels of the services a window or event affects.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from gamesre.app.ports import Clock, Notifier
from gamesre.calendar import Calendar, Occurrence, check_adhoc_window, check_cancellation
from gamesre.calendar.plan import HISTORY, Transition, plan_reconcile, status_at
from gamesre.calendar.scaling import EventScaler
from gamesre.core.services import Matcher, ServiceCatalog

log = logging.getLogger(__name__)

SILENCE_AUTHOR = "gamesre/maintenance_windows"
CALENDAR_AHEAD = timedelta(days=400)  # registered windows this far ahead are part of the calendar


class InvalidWindowRequest(ValueError):
    """The form's values were rejected; the message is the reason for the person who filled it in."""


class WindowStore(Protocol):
    def windows(self, start: datetime | None = None, end: datetime | None = None, *,
                include_cancelled: bool = False) -> list[dict[str, Any]]: ...

    def window(self, window_id: str) -> dict[str, Any] | None: ...

    def upsert_window(self, window: dict[str, Any]) -> None: ...

    def update_window(self, window_id: str, **fields: Any) -> None: ...


class SilenceLike(Protocol):
    @property
    def id(self) -> str: ...


class EnsuredSilence(Protocol):
    @property
    def silence(self) -> SilenceLike: ...

    @property
    def action(self) -> str: ...


class Silences(Protocol):
    """Alertmanager's silences of maintenance windows, found again by window id."""

    def ensure_silence(self, window_id: str, matchers: Sequence[Matcher], start: datetime, end: datetime,
                       created_by: str, comment: str) -> EnsuredSilence: ...

    def expire_window_silences(self, window_id: str) -> list[str]: ...


@dataclass
class MaintenancePorts:
    store: WindowStore
    silences: Silences
    scaler: Callable[[str], EventScaler]  # by the scaling's backend kind: local | kubernetes
    notifier: Notifier
    clock: Clock
    services: ServiceCatalog
    calendar: Calendar  # include/config/calendar.yaml, without the registered windows

    def current_calendar(self) -> Calendar:
        """The configured calendar with every registered window (cancelled ones too) from the store."""
        now = self.clock()
        rows = self.store.windows(now - HISTORY, now + CALENDAR_AHEAD, include_cancelled=True)
        return self.calendar.with_store_rows(rows)


def _silence_comment(window: Occurrence) -> str:
    return f"Maintenance {window.id}: {window.reason} (ticket {window.ticket}, owner {window.owner})"


def announce(ports: MaintenancePorts, services: Sequence[str], text: str) -> None:
    """Tell the Slack channel of each affected service (once per channel; the SRE channel when none is known)."""
    channel_ids = {ports.services.channel_id(name) for name in services if name in ports.services}
    for channel_id in sorted(channel_ids or {ports.services.sre.slack.channel_id}):
        ports.notifier.message(text, channel_id=channel_id)


def ensure_window_silences(ports: MaintenancePorts, window: Occurrence) -> list[str]:
    """One live silence per affected service, ending when the window ends; ids recorded on the window."""
    ids = []
    for name in window.services:
        result = ports.silences.ensure_silence(window.id, ports.services.get(name).matchers, window.start,
                                               window.end, SILENCE_AUTHOR, _silence_comment(window))
        log.info("silence %s for %s on %s: %s", result.silence.id, window.id, name, result.action)
        ids.append(result.silence.id)
    ports.store.update_window(window.id, silence_ids=ids)
    return ids


def reconcile(ports: MaintenancePorts, now: datetime) -> dict[str, Any]:
    """Converge the store, Alertmanager and event capacity on the calendar at `now`; returns the plan."""
    calendar = ports.current_calendar()
    plan = plan_reconcile(calendar, now)
    for window in plan.record:
        created_by = window.owner if window.kind != "adhoc" else None
        ports.store.upsert_window(window.to_store_row(status=status_at(window, plan.now), created_by=created_by))
    silenced = {w.id: ensure_window_silences(ports, w) for w in plan.silence}
    expired: dict[str, list[str]] = {}
    for window_id in plan.expire:
        gone = ports.silences.expire_window_silences(window_id)
        if gone:
            expired[window_id] = gone
            cancelled = calendar.find(window_id)
            announce(ports, cancelled.services if cancelled else (), f":white_check_mark: Silences of cancelled "
                     f"maintenance {window_id} expired: {', '.join(gone)}")
    scaled = {e.id: scale_event(ports, e, up=True) for e in plan.scale_up}
    scaled.update({e.id: scale_event(ports, e, up=False) for e in plan.scale_down})
    return {**plan.summary(), "silences": silenced, "expired": expired, "scaling": scaled}


def apply_transition(ports: MaintenancePorts, transition: Mapping[str, Any]) -> dict[str, Any]:
    """Do one exact-time step of the plan (its time has come): status, silences, scaling, and a Slack notice."""
    t = Transition.from_dict(dict(transition))
    calendar = ports.current_calendar()
    window = calendar.find(t.window_id)
    if window is None or window.id in calendar.cancelled:
        log.info("window %s is gone or cancelled; nothing to do at %s", t.window_id, t.at)
        return {"transition": dict(transition), "skipped": "cancelled or removed"}
    span = window.describe(calendar.tz)
    if t.kind == "window_start":
        ensure_window_silences(ports, window)
        ports.store.update_window(window.id, status="active")
        announce(ports, window.services, f":construction: Maintenance started: {span}. {window.reason} (ticket "
                 f"{window.ticket}). Alerts of these services are silenced and the window is excluded from their "
                 "SLO budgets.")
        return {"transition": dict(transition), "status": "active"}
    if t.kind == "window_end":
        gone = ports.silences.expire_window_silences(window.id)
        ports.store.update_window(window.id, status="completed")
        announce(ports, window.services, f":white_check_mark: Maintenance ended: {span}. "
                 f"Silences expired: {', '.join(gone) or 'none left'}.")
        return {"transition": dict(transition), "status": "completed", "expired": gone}
    return {"transition": dict(transition), "scaling": scale_event(ports, window, up=t.kind == "scale_up")}


def scale_event(ports: MaintenancePorts, event: Occurrence, *, up: bool) -> dict[str, str]:
    """Scale every service of an event up (or back) on its backend; Slack hears of every change."""
    outcome: dict[str, str] = {}
    for scaling in event.scaling:
        scaler = ports.scaler(scaling.backend)
        change = scaler.scale_up(event.id, scaling) if up else scaler.scale_back(event.id, scaling)
        outcome[scaling.service] = change.message
        if change.changed:
            verb = "scaled up for" if up else "scaled back after"
            announce(ports, (scaling.service,), f":chart_with_upwards_trend: {scaling.service} {verb} event "
                     f"{event.id}: {change.message}")
    return outcome


# --- ad-hoc windows from the UI -----------------------------------------------------------------------------

def _decide(ports: MaintenancePorts, params: Mapping[str, Any], requested_by: str) -> tuple[Any, Calendar]:
    calendar = ports.current_calendar()
    now = ports.clock()
    if params["action"] == "cancel":
        if not params.get("window_id"):
            raise InvalidWindowRequest("cancellation rejected: window_id: give the id of the window to cancel")
        decision = check_cancellation(calendar, str(params["window_id"]), now=now)
    else:
        missing = [f for f in ("start", "reason", "ticket") if not params.get(f)]
        if missing or not params.get("services"):
            missing += [] if params.get("services") else ["services"]
            raise InvalidWindowRequest(f"maintenance window rejected: missing {', '.join(missing)}")
        decision = check_adhoc_window(
            calendar, services=params["services"], start=params["start"], reason=params["reason"],
            ticket=params["ticket"], owner=requested_by, now=now,
            duration=timedelta(minutes=int(params["duration_minutes"])),
        )
    if not decision.accepted or decision.window is None:
        what = "cancellation" if params["action"] == "cancel" else "maintenance window"
        raise InvalidWindowRequest(f"{what} {decision.reason}")  # the reason starts with "rejected: "
    return decision, calendar


def validate_request(ports: MaintenancePorts, params: Mapping[str, Any], requested_by: str) -> dict[str, Any]:
    """Check the form without changing anything; the accepted window (or InvalidWindowRequest saying why not)."""
    decision, calendar = _decide(ports, params, requested_by)
    w = decision.window
    return {"action": params["action"], "requested_by": requested_by, "window_id": w.id,
            "describe": w.describe(calendar.tz), "already_registered": decision.already_registered,
            "params": {k: params[k] for k in ("services", "start", "duration_minutes", "reason", "ticket",
                                              "window_id", "action")}}


def apply_request(ports: MaintenancePorts, request: Mapping[str, Any]) -> dict[str, Any]:
    """Register or cancel as validated (checked again: the calendar may have changed since)."""
    decision, calendar = _decide(ports, request["params"], request["requested_by"])
    window = decision.window
    who = request["requested_by"]
    if request["action"] == "cancel":
        if ports.store.window(window.id) is None:
            ports.store.upsert_window(window.to_store_row(status="cancelled"))
        ports.store.update_window(window.id, status="cancelled", cancelled_at=ports.clock(), cancelled_by=who)
        gone = ports.silences.expire_window_silences(window.id)
        announce(ports, window.services, f":x: Maintenance window cancelled by {who}: "
                 f"{window.describe(calendar.tz)}. Silences expired: {', '.join(gone) or 'none'}. Its minutes count "
                 "against the budgets again.")
        return {"window_id": window.id, "status": "cancelled", "expired_silences": gone}
    if not decision.already_registered:
        ports.store.upsert_window(window.to_store_row(status="scheduled", created_by=who))
    ids = ensure_window_silences(ports, window)
    announce(ports, window.services, f":calendar: Maintenance window registered by {who}: "
             f"{window.describe(calendar.tz)}. {window.reason} (ticket {window.ticket}). Silences: {', '.join(ids)}.")
    return {"window_id": window.id, "status": "scheduled", "silence_ids": ids,
            "start": window.start.isoformat(), "end": window.end.isoformat()}
