"""Airflow glue of the maintenance workflows: reconcile windows, exact-time transitions, ad-hoc windows, scaling.

Everything here is idempotent (DESIGN.md, decision 8): it reads the store, Alertmanager, HAProxy or the HPA
before acting, so a retry or a re-run converges on the same state and makes no duplicates.
"""
from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gamesre.airflow.hooks.alertmanager import AlertmanagerHook
from gamesre.airflow.hooks.store import SREStoreHook
from gamesre.airflow.notify import post_message

if TYPE_CHECKING:
    from gamesre.calendar import Calendar, Occurrence
    from gamesre.core.services import ServiceCatalog
    from gamesre.integrations.store import SREStore

log = logging.getLogger(__name__)

SILENCE_AUTHOR = "gamesre/maintenance_windows"


def _calendar(store: SREStore) -> tuple[Calendar, ServiceCatalog]:
    from gamesre.calendar import load_calendar
    from gamesre.calendar.plan import HISTORY
    from gamesre.core.services import load_services

    services = load_services()
    now = datetime.now(UTC)
    rows = store.windows(now - HISTORY, now + timedelta(days=400), include_cancelled=True)
    return load_calendar(services=services).with_store_rows(rows), services


def _silence_comment(window: Occurrence) -> str:
    return f"Maintenance {window.id}: {window.reason} (ticket {window.ticket}, owner {window.owner})"


def ensure_window_silences(window: Occurrence, services: ServiceCatalog, store: SREStore) -> list[str]:
    """One live silence per affected service, ending when the window ends; ids recorded on the window."""
    am = AlertmanagerHook().get_conn()
    ids = []
    for name in window.services:
        result = am.ensure_silence(window.id, services.get(name).matchers, window.start, window.end,
                                   SILENCE_AUTHOR, _silence_comment(window))
        log.info("silence %s for %s on %s: %s", result.silence.id, window.id, name, result.action)
        ids.append(result.silence.id)
    store.update_window(window.id, silence_ids=ids)
    return ids


def reconcile(now: datetime) -> dict[str, Any]:
    """Converge the store, Alertmanager and event capacity on the calendar at `now`; returns the plan."""
    from gamesre.calendar.plan import plan_reconcile, status_at

    store = SREStoreHook().get_conn()
    calendar, services = _calendar(store)
    plan = plan_reconcile(calendar, now)
    for window in plan.record:
        created_by = window.owner if window.kind != "adhoc" else None
        store.upsert_window(window.to_store_row(status=status_at(window, plan.now), created_by=created_by))
    silenced = {w.id: ensure_window_silences(w, services, store) for w in plan.silence}
    expired: dict[str, list[str]] = {}
    if plan.expire:
        am = AlertmanagerHook().get_conn()
        for window_id in plan.expire:
            gone = am.expire_window_silences(window_id)
            if gone:
                expired[window_id] = gone
                post_message(f":white_check_mark: Silences of cancelled maintenance {window_id} expired: "
                             f"{', '.join(gone)}")
    scaled = {e.id: scale_event(e, services, up=True) for e in plan.scale_up}
    scaled.update({e.id: scale_event(e, services, up=False) for e in plan.scale_down})
    return {**plan.summary(), "silences": silenced, "expired": expired, "scaling": scaled}


def apply_transition(transition: dict[str, Any]) -> dict[str, Any]:
    """Do one exact-time step of the plan (its time has come): status, silences, scaling, and a Slack notice."""
    from gamesre.calendar.plan import Transition

    t = Transition.from_dict(transition)
    store = SREStoreHook().get_conn()
    calendar, services = _calendar(store)
    window = calendar.find(t.window_id)
    if window is None or window.id in calendar.cancelled:
        log.info("window %s is gone or cancelled; nothing to do at %s", t.window_id, t.at)
        return {"transition": transition, "skipped": "cancelled or removed"}
    span = window.describe(calendar.tz)
    if t.kind == "window_start":
        ensure_window_silences(window, services, store)
        store.update_window(window.id, status="active")
        post_message(f":construction: Maintenance started: {span}. {window.reason} (ticket {window.ticket}). "
                     "Alerts of these services are silenced and the window is excluded from their SLO budgets.")
        return {"transition": transition, "status": "active"}
    if t.kind == "window_end":
        gone = AlertmanagerHook().get_conn().expire_window_silences(window.id)
        store.update_window(window.id, status="completed")
        post_message(f":white_check_mark: Maintenance ended: {span}. "
                     f"Silences expired: {', '.join(gone) or 'none left'}.")
        return {"transition": transition, "status": "completed", "expired": gone}
    result = scale_event(window, services, up=t.kind == "scale_up")
    return {"transition": transition, "scaling": result}


# --- event scaling ------------------------------------------------------------------------------------------

def _local_scaler() -> Any:
    from gamesre.airflow.hooks.haproxy import HAProxyHook
    from gamesre.integrations.fleet_scaling import LocalFleetScaler

    fleet_file = os.environ.get("GAMESRE_DEMO_FLEET")
    if not fleet_file:
        raise RuntimeError("local event scaling needs the demo fleet: GAMESRE_DEMO_FLEET (set by `make demo`) "
                           "must name its fleet.json")
    state = Path(fleet_file).parent / "event-scaling.json"
    return LocalFleetScaler(state, HAProxyHook().get_conn())


def scale_event(event: Occurrence, services: ServiceCatalog, *, up: bool) -> dict[str, str]:
    """Scale every service of an event up (or back) on its backend; Slack hears of every change."""
    outcome: dict[str, str] = {}
    for scaling in event.scaling:
        if scaling.backend == "kubernetes":
            from gamesre.airflow.hooks.kubernetes import api_client
            from gamesre.integrations.kubernetes import restore_hpa, set_hpa_min_replicas

            coords = services.get(scaling.service).kubernetes
            assert coords is not None and coords.hpa is not None  # services.yaml validation guarantees both
            if up:
                change = set_hpa_min_replicas(api_client(), coords.namespace, coords.hpa, scaling.min_replicas,
                                              event_id=event.id)
            else:
                change = restore_hpa(api_client(), coords.namespace, coords.hpa, event_id=event.id)
            changed, message = change.changed, change.message
        else:
            scaler = _local_scaler()
            if up:
                result = scaler.scale_up(event.id, scaling.service, scaling.extra_instances,
                                         prefix=scaling.instance_prefix)
                changed = bool(result.started or result.added or result.removed)
            else:
                back = scaler.scale_back(event.id, scaling.service)
                changed, result = bool(back.removed or back.stopped), back  # type: ignore[assignment]
            message = result.message
        outcome[scaling.service] = message
        if changed:
            verb = "scaled up for" if up else "scaled back after"
            post_message(f":chart_with_upwards_trend: {scaling.service} {verb} event {event.id}: {message}")
    return outcome


# --- ad-hoc windows from the UI -----------------------------------------------------------------------------

class InvalidWindowRequest(ValueError):
    """The form's values were rejected; the message is the reason for the person who filled it in."""


def _decide(params: dict[str, Any], requested_by: str, now: datetime) -> tuple[Any, Calendar, ServiceCatalog]:
    from gamesre.calendar import check_adhoc_window, check_cancellation

    store = SREStoreHook().get_conn()
    calendar, services = _calendar(store)
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
    return decision, calendar, services


def validate_request(params: dict[str, Any], requested_by: str) -> dict[str, Any]:
    """Check the form without changing anything; the accepted window (or the reason it is refused)."""
    decision, calendar, _ = _decide(params, requested_by, datetime.now(UTC))
    w = decision.window
    return {"action": params["action"], "requested_by": requested_by, "window_id": w.id,
            "describe": w.describe(calendar.tz), "already_registered": decision.already_registered,
            "params": {k: params[k] for k in ("services", "start", "duration_minutes", "reason", "ticket",
                                              "window_id", "action")}}


def apply_request(request: dict[str, Any]) -> dict[str, Any]:
    """Register or cancel as validated (checked again: the calendar may have changed since)."""
    now = datetime.now(UTC)
    decision, calendar, services = _decide(request["params"], request["requested_by"], now)
    store = SREStoreHook().get_conn()
    window = decision.window
    who = request["requested_by"]
    if request["action"] == "cancel":
        if store.window(window.id) is None:
            store.upsert_window(window.to_store_row(status="cancelled"))
        store.update_window(window.id, status="cancelled", cancelled_at=now, cancelled_by=who)
        gone = AlertmanagerHook().get_conn().expire_window_silences(window.id)
        post_message(f":x: Maintenance window cancelled by {who}: {window.describe(calendar.tz)}. "
                     f"Silences expired: {', '.join(gone) or 'none'}. Its minutes count against the budgets again.")
        return {"window_id": window.id, "status": "cancelled", "expired_silences": gone}
    if not decision.already_registered:
        store.upsert_window(window.to_store_row(status="scheduled", created_by=who))
    ids = ensure_window_silences(window, services, store)
    post_message(f":calendar: Maintenance window registered by {who}: {window.describe(calendar.tz)}. "
                 f"{window.reason} (ticket {window.ticket}). Silences: {', '.join(ids)}.")
    return {"window_id": window.id, "status": "scheduled", "silence_ids": ids,
            "start": window.start.isoformat(), "end": window.end.isoformat()}
