"""The generated Alertmanager configuration under the real amtool and a real Alertmanager.

amtool checks the committed configuration and the demo variant and resolves the receiver of each routing case.
Then a real Alertmanager runs the demo variant (secrets read from files in its work dir, as in production),
delivering to the local Slack sink and its PagerDuty Events v2 stand-in; alerts posted to its API must reach
exactly the channels and PagerDuty services the routing promises, with maintenance and page-over-ticket
inhibition applied.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from demo.procs import ProcessGroup, free_port
from demo.services import render_alertmanager_config, start_alertmanager, start_slack_sink, write_alertmanager_secrets
from gamesre.observability.alertmanager import ALERTMANAGER_CONFIG, demo_routing_key

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
AMTOOL = shutil.which("amtool")
WEBHOOK = "/services/T0DEMO/B0DEMO/xyz"


@pytest.fixture(scope="module")
def amtool() -> str:
    if AMTOOL is None:
        pytest.skip("amtool is not installed")
    return AMTOOL


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The committed configuration and both demo variants (secrets inline, secrets in files)."""
    work = tmp_path_factory.mktemp("am-configs")
    inline = work / "inline.yml"
    inline.write_text(render_alertmanager_config(f"http://127.0.0.1:9{WEBHOOK}"))
    files = work / "files.yml"
    files.write_text(render_alertmanager_config(f"http://127.0.0.1:9{WEBHOOK}", secrets_dir=work / "secrets"))
    return {"committed": REPO / ALERTMANAGER_CONFIG, "demo-inline": inline, "demo-files": files}


@pytest.mark.parametrize("variant", ["committed", "demo-inline", "demo-files"])
def test_amtool_check_config(amtool: str, configs: dict[str, Path], variant: str) -> None:
    result = subprocess.run([amtool, "check-config", str(configs[variant])], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "3 inhibit rules" in result.stdout


ROUTES = {
    "a page goes to PagerDuty and #sre-oncall": ("oncall", {"alertname": "GameServerHighLoad", "severity": "page",
                                                            "service": "game-server", "team": "game-server"}),
    "an SLO burn page too": ("oncall", {"alertname": "SloBurnPageFast", "severity": "page", "slo": "availability",
                                        "service": "game-server", "team": "game-server"}),
    "a game-server ticket to its team": ("tickets-game-server", {"alertname": "SloBurnTicketSlow", "severity": "ticket",
                                                                 "service": "game-server", "team": "game-server"}),
    "a matchmaking ticket to its team": ("tickets-matchmaking", {"alertname": "MatchmakingQueueGrowing",
                                                                 "severity": "ticket", "team": "matchmaking"}),
    "an infrastructure ticket to SRE": ("tickets-sre", {"alertname": "NodeCPUHigh", "severity": "ticket",
                                                        "service": "platform", "team": "sre"}),
    "an unknown team falls back to #sre-tickets": ("tickets-fallback", {"alertname": "X", "severity": "ticket",
                                                                        "team": "payments"}),
    "no severity at all falls back too": ("tickets-fallback", {"alertname": "X"}),
    "30 minutes: the secondary": ("escalation-secondary", {"alertname": "PageEscalation", "severity": "page",
                                                           "escalation": "secondary", "team": "game-server"}),
    "1 hour: management": ("escalation-management", {"alertname": "PageEscalation", "severity": "page",
                                                     "escalation": "management", "team": "game-server"}),
    "the Watchdog to its heartbeat": ("watchdog-heartbeat", {"alertname": "Watchdog", "severity": "none"}),
    "a maintenance window notifies nobody": ("null", {"alertname": "MaintenanceWindow", "severity": "none",
                                                      "service": "matchmaking"}),
}


@pytest.mark.parametrize("variant", ["committed", "demo-files"])
@pytest.mark.parametrize("case", list(ROUTES))
def test_amtool_routes(amtool: str, configs: dict[str, Path], variant: str, case: str) -> None:
    receiver, labels = ROUTES[case]
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={configs[variant]}", f"--verify.receivers={receiver}",
         *(f"{k}={v}" for k, v in labels.items())], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.strip() == receiver, f"{case}: {result.stdout}{result.stderr}"


# --- a real Alertmanager ---------------------------------------------------------------------------------


@dataclass
class Stack:
    am: str
    sink: str
    keys: dict[str, str]  # PagerDuty service -> routing key the files hold

    def post(self, *alerts: dict[str, str]) -> None:
        now = datetime.now(UTC)
        body = [{"labels": labels, "annotations": {"summary": f"{labels['alertname']} summary",
                                                   "runbook_url": "include/runbooks/x.md#y"},
                 "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=10)).isoformat()}
                for labels in alerts]
        requests.post(f"{self.am}/api/v2/alerts", json=body, timeout=5).raise_for_status()

    def slack(self) -> list[dict[str, Any]]:
        return list(requests.get(f"{self.sink}/messages", timeout=5).json())

    def pagerduty(self) -> list[dict[str, Any]]:
        return list(requests.get(f"{self.sink}/v2/events", timeout=5).json())

    def alert_state(self, alertname: str, service: str) -> dict[str, Any]:
        found = requests.get(f"{self.am}/api/v2/alerts", params={"filter": [f'alertname="{alertname}"',
                                                                           f'service="{service}"']}, timeout=5).json()
        assert len(found) == 1, found
        return dict(found[0]["status"])


def titles(messages: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(channel, attachment title) of each Slack message."""
    return {(m["channel"], a["title"]) for m in messages for a in (m.get("attachments") or [])}


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("am-routing")
    sink_port, am_port = free_port(), free_port()
    group = ProcessGroup()
    with group.running():
        group.add(start_slack_sink(work / "sink", sink_port))
        webhook = f"http://127.0.0.1:{sink_port}{WEBHOOK}"
        files = write_alertmanager_secrets(work / "alertmanager" / "secrets", webhook)
        config = render_alertmanager_config(webhook, secrets_dir=work / "alertmanager" / "secrets",
                                            group_wait="1s", group_interval="1s", repeat_interval="1h")
        assert "/services/" not in config  # the webhook URLs are read from the files
        group.add(start_alertmanager(work / "alertmanager", am_port, config))
        keys = {name.removeprefix("pagerduty-"): path.read_text() for name, path in files.items()
                if name.startswith("pagerduty-")}
        yield Stack(f"http://127.0.0.1:{am_port}", f"http://127.0.0.1:{sink_port}", keys)


GS = {"service": "game-server", "team": "game-server"}
MM = {"service": "matchmaking", "team": "matchmaking"}


def test_pages_tickets_escalations_and_page_over_ticket_inhibition(stack: Stack) -> None:
    stack.post(
        {"alertname": "GameServerHighLoad", "severity": "page", "slo": "concurrent-sessions", **GS},
        {"alertname": "GameServerHighLoad", "severity": "ticket", "slo": "concurrent-sessions", **GS},
        {"alertname": "GameInstanceNotReady", "severity": "ticket", "instance": "gs-canary-1", **GS},
        {"alertname": "MatchmakingQueueGrowing", "severity": "ticket", "mode": "ranked", **MM},
        {"alertname": "QueueLag", "severity": "ticket", "service": "payments", "team": "payments"},
        {"alertname": "PageEscalation", "severity": "page", "escalation": "secondary",
         "escalated_alertname": "DataSaveFailures", "slo": "data-save-success", **GS},
        {"alertname": "Watchdog", "severity": "none", "service": "platform", "team": "sre"},
    )
    expected = {
        ("#sre-oncall", "[FIRING:1] GameServerHighLoad game-server"),
        ("#game-server-alerts", "[FIRING:1] GameInstanceNotReady game-server"),
        ("#matchmaking-alerts", "[FIRING:1] MatchmakingQueueGrowing matchmaking"),
        ("#sre-tickets", "[FIRING:1] QueueLag payments"),
        ("#sre-oncall", "[FIRING:1] PageEscalation game-server (escalation: secondary)"),
    }
    wait_for(lambda: expected <= titles(stack.slack()) and len(stack.pagerduty()) >= 2, "the notifications")
    time.sleep(2)  # two more group intervals: anything else that was coming has come
    assert titles(stack.slack()) == expected  # the inhibited ticket and the Watchdog sent nothing
    ticket = requests.get(f"{stack.am}/api/v2/alerts", params={"filter": ['alertname="GameServerHighLoad"',
                                                                         'severity="ticket"']}, timeout=5).json()
    assert ticket[0]["status"]["state"] == "suppressed" and ticket[0]["status"]["inhibitedBy"]
    events = {(e["routing_key"], e["summary"]) for e in stack.pagerduty()}
    assert events == {
        (stack.keys["primary"], "GameServerHighLoad game-server: GameServerHighLoad summary"),
        (stack.keys["secondary"], "PageEscalation game-server: PageEscalation summary"),
    }
    assert stack.keys["primary"] == demo_routing_key("primary") and len(stack.keys["primary"]) == 32
    assert all(e["event_action"] == "trigger" and e["severity"] == "critical" for e in stack.pagerduty())


def test_maintenance_inhibits_its_services_pages_and_tickets_only(stack: Stack) -> None:
    stack.post(
        {"alertname": "MaintenanceWindow", "severity": "none", "window": "recurring-tue", **MM},
        {"alertname": "EndpointsDown", "severity": "page", **MM},
        {"alertname": "PodRestarting", "severity": "ticket", "pod": "mm-stable-1", **MM},
        {"alertname": "PodRestarting", "severity": "ticket", "pod": "gs-stable-2", **GS},
        {"alertname": "NodeMemoryHigh", "severity": "page", "instance": "node-a", "service": "platform",
         "team": "sre"},
    )
    wait_for(lambda: ("#game-server-alerts", "[FIRING:1] PodRestarting game-server") in titles(stack.slack())
             and ("#sre-oncall", "[FIRING:1] NodeMemoryHigh platform") in titles(stack.slack()),
             "the alerts outside the maintenance")
    time.sleep(2)
    sent = titles(stack.slack())
    assert not {t for t in sent if "EndpointsDown" in t[1] or "PodRestarting matchmaking" in t[1]}, sent
    assert not [e for e in stack.pagerduty() if "EndpointsDown" in e["summary"]]
    for alertname in ("EndpointsDown", "PodRestarting"):
        state = stack.alert_state(alertname, "matchmaking")
        assert state["state"] == "suppressed" and state["inhibitedBy"], alertname
    assert stack.alert_state("MaintenanceWindow", "matchmaking")["state"] == "active"
