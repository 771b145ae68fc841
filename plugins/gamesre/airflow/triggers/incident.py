"""IncidentWatchTrigger: waits, in the triggerer, until an incident changes or its next escalation is due.

Reads the incident from the SRE store (the `sre_store` connection, looked up asynchronously) every `poll_s`
seconds and fires one event when its status, acknowledgement or severity differ from what the task last saw, or
when `wake_at` passes:
    {"incident": id, "why": "changed" | "due" | "error", "seen": {...}, "error": "..."}
A store that cannot be read is retried at the next poll; after `max_errors` polls in a row the trigger fires
with why "error" so that the task (and its failure notice) says so rather than waiting blind.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TriggerEvent

CLASSPATH = "gamesre.airflow.triggers.incident.IncidentWatchTrigger"


def seen_of(incident: dict[str, Any]) -> dict[str, Any]:
    """What the watch compares: the fields people change."""
    return {"status": incident["status"], "acknowledged": incident["acknowledged_at"] is not None,
            "severity": incident["severity"]}


class IncidentWatchTrigger(BaseTrigger):
    def __init__(self, incident_id: str, seen: dict[str, Any], wake_at: str | None, poll_s: float = 5.0,
                 sre_store_conn_id: str = "sre_store", max_errors: int = 60):
        super().__init__()
        self.incident_id, self.seen, self.wake_at = incident_id, seen, wake_at
        self.poll_s, self.sre_store_conn_id, self.max_errors = poll_s, sre_store_conn_id, max_errors

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return CLASSPATH, {"incident_id": self.incident_id, "seen": self.seen, "wake_at": self.wake_at,
                           "poll_s": self.poll_s, "sre_store_conn_id": self.sre_store_conn_id,
                           "max_errors": self.max_errors}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from gamesre.airflow.hooks.store import store_url
        from gamesre.integrations.store import SREStore

        wake = datetime.fromisoformat(self.wake_at).timestamp() if self.wake_at else None
        store: SREStore | None = None
        errors = 0
        while True:
            try:
                if store is None:
                    conn = await BaseHook.aget_connection(self.sre_store_conn_id)
                    store = await asyncio.to_thread(SREStore, store_url(conn))
                incident = await asyncio.to_thread(store.incident, self.incident_id)
                errors = 0
                if incident is None:
                    yield TriggerEvent({"incident": self.incident_id, "why": "error",
                                        "error": f"{self.incident_id} is no longer in the SRE store"})
                    return
                if seen_of(incident) != self.seen:
                    yield TriggerEvent({"incident": self.incident_id, "why": "changed", "seen": seen_of(incident)})
                    return
            except Exception as exc:  # the store away: try again at the next poll, give up loudly at last
                errors += 1
                self.log.warning("incident %s: the SRE store could not be read (%d in a row): %s", self.incident_id,
                                 errors, exc)
                if errors >= self.max_errors:
                    yield TriggerEvent({"incident": self.incident_id, "why": "error",
                                        "error": f"the SRE store could not be read {errors} times in a row: {exc}"})
                    return
            if wake is not None and time.time() >= wake:
                yield TriggerEvent({"incident": self.incident_id, "why": "due",
                                    "at": datetime.now(UTC).isoformat()})
                return
            await asyncio.sleep(self.poll_s if wake is None else max(0.0, min(self.poll_s, wake - time.time())))
