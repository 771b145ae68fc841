"""Incidents in the store: read by the chaos gate, written by the incident workflow."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gamesre.integrations.store.database import StoreDatabase, incident, with_utc


class IncidentStore(StoreDatabase):
    """Incident records and the ones not resolved yet."""

    def upsert_incident(self, record: dict[str, Any]) -> None:
        defaults: dict[str, Any] = {"services": [], "status": "open", "resolved_at": None, "details": {}}
        self._upsert_record(incident, record, defaults)

    def open_incidents(self) -> list[dict[str, Any]]:
        """Incidents not resolved yet (open or mitigated), oldest first."""
        q = sa.select(incident).where(incident.c.status != "resolved").order_by(incident.c.opened_at)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [with_utc(r, "opened_at") for r in rows]
