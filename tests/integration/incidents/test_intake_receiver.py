"""The incident intake over HTTP, served by uvicorn as the Airflow API server serves a plugin's FastAPI app, with the
real SRE store (SQLite and PostgreSQL), the product's configuration, and a real Alertmanager delivering to it with
its bearer token read from a file. Airflow's side (creating the incident_response run) is a recorder here; the
end-to-end test runs it through a real Airflow."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn

from demo.procs import ProcessGroup, free_port
from demo.services import start_alertmanager
from gamesre.airflow.incident_intake import INTAKE_PATH, create_app, read_token
from gamesre.app.incidents import IncidentConfig
from gamesre.integrations.store import SREStore
from tests.fakes.alertmanager_webhook import alert, body
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

TOKEN = "0123456789abcdef0123456789abcdef"


@dataclass
class Runs:
    """Records the incident_response runs the receiver asks for, as Airflow would: once per incident id."""

    created: list[str] = field(default_factory=list)
    asked: int = 0
    fail: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, incident_id: str) -> str:
        with self.lock:
            self.asked += 1
            if self.fail:
                raise RuntimeError("Airflow's metadata database is unreachable")
            if incident_id in self.created:
                return "exists"
            self.created.append(incident_id)
            return "created"


@dataclass
class Receiver:
    url: str
    store: SREStore
    runs: Runs
    token_file: Path

    def post(self, payload: Any, token: str | None = TOKEN, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        if isinstance(payload, bytes):
            return requests.post(self.url, data=payload, headers=headers, timeout=30, **kwargs)
        return requests.post(self.url, json=payload, headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def config() -> IncidentConfig:
    return IncidentConfig()


@pytest.fixture
def receiver(store_url: str, config: IncidentConfig, tmp_path: Path) -> Iterator[Receiver]:
    token_file = tmp_path / "incident-intake-token"
    token_file.write_text(TOKEN + "\n")
    store, runs = SREStore(store_url), Runs()
    app = create_app(store=lambda: store, config=lambda: config, token=lambda: read_token(str(token_file)),
                     trigger=runs)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           limit_concurrency=2000))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield Receiver(f"http://127.0.0.1:{port}{INTAKE_PATH}", store, runs, token_file)
    server.should_exit = True
    thread.join(timeout=10)
    store.engine.dispose()


def test_a_page_opens_one_incident_and_its_run_and_a_repeat_joins_it(receiver: Receiver) -> None:
    answer = receiver.post(body(alert(instance="gs-stable-1")))
    assert answer.status_code == 200, answer.text
    assert answer.json() | {"why": ""} == {"action": "open", "incident_id": answer.json()["incident_id"],
                                           "created": True, "repeat": False, "why": "", "times": 1,
                                           "run": "created"}
    incident_id = answer.json()["incident_id"]
    again = receiver.post(body(alert(instance="gs-stable-1")))
    grown = receiver.post(body(alert(instance="gs-stable-1"), alert(instance="gs-stable-2")))
    assert (again.json()["repeat"], again.json()["run"]) == (True, "exists")
    assert (grown.json()["action"], grown.json()["incident_id"]) == ("join", incident_id)
    assert receiver.runs.created == [incident_id] and receiver.runs.asked == 3
    assert [i["id"] for i in receiver.store.incidents()] == [incident_id]


@pytest.mark.parametrize(("token", "status", "says"), [
    (None, 401, "Authorization: Bearer"),
    ("", 401, "Authorization: Bearer"),
    ("wrong-token", 403, "the bearer token is wrong"),
    (TOKEN[:-1], 403, "the bearer token is wrong"),
])
def test_a_missing_or_wrong_token_is_refused_and_changes_nothing(receiver: Receiver, token: str | None, status: int,
                                                                 says: str) -> None:
    answer = receiver.post(body(alert()), token=token)
    assert (answer.status_code, says in answer.json()["error"]) == (status, True)
    assert receiver.store.intake_log() == [] and receiver.store.incidents() == [] and receiver.runs.asked == 0


def test_no_token_configured_refuses_everything(receiver: Receiver) -> None:
    receiver.token_file.unlink()
    answer = receiver.post(body(alert()))
    assert answer.status_code == 503 and "no token configured" in answer.json()["error"]
    assert receiver.store.intake_log() == []


@pytest.mark.parametrize(("payload", "status", "says"), [
    (b"{\"version\": ", 400, "body: not JSON"),
    (b"\"a string\"", 400, "body: must be a JSON object, got str"),
    ({**body(alert()), "version": "3"}, 422, "version"),
    ({**body(alert()), "alerts": [{**alert(), "fingerprint": "xyz"}]}, 422, "alerts[0].fingerprint"),
    ({**body(alert()), "alerts": [{**alert(), "startsAt": "yesterday"}]}, 422, "alerts[0].startsAt"),
])
def test_a_malformed_body_is_refused_naming_the_problem_and_changes_nothing(receiver: Receiver, payload: Any,
                                                                          status: int, says: str) -> None:
    answer = receiver.post(payload)
    assert answer.status_code == status, answer.text
    assert any(says in p for p in answer.json()["problems"]), answer.json()
    assert receiver.store.intake_log() == [] and receiver.store.incidents() == []


def test_an_oversized_body_is_refused_without_reading_it_all(receiver: Receiver) -> None:
    answer = receiver.post(b"x" * (5 * 1024 * 1024))
    assert answer.status_code == 413 and receiver.store.intake_log() == []


def test_airflow_down_answers_503_and_the_retry_creates_the_run(receiver: Receiver) -> None:
    receiver.runs.fail = True
    first = receiver.post(body(alert()))
    assert first.status_code == 503 and "could not be created, retry" in first.json()["error"]
    incident_id = first.json()["incident_id"]
    assert [i["id"] for i in receiver.store.incidents()] == [incident_id]  # the incident itself is recorded
    receiver.runs.fail = False
    retry = receiver.post(body(alert()))  # what Alertmanager does on a 5xx: the same body again
    assert (retry.status_code, retry.json()["repeat"], retry.json()["run"]) == (200, True, "created")
    assert receiver.runs.created == [incident_id]


def test_a_flood_of_1000_notifications_makes_one_incident_per_group_and_loses_none(receiver: Receiver) -> None:
    """1,000 notifications in about a minute or less: 20 alert groups of unknown services (each opens its own
    incident: no join by service), each group notified 50 times, half of them with a second alert, all at once
    from 32 connections. Exactly 20 incidents, every notification counted, every answer 200."""
    groups = [f"svc-{i:02d}" for i in range(20)]

    def notify(n: int) -> int:
        service = groups[n % len(groups)]
        alerts = [alert("BillingDown", service=service, slo=None, instance="a")]
        if n % 2:
            alerts.append(alert("BillingDown", service=service, slo=None, instance="b"))
        return receiver.post(body(*alerts)).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(notify, range(1000)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * 1000
    incidents = receiver.store.incidents()
    assert len(incidents) == 20 and sorted(i["details"]["unowned"][0] for i in incidents) == groups
    assert sum(r["times"] for r in receiver.store.intake_log()) == 1000
    assert len(receiver.runs.created) == 20
    probe = requests.get(receiver.url.replace(INTAKE_PATH, "/docs"), timeout=5)  # still answering
    assert probe.status_code == 404
    print(f"1,000 notifications in {elapsed:.1f} s")


@pytest.fixture
def alertmanager_to_receiver(receiver: Receiver, tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager routing pages to the receiver, with the bearer token from a file."""
    port = free_port()
    config = f"""
route:
  receiver: intake
  group_by: [alertname, service, slo]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: intake
    webhook_configs:
      - url: {receiver.url}
        send_resolved: true
        max_alerts: 0
        http_config:
          authorization:
            type: Bearer
            credentials_file: {receiver.token_file}
"""
    group = ProcessGroup()
    group.add(start_alertmanager(tmp_path / "alertmanager", port, config))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        group.stop_all()


def post_alerts(alertmanager: str, *alerts: dict[str, Any]) -> None:
    payload = [{"labels": a["labels"], "annotations": a["annotations"], "startsAt": a["startsAt"],
                **({"endsAt": a["endsAt"]} if a["status"] == "resolved" else {})} for a in alerts]
    requests.post(f"{alertmanager}/api/v2/alerts", json=payload, timeout=10).raise_for_status()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_alertmanager_delivers_a_page_with_its_token_and_a_resolution_marks_the_alert(
        receiver: Receiver, alertmanager_to_receiver: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    page = alert("GameServerHighLoad", slo="concurrent-sessions", starts_at=now)
    sent = time.monotonic()
    post_alerts(alertmanager_to_receiver, page)
    incidents = wait_for(receiver.store.incidents, 30, "the incident")
    took = time.monotonic() - sent
    assert took < 30, f"the incident opened {took:.1f} s after the page"  # the intake's promise, group_wait 1 s here
    incident = incidents[0]
    assert (incident["services"], incident["team"], incident["title"]) == (
        ["game-server"], "game-server", "GameServerHighLoad on game-server")
    assert receiver.runs.created == [incident["id"]]
    log = receiver.store.intake_log()
    assert log[0]["body"]["receiver"] == "intake" and log[0]["body"]["version"] == "4"
    post_alerts(alertmanager_to_receiver, {**page, "status": "resolved", "endsAt": datetime.now(UTC).isoformat()})
    wait_for(lambda: [a for a in receiver.store.incident_alerts(incident["id"]) if a["status"] == "resolved"], 30,
             "the alert marked resolved")
    assert receiver.store.incident(incident["id"])["status"] == "open"  # type: ignore[index]
    assert len(receiver.store.incidents()) == 1
