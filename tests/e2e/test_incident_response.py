"""Incident response through the real chain: a Prometheus rule fires a page, Alertmanager notifies the incident intake
on Airflow's API server (the gamesre plugin, with its bearer token), the incident is opened and its
incident_response run declares it and brings people in (the incident's Slack channel, the team's and the SRE
channels, PagerDuty); unacknowledged, it escalates to the Secondary (after 20 s here: the shared Airflow reads a
copy of include/config with fast escalation, tests/e2e/conftest.py); people acknowledge and resolve it over the
REST API, and the run ends with the postmortem draft."""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from demo.procs import ProcessGroup, free_port
from demo.services import render_alertmanager_config, render_prometheus_config, start_alertmanager, start_prometheus
from gamesre.core.services import load_services
from gamesre.incidents.oncall import load_oncall, roster
from gamesre.integrations.store import SREStore
from tests.airflow_api import AirflowAPI
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

DAG = "incident_response"
ACTION_DAG = "incident_action"
# A page of data-save-success on game-server (incidents.yaml: Sev1, so PagerDuty is paged too), firing 5 s after
# Prometheus starts: an alert firing before Prometheus has found its Alertmanager is dropped and only sent again a
# minute later (resend_delay).
RULES = """
groups:
  - name: e2e-incident
    interval: 1s
    rules:
      - alert: DataSaveFailures
        expr: vector(1)
        for: 5s
        labels: {severity: page, service: game-server, team: game-server, slo: data-save-success}
        annotations:
          summary: "game-server: player saves failing (an end-to-end test's page)"
          runbook_url: include/runbooks/data-save.md#save-failures
"""


@pytest.fixture
def paging_stack(airflow: AirflowAPI, slack_sink: Any, tmp_path: Path) -> Iterator[str]:
    """A Prometheus with the always-firing page rule and an Alertmanager routing pages to the intake on the shared
    Airflow's API server, with the token file Airflow checks (the routing of include/alertmanager, delivered to the
    sink). Yields Alertmanager's URL."""
    airflow.wait_for_dag(DAG)
    airflow.call("PATCH", f"dags/{DAG}", json={"is_paused": False}).raise_for_status()
    am_port, prom_port = free_port(), free_port()
    rules = tmp_path / "e2e_rules.yml"
    rules.write_text(RULES)
    group = ProcessGroup()
    with group.running():
        group.add(start_alertmanager(tmp_path / "alertmanager", am_port, render_alertmanager_config(
            slack_sink.webhook_url, group_wait="1s", group_interval="5s",
            incident_intake_url=f"{airflow.url}/gamesre/incidents/alertmanager",
            incident_intake_token_file=airflow.home / "incident-intake-token")))
        group.add(start_prometheus(tmp_path / "prometheus", prom_port, render_prometheus_config(
            [], alertmanager=f"127.0.0.1:{am_port}", rule_files=[rules])))
        yield f"http://127.0.0.1:{am_port}"
    airflow.call("PATCH", f"dags/{DAG}", json={"is_paused": True})


def notified_at(alertmanager: str) -> float:
    """When Alertmanager first notified (its alert is active from then on, group_wait 1 s later)."""
    def active() -> list[dict[str, Any]]:
        alerts = requests.get(f"{alertmanager}/api/v2/alerts", params={"filter": 'alertname="DataSaveFailures"'},
                              timeout=5).json()
        return [a for a in alerts if a["status"]["state"] == "active"]

    wait_for(active, 60, "Alertmanager receiving the page from Prometheus")
    return time.monotonic()


def test_a_page_opens_an_incident_that_runs_itself_to_a_postmortem_with_people_in_the_loop(
        airflow: AirflowAPI, slack_sink: Any, paging_stack: str) -> None:
    store = SREStore(airflow.store_url)
    before = {i["id"] for i in store.incidents()}
    promoted = datetime.now(UTC) - timedelta(minutes=10)  # a deploy of the service 10 minutes before the page
    deploy_id = f"e2e-incident-{int(time.time())}"
    store.upsert_deployment({"id": deploy_id, "service": "game-server", "version": "1.6.66", "image": "demo:1.6.66",
                             "previous_version": "1.6.65", "strategy": "canary", "stages": ["prod"],
                             "backend": "local", "change_ticket": "OPS-1", "requested_by": "ci", "dry_run": False,
                             "forced": False, "outcome": "promoted", "requested_at": promoted - timedelta(minutes=4),
                             "finished_at": promoted})
    received = notified_at(paging_stack)

    def opened() -> list[dict[str, Any]]:
        return [i for i in store.incidents() if i["id"] not in before]

    incident = wait_for(opened, 30, "the incident opened by the intake")[0]  # the intake's promise
    incident_id = incident["id"]
    services = load_services()
    team_channel, sre_channel = services.channel_id("game-server"), services.sre.slack.channel_id

    def declared_in_slack() -> list[dict[str, Any]]:
        return [m for m in slack_sink.messages(team_channel) if f"*{incident_id}* declared" in m["text"]]

    # the run starts as soon as the scheduler takes it: the 30 s target is measured by benchmarks/incident_intake.py
    # on an unloaded machine; here, beside the other tests, a minute is allowed
    message = wait_for(declared_in_slack, 60, "the declaration in Slack")[0]
    declared_after = time.monotonic() - received
    wait_for(lambda: airflow.task_instances(DAG, incident_id).get("assemble", {}).get("state") == "success", 60,
             "the assemble task")
    print(f"page -> incident declared in Slack: {declared_after:.1f} s")

    record = store.incident(incident_id)
    assert record is not None
    assert (record["severity"], record["team"], record["services"], record["title"]) == (
        "sev1", "game-server", ["game-server"], "DataSaveFailures on game-server")
    on_call = roster(load_oncall(), "game-server", record["opened_at"])
    roles = {r: v["person"] for r, v in store.incident_roles(incident_id).items()}
    assert roles == {"incident_commander": on_call.level("primary").person,
                     "operations_lead": on_call.level("secondary").person,
                     "communications_lead": on_call.level("tertiary").person}
    channel_id, channel_name = record["details"]["channel_id"], record["details"]["channel_name"]
    assert channel_name.startswith(f"#inc-{incident_id[4:12]}-datasavefailures")
    assert [(m["kind"], m["text"]) for m in slack_sink.messages(channel_id)] == [
        ("conversations.create", f"(channel {channel_name} created)"), ("chat.postMessage", message["text"])]
    assert [m["text"] for m in slack_sink.messages(sre_channel) if incident_id in m["text"]] == [message["text"]]
    assert on_call.level("primary").name in message["text"] and "SEV1" in message["text"]
    assert "Suspects (from the store): deploy game-server 1.6.66 (from 1.6.65) promoted" in message["text"]
    events = [e for e in slack_sink.events() if e.get("dedup_key") == incident_id]
    assert len(events) == 1 and events[0]["event_action"] == "trigger" and incident_id in events[0]["summary"]
    page_id = wait_for(lambda: (store.incident(incident_id) or {}).get("details", {}).get("status_page", {}).get("id"),
                       30, "the status page incident")
    opened_on_page = [u for u in requests.get(f"{slack_sink.url}/statuspage", timeout=5).json()
                      if u["incident_id"] == page_id]
    assert [(u["status"], u["components"]) for u in opened_on_page] == [("investigating",
                                                                         {"game-servers": "partial_outage"})]
    assert "Game servers" in opened_on_page[0]["body"] and "게임 서버" in opened_on_page[0]["body"]
    kinds = [e["kind"] for e in store.incident_events(incident_id)]
    assert kinds[:3] == ["intake", "severity", "alert_firing"] and "declared" in kinds and "paged" in kinds
    assert all(n["delivered"] for n in store.incident_notices(incident_id))

    # Nobody acknowledges: 20 s after it opened (the test's escalation timings), the Secondary is brought in
    secondary = on_call.level("secondary")

    def escalated() -> list[dict[str, Any]]:
        return [m for m in slack_sink.messages(channel_id) if "escalated to the Secondary" in m["text"]]

    message = wait_for(escalated, 60, "the escalation to the Secondary")[0]
    assert f"<@{secondary.slack_user_id}>" in message["text"]
    paged = wait_for(lambda: [e["event_action"] for e in slack_sink.events()
                              if e["dedup_key"] == f"{incident_id}/secondary"], 30, "the secondary's page")
    assert paged == ["trigger"]
    run = airflow.call("GET", f"dags/{DAG}/dagRuns/{incident_id}").json()
    assert run["state"] == "running"
    assert airflow.task_instances(DAG, incident_id)["escalate"]["state"] == "deferred"  # no worker slot held

    # People: the secondary acknowledges, then resolves, through the incident_action DAG over the REST API
    def act(action: str, text: str = "") -> None:
        run_id = airflow.trigger(ACTION_DAG, {"incident_id": incident_id, "action": action, "text": text,
                                              "requested_by": secondary.person})
        assert airflow.wait(ACTION_DAG, run_id, timeout=120)["state"] == "success"

    act("acknowledge")
    act("resolve", "rolled back 1.6.66; saves recovered")
    assert airflow.wait(DAG, incident_id, timeout=180)["state"] == "success"
    record = store.incident(incident_id)
    assert record is not None and record["status"] == "resolved" and record["acknowledged_by"] == secondary.person
    postmortem = record["details"]["postmortem"]
    text = postmortem["markdown"]
    assert "deploy game-server 1.6.66 (from 1.6.65): promoted" in text  # 10 minutes before the page
    assert "[escalated] escalated to the Secondary" in text and "[resolved] resolved by" in text
    # the budget the incident cost, against the ledger read here: failed saves from the first alert's minute to
    # the resolution
    first = min(a["starts_at"] for a in store.incident_alerts(incident_id))
    ledger = store.ledger("data-save-success", int(first.timestamp()) // 60 * 60,
                          int(record["resolved_at"].timestamp()))
    assert postmortem["budget"]["data-save-success"]["bad"] == float(ledger.total.sum() - ledger.good.sum())
    assert postmortem["owner"] == on_call.level("primary").person and postmortem["due"]
    assert Path(postmortem["path"]).read_text() == text
    resolved_keys = {e["dedup_key"] for e in slack_sink.events() if e["event_action"] == "resolve"}
    assert {incident_id, f"{incident_id}/secondary"} <= resolved_keys
    assert any(":memo:" in m["text"] for m in slack_sink.messages(channel_id))
    on_page = [u for u in requests.get(f"{slack_sink.url}/statuspage", timeout=5).json() if u["incident_id"] == page_id]
    assert (on_page[-1]["status"], on_page[-1]["components"]) == ("resolved", {"game-servers": "operational"})
    runs = airflow.call("GET", f"dags/{DAG}/dagRuns").json()["dag_runs"]
    assert [r["dag_run_id"] for r in runs if r["dag_run_id"] == incident_id] == [incident_id]
