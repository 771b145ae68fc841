"""The incident's `silence` action against a real Alertmanager: one silence per alert name and service, with an
end, marked with the incident; repeating it extends them instead of adding more."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gamesre.app import incidents
from gamesre.app.incidents import IncidentConfig, IncidentPorts, receive_notification
from gamesre.integrations.alertmanager import AlertmanagerClient
from tests.fakes.alertmanager_webhook import alert, body, raw
from tests.fakes.memory_store import memory_store
from tests.fakes.notifier import RecordingNotifier

pytestmark = pytest.mark.integration


def test_silence_the_incident_alerts_until_an_end_and_extend_them(alertmanager_url: str) -> None:
    store, now = memory_store(), datetime.now(UTC).replace(microsecond=0)
    config = IncidentConfig()
    page = body(alert("GameServerHighLoad", slo="concurrent-sessions", starts_at=now),
                alert("GameServerHighLoad", slo="concurrent-sessions", starts_at=now, instance="gs-stable-2"))
    incident_id = str(receive_notification(raw(page), store, config, now).incident_id)
    client = AlertmanagerClient(alertmanager_url)
    ports = IncidentPorts(store=store, chat=RecordingNotifier(), pager=lambda: None,  # type: ignore[arg-type,return-value]
                          clock=lambda: now, config=config, alertmanager=lambda: client)
    result = incidents.act(ports, incident_id, "silence", "yuna", text="known: rolling back", minutes=30)
    mine = [s for s in client.silences(window_id=incident_id) if s.state == "active"]
    assert len(mine) == 1  # one alert name and service: one silence
    assert {str(m) for m in mine[0].matchers} == {'alertname="GameServerHighLoad"', 'service="game-server"'}
    assert mine[0].ends_at == now + timedelta(minutes=30) and mine[0].created_by == "yuna"
    assert "until" in result["said"] and mine[0].id in result["said"]
    incidents.act(ports, incident_id, "silence", "yuna", text="longer", minutes=90)
    live = [s for s in client.silences(window_id=incident_id) if s.state == "active"]
    assert len(live) == 1 and live[0].ends_at == now + timedelta(minutes=90)
    assert [e["kind"] for e in store.incident_events(incident_id)][-2:] == ["silenced", "silenced"]
    with pytest.raises(incidents.IncidentActionRefused, match="always has an end"):
        incidents.act(ports, incident_id, "silence", "yuna", text="forever", minutes=0)
    for silence in live:
        client.expire(silence.id)
