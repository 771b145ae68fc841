"""The Statuspage client against the demo sink's Statuspage stand-in (real HTTP): what players would read."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from demo.procs import ProcessGroup, free_port
from demo.services import start_slack_sink
from gamesre.integrations.statuspage import StatusPage, StatusPageError

pytestmark = pytest.mark.integration


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    group = ProcessGroup()
    with group.running():
        group.add(start_slack_sink(tmp_path / "sink", port))
        yield f"http://127.0.0.1:{port}"


def test_an_incident_is_opened_updated_and_resolved_as_players_read_it(sink: str) -> None:
    page = StatusPage("key", "gamestatus", sink)
    incident = page.create_incident(name="Game servers: incident", status="investigating",
                                    body="조사 중 / Investigating", components={"game-servers": "partial_outage"})
    page.update_incident(incident, status="resolved", body="해결 / Resolved",
                         components={"game-servers": "operational"})
    updates = requests.get(f"{sink}/statuspage", timeout=5).json()
    assert [(u["incident_id"], u["status"], u["components"]) for u in updates] == [
        (incident, "investigating", {"game-servers": "partial_outage"}),
        (incident, "resolved", {"game-servers": "operational"})]
    assert "조사 중 / Investigating" in requests.get(sink, timeout=5).text  # the sink's page shows it


def test_refusals_name_the_problem_and_never_the_key(sink: str) -> None:
    page = StatusPage("s3cret-key", "gamestatus", sink)
    with pytest.raises(StatusPageError, match="HTTP 404") as missing:
        page.update_incident("sp9999", status="resolved", body="x", components={})
    assert "s3cret-key" not in str(missing.value)
    with pytest.raises(ValueError, match="status must be one of"):
        page.create_incident(name="x", status="fixed", body="x", components={})
    with pytest.raises(StatusPageError, match="name can't be blank"):
        page.create_incident(name=" ", status="investigating", body="x", components={})
    with pytest.raises(StatusPageError, match="no answer from"):
        StatusPage("k", "p", f"http://127.0.0.1:{free_port()}", timeout=2).create_incident(
            name="x", status="investigating", body="x", components={})
