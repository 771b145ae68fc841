"""The Slack sink's PagerDuty Events v2 stand-in: what PagerDuty refuses it refuses, what it accepts it records."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from demo.procs import free_port
from demo.slack_sink import pagerduty_problems, serve

KEY = "0123456789abcdef0123456789abcdef"
TRIGGER = {"routing_key": KEY, "event_action": "trigger", "dedup_key": "abc",
           "payload": {"summary": "GameServerHighLoad game-server", "source": "alertmanager", "severity": "critical"}}


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    server = serve("127.0.0.1", port, tmp_path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("event", "problem"), [
    ({**TRIGGER, "routing_key": "short"}, "routing_key must be a 32-character integration key"),
    ({**TRIGGER, "event_action": "page"}, "event_action must be one of trigger, acknowledge, resolve"),
    ({**TRIGGER, "payload": {"summary": "x", "source": "y", "severity": "fatal"}}, "payload.severity must be one of"),
    ({**TRIGGER, "payload": {"source": "y", "severity": "info"}}, "payload.summary is required"),
    ({"routing_key": KEY, "event_action": "resolve"}, "dedup_key is required to resolve"),
    (["not", "an", "object"], "the body is not a JSON object"),
])
def test_invalid_events_are_named(event: object, problem: str) -> None:
    assert any(p.startswith(problem) for p in pagerduty_problems(event)), pagerduty_problems(event)


def test_a_valid_trigger_and_resolve_pass() -> None:
    assert pagerduty_problems(TRIGGER) == []
    assert pagerduty_problems({"routing_key": KEY, "event_action": "resolve", "dedup_key": "abc"}) == []


def test_events_are_recorded_apart_from_slack_messages(sink: str) -> None:
    bad = requests.post(f"{sink}/v2/enqueue", json={**TRIGGER, "routing_key": "x"}, timeout=5)
    assert bad.status_code == 400 and "routing_key must be a 32-character integration key" in bad.json()["errors"]
    ok = requests.post(f"{sink}/v2/enqueue", json=TRIGGER, timeout=5)
    assert ok.status_code == 202 and ok.json() == {"status": "success", "message": "Event processed",
                                                    "dedup_key": "abc"}
    (event,) = requests.get(f"{sink}/v2/events", timeout=5).json()
    assert (event["routing_key"], event["summary"], event["severity"]) == (KEY, "GameServerHighLoad game-server",
                                                                           "critical")
    assert requests.get(f"{sink}/messages", timeout=5).json() == []
    assert "PagerDuty events (1)" in requests.get(sink, timeout=5).text
    requests.delete(f"{sink}/v2/events", timeout=5).raise_for_status()
    assert requests.get(f"{sink}/v2/events", timeout=5).json() == []
