"""Incident response use cases: the intake of Alertmanager notifications (open, join or ignore), then the steps of
the incident_response workflow. Dependencies come in as ports; no Airflow here (docs/incidents.md).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gamesre.core.services import ServiceCatalog, load_services
from gamesre.core.time import KST, as_utc
from gamesre.incidents.escalation import cancelled_steps, due_steps, next_escalation, next_update_at
from gamesre.incidents.ids import channel_name
from gamesre.incidents.intake import IntakeDecision, OpenIncident, decide_intake, service_teams
from gamesre.incidents.oncall import OncallSpec, Roster, load_oncall, roster
from gamesre.incidents.payload import MAX_BODY_BYTES, Alert, Notification, PayloadError, parse_alertmanager_webhook
from gamesre.incidents.severity import SeverityFacts, change_severity, classify, higher
from gamesre.incidents.spec import IncidentsSpec, load_incidents
from gamesre.reports.document import render_html, render_markdown
from gamesre.reports.postmortem import build_postmortem
from gamesre.slo.spec import SloCatalog, load_slos


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

    @cached_property
    def oncall(self) -> OncallSpec:
        return load_oncall(teams={s.team for s in self.services} | {self.services.sre.team})

    @cached_property
    def slos(self) -> SloCatalog:
        return load_slos()

    @cached_property
    def holidays(self) -> frozenset[date]:
        """The KST dates of calendar.yaml's public holidays (postmortem due dates skip them)."""
        from gamesre.calendar import load_calendar

        return frozenset(h.date for h in load_calendar(services=self.services).spec.holidays.days)


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


# --- the incident_response steps -------------------------------------------------------------------------------

# The first holder of each role, by on-call level: the primary commands (the runbook: "the IC, the primary at
# first"), the secondary runs operations and keeps the timeline, the team lead communicates. People hand roles over.
ROLE_LEVELS = {"incident_commander": "primary", "operations_lead": "secondary", "communications_lead": "tertiary",
               "scribe": "secondary"}
ROLE_NAMES = {"incident_commander": "Incident Commander", "operations_lead": "Operations Lead",
              "communications_lead": "Communications Lead", "scribe": "Scribe"}
LEVEL_NAMES = {"primary": "Primary", "secondary": "Secondary", "tertiary": "Tertiary (team lead)",
               "executive": "Executive (CTO)"}
ACTOR = "gamesre"


class IncidentStorePort(Protocol):
    def incident(self, incident_key: str) -> dict[str, Any] | None: ...
    def incident_alerts(self, incident_key: str) -> list[dict[str, Any]]: ...
    def update_incident(self, incident_key: str, **fields: Any) -> None: ...
    def add_incident_event(self, incident_key: str, kind: str, summary: str, *, actor: str = ...,
                           at: datetime | None = None, details: dict[str, Any] | None = None) -> None: ...
    def assign_role(self, incident_key: str, role: str, person: str, *, by: str, why: str,
                    at: datetime | None = None) -> None: ...
    def incident_roles(self, incident_key: str) -> dict[str, dict[str, Any]]: ...
    def record_notice(self, incident_key: str, *, channel: str, target: str, purpose: str, delivered: bool,
                      error: str = "", details: dict[str, Any] | None = None, at: datetime | None = None) -> None: ...
    def incident_notices(self, incident_key: str) -> list[dict[str, Any]]: ...
    def current_state(self, scope: str, name: str) -> dict[str, Any] | None: ...
    def incident_events(self, incident_key: str) -> list[dict[str, Any]]: ...
    def state_history(self, scope: str, name: str, since: datetime | None = None) -> list[dict[str, Any]]: ...
    def deployments(self, service: str | None = None, since: datetime | None = None,
                    ids: Sequence[str] | None = None) -> list[dict[str, Any]]: ...
    def chaos_runs(self, *, ids: Sequence[str] | None = None, gameday_id: str | None = None,
                   experiment: str | None = None, since: datetime | None = None,
                   verdicts: Sequence[str] | None = None) -> list[dict[str, Any]]: ...
    def windows(self, start: datetime | None = None, end: datetime | None = None, *,
                include_cancelled: bool = False) -> list[dict[str, Any]]: ...
    def ledger(self, slo: str, start: int | None = None, end: int | None = None) -> Any: ...


class IncidentChat(Protocol):
    """Slack's Web API: messages to a channel by id, and channels made for an incident."""

    def message(self, text: str, *, channel_id: str) -> bool: ...
    def create_channel(self, name: str) -> str: ...  # the new channel's id; SlackChannelTaken when the name is taken


class SlackChannelTaken(Exception):
    """Slack refused a channel name that exists already."""


class SilencePort(Protocol):
    """Alertmanager's silences (gamesre.integrations.alertmanager.AlertmanagerClient)."""

    def ensure_silence(self, window_id: str, matchers: Sequence[Any], starts_at: datetime, ends_at: datetime,
                       created_by: str, comment: str, *, now: datetime | None = None) -> Any: ...


class StatusPagePort(Protocol):
    def create_incident(self, *, name: str, status: str, body: str, components: Mapping[str, str]) -> str: ...
    def update_incident(self, incident_id: str, *, status: str, body: str, components: Mapping[str, str]) -> None: ...


class IncidentPager(Protocol):
    def trigger(self, *, summary: str, source: str, dedup_key: str, severity: str,
                details: dict[str, Any]) -> str: ...
    def resolve(self, *, dedup_key: str) -> str: ...


@dataclass
class IncidentPorts:
    store: IncidentStorePort
    chat: IncidentChat
    pager: Callable[[], IncidentPager]  # opened only to page
    clock: Callable[[], datetime]
    config: IncidentConfig = field(default_factory=IncidentConfig)
    report_dir: Path | None = None  # where postmortem drafts are written (None: not written to a file)
    status_page: Callable[[], StatusPagePort] | None = None  # opened only to announce (None: no status page)
    alertmanager: Callable[[], SilencePort] | None = None  # opened only to silence
    chaos_abort: Callable[[str, str], str] | None = None  # (chaos run id, why) -> the run's kill switch turned on


def _incident(ports: IncidentPorts, incident_id: str) -> dict[str, Any]:
    found = ports.store.incident(incident_id)
    if found is None:
        raise LookupError(f"no incident {incident_id} in the SRE store (the intake records it before the run starts)")
    return found


def budget_facts(ports: IncidentPorts, services: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The published state of every SLO of the services: state, budget remaining and 1h burn (adjusted)."""
    facts: dict[str, dict[str, Any]] = {}
    for slo in ports.config.slos:
        if slo.service not in services:
            continue
        state = ports.store.current_state("slo", slo.name)
        details = (state or {}).get("details") or {}
        facts[slo.name] = {"state": (state or {}).get("state"), "computed_at": (state or {}).get("computed_at"),
                           "budget_remaining": details.get("budget_remaining_adjusted"),
                           "burn_rate_1h": (details.get("burn_rates_adjusted") or {}).get("1h")}
    return facts


def declare(ports: IncidentPorts, incident_id: str) -> dict[str, Any]:
    """Settle the severity with the budget facts (only ever raised over the intake's, never silently lowered) and
    write the declaration into the timeline. Re-running it changes nothing more."""
    incident = _incident(ports, incident_id)
    spec, now = ports.config.spec, ports.clock()
    alerts = [Alert(a["fingerprint"], a["status"], a["labels"], a["annotations"], a["starts_at"], a["ends_at"], "")
              for a in ports.store.incident_alerts(incident_id)]
    budgets = budget_facts(ports, incident["services"])
    facts = SeverityFacts(burn_rates={k: v["burn_rate_1h"] for k, v in budgets.items()
                                      if v["burn_rate_1h"] is not None})
    slos = sorted({a.slo for a in alerts if a.slo})
    decided = classify(alerts, incident["services"], slos, facts, spec)
    details = dict(incident["details"])
    if details.get("declared_at"):
        return {"incident": incident_id, "severity": incident["severity"], "declared_at": details["declared_at"]}
    severity = higher(incident["severity"], decided.severity)
    if severity != incident["severity"]:
        ports.store.add_incident_event(incident_id, "severity", f"severity raised {incident['severity']} -> "
                                       f"{severity} with the budget facts: {'; '.join(decided.why)}", at=now,
                                       details={"from": incident["severity"], "to": severity, "rule": decided.rule})
        details.update({"severity_why": list(decided.why), "severity_rule": decided.rule})
    found = suspects(ports, incident, now)
    details.update({"declared_at": now.isoformat(), "budgets_at_declare": budgets, "slos": slos or details.get("slos"),
                    "suspects": found})
    ports.store.update_incident(incident_id, severity=severity, details=details)
    ports.store.add_incident_event(
        incident_id, "declared", f"{incident_id} declared: {severity.upper()} {incident['title']}; services "
        f"{', '.join(incident['services']) or '(none known)'}, owner {incident['team']}", at=now,
        details={"severity": severity, "budgets": budgets})
    ports.store.add_incident_event(
        incident_id, "suspects", ("suspects: " + "; ".join(s["what"] for s in found)) if found else
        "no suspect: no deploy, chaos experiment, maintenance window or blocking budget state of the services in "
        "the six hours before the first alert", at=now, details={"suspects": found})
    return {"incident": incident_id, "severity": severity, "declared_at": details["declared_at"],
            "suspects": len(found)}


def assemble(ports: IncidentPorts, incident_id: str) -> dict[str, Any]:
    """Bring people in: the owning team's on-call roster, the roles of the severity, the incident's Slack channel
    with the declaration, the team's and the SRE channels told, PagerDuty paged for a severity that pages.
    Idempotent: a role, channel or notice already done is not done again."""
    incident = _incident(ports, incident_id)
    spec, now = ports.config.spec, ports.clock()
    level = spec.severities[incident["severity"]]
    on_call = roster(ports.config.oncall, incident["team"], now)
    roles = ports.store.incident_roles(incident_id)
    for role in level.roles:
        if role not in roles:
            who = on_call.level(ROLE_LEVELS[role])
            ports.store.assign_role(incident_id, role, who.person, by=ACTOR, at=now,
                                    why=f"{LEVEL_NAMES[who.level]} on call for {incident['team']}: {who.why}")
    roles = ports.store.incident_roles(incident_id)
    details = dict(incident["details"])
    details["roster"] = on_call.to_dict()
    if not details.get("channel_id"):
        details.update(_create_channel(ports, incident_id, incident["title"]))
    ports.store.update_incident(incident_id, details=details)
    text = declaration_text(incident, details, roles, on_call, ports.store.incident_alerts(incident_id))
    done = {(n["target"], n["purpose"]) for n in ports.store.incident_notices(incident_id) if n["delivered"]}
    targets = [details.get("channel_id")] + [ports.config.services.channel_id(s) for s in incident["services"]
                                             or [None]] + [ports.config.services.sre.slack.channel_id]
    sent = []
    for channel_id in dict.fromkeys(t for t in targets if t):
        if (channel_id, "declared") in done:
            continue
        ok = ports.chat.message(text, channel_id=channel_id)
        ports.store.record_notice(incident_id, channel="slack", target=channel_id, purpose="declared", delivered=ok,
                                  error="" if ok else "Slack did not accept the message (see the task log)", at=now)
        sent.append({"channel_id": channel_id, "delivered": ok})
    paged = None
    if level.pagerduty and (incident_id, "declared") not in done:
        paged = _page(ports, incident, on_call, now)
    announced = announce(ports, incident_id)
    return {"incident": incident_id, "roles": {r: v["person"] for r, v in roles.items()},
            "channel": details.get("channel_name"), "messages": sent, "paged": paged, "status_page": announced}


def _create_channel(ports: IncidentPorts, incident_id: str, title: str) -> dict[str, Any]:
    base, now = channel_name(incident_id, title), ports.clock()
    for attempt in range(1, 6):
        name = base if attempt == 1 else f"{base[:77]}-{attempt}"
        try:
            channel_id = ports.chat.create_channel(name)
        except SlackChannelTaken:
            continue
        except Exception as exc:  # Slack down: the incident goes on in the team channel
            ports.store.record_notice(incident_id, channel="slack", target=f"#{name}", purpose="channel",
                                      delivered=False, error=f"{type(exc).__name__}: {exc}", at=now)
            ports.store.add_incident_event(incident_id, "channel", f"the incident channel #{name} could not be "
                                           f"created ({exc}); the incident goes on in the team's channel", at=now)
            return {}
        ports.store.add_incident_event(incident_id, "channel", f"incident channel #{name} created", at=now,
                                       details={"channel_id": channel_id, "channel_name": f"#{name}"})
        return {"channel_id": channel_id, "channel_name": f"#{name}"}
    ports.store.add_incident_event(incident_id, "channel", f"no free channel name for #{base} after 5 tries", at=now)
    return {}


def _page(ports: IncidentPorts, incident: dict[str, Any], on_call: Roster, now: datetime) -> dict[str, Any]:
    primary = on_call.level("primary")
    summary = f"[{incident['severity'].upper()}] {incident['id']}: {incident['title']}"
    details = {"incident": incident["id"], "team": incident["team"], "services": incident["services"],
               "primary": primary.name, "channel": incident["details"].get("channel_name")}
    try:
        key = ports.pager().trigger(summary=summary, source="gamesre incident_response", dedup_key=incident["id"],
                                    severity="critical", details=details)
        ok, error = True, ""
    except Exception as exc:  # PagerDuty down: recorded and said; the run goes on
        key, ok, error = incident["id"], False, f"{type(exc).__name__}: {exc}"
    ports.store.record_notice(incident["id"], channel="pagerduty", target=key, purpose="declared", delivered=ok,
                              error=error, details=details, at=now)
    ports.store.add_incident_event(incident["id"], "paged", f"PagerDuty trigger {'sent' if ok else 'NOT sent'} "
                                   f"(dedup key {key}) for {primary.name}" + (f": {error}" if error else ""), at=now)
    return {"dedup_key": key, "delivered": ok, "error": error}


def declaration_text(incident: dict[str, Any], details: dict[str, Any], roles: dict[str, dict[str, Any]],
                     on_call: Roster, alerts: Sequence[dict[str, Any]]) -> str:
    """The message that opens the incident in Slack: what, how bad, who, the budgets, where to read."""
    opened = as_utc(incident["opened_at"])
    people = {r.person: r for r in on_call.levels}

    def who(person: str) -> str:
        responder = people.get(person)
        return f"{responder.name} (<@{responder.slack_user_id}>)" if responder else person

    lines = [f":rotating_light: *{incident['id']}* declared: *{incident['severity'].upper()}* {incident['title']}",
             f"Opened {opened.astimezone(KST):%Y-%m-%d %H:%M} KST ({opened:%H:%M} UTC) · services "
             f"{', '.join(incident['services']) or '(none known)'} · owner {incident['team']}"]
    if details.get("channel_name"):
        lines.append(f"Incident channel: {details['channel_name']}")
    lines.append("Roles: " + " · ".join(f"{ROLE_NAMES[r]} {who(v['person'])}" for r, v in sorted(
        roles.items(), key=lambda kv: list(ROLE_NAMES).index(kv[0]))))
    lines.append("On call: " + " · ".join(f"{LEVEL_NAMES[r.level]} {r.name}" for r in on_call.levels))
    if details.get("severity_why"):
        lines.append(f"Why {incident['severity'].upper()}: {'; '.join(details['severity_why'])}")
    for alert in alerts[:5]:
        since = as_utc(alert["starts_at"]).astimezone(KST)
        summary = alert["annotations"].get("summary", "")
        lines.append(f"Alert {alert['alertname']} {alert['status']} since {since:%H:%M} KST" + (
            f": {summary}" if summary else ""))
    if len(alerts) > 5:
        lines.append(f"... and {len(alerts) - 5} more alerts")
    found = details.get("suspects")
    if found is not None:
        lines.append("Suspects (from the store): " + ("; ".join(s["what"] for s in found[:5]) if found else
                                                       "none: no deploy, experiment, window or budget state change"))
    budgets = details.get("budgets_at_declare") or {}
    if budgets:
        lines.append("Budgets now: " + " · ".join(_budget_line(slo, b) for slo, b in sorted(budgets.items())))
    lines.append("Playbook: include/runbooks/incident-response.md · on-call: include/runbooks/oncall-escalation.md")
    return "\n".join(lines)


def _budget_line(slo: str, budget: dict[str, Any]) -> str:
    if budget.get("state") is None:
        return f"{slo}: no published state yet"
    return (f"{slo} {_pct(budget['budget_remaining'])} of its budget left, {_rate(budget['burn_rate_1h'])} burn over "
            f"1h ({budget['state']})")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}x"


# --- people in the loop -----------------------------------------------------------------------------------------

ACTIONS = ("acknowledge", "severity", "note", "handover", "rollback", "abort_chaos", "silence", "mitigated", "resolve",
           "postmortem_final")
DEPLOY_DAG = "game_service_deploy"
MAX_SILENCE_MINUTES = 24 * 60


class IncidentActionRefused(ValueError):
    """A person's action that cannot apply (unknown incident, resolved already, a missing reason): nothing changed."""


def act(ports: IncidentPorts, incident_id: str, action: str, by: str, *, text: str = "", severity: str = "",
        role: str = "", person: str = "", minutes: int = 0, target: str = "") -> dict[str, Any]:
    """Apply what a person did to the incident, recorded with who and why, and said in its channel.

    `rollback` answers with the deploy run to start (`deploy_dag`, `deploy_run_id`, `deploy_conf`), which the caller
    triggers; the deploy records its outcome on the incident's timeline when it ends (gamesre.app.deploy)."""
    found = ports.store.incident(incident_id)
    if found is None:
        raise IncidentActionRefused(f"no incident {incident_id}")
    if action not in ACTIONS:
        raise IncidentActionRefused(f"unknown action {action!r} (actions: {', '.join(ACTIONS)})")
    if not by or by == "unknown":
        raise IncidentActionRefused("who acts is required (requested_by, or the user triggering the run)")
    if (found["status"] == "resolved") != (action == "postmortem_final"):
        raise IncidentActionRefused(
            f"{incident_id} is resolved already ({found['resolved_at']:%Y-%m-%d %H:%M} UTC)" if found["status"] ==
            "resolved" else f"{incident_id} is not resolved yet: its postmortem comes after")
    now = as_utc(ports.clock())
    store, details = ports.store, dict(found["details"])
    extra: dict[str, Any] = {}
    if action == "acknowledge":
        if found["acknowledged_at"] is not None:
            return {"incident": incident_id, "action": action, "changed": False,
                    "said": f"acknowledged already by {found['acknowledged_by']}"}
        waited = (now - as_utc(found["opened_at"])).total_seconds() / 60
        store.update_incident(incident_id, acknowledged_at=now, acknowledged_by=by)
        cancelled = [s.level for s in cancelled_steps(found["opened_at"], now, ports.config.spec.escalation)]
        said = f"acknowledged by {by} {waited:.0f} min after it opened" + (
            f"; the {', '.join(LEVEL_NAMES[c] for c in cancelled)} is not brought in" if cancelled else "")
    elif action == "severity":
        try:
            change = change_severity(found["severity"], severity, text, by)
        except ValueError as exc:
            raise IncidentActionRefused(str(exc)) from None
        store.update_incident(incident_id, severity=severity)
        moved = {"upgrade": "raised", "downgrade": "lowered"}.get(change["direction"], change["direction"])
        said = f"severity {moved} {found['severity']} -> {severity} by {by}: {text}"
    elif action == "note":
        if not text.strip():
            raise IncidentActionRefused("a note needs its text")
        said = f"note by {by}: {text.strip()}"
    elif action == "handover":
        if role not in ROLE_NAMES:
            raise IncidentActionRefused(f"unknown role {role!r} (roles: {', '.join(ROLE_NAMES)})")
        if person not in ports.config.oncall.people:
            raise IncidentActionRefused(f"unknown person {person!r} (people of include/config/oncall.yaml)")
        if not text.strip():
            raise IncidentActionRefused("a hand-over needs its reason")
        store.assign_role(incident_id, role, person, by=by, why=text.strip(), at=now)
        said = f"{ROLE_NAMES[role]} handed over to {ports.config.oncall.people[person].name} by {by}: {text.strip()}"
    elif action == "rollback":
        said, extra = _rollback(ports, found, by, target.strip(), text.strip(), now)
    elif action == "abort_chaos":
        said = _abort_chaos(ports, found, by, target.strip(), text.strip(), now)
    elif action == "silence":
        said = _silence(ports, found, by, text.strip(), minutes, now)
    elif action == "postmortem_final":
        if not details.get("postmortem"):
            raise IncidentActionRefused(f"{incident_id} has no postmortem draft yet (the close step writes it)")
        if not text.strip():
            raise IncidentActionRefused("marking the postmortem final needs where it is (a link or a document id)")
        details["postmortem"] = {**details["postmortem"], "status": "final", "final": text.strip(),
                                 "final_by": by, "final_at": now.isoformat()}
        store.update_incident(incident_id, details=details)
        said = f"postmortem final, said {by}: {text.strip()}"
    elif action == "mitigated":
        store.update_incident(incident_id, status="mitigated")
        said = f"mitigated, said {by}" + (f": {text.strip()}" if text.strip() else "")
    else:  # resolve
        if not text.strip():
            raise IncidentActionRefused("resolving needs a one-line summary of how it ended")
        firing = [a["alertname"] for a in store.incident_alerts(incident_id) if a["status"] == "firing"]
        details.update({"resolved_by": by, "resolution": text.strip(), "firing_at_resolution": firing})
        store.update_incident(incident_id, status="resolved", resolved_at=now, details=details)
        said = f"resolved by {by}: {text.strip()}" + (
            f" (still firing: {', '.join(sorted(set(firing)))})" if firing else " (every alert resolved)")
    if action != "handover":  # assign_role wrote its own timeline entry
        kind = {"resolve": "resolved", "silence": "silenced", "rollback": "mitigation", "abort_chaos": "mitigation",
                "postmortem_final": "postmortem"}.get(action, action)
        store.add_incident_event(incident_id, kind, said,
                                 actor=by, at=now, details={"severity": severity, "role": role, "person": person,
                                                            "text": text, "minutes": minutes, "target": target,
                                                            **extra})
    _say(ports, found, f"*{incident_id}*: {said}", purpose=f"action-{action}")
    return {"incident": incident_id, "action": action, "changed": True, "said": said, **extra}


def _rollback(ports: IncidentPorts, incident: dict[str, Any], by: str, target: str, reason: str,
              now: datetime) -> tuple[str, dict[str, Any]]:
    """The rollback of the suspect deploy (`target`: a deployment id; default: the latest promoted deploy among the
    suspects) to the version it replaced, as a game_service_deploy run of kind rollback whose change ticket is the
    incident id (the incident gate lets exactly that through)."""
    services = incident["services"] or []
    if target:
        rows = ports.store.deployments(ids=[target])
        chosen = rows[0] if rows else None
        if chosen is None or chosen["service"] not in services:
            raise IncidentActionRefused(f"no deployment {target!r} of {', '.join(services) or 'its services'}")
    else:
        ids = [s["id"] for s in suspects(ports, incident, now) if s["kind"] == "deploy"]
        promoted = [d for d in ports.store.deployments(ids=ids) if d["outcome"] == "promoted"]
        if not promoted:
            raise IncidentActionRefused(f"no promoted deploy of {', '.join(services)} among the suspects (the "
                                        f"{LOOK_BACK.total_seconds() / 3600:.0f} hours before the first alert): name "
                                        "one with target")
        chosen = max(promoted, key=lambda d: as_utc(d["finished_at"] or d["requested_at"]))
    if chosen.get("kind", "deploy") != "deploy":  # a rollback, by a person or by the budget policy
        raise IncidentActionRefused(f"deployment {chosen['id']} is itself a rollback: roll forward with a deploy")
    if chosen["outcome"] != "promoted" or chosen.get("dry_run") or not chosen.get("previous_version"):
        raise IncidentActionRefused(f"deployment {chosen['id']} ({chosen['version']}, {chosen['outcome']}) was not "
                                    "promoted over a known version: nothing to roll back")
    undoing = [d for d in ports.store.deployments(service=chosen["service"])
               if d.get("rollback_of") == chosen["id"] and d["outcome"] in ("running", "promoted")]
    if undoing:
        raise IncidentActionRefused(f"deployment {chosen['id']} is rolled back already by run {undoing[-1]['id']} "
                                    f"({undoing[-1]['outcome']})")
    run_id = f"rollback__{incident['id']}__{now:%Y%m%dT%H%M%SZ}"
    conf = {"kind": "rollback", "service": chosen["service"], "rollback_of": chosen["id"],
            "change_ticket": incident["id"], "requested_by": by}
    said = (f"rollback of {chosen['service']} {chosen['version']} -> {chosen['previous_version']} asked for by {by} "
            f"(deployment {chosen['id']}): deploy run {run_id}" + (f"; {reason}" if reason else ""))
    return said, {"deploy_dag": DEPLOY_DAG, "deploy_run_id": run_id, "deploy_conf": conf}


def _abort_chaos(ports: IncidentPorts, incident: dict[str, Any], by: str, target: str, reason: str,
                 now: datetime) -> str:
    """Abort the chaos experiments injecting faults into the incident's services (`target`: one run id) through
    each run's own kill switch: the run's monitor stops it at its next poll and removes the fault; other
    experiments and the global switch are left alone."""
    if ports.chaos_abort is None:
        raise IncidentActionRefused("no chaos kill switch to turn (chaos_abort is not wired)")
    services = set(incident["services"] or [])
    running = [r for r in ports.store.chaos_runs(since=now - timedelta(days=1))
               if r["service"] in services and r.get("injected_at") and r.get("finished_at") is None
               and (not target or r["id"] == target)]
    if not running:
        which = f"chaos run {target!r}" if target else "chaos experiment"
        raise IncidentActionRefused(f"no {which} is injecting a fault into {', '.join(sorted(services))} now")
    why = f"{incident['id']}: {reason or 'aborted by the incident'} ({by})"
    done = [f"{r['experiment']} on {r['service']} (run {r['id']}, switch {ports.chaos_abort(r['id'], why)})"
            for r in running]
    return (f"chaos aborted by {by}" + (f" ({reason})" if reason else "") + f": {'; '.join(done)}; the fault is "
            "removed at the run's next poll")


def _silence(ports: IncidentPorts, incident: dict[str, Any], by: str, reason: str, minutes: int,
             now: datetime) -> str:
    """Silence the incident's alerts in Alertmanager until `minutes` from now (one silence per alert name and
    service, marked with the incident id, so that repeating the action extends them rather than adding more)."""
    if not reason:
        raise IncidentActionRefused("a silence needs its reason")
    if not 1 <= minutes <= MAX_SILENCE_MINUTES:
        raise IncidentActionRefused(f"a silence lasts 1 to {MAX_SILENCE_MINUTES} minutes, not {minutes}: it always "
                                    "has an end")
    if ports.alertmanager is None:
        raise IncidentActionRefused("no Alertmanager to silence in")
    groups = sorted({(a["alertname"], a["service"]) for a in ports.store.incident_alerts(incident["id"])})
    if not groups:
        raise IncidentActionRefused(f"{incident['id']} has no alert to silence")
    ends = now + timedelta(minutes=minutes)
    client = ports.alertmanager()
    made = []
    for alertname, service in groups:
        matchers = [f'alertname="{alertname}"'] + ([f'service="{service}"'] if service else [])
        result = client.ensure_silence(incident["id"], matchers, now, ends, by,
                                       f"{incident['id']}: {reason}", now=now)
        made.append(f"{alertname}{f' ({service})' if service else ''}: {result.silence.id}")
        ports.store.record_notice(incident["id"], channel="alertmanager", target=result.silence.id,
                                  purpose="silence", delivered=True, details={"matchers": matchers,
                                                                             "ends_at": ends.isoformat()}, at=now)
    return (f"silenced by {by} until {ends.astimezone(KST):%H:%M} KST ({minutes} min): {reason}; "
            + "; ".join(made))


def _say(ports: IncidentPorts, incident: dict[str, Any], text: str, *, purpose: str) -> bool:
    """A message in the incident's channel (the team's when it has none), recorded as a notice."""
    channel_id = incident["details"].get("channel_id") or ports.config.services.channel_id(
        (incident["services"] or [None])[0])
    ok = ports.chat.message(text, channel_id=channel_id)
    ports.store.record_notice(incident["id"], channel="slack", target=channel_id, purpose=purpose, delivered=ok,
                              error="" if ok else "Slack did not accept the message (see the task log)",
                              at=ports.clock())
    return ok


# --- the status page: what players read --------------------------------------------------------------------------

def announce(ports: IncidentPorts, incident_id: str) -> datetime | None:
    """Bring the status page up to date: open the incident there when its severity is announced, post the update
    that is due (and remind the Communications Lead), resolve it with the incident. Returns when the next update
    is due (None: nothing more to post). A status page that is down is recorded and tried again at the next watch."""
    incident = _incident(ports, incident_id)
    settings = ports.config.spec.status_page
    every = ports.config.spec.severities[incident["severity"]].status_page_every_s
    page = dict(incident["details"].get("status_page") or {})
    components = {settings.components[s].id: settings.components[s].name for s in incident["services"]
                  if s in settings.components}
    if ports.status_page is None or not components or (not page and (every is None or
                                                                      incident["status"] == "resolved")):
        return None
    now = as_utc(ports.clock())
    if page.get("resolved"):
        return None
    if incident["status"] == "resolved":
        kind, status, component_status = "resolved", "resolved", "operational"
    elif not page:
        kind, status, component_status = "investigating", "investigating", settings.component_status[
            incident["severity"]]
    else:
        due = next_update_at(datetime.fromisoformat(page["last_update_at"]), every)
        if due is None or now < due:
            return due
        kind, status, component_status = "update", "identified" if incident["status"] == "mitigated" else \
            "investigating", settings.component_status.get(incident["severity"], "degraded_performance")
    next_update = now + timedelta(seconds=every or 0)
    template = getattr(settings.templates, kind)
    names = ", ".join(components.values())
    fill = {"components": names, "next_update": f"{next_update.astimezone(KST):%H:%M}"}
    body = f"{template.ko.format(**fill)}\n\n{template.en.format(**fill)}"
    statuses = {cid: component_status for cid in components}
    try:
        client = ports.status_page()
        if not page:
            page = {"id": client.create_incident(name=f"{names}: 장애 / incident", status=status, body=body,
                                                 components=statuses)}
        else:
            client.update_incident(page["id"], status=status, body=body, components=statuses)
        ok, error = True, ""
    except Exception as exc:  # the status page down: said, and tried again at the next watch
        ok, error = False, f"{type(exc).__name__}: {exc}"
    ports.store.record_notice(incident_id, channel="statuspage", target=str(page.get("id") or "(not created)"),
                              purpose=kind, delivered=ok, error=error, details={"body": body, "components": statuses},
                              at=now)
    if not ok:
        ports.store.add_incident_event(incident_id, "status_page", f"status page {kind} NOT posted: {error}", at=now)
        return now + timedelta(seconds=60)
    page.update({"last_update_at": now.isoformat(), "updates": int(page.get("updates") or 0) + 1,
                 "resolved": kind == "resolved"})
    details = dict(incident["details"])
    details["status_page"] = page
    ports.store.update_incident(incident_id, details=details)
    ports.store.add_incident_event(incident_id, "status_page", f"status page {kind} ({status}, components "
                                   f"{component_status}): {template.en.format(**fill)}", at=now,
                                   details={"status_page_id": page["id"]})
    if kind == "update":
        comms = ports.store.incident_roles(incident_id).get("communications_lead")
        who = ports.config.oncall.people.get(comms["person"]) if comms else None
        mention = f"<@{who.slack_user_id}> " if who else ""
        _say(ports, {**incident, "details": details}, f":loudspeaker: {mention}the status page update for "
             f"*{incident_id}* was due and went out automatically (still {status}); post a better one if you know "
             f"more. Next one due {next_update.astimezone(KST):%H:%M} KST.", purpose="status-page-reminder")
    return None if kind == "resolved" else next_update


# --- the deferred watch: escalation until people resolve it -------------------------------------------------------

def watch(ports: IncidentPorts, incident_id: str) -> dict[str, Any]:
    """Take the escalation steps now due and say when the next one is; the task defers until then or until the
    incident changes (acknowledged, resolved). {"resolved", "next_at" (ISO or None), "escalated", "seen"}."""
    incident = _incident(ports, incident_id)
    now = as_utc(ports.clock())
    settings = ports.config.spec.escalation
    resolved = incident["status"] == "resolved"
    done = [e["details"].get("level") for e in ports.store.incident_events(incident_id) if e["kind"] == "escalated"]
    escalated = []
    for step in due_steps(incident["opened_at"], incident["acknowledged_at"], resolved, now, settings, done):
        escalated.append(_escalate(ports, incident, step.level, step.why, step.due_at, now))
    following = next_escalation(incident["opened_at"], incident["acknowledged_at"], resolved, now, settings,
                                [*done, *(e["level"] for e in escalated)])
    update_due = None if resolved else announce(ports, incident_id)
    wake = [at for at in (following.due_at if following else None, update_due) if at is not None]
    return {"incident": incident_id, "resolved": resolved, "escalated": escalated,
            "next_at": min(wake).isoformat() if wake else None,
            "seen": {"status": incident["status"], "acknowledged": incident["acknowledged_at"] is not None,
                     "severity": incident["severity"]}}


def _escalate(ports: IncidentPorts, incident: dict[str, Any], level: str, why: str, due_at: datetime,
              now: datetime) -> dict[str, Any]:
    who = roster(ports.config.oncall, incident["team"], now).level(level)
    late = (now - due_at).total_seconds()
    summary = (f"escalated to the {LEVEL_NAMES[level]}, {who.name}: {why}"
               + (f" (taken {late:.0f} s late)" if late > 60 else ""))
    _say(ports, incident, f":arrow_double_up: *{incident['id']}* ({incident['severity'].upper()} {incident['title']})"
         f" {summary}. <@{who.slack_user_id}>, please join.", purpose=f"escalation-{level}")
    key = f"{incident['id']}/{level}"
    try:
        ports.pager().trigger(summary=f"[{incident['severity'].upper()}] {incident['id']} escalated to {who.name} "
                              f"({LEVEL_NAMES[level]}): {incident['title']}", source="gamesre incident_response",
                              dedup_key=key, severity="critical",
                              details={"incident": incident["id"], "level": level, "person": who.name, "why": why})
        ok, error = True, ""
    except Exception as exc:  # PagerDuty down: recorded and said; the escalation message went to Slack
        ok, error = False, f"{type(exc).__name__}: {exc}"
    ports.store.record_notice(incident["id"], channel="pagerduty", target=key, purpose=f"escalation-{level}",
                              delivered=ok, error=error, at=now)
    ports.store.add_incident_event(incident["id"], "escalated", summary + ("" if ok else f"; PagerDuty NOT paged: "
                                                                            f"{error}"), at=now,
                                   details={"level": level, "person": who.person, "due_at": due_at.isoformat()})
    return {"level": level, "person": who.person, "paged": ok}


# --- resolution: PagerDuty resolved, the numbers, the postmortem draft ---------------------------------------------

LOOK_BACK = timedelta(hours=6)  # changes this long before the first alert are related-change candidates


def close(ports: IncidentPorts, incident_id: str) -> dict[str, Any]:
    """After people resolved it: resolve what was paged, compute MTTA / MTTD / MTTR and the budget the incident
    cost, and write the postmortem draft (stored, posted to the incident's channel). Idempotent."""
    incident = _incident(ports, incident_id)
    if incident["status"] != "resolved":
        raise IncidentActionRefused(f"{incident_id} is not resolved (status {incident['status']})")
    notices = ports.store.incident_notices(incident_id)
    for key in sorted({n["target"] for n in notices if n["channel"] == "pagerduty" and n["delivered"]
                       and n["purpose"] != "resolved"}):
        if any(n["target"] == key and n["purpose"] == "resolved" and n["delivered"] for n in notices):
            continue
        try:
            ports.pager().resolve(dedup_key=key)
            ok, error = True, ""
        except Exception as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"
        ports.store.record_notice(incident_id, channel="pagerduty", target=key, purpose="resolved", delivered=ok,
                                  error=error, at=ports.clock())
    announce(ports, incident_id)  # the resolution, on the status page
    incident = _incident(ports, incident_id)
    facts = postmortem_facts(ports, incident)
    draft = build_postmortem(facts)
    markdown = render_markdown(draft)
    details = dict(incident["details"])
    due = postmortem_due(ports, incident)
    details["postmortem"] = {"status": "draft", **(details.get("postmortem") or {}),  # people's final stays
                             "owner": facts["roles"].get("incident_commander", {}).get("person"),
                             "due": due.isoformat() if due else None, "metrics": facts["metrics"],
                             "budget": facts["budget"], "markdown": markdown}
    if ports.report_dir is not None:
        folder = ports.report_dir / "incidents"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{incident_id}-postmortem.md"
        path.write_text(markdown)
        (folder / f"{incident_id}-postmortem.html").write_text(render_html(draft))
        details["postmortem"]["path"] = str(path)
    ports.store.update_incident(incident_id, details=details)
    if not any(e["kind"] == "postmortem" for e in ports.store.incident_events(incident_id)):
        ports.store.add_incident_event(incident_id, "postmortem", f"postmortem draft written; owner "
                                       f"{details['postmortem']['owner'] or '(none)'}, due {due or 'not required'}",
                                       at=ports.clock())
        mttr = facts["metrics"]["mttr_s"]
        _say(ports, incident, f":memo: *{incident_id}* resolved after {_minutes(mttr)}; the postmortem draft is "
             f"written" + (f" (owner {details['postmortem']['owner']}, due {due})" if due else "")
             + "\n" + "\n".join(f"• {slo}: {_budget_cost(b)}" for slo, b in sorted(facts["budget"].items())),
             purpose="postmortem")
    return {"incident": incident_id, "metrics": facts["metrics"], "budget": facts["budget"],
            "postmortem": {k: v for k, v in details["postmortem"].items() if k != "markdown"}}


def postmortem_due(ports: IncidentPorts, incident: dict[str, Any]) -> date | None:
    """The postmortem's due date: the severity's business days after resolution, in KST, skipping weekends and the
    calendar's holidays; None when the severity needs none."""
    days = ports.config.spec.severities[incident["severity"]].postmortem_business_days
    if days is None:
        return None
    holidays = ports.config.holidays
    day = as_utc(incident["resolved_at"]).astimezone(KST).date()
    while days:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            days -= 1
    return day


def postmortem_facts(ports: IncidentPorts, incident: dict[str, Any]) -> dict[str, Any]:
    """Everything the draft says, gathered from the store: timeline, alerts, roles, related changes, budget."""
    store = ports.store
    incident_id = incident["id"]
    alerts = store.incident_alerts(incident_id)
    opened, resolved = as_utc(incident["opened_at"]), as_utc(incident["resolved_at"])
    first_alert = min([as_utc(a["starts_at"]) for a in alerts] or [opened])
    services = incident["services"]
    changes = related_changes(ports, services, first_alert - LOOK_BACK, resolved)
    slos = [s for s in ports.config.slos if s.service in services]
    budget = {s.name: budget_cost(ports, s.name, first_alert, resolved) for s in slos}
    acked = incident["acknowledged_at"]
    burn_start = earliest_burn(ports, slos, first_alert)
    metrics = {"mtta_s": (as_utc(acked) - opened).total_seconds() if acked else None,
               "mttd_s": (opened - burn_start).total_seconds() if burn_start else None,
               "mttr_s": (resolved - opened).total_seconds(),
               "burn_started_at": burn_start.isoformat() if burn_start else None}
    return {"incident": incident, "alerts": alerts, "events": store.incident_events(incident_id),
            "roles": store.incident_roles(incident_id), **changes, "budget": budget, "metrics": metrics,
            "first_alert_at": first_alert}


def related_changes(ports: IncidentPorts, services: Sequence[str], since: datetime,
                    until: datetime) -> dict[str, list[dict[str, Any]]]:
    """The services' deploys, chaos runs, maintenance windows and SLO policy states between `since` and `until`."""
    store = ports.store
    deploys = [d for s in services for d in store.deployments(service=s, since=since)
               if as_utc(d["requested_at"]) <= until]
    chaos = [r for r in store.chaos_runs(since=since) if r["service"] in services
             and as_utc(r["requested_at"]) <= until]
    windows = [w for w in store.windows(since, until) if set(w["services"] or []) & set(services)]
    transitions = [{**h, "slo": s.name} for s in ports.config.slos if s.service in services
                   for h in store.state_history("slo", s.name, since=since) if as_utc(h["computed_at"]) <= until]
    return {"deploys": deploys, "chaos": chaos, "windows": windows, "transitions": transitions}


def suspects(ports: IncidentPorts, incident: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """What may have caused it, computed from the store, most likely first: deploys of the services in the six
    hours before the first alert (running, or promoted), chaos experiments running or finished in the last hour,
    maintenance windows and events in progress, and SLOs that entered a blocking policy state."""
    alerts = ports.store.incident_alerts(incident["id"])
    first_alert = min([as_utc(a["starts_at"]) for a in alerts] or [as_utc(incident["opened_at"])])
    changes = related_changes(ports, incident["services"], first_alert - LOOK_BACK, now)
    found: list[dict[str, Any]] = []
    for d in sorted(changes["deploys"], key=lambda d: as_utc(d["requested_at"]), reverse=True):
        if d.get("dry_run") or d.get("outcome") not in (None, "running", "promoted"):
            continue
        at = as_utc(d.get("finished_at") or d["started_at"] or d["requested_at"])
        found.append({"kind": "deploy", "id": d["id"], "service": d["service"], "at": at.isoformat(),
                      "what": f"deploy {d['service']} {d['version']} (from {d.get('previous_version') or '-'}) "
                              f"{d.get('outcome') or 'running'}, {_ago(first_alert, at)} the first alert"})
    for r in changes["chaos"]:
        ended = r.get("finished_at")
        if r.get("injected_at") and (ended is None or as_utc(ended) >= first_alert - timedelta(hours=1)):
            found.append({"kind": "chaos", "id": r["id"], "service": r["service"],
                          "at": as_utc(r["injected_at"]).isoformat(),
                          "what": f"chaos {r['experiment']} on {r['service']} "
                                  f"{'running' if ended is None else 'finished ' + str(r.get('verdict'))}, injected "
                                  f"{_ago(first_alert, as_utc(r['injected_at']))} the first alert"})
    for w in changes["windows"]:
        if as_utc(w["start"]) <= now < as_utc(w["end"]) and w.get("status") != "cancelled":
            found.append({"kind": "window", "id": w["id"], "at": as_utc(w["start"]).isoformat(),
                          "what": f"{w['kind']} window {w['id']} in progress ({w.get('reason') or ''})"})
    blocking = [h for h in changes["transitions"] if h["state"] in ("fast_burn", "rollback", "deploy_freeze")]
    first_seen: dict[str, dict[str, Any]] = {}
    for h in sorted(blocking, key=lambda h: as_utc(h["computed_at"])):
        first_seen.setdefault(h["slo"], h)
    for slo, h in first_seen.items():
        found.append({"kind": "budget", "id": slo, "at": as_utc(h["computed_at"]).isoformat(),
                      "what": f"SLO {slo} {h['state']} since {as_utc(h['computed_at']).astimezone(KST):%H:%M} KST"})
    return found


def _ago(reference: datetime, at: datetime) -> str:
    minutes = (reference - at).total_seconds() / 60
    return f"{abs(minutes):.0f} min {'before' if minutes >= 0 else 'after'}"


def budget_cost(ports: IncidentPorts, slo_name: str, start: datetime, end: datetime) -> dict[str, Any]:
    """What the incident cost an SLO, from the ledger: bad events (or bad minutes) between the first alert and the
    resolution, and that as a share of the window's budget from the last published snapshot."""
    slo = ports.config.slos[slo_name]
    ledger = ports.store.ledger(slo_name, int(start.timestamp()) // 60 * 60, int(end.timestamp()))
    good, total = float(ledger.good.sum()), float(ledger.total.sum())
    state = ports.store.current_state("slo", slo_name)
    budget_total = ((state or {}).get("details") or {}).get("budget_total")
    unit = ((state or {}).get("details") or {}).get("budget_unit") or (
        "events" if slo.budgeting_method == "occurrences" else "minutes")
    if unit == "events":
        bad = total - good
    else:  # timeslices: a minute is bad when its ratio is under the target
        ratio = ledger.good / np.maximum(ledger.total, 1e-12)
        bad = float(((ledger.total > 0) & (ratio < (slo.timeslice_target or slo.target))).astype(float) @ ledger.span)
    share = None if not budget_total else bad / float(budget_total)
    return {"unit": unit, "bad": bad, "events": total, "minutes": int(ledger.span.sum()) if len(ledger) else 0,
            "budget_total": budget_total, "budget_share": share}


def earliest_burn(ports: IncidentPorts, slos: Sequence[Any], first_alert: datetime) -> datetime | None:
    """Where the burn that led to the page began: going back from the first alert, the start of the unbroken run
    of ledger minutes whose error ratio was above the SLO's budget rate (a burn faster than 1x), earliest over the
    incident's SLOs; None when no SLO burned."""
    found: list[datetime] = []
    end = int(first_alert.timestamp()) // 60 * 60
    for slo in slos:
        ledger = ports.store.ledger(slo.name, end - int(LOOK_BACK.total_seconds()), end + 60)
        if not len(ledger):
            continue
        bad = (ledger.total - ledger.good) / np.maximum(ledger.total, 1e-12) > (1 - slo.target)
        if not bad[-1]:
            continue
        start = len(bad) - 1
        while start > 0 and bad[start - 1]:
            start -= 1
        found.append(datetime.fromtimestamp(int(ledger.minutes[start]), UTC))
    return min(found) if found else None


def _minutes(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds / 60:.0f} min"


def _budget_cost(cost: dict[str, Any]) -> str:
    share = cost["budget_share"]
    what = f"{cost['bad']:g} bad {cost['unit']}"
    return what + (f" = {share:.1%} of its budget" if share is not None else " (no published budget to compare)")

