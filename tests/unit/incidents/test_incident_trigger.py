"""IncidentWatchTrigger against a real store (SQLite file) through the `sre_store` connection from the environment:
its exact serialization, and the three ways it fires."""
from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gamesre.airflow.triggers.incident import CLASSPATH, IncidentWatchTrigger, seen_of
from gamesre.integrations.store import SREStore

INCIDENT = "INC-20261207-001"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SREStore:
    url = f"sqlite:///{tmp_path / 'sre.db'}"
    monkeypatch.setenv("AIRFLOW_CONN_SRE_STORE", json.dumps({"conn_type": "generic",
                                                             "extra": {"sqlalchemy_url": url}}))
    store = SREStore(url)
    store.upsert_incident({"id": INCIDENT, "severity": "sev1", "title": "saves failing", "services": ["game-server"],
                           "opened_at": datetime(2026, 12, 7, 1, 0, tzinfo=UTC)})
    return store


def test_serialize_gives_its_exact_classpath_and_arguments() -> None:
    trigger = IncidentWatchTrigger(INCIDENT, {"status": "open"}, "2026-12-07T01:05:00+00:00", poll_s=2)
    assert trigger.serialize() == (CLASSPATH, {"incident_id": INCIDENT, "seen": {"status": "open"},
                                               "wake_at": "2026-12-07T01:05:00+00:00", "poll_s": 2,
                                               "sre_store_conn_id": "sre_store", "max_errors": 60})
    assert CLASSPATH == f"{IncidentWatchTrigger.__module__}.{IncidentWatchTrigger.__name__}"


@pytest.mark.asyncio
async def test_it_fires_when_people_change_the_incident(store: SREStore) -> None:
    seen = seen_of(store.incident(INCIDENT))  # type: ignore[arg-type]
    trigger = IncidentWatchTrigger(INCIDENT, seen, None, poll_s=0.05)
    waiting = asyncio.ensure_future(trigger.run().__anext__())
    await asyncio.sleep(0.3)
    assert not waiting.done()  # nothing changed, nothing due: it waits
    store.update_incident(INCIDENT, acknowledged_at=datetime.now(UTC), acknowledged_by="yuna")
    event = await asyncio.wait_for(waiting, 10)
    assert event.payload == {"incident": INCIDENT, "why": "changed",
                             "seen": {"status": "open", "acknowledged": True, "severity": "sev1"}}


@pytest.mark.asyncio
async def test_it_fires_when_the_next_step_is_due(store: SREStore) -> None:
    seen = seen_of(store.incident(INCIDENT))  # type: ignore[arg-type]
    wake = (datetime.now(UTC) + timedelta(seconds=0.5)).isoformat()
    event = await asyncio.wait_for(IncidentWatchTrigger(INCIDENT, seen, wake, poll_s=5).run().__anext__(), 10)
    assert event.payload["why"] == "due"  # at its time, not at the next 5 s poll


@pytest.mark.asyncio
async def test_a_store_it_cannot_read_makes_it_fire_an_error_in_the_end(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SRE_STORE", json.dumps({"conn_type": "generic", "extra": {
        "sqlalchemy_url": f"sqlite:///{tmp_path / 'missing-dir' / 'sre.db'}"}}))
    trigger = IncidentWatchTrigger(INCIDENT, {}, None, poll_s=0.01, max_errors=3)
    event = await asyncio.wait_for(trigger.run().__anext__(), 30)
    assert event.payload["why"] == "error" and "could not be read 3 times in a row" in event.payload["error"]
