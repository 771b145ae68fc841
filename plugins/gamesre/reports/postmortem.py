"""The postmortem draft of an incident (include/runbooks/postmortem-template.md, filled from the record).

Pure: the facts gathered by gamesre.app.incidents.postmortem_facts come in (the incident, its alerts, timeline,
roles, the deploys, chaos runs, maintenance windows and policy-state transitions around it, the budget each SLO
lost, the response times); one Document comes out (Markdown, HTML, Slack). What only people know (the causes,
the five whys, the action items, the lessons) is left as marked sections for them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from gamesre.core.time import KST, as_utc
from gamesre.reports.document import BulletList, Code, Document, Facts, Heading, Paragraph, Table, Text

PEOPLE_WRITE = "_(to be written by people: the draft cannot know this)_"


def when(at: datetime | str | None) -> str:
    """KST with UTC in brackets, as the template's timeline wants it."""
    if at is None:
        return "-"
    moment = as_utc(datetime.fromisoformat(at.replace("Z", "+00:00")) if isinstance(at, str) else at)
    return f"{moment.astimezone(KST):%Y-%m-%d %H:%M:%S} KST ({moment:%H:%M:%S} UTC)"


def minutes(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds / 60:.1f} min"


def timeline(facts: Mapping[str, Any]) -> list[tuple[datetime, str, str]]:
    """(time, source, event) rows from every record, in time order: the incident's own timeline, the alerts, and
    the changes around it."""
    rows: list[tuple[datetime, str, str]] = []
    for e in facts["events"]:
        rows.append((as_utc(e["at"]), e["actor"], f"[{e['kind']}] {e['summary']}"))
    for a in facts["alerts"]:
        rows.append((as_utc(a["starts_at"]), "prometheus", f"alert {a['alertname']} ({a['service'] or '-'}) started"))
        if a["ends_at"] is not None and a["status"] == "resolved":
            rows.append((as_utc(a["ends_at"]), "prometheus", f"alert {a['alertname']} ended"))
    for d in facts["deploys"]:
        for field, what in (("requested_at", "requested"), ("finished_at", d.get("outcome") or "finished"),
                            ("rolled_back_at", "rolled back")):
            if d.get(field):
                rows.append((as_utc(d[field]), "deploy", f"deploy {d['service']} {d['version']} (from "
                             f"{d.get('previous_version') or '-'}): {what}" + (
                                 f", by {d['requested_by']}" if field == "requested_at" else "")))
    for r in facts["chaos"]:
        for field, what in (("injected_at", "fault injected"), ("aborted_at", "aborted"),
                            ("recovered_at", "recovered"), ("finished_at", f"finished: {r.get('verdict')}")):
            if r.get(field):
                rows.append((as_utc(r[field]), "chaos", f"experiment {r['experiment']} on {r['service']}: {what}"))
    for w in facts["windows"]:
        rows.append((as_utc(w["start"]), "calendar", f"{w['kind']} window {w['id']} starts: {w.get('reason') or ''}"))
        rows.append((as_utc(w["end"]), "calendar", f"{w['kind']} window {w['id']} ends"))
    for h in facts["transitions"]:
        rows.append((as_utc(h["computed_at"]), "policy", f"SLO {h['slo']} state {h['state']}"))
    return sorted(rows, key=lambda r: r[0])


def _dedupe_transitions(rows: list[tuple[datetime, str, str]]) -> list[tuple[datetime, str, str]]:
    """Policy states are published hourly whatever they are: keep a state only where it changes."""
    last: dict[str, str] = {}
    kept = []
    for row in rows:
        if row[1] == "policy":
            slo, state = row[2].split(" state ")
            if last.get(slo) == state:
                continue
            last[slo] = state
        kept.append(row)
    return kept


def build_postmortem(facts: Mapping[str, Any]) -> Document:
    incident = facts["incident"]
    metrics, budget, roles = facts["metrics"], facts["budget"], facts["roles"]
    details = incident["details"]
    severity_changes = [e for e in facts["events"] if e["kind"] == "severity"]
    blocks: list[Any] = [
        Paragraph("Draft written by the incident_response workflow from the SRE store when the incident was "
                  "resolved. Blameless: describe what the system and people did and why it made sense at the time.",
                  "meta"),
        Facts([
            ("Incident", (Code(incident["id"]), f" · channel {details.get('channel_name') or '(none)'}")),
            ("Severity", f"{incident['severity'].upper()}"
                         + (f" (history: {'; '.join(e['summary'] for e in severity_changes)})" if severity_changes
                            else "")),
            ("Services", ", ".join(incident["services"]) or "(none known)"),
            ("Owner team", incident["team"]),
            ("Opened", when(incident["opened_at"])),
            ("Acknowledged", f"{when(incident['acknowledged_at'])} by {incident['acknowledged_by'] or '-'}"),
            ("Resolved", f"{when(incident['resolved_at'])} by {details.get('resolved_by', '-')}: "
                         f"{details.get('resolution', '')}"),
            ("Time to acknowledge (MTTA)", minutes(metrics["mtta_s"])),
            ("Time to detect (MTTD: burn above 1x to the page)", minutes(metrics["mttd_s"])
             + (f", the burn began {when(metrics['burn_started_at'])}" if metrics["burn_started_at"] else "")),
            ("Time to resolve (MTTR)", minutes(metrics["mttr_s"])),
            ("Postmortem owner", (details.get("postmortem") or {}).get("owner")
             or roles.get("incident_commander", {}).get("person", "-")),
        ]),
        Heading(2, "Summary"),
        Paragraph(f"{incident['title']}: {len(facts['alerts'])} alert(s) paged from {when(facts['first_alert_at'])}; "
                  f"resolved after {minutes(metrics['mttr_s'])}. {details.get('resolution', '')}"),
        Heading(2, "Impact"),
        _budget_table(budget, details.get("slos") or []),
        Paragraph("Players affected, functions, revenue and support impact: " + PEOPLE_WRITE),
        Heading(2, "Roles"),
        Table(["role", "person", "since", "given by", "why"],
              [[role, r["person"], when(r["assigned_at"]), r["assigned_by"], r["why"]]
               for role, r in sorted(roles.items())]),
        Heading(2, "Related changes"),
        _changes(facts),
        Heading(2, "Timeline"),
        Table(["time", "source", "event"], [[when(at), source, text] for at, source, text in
                                            _dedupe_transitions(timeline(facts))],
              title="KST (UTC); from six hours before the first alert to the resolution"),
        Heading(2, "Detection"),
        Paragraph(f"The first alert started {when(facts['first_alert_at'])}; the incident opened "
                  f"{when(incident['opened_at'])}. Did the right alert fire at the right severity? " + PEOPLE_WRITE),
        Heading(2, "Root cause and trigger (five whys)"),
        BulletList("", [f"Why {n}? {PEOPLE_WRITE}" for n in range(1, 6)], numbered=True),
        Heading(2, "Response"),
        Paragraph("What went well, what went badly, where we were lucky: " + PEOPLE_WRITE),
        Heading(2, "Action items"),
        Table(["action", "kind (prevent / mitigate / detect / process)", "owner", "due", "ticket"],
              [["", "", "", "", ""]], note="Each item with one owner, a due date and a ticket."),
        Heading(2, "Lessons learned"),
        Paragraph(PEOPLE_WRITE),
    ]
    return Document(f"Postmortem (draft): {incident['id']} {incident['title']}", blocks)


def _budget_table(budget: Mapping[str, Mapping[str, Any]], incident_slos: Sequence[str]) -> Table:
    """The SLOs that lost budget, and the incident's own SLOs whatever they lost; the rest named in a note."""
    shown = {slo for slo, b in budget.items() if b["bad"] > 0} | (set(incident_slos) & set(budget))
    rest = sorted(set(budget) - shown)
    return Table(["SLO", "bad", "events / minutes in the span", "share of the window's budget"],
                 [[slo, f"{b['bad']:g} {b['unit']}", f"{b['events']:g} events, {b['minutes']} min",
                   f"{b['budget_share']:.2%}" if b["budget_share"] is not None else "n/a (no published budget)"]
                  for slo, b in sorted(budget.items()) if slo in shown],
                 title="Error budget the incident consumed (ledger, first alert to resolution)",
                 note=f"no budget lost: {', '.join(rest)}" if rest else "")


def _changes(facts: Mapping[str, Any]) -> Table | Paragraph:
    rows: list[Sequence[Text]] = []
    for d in facts["deploys"]:
        rows.append(["deploy", f"{d['service']} {d['version']} (from {d.get('previous_version') or '-'})",
                     d.get("outcome") or "running", when(d.get("finished_at") or d.get("requested_at"))])
    for r in facts["chaos"]:
        rows.append(["chaos", f"{r['experiment']} on {r['service']}", r.get("verdict") or "running",
                     when(r.get("injected_at") or r.get("requested_at"))])
    for w in facts["windows"]:
        rows.append(["window", f"{w['kind']} {w['id']}: {w.get('reason') or ''}", w.get("status") or "",
                     f"{when(w['start'])} to {when(w['end'])}"])
    if not rows:
        return Paragraph("No deploy, chaos experiment or maintenance window of the incident's services in the six "
                         "hours before the first alert.")
    return Table(["kind", "what", "outcome", "when"], rows,
                 title="Deploys, chaos experiments and maintenance windows of the services, from six hours before "
                       "the first alert")
