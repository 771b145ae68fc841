"""The checklists' `incidents` input read from a real store (SQLite and PostgreSQL): which incidents a span takes,
their times as epochs, and the postmortem's due day as the end of that KST day."""
from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from gamesre.checklists.inputs import InputData, shape_problem
from gamesre.integrations.checklist_sources import fetch_inputs
from gamesre.integrations.store import SREStore

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 14, 1, 0, tzinfo=UTC)  # Monday 10:00 KST
WEEK = (int((AT - timedelta(days=7)).timestamp()), int(AT.timestamp()))


def test_the_span_takes_open_active_and_unfinished_postmortem_incidents(store_url: str) -> None:
    store = SREStore(store_url)
    in_week = AT - timedelta(days=2)
    store.upsert_incident({"id": "INC-20261212-001", "severity": "sev1", "title": "saves failing",
                           "team": "game-server", "services": ["game-server"], "opened_at": in_week,
                           "status": "resolved", "acknowledged_at": in_week + timedelta(minutes=3),
                           "resolved_at": in_week + timedelta(hours=1),
                           "details": {"postmortem": {"status": "draft", "due": "2026-12-18", "owner": "yuna"}}})
    store.upsert_incident({"id": "INC-20261001-001", "severity": "sev1", "title": "old, postmortem pending",
                           "opened_at": AT - timedelta(days=70), "status": "resolved",
                           "resolved_at": AT - timedelta(days=70),
                           "details": {"postmortem": {"status": "draft", "due": "2026-10-08", "owner": "doyun"}}})
    store.upsert_incident({"id": "INC-20261002-001", "severity": "sev2", "title": "old and done",
                           "opened_at": AT - timedelta(days=69), "status": "resolved",
                           "resolved_at": AT - timedelta(days=69)})
    store.upsert_incident({"id": "INC-20261120-001", "severity": "sev3", "title": "still open",
                           "opened_at": AT - timedelta(days=24)})
    data = fetch_inputs({"incidents": WEEK}, int(AT.timestamp()), prometheus=None, alertmanager=None, store=store)
    incidents = data["incidents"]
    assert isinstance(incidents, InputData) and shape_problem("incidents", incidents) is None
    frame = incidents.value.set_index("id")
    assert sorted(frame.index) == ["INC-20261001-001", "INC-20261120-001", "INC-20261212-001"]
    row = frame.loc["INC-20261212-001"]
    assert row["acknowledged_at"] - row["opened_at"] == 180
    # due 2026-12-18 (KST): by the end of that day, 2026-12-18 15:00 UTC
    assert row["postmortem_due"] == datetime(2026, 12, 18, 15, 0, tzinfo=UTC).timestamp()
    assert (row["postmortem_status"], row["postmortem_owner"]) == ("draft", "yuna")
    assert math.isnan(frame.loc["INC-20261120-001"]["postmortem_due"])
    assert frame.loc["INC-20261120-001"]["status"] == "open"
