"""Incident response use cases: the intake of Alertmanager notifications (open, join or ignore), then the steps of
the incident_response workflow. Dependencies come in as ports; no Airflow here (docs/incidents.md).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Protocol

from gamesre.core.services import ServiceCatalog, load_services
from gamesre.core.time import as_utc
from gamesre.incidents.intake import IntakeDecision, OpenIncident, decide_intake, service_teams
from gamesre.incidents.payload import Alert, Notification, PayloadError, parse_alertmanager_webhook
from gamesre.incidents.severity import SeverityFacts, classify
from gamesre.incidents.spec import IncidentsSpec, load_incidents

MAX_BODY_BYTES = 4 * 1024 * 1024  # Alertmanager's bodies are kilobytes; a group of 1,000 alerts is about 1 MB


class IntakeStore(Protocol):
    def record_intake(self, *, sha256: str, group_key: str, status: str, body: dict[str, Any],
                      received_at: datetime, decide: Callable[[list[dict[str, Any]]], dict[str, Any]]
                      ) -> dict[str, Any]: ...


@dataclass
class IncidentConfig:
    """include/config as the incident steps read it, each file parsed once (an error names file and field)."""

    services: ServiceCatalog = field(default_factory=load_services)

    @cached_property
    def spec(self) -> IncidentsSpec:
        return load_incidents(services=self.services)

    @cached_property
    def teams(self) -> dict[str, str]:
        return service_teams(self.services)


@dataclass(frozen=True)
class IntakeResult:
    """What one notification did: the HTTP answer's body."""

    action: str  # open | join | ignore
    incident_id: str | None
    created: bool  # an incident was opened by this notification
    repeat: bool  # this exact body had been received before: only counted
    why: str
    times: int  # how often this exact body has been received

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "incident_id": self.incident_id, "created": self.created,
                "repeat": self.repeat, "why": self.why, "times": self.times}


def parse_body(raw: bytes) -> tuple[Notification, dict[str, Any]]:
    """The notification in an HTTP body (JSON of Alertmanager's webhook, version 4); PayloadError naming the
    problem otherwise."""
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadError([f"body: {len(raw)} bytes, more than the {MAX_BODY_BYTES} an Alertmanager notification "
                            "needs"])
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError([f"body: not JSON: {exc}"]) from None
    if not isinstance(body, dict):
        raise PayloadError([f"body: must be a JSON object, got {type(body).__name__}"])
    return parse_alertmanager_webhook(body), body


def body_digest(body: dict[str, Any]) -> str:
    """The identity of a notification's content (key order and whitespace do not matter)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def receive_notification(raw: bytes, store: IntakeStore, config: IncidentConfig, now: datetime) -> IntakeResult:
    """Record one Alertmanager notification and open or join an incident, atomically and idempotently.

    PayloadError (nothing recorded) when the body is not a valid notification."""
    notification, body = parse_body(raw)
    received_at = as_utc(now)

    def decide(open_rows: list[dict[str, Any]]) -> dict[str, Any]:
        open_incidents = [OpenIncident(r["id"], tuple(r["services"] or ()), frozenset(r["group_keys"]),
                                       frozenset(r["fingerprints"]), r["opened_at"]) for r in open_rows]
        decision = decide_intake(notification, open_incidents, received_at, config.spec, config.teams)
        return intake_plan(decision, notification, config)

    outcome = store.record_intake(sha256=body_digest(body), group_key=notification.group_key,
                                  status=notification.status, body=body, received_at=received_at, decide=decide)
    return IntakeResult(**outcome)


def intake_plan(decision: IntakeDecision, notification: Notification, config: IncidentConfig) -> dict[str, Any]:
    """What the store writes for a decision: the incident (when opened), its alerts and timeline entries."""
    plan: dict[str, Any] = {"action": decision.action, "incident_id": decision.incident_id, "why": decision.why,
                            "services": list(decision.services)}
    if decision.action == "ignore":
        return plan
    alerts = [a for a in notification.alerts if a in decision.page_alerts]
    plan["alerts"] = [_alert_row(a, notification.group_key) for a in alerts]
    events = [{"kind": "intake", "summary": decision.why,
               "details": {"group_key": notification.group_key, "receiver": notification.receiver,
                           "unowned": list(decision.unowned)}}]
    events += [{"kind": f"alert_{a.status}", "summary": _alert_line(a), "details": {"fingerprint": a.fingerprint,
                                                                                     "labels": dict(a.labels)}}
               for a in alerts]
    plan["events"] = events
    if decision.action == "open":
        slos = sorted({a.slo for a in decision.page_alerts if a.slo})
        severity = classify(decision.page_alerts, decision.services, slos, SeverityFacts(), config.spec)
        plan["incident"] = {
            "severity": severity.severity, "title": incident_title(decision.page_alerts, decision.services),
            "services": list(decision.services), "team": decision.team,
            "details": {"slos": slos, "unowned": list(decision.unowned),
                        "severity_why": list(severity.why), "severity_rule": severity.rule,
                        "first_alert_at": min(a.starts_at for a in decision.page_alerts).isoformat()}}
        events.insert(1, {"kind": "severity", "summary": f"severity {severity.severity} at intake, from the alert "
                                                         f"labels: {'; '.join(severity.why)}",
                          "details": {"severity": severity.severity, "rule": severity.rule}})
    return plan


def incident_title(alerts: Sequence[Alert], services: Sequence[str]) -> str:
    """A short title people recognise: the alert names and the services, e.g. 'GameServerDown on game-server'."""
    names = sorted({a.alertname or "(no alertname)" for a in alerts})
    title = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{title} on {', '.join(services)}" if services else title


def _alert_row(alert: Alert, group_key: str) -> dict[str, Any]:
    return {"fingerprint": alert.fingerprint, "group_key": group_key, "alertname": alert.alertname or "",
            "service": alert.service or "", "status": alert.status, "labels": dict(alert.labels),
            "annotations": dict(alert.annotations), "starts_at": alert.starts_at, "ends_at": alert.ends_at}


def _alert_line(alert: Alert) -> str:
    summary = alert.annotations.get("summary", "")
    return f"{alert.alertname} {alert.status} on {alert.service or '(no service label)'}" + (
        f": {summary}" if summary else "")


__all__ = ["IncidentConfig", "IntakeResult", "PayloadError", "body_digest", "incident_title", "intake_plan",
           "parse_body", "receive_notification"]
