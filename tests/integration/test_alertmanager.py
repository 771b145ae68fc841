"""The Alertmanager client against a real Alertmanager (Debian's prometheus-alertmanager, started by the harness)."""
from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from demo.procs import free_port
from gamesre.core.services import Matcher, load_services
from gamesre.integrations.alertmanager import (
    AlertmanagerClient,
    AlertmanagerError,
    AlertmanagerUnreachable,
    window_id_of,
)

pytestmark = pytest.mark.integration

GAME_SERVER = [str(m) for m in load_services().get("game-server").matchers]


@pytest.fixture
def am(alertmanager_url: str) -> AlertmanagerClient:
    return AlertmanagerClient(alertmanager_url)


@pytest.fixture
def window_id() -> str:
    return f"mw-test-{uuid.uuid4().hex[:10]}"


def soon(minutes: float) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def live(am: AlertmanagerClient, window_id: str) -> list[str]:
    return [s.id for s in am.silences(window_id=window_id, states=("active", "pending"))]


def test_silence_is_created_with_the_window_id(am: AlertmanagerClient, window_id: str) -> None:
    start, end = soon(-1), soon(60)
    result = am.ensure_silence(window_id, GAME_SERVER, start, end, "gamesre", "weekly maintenance")
    assert result.action == "created"
    silence = result.silence
    assert silence.state == "active"
    assert silence.comment == f"weekly maintenance [gamesre-window:{window_id}]"
    assert window_id_of(silence.comment) == window_id
    assert silence.matchers == (Matcher("service", "game-server"),)
    assert abs(silence.ends_at - end) < timedelta(milliseconds=1)
    # What Alertmanager itself stores, read back raw.
    raw = requests.get(f"{am.url}/api/v2/silence/{silence.id}", timeout=5).json()
    assert raw["createdBy"] == "gamesre" and raw["matchers"][0]["value"] == "game-server"


def test_rerun_makes_no_duplicate(am: AlertmanagerClient, window_id: str) -> None:
    start, end = soon(-1), soon(60)
    first = am.ensure_silence(window_id, GAME_SERVER, start, end, "gamesre", "maintenance")
    second = am.ensure_silence(window_id, GAME_SERVER, start, end, "gamesre", "maintenance")
    assert second.action == "reused" and second.silence.id == first.silence.id
    assert live(am, window_id) == [first.silence.id]
    # Another service of the same window gets a silence of its own.
    other = am.ensure_silence(window_id, ['service="matchmaking"'], start, end, "gamesre", "maintenance")
    assert other.action == "created"
    assert sorted(live(am, window_id)) == sorted([first.silence.id, other.silence.id])


def test_extending_the_end_updates_in_place(am: AlertmanagerClient, window_id: str) -> None:
    start = soon(-1)
    first = am.ensure_silence(window_id, GAME_SERVER, start, soon(60), "gamesre", "maintenance")
    longer = soon(120)
    updated = am.ensure_silence(window_id, GAME_SERVER, start, longer, "gamesre", "maintenance")
    assert updated.action == "updated"
    assert updated.silence.id == first.silence.id
    assert abs(updated.silence.ends_at - longer) < timedelta(milliseconds=1)
    assert updated.silence.starts_at == first.silence.starts_at
    assert live(am, window_id) == [first.silence.id]


def test_a_pending_silence_moves_with_its_window(am: AlertmanagerClient, window_id: str) -> None:
    first = am.ensure_silence(window_id, GAME_SERVER, soon(30), soon(90), "gamesre", "maintenance")
    assert first.silence.state == "pending"
    later_start = soon(45)
    moved = am.ensure_silence(window_id, GAME_SERVER, later_start, soon(100), "gamesre", "maintenance")
    assert moved.action == "updated" and moved.silence.id == first.silence.id
    assert abs(moved.silence.starts_at - later_start) < timedelta(milliseconds=1)


def test_silences_are_expired_at_the_end_and_expiring_is_idempotent(am: AlertmanagerClient, window_id: str) -> None:
    a = am.ensure_silence(window_id, GAME_SERVER, soon(-1), soon(60), "gamesre", "maintenance").silence
    b = am.ensure_silence(window_id, ['service="matchmaking"'], soon(-1), soon(60), "gamesre", "maintenance").silence
    assert sorted(am.expire_window_silences(window_id)) == sorted([a.id, b.id])
    assert am.silence(a.id).state == "expired" and am.silence(b.id).state == "expired"
    assert live(am, window_id) == []
    assert am.expire_window_silences(window_id) == []
    # A new silence after expiry is a new one (the expired one is never revived).
    again = am.ensure_silence(window_id, GAME_SERVER, soon(-1), soon(30), "gamesre", "maintenance")
    assert again.action == "created" and again.silence.id != a.id


def test_other_windows_silences_are_left_alone(am: AlertmanagerClient, window_id: str) -> None:
    mine = am.ensure_silence(window_id, GAME_SERVER, soon(-1), soon(60), "gamesre", "maintenance").silence
    other_window = f"{window_id}-other"
    theirs = am.ensure_silence(other_window, GAME_SERVER, soon(-1), soon(60), "gamesre", "maintenance").silence
    assert am.expire_window_silences(window_id) == [mine.id]
    assert am.silence(theirs.id).state == "active"
    am.expire_window_silences(other_window)


def test_a_silence_mutes_the_matching_firing_alert(am: AlertmanagerClient, window_id: str) -> None:
    service = f"svc-{window_id}"
    alert = [{"labels": {"alertname": "GameServerErrors", "service": service, "severity": "page"},
              "startsAt": datetime.now(UTC).isoformat()}]
    requests.post(f"{am.url}/api/v2/alerts", json=alert, timeout=5).raise_for_status()
    silence = am.ensure_silence(window_id, [f'service="{service}"'], soon(-1), soon(30), "gamesre", "m").silence
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while True:
        (firing,) = am.alerts([f'service="{service}"'])
        if firing.silenced_by or datetime.now(UTC) > deadline:
            break
        time.sleep(0.2)
    assert firing.labels["alertname"] == "GameServerErrors"
    assert firing.silenced_by == (silence.id,) and firing.state == "suppressed"
    assert am.alerts([f'service="{service}"'], silenced=False) == []
    am.expire_window_silences(window_id)


def test_no_silence_without_a_future_end(am: AlertmanagerClient, window_id: str) -> None:
    with pytest.raises(ValueError, match="is in the past"):
        am.ensure_silence(window_id, GAME_SERVER, soon(-60), soon(-1), "gamesre", "maintenance")
    with pytest.raises(ValueError, match="is not after starts_at"):
        am.ensure_silence(window_id, GAME_SERVER, soon(60), soon(30), "gamesre", "maintenance")
    with pytest.raises(ValueError, match="timezone-aware"):
        am.ensure_silence(window_id, GAME_SERVER, datetime(2030, 1, 1), datetime(2030, 1, 2), "gamesre", "m")
    with pytest.raises(ValueError, match="at least one matcher"):
        am.ensure_silence(window_id, [], soon(1), soon(30), "gamesre", "maintenance")
    assert am.silences(window_id=window_id) == []


def test_a_bad_matcher_is_rejected_with_alertmanagers_reason(am: AlertmanagerClient, window_id: str) -> None:
    # Valid in Python's re, refused by Go's RE2: only Alertmanager can say so.
    with pytest.raises(AlertmanagerError) as info:
        am.ensure_silence(window_id, ['service=~"(?=game)server"'], soon(-1), soon(30), "gamesre", "maintenance")
    assert info.value.status == 400
    assert "invalid regular expression" in info.value.message and "(?=game)server" in info.value.message
    with pytest.raises(AlertmanagerError, match="at least one matcher must not match the empty string"):
        am.ensure_silence(window_id, ['service=""'], soon(-1), soon(30), "gamesre", "maintenance")
    assert am.silences(window_id=window_id) == []


def test_unreachable_alertmanager_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = AlertmanagerClient(url, timeout=2)
    with pytest.raises(AlertmanagerUnreachable, match=f"unreachable at {url}"):
        client.ensure_silence("mw-x", GAME_SERVER, soon(-1), soon(30), "gamesre", "maintenance")
    with pytest.raises(AlertmanagerUnreachable):
        client.expire_window_silences("mw-x")
    assert not client.ready()
