"""Incidents in the store: the intake of Alertmanager notifications, incident records, their alerts, timeline,
roles and notices. Written by the intake and the incident_response workflow, read by the gates and reports.

The intake is one transaction under the store's incident lock (a PostgreSQL advisory lock held by the transaction,
SQLite's write lock): it reads the open incidents, asks the caller's decision (the pure rules of
incidents/intake.py), and applies it, so that two notifications arriving together (two API server workers, a flood
of repeats) can never both open an incident for one alert group. A body seen before (same sha256) only counts.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gamesre.incidents.ids import incident_id, kst_day, next_sequence
from gamesre.integrations.store.database import (
    StoreDatabase,
    incident,
    incident_alert,
    incident_event,
    incident_intake,
    incident_notice,
    incident_role,
    json_safe,
    utcnow,
    with_utc,
)
from gamesre.integrations.store.errors import StoreError

INCIDENT_LOCK_KEY = int.from_bytes(b"SREincid", "big")  # PostgreSQL advisory lock key: the bytes of "SREincid"
LOCK_WAIT_S = 30
ALERT_TIMES = ("starts_at", "ends_at", "first_seen_at", "last_seen_at")

# decide(open incidents) -> the plan: {"action": "open" | "join" | "ignore", "incident_id": str | None (join),
# "incident": {...} (open: severity, title, services, team, details), "alerts": [...], "events": [...], "why": str}
Decide = Callable[[list[dict[str, Any]]], dict[str, Any]]


class IncidentStore(StoreDatabase):
    """Incident records, the intake log and everything that happens to an incident."""

    # -- intake ------------------------------------------------------------------------------------------------

    def record_intake(self, *, sha256: str, group_key: str, status: str, body: dict[str, Any],
                      received_at: datetime, decide: Decide) -> dict[str, Any]:
        """Record one notification and apply the decision over the open incidents, atomically.

        Returns {"action", "incident_id", "created" (an incident was opened), "repeat" (this exact body was
        received before: nothing but its count changed), "why", "times"}.
        """
        with self._incident_lock() as conn:
            seen = conn.execute(sa.select(incident_intake).where(incident_intake.c.sha256 == sha256)).mappings().first()
            if seen is not None:
                conn.execute(incident_intake.update().where(incident_intake.c.sha256 == sha256)
                             .values(times=incident_intake.c.times + 1, last_received_at=received_at))
                return {"action": seen["action"], "incident_id": seen["incident_id"], "created": False,
                        "repeat": True, "why": seen["why"], "times": seen["times"] + 1}
            plan = decide(self._open_incident_keys(conn))
            action, target = plan["action"], plan.get("incident_id") if plan["action"] == "join" else None
            if action == "open":
                target = self._open_incident(conn, plan["incident"], received_at)
            elif action == "join":
                if not target:
                    raise StoreError("an intake decision to join names no incident")
                self._add_services(conn, str(target), plan.get("services", []))
            if action in ("open", "join"):
                self._upsert_alerts(conn, str(target), plan.get("alerts", []), received_at)
                for event in plan.get("events", []):
                    self._add_event(conn, str(target), received_at, "alertmanager", **event)
            conn.execute(incident_intake.insert().values(
                sha256=sha256, group_key=group_key, status=status, first_received_at=received_at,
                last_received_at=received_at, times=1, action=action, incident_id=target,
                why=plan["why"], body=json_safe(body)))
            return {"action": action, "incident_id": target,
                    "created": action == "open", "repeat": False, "why": plan["why"], "times": 1}

    def intake_log(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """The notifications received, oldest first (each distinct body once, with how often it came)."""
        q = sa.select(incident_intake).order_by(incident_intake.c.first_received_at)
        if since is not None:
            q = q.where(incident_intake.c.last_received_at >= since)
        with self.engine.connect() as conn:
            return [with_utc(r, "first_received_at", "last_received_at") for r in conn.execute(q).mappings()]

    @contextmanager
    def _incident_lock(self) -> Iterator[Connection]:
        """A connection in a transaction holding the incident lock until it ends (module docstring)."""
        try:
            with self.engine.connect() as conn:
                if self.dialect == "sqlite":
                    usual = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
                    conn.exec_driver_sql(f"PRAGMA busy_timeout = {LOCK_WAIT_S * 1000}")
                    conn.commit()  # ends the transaction the reads began, so that ours is the lock's
                try:
                    with conn.begin():
                        if self.dialect == "postgresql":
                            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'")
                            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": INCIDENT_LOCK_KEY})
                        else:
                            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the file's write lock, from the first read on
                        yield conn
                finally:
                    if self.dialect == "sqlite":
                        conn.exec_driver_sql(f"PRAGMA busy_timeout = {usual}")
                        conn.commit()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"could not take the incident lock of the SRE store {self.safe_url} within "
                             f"{LOCK_WAIT_S} s: {exc.orig}") from exc

    def _open_incident_keys(self, conn: Connection) -> list[dict[str, Any]]:
        """The open incidents with the alert groups and fingerprints they hold."""
        rows = conn.execute(sa.select(incident).where(incident.c.status != "resolved")
                            .order_by(incident.c.opened_at)).mappings().all()
        found = [{**with_utc(r, "opened_at"), "group_keys": set(), "fingerprints": set()} for r in rows]
        by_id = {r["id"]: r for r in found}
        if by_id:
            alerts = conn.execute(sa.select(incident_alert.c.incident_id, incident_alert.c.group_key,
                                            incident_alert.c.fingerprint)
                                  .where(incident_alert.c.incident_id.in_(list(by_id)))).all()
            for incident_key, group_key, fingerprint in alerts:
                by_id[incident_key]["group_keys"].add(group_key)
                by_id[incident_key]["fingerprints"].add(fingerprint)
        return found

    def _open_incident(self, conn: Connection, record: dict[str, Any], opened_at: datetime) -> str:
        day = kst_day(opened_at)
        prefix = f"INC-{day:%Y%m%d}-"
        existing = conn.execute(sa.select(incident.c.id).where(incident.c.id.like(f"{prefix}%"))).scalars().all()
        new_id = incident_id(opened_at, next_sequence(opened_at, existing))
        conn.execute(incident.insert().values(
            id=new_id, severity=record["severity"], title=record["title"], services=list(record["services"]),
            team=record["team"], status="open", opened_at=opened_at, resolved_at=None,
            details=json_safe(record.get("details", {}))))
        return new_id

    def _add_services(self, conn: Connection, incident_key: str, services: Sequence[str]) -> None:
        current = conn.execute(sa.select(incident.c.services).where(incident.c.id == incident_key)).scalar_one()
        merged = sorted({*(current or []), *services})
        if merged != sorted(current or []):
            conn.execute(incident.update().where(incident.c.id == incident_key).values(services=merged))

    def _upsert_alerts(self, conn: Connection, incident_key: str, alerts: Sequence[dict[str, Any]],
                       seen_at: datetime) -> None:
        for alert in alerts:
            key = ((incident_alert.c.incident_id == incident_key)
                   & (incident_alert.c.fingerprint == alert["fingerprint"]))
            fields = {"group_key": alert["group_key"], "status": alert["status"], "labels": dict(alert["labels"]),
                      "annotations": dict(alert["annotations"]), "ends_at": alert.get("ends_at"),
                      "last_seen_at": seen_at}
            if conn.execute(sa.select(incident_alert.c.fingerprint).where(key)).first() is None:
                conn.execute(incident_alert.insert().values(
                    incident_id=incident_key, fingerprint=alert["fingerprint"], alertname=alert["alertname"],
                    service=alert["service"], starts_at=alert["starts_at"], first_seen_at=seen_at, **fields))
            else:
                conn.execute(incident_alert.update().where(key).values(**fields))

    # -- incidents ---------------------------------------------------------------------------------------------

    def upsert_incident(self, record: dict[str, Any]) -> None:
        defaults: dict[str, Any] = {"services": [], "status": "open", "resolved_at": None, "details": {},
                                    "team": "sre", "acknowledged_at": None, "acknowledged_by": None}
        self._upsert_record(incident, record, defaults)

    def update_incident(self, incident_key: str, **fields: Any) -> None:
        """Change some fields of an incident; KeyError if there is none."""
        self._update_record(incident, incident_key, fields, "incident")

    def incident(self, incident_key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(incident).where(incident.c.id == incident_key)).mappings().first()
        return None if row is None else with_utc(row, "opened_at", "resolved_at", "acknowledged_at")

    def incidents(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Incidents opened since `since` (all without it), oldest first."""
        q = sa.select(incident).order_by(incident.c.opened_at)
        if since is not None:
            q = q.where(incident.c.opened_at >= since)
        with self.engine.connect() as conn:
            return [with_utc(r, "opened_at", "resolved_at", "acknowledged_at") for r in conn.execute(q).mappings()]

    def open_incidents(self, service: str | None = None) -> list[dict[str, Any]]:
        """Incidents not resolved yet (open or mitigated), oldest first; of one service when given."""
        q = sa.select(incident).where(incident.c.status != "resolved").order_by(incident.c.opened_at)
        with self.engine.connect() as conn:
            rows = [with_utc(r, "opened_at", "resolved_at", "acknowledged_at") for r in conn.execute(q).mappings()]
        return [r for r in rows if service is None or service in (r["services"] or [])]

    def incident_alerts(self, incident_key: str) -> list[dict[str, Any]]:
        q = (sa.select(incident_alert).where(incident_alert.c.incident_id == incident_key)
             .order_by(incident_alert.c.starts_at, incident_alert.c.fingerprint))
        with self.engine.connect() as conn:
            return [with_utc(r, *ALERT_TIMES) for r in conn.execute(q).mappings()]

    # -- timeline, roles, notices ------------------------------------------------------------------------------

    def add_incident_event(self, incident_key: str, kind: str, summary: str, *, actor: str = "gamesre",
                           at: datetime | None = None, details: dict[str, Any] | None = None) -> None:
        with self.engine.begin() as conn:
            self._add_event(conn, incident_key, at or utcnow(), actor, kind=kind, summary=summary,
                            details=details or {})

    def incident_events(self, incident_key: str) -> list[dict[str, Any]]:
        """The incident's timeline, in time order (ties in the order written)."""
        q = (sa.select(incident_event).where(incident_event.c.incident_id == incident_key)
             .order_by(incident_event.c.at, incident_event.c.id))
        with self.engine.connect() as conn:
            return [with_utc(r, "at") for r in conn.execute(q).mappings()]

    def _add_event(self, conn: Connection, incident_key: str, at: datetime, actor: str, *, kind: str, summary: str,
                   details: dict[str, Any]) -> None:
        conn.execute(incident_event.insert().values(incident_id=incident_key, at=at, kind=kind, actor=actor,
                                                    summary=summary, details=json_safe(details)))

    def assign_role(self, incident_key: str, role: str, person: str, *, by: str, why: str,
                    at: datetime | None = None) -> None:
        """Give a role to a person (replacing its holder) and write it into the timeline."""
        at = at or utcnow()
        with self.engine.begin() as conn:
            conn.execute(incident_role.delete().where((incident_role.c.incident_id == incident_key)
                                                      & (incident_role.c.role == role)))
            conn.execute(incident_role.insert().values(incident_id=incident_key, role=role, person=person,
                                                       assigned_at=at, assigned_by=by, why=why))
            self._add_event(conn, incident_key, at, by, kind="role", summary=f"{role}: {person} ({why})",
                            details={"role": role, "person": person})

    def incident_roles(self, incident_key: str) -> dict[str, dict[str, Any]]:
        q = sa.select(incident_role).where(incident_role.c.incident_id == incident_key)
        with self.engine.connect() as conn:
            return {r["role"]: with_utc(r, "assigned_at") for r in conn.execute(q).mappings()}

    def record_notice(self, incident_key: str, *, channel: str, target: str, purpose: str, delivered: bool,
                      error: str = "", details: dict[str, Any] | None = None, at: datetime | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(incident_notice.insert().values(
                incident_id=incident_key, at=at or utcnow(), channel=channel, target=target, purpose=purpose,
                delivered=delivered, error=error, details=json_safe(details or {})))

    def incident_notices(self, incident_key: str) -> list[dict[str, Any]]:
        q = (sa.select(incident_notice).where(incident_notice.c.incident_id == incident_key)
             .order_by(incident_notice.c.at, incident_notice.c.id))
        with self.engine.connect() as conn:
            return [with_utc(r, "at") for r in conn.execute(q).mappings()]
