"""The intake use case with the real store on in-memory SQLite: open, join, repeat, ignore, refuse."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gamesre.app.incidents import IncidentConfig, PayloadError, receive_notification
from gamesre.integrations.store import SREStore
from tests.fakes.alertmanager_webhook import alert, body, raw
from tests.fakes.memory_store import memory_store

NOW = datetime(2026, 12, 7, 1, 3, tzinfo=UTC)  # 10:03 KST


@pytest.fixture(scope="module")
def config() -> IncidentConfig:
    return IncidentConfig()


@pytest.fixture
def store() -> SREStore:
    return memory_store()


def test_a_page_opens_an_incident_with_its_alerts_severity_and_timeline(store: SREStore,
                                                                         config: IncidentConfig) -> None:
    result = receive_notification(raw(body(alert(slo="data-save-success", service="game-server"))), store, config,
                                  NOW)
    assert (result.action, result.incident_id, result.created, result.repeat) == ("open", "INC-20261207-001",
                                                                                 True, False)
    incident = store.incident("INC-20261207-001")
    assert incident is not None
    assert (incident["severity"], incident["status"], incident["services"], incident["team"]) == (
        "sev1", "open", ["game-server"], "game-server")  # the data-save-success rule of incidents.yaml
    assert incident["title"] == "SloBurnPageFast on game-server"
    assert [a["status"] for a in store.incident_alerts("INC-20261207-001")] == ["firing"]
    kinds = [e["kind"] for e in store.incident_events("INC-20261207-001")]
    assert kinds == ["intake", "severity", "alert_firing"]
    assert "player saves are failing" in store.incident_events("INC-20261207-001")[1]["summary"]


def test_the_same_body_again_only_counts_and_a_changed_group_joins(store: SREStore, config: IncidentConfig) -> None:
    first = body(alert(instance="gs-stable-1"))
    receive_notification(raw(first), store, config, NOW)
    again = receive_notification(raw(first), store, config, NOW + timedelta(minutes=1))
    assert (again.action, again.incident_id, again.created, again.repeat, again.times) == (
        "open", "INC-20261207-001", False, True, 2)  # what that body did the first time; nothing new
    grown = body(alert(instance="gs-stable-1"), alert(instance="gs-stable-2"))
    joined = receive_notification(raw(grown), store, config, NOW + timedelta(minutes=5))
    assert (joined.action, joined.incident_id, joined.repeat) == ("join", "INC-20261207-001", False)
    assert "the same alert group notified again" in joined.why
    assert len(store.incidents()) == 1 and len(store.incident_alerts("INC-20261207-001")) == 2
    assert [r["times"] for r in store.intake_log()] == [2, 1]


def test_a_second_group_of_the_service_joins_within_the_window_and_opens_after_it(store: SREStore,
                                                                                   config: IncidentConfig) -> None:
    receive_notification(raw(body(alert())), store, config, NOW)
    latency = body(alert("GameActionLatencyHigh", slo="latency"))
    joined = receive_notification(raw(latency), store, config, NOW + timedelta(minutes=29))
    assert (joined.action, joined.incident_id) == ("join", "INC-20261207-001")
    later = body(alert("MatchmakingSuccessLow", service="matchmaking", slo="matchmaking-success"))
    opened = receive_notification(raw(later), store, config, NOW + timedelta(minutes=31))
    assert (opened.action, opened.incident_id) == ("open", "INC-20261207-002")
    assert [i["id"] for i in store.open_incidents(service="matchmaking")] == ["INC-20261207-002"]


def test_resolved_alerts_are_marked_and_never_close_the_incident(store: SREStore, config: IncidentConfig) -> None:
    receive_notification(raw(body(alert())), store, config, NOW)
    resolved = body(alert(status="resolved", ends_at=NOW + timedelta(minutes=9)))
    result = receive_notification(raw(resolved), store, config, NOW + timedelta(minutes=10))
    assert (result.action, result.incident_id) == ("join", "INC-20261207-001")
    assert [a["status"] for a in store.incident_alerts("INC-20261207-001")] == ["resolved"]
    assert store.incident("INC-20261207-001")["status"] == "open"  # type: ignore[index]


def test_tickets_and_unknown_resolutions_are_recorded_and_ignored(store: SREStore, config: IncidentConfig) -> None:
    ticket = receive_notification(raw(body(alert(severity="ticket"))), store, config, NOW)
    stray = receive_notification(raw(body(alert("Other", status="resolved", ends_at=NOW))), store, config, NOW)
    assert (ticket.action, stray.action) == ("ignore", "ignore")
    assert store.incidents() == []
    assert [r["action"] for r in store.intake_log()] == ["ignore", "ignore"]
    assert "severities seen: ticket" in ticket.why


def test_a_page_of_an_unknown_service_is_owned_by_the_sre_team(store: SREStore, config: IncidentConfig) -> None:
    result = receive_notification(raw(body(alert(service="billing"))), store, config, NOW)
    incident = store.incident(str(result.incident_id))
    assert incident is not None and (incident["team"], incident["services"]) == ("sre", [])
    assert incident["details"]["unowned"] == ["billing"]
    assert "'billing': owned by sre" in result.why


@pytest.mark.parametrize(("payload", "says"), [
    (b"{not json", "body: not JSON"),
    (b"[]", "body: must be a JSON object, got list"),
    (raw({**body(alert()), "version": "3"}), "version"),
    (raw({**body(alert()), "alerts": []}), "alerts"),
])
def test_a_bad_body_is_refused_naming_the_problem_and_nothing_is_recorded(store: SREStore, config: IncidentConfig,
                                                                         payload: bytes, says: str) -> None:
    with pytest.raises(PayloadError, match=says):
        receive_notification(payload, store, config, NOW)
    assert store.intake_log() == [] and store.incidents() == []
