"""The budget policy's enforcement use case with the real store (in memory) and recording Slack and PagerDuty:
what it starts, records and says, once per episode."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gamesre.app import enforcement
from gamesre.app.enforcement import EnforcementPorts
from gamesre.core.services import load_services
from gamesre.integrations.store import SREStore
from gamesre.slo.spec import load_policies, load_slos
from tests.fakes.memory_store import memory_store
from tests.fakes.notifier import RecordingNotifier

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)  # 12:00 KST
PROMOTED = NOW - timedelta(hours=2)


@dataclass
class Pager:
    events: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False

    def trigger(self, **event: Any) -> str:
        if self.down:
            raise ConnectionError("events.pagerduty.com unreachable")
        self.events.append(event)
        return str(event["dedup_key"])


@dataclass
class Rig:
    store: SREStore = field(default_factory=memory_store)
    notifier: RecordingNotifier = field(default_factory=RecordingNotifier)
    pager: Pager = field(default_factory=Pager)
    now: datetime = NOW

    @property
    def ports(self) -> EnforcementPorts:
        return EnforcementPorts(store=self.store, notifier=self.notifier, pager=lambda: self.pager,
                                clock=lambda: self.now, services=load_services(), slos=load_slos(),
                                policy=load_policies())

    def publish(self, service: str, slo: str, state: str, at: datetime, consumed: float = 0.83) -> None:
        self.store.publish_state("slo", slo, state, at, [], {"budget_remaining_adjusted": 1 - consumed})
        self.store.publish_state("service", service, state, at, [], {"service": service, "state": state,
                                                                     "slo_states": {slo: state}})

    def burn(self, slo: str, since: datetime, bad: float = 0.02) -> None:
        """1,000 events a minute for 8 hours before NOW, `bad` of them failing from `since` on."""
        rows = []
        for m in range(8 * 60, -1, -1):
            at = NOW - timedelta(minutes=m)
            rows.append((int(at.timestamp()), 1000.0 * (1 - bad) if at >= since else 1000.0, 1000.0))
        self.store.upsert_ledger(slo, rows)

    def deployed(self, service: str, deployment_id: str, version: str, at: datetime) -> None:
        self.store.upsert_deployment({
            "id": deployment_id, "service": service, "version": version, "image": "i", "previous_version": "1.5.0",
            "strategy": "canary", "stages": ["prod"], "backend": "local", "change_ticket": "CHG-1",
            "requested_by": "ci", "dry_run": False, "forced": False, "outcome": "promoted",
            "requested_at": at - timedelta(minutes=5), "finished_at": at})


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_act_starts_the_automatic_rollback_once_per_episode_with_the_evidence(rig: Rig) -> None:
    rig.deployed("game-server", "d1", "1.6.66", PROMOTED)
    rig.burn("availability", PROMOTED + timedelta(minutes=2))
    rig.publish("game-server", "availability", "deploy_freeze", NOW - timedelta(hours=1))
    rig.publish("game-server", "availability", "rollback", NOW)
    runs = enforcement.evaluate(rig.ports)
    run_id = "budget-rollback__game-server__20261207T030000Z"
    assert [(r["trigger_dag_id"], r["trigger_run_id"]) for r in runs] == [("game_service_deploy", run_id)]
    conf = runs[0]["conf"]
    assert {k: conf[k] for k in ("kind", "service", "rollback_of", "change_ticket", "requested_by")} == {
        "kind": "automatic-rollback", "service": "game-server", "rollback_of": "d1",
        "change_ticket": f"POLICY-{int(NOW.timestamp())}", "requested_by": "budget-policy"}
    assert conf["cause"]["policy"]["evidence"]["slos"]["availability"]["burn_before"] == 0.0
    decision = rig.store.policy_actions("game-server")[0]
    assert (decision["action"], decision["episode_start"], decision["deployment_id"]) == ("rollback", NOW, run_id)
    text = rig.notifier.messages[-1]["text"]
    assert rig.notifier.messages[-1]["channel_id"] == "C07GAMESRV1"
    assert text.startswith(":rewind: Budget policy: rolling back game-server 1.6.66 -> 1.5.0 (deployment d1). 83% "
                           "of the budget consumed; the burn began at 01:02 UTC, after 1.6.66 was promoted at 01:00")
    rig.now = NOW + timedelta(hours=1)
    rig.publish("game-server", "availability", "rollback", rig.now)  # the same episode, still spent
    assert enforcement.evaluate(rig.ports) == [] and len(rig.store.policy_actions("game-server")) == 1


def test_an_open_incident_gets_the_decision_and_lends_its_id_as_the_change_ticket(rig: Rig) -> None:
    rig.store.upsert_incident({"id": "INC-20261207-003", "severity": "sev1", "title": "actions failing",
                               "services": ["game-server"], "opened_at": NOW - timedelta(minutes=30)})
    rig.deployed("game-server", "d1", "1.6.66", PROMOTED)
    rig.burn("availability", PROMOTED)
    rig.publish("game-server", "availability", "rollback", NOW)
    runs = enforcement.evaluate(rig.ports)
    assert runs[0]["conf"]["change_ticket"] == "INC-20261207-003"
    event = rig.store.incident_events("INC-20261207-003")[-1]
    assert (event["kind"], event["actor"]) == ("policy", "budget-policy") and "rolling back game-server" in event[
        "summary"]


def test_without_a_suspect_the_owners_are_paged_once_and_nothing_is_started(rig: Rig) -> None:
    rig.deployed("game-server", "d1", "1.6.66", PROMOTED)
    rig.burn("availability", PROMOTED - timedelta(hours=1))  # the burn began before the promotion
    rig.publish("game-server", "availability", "rollback", NOW)
    assert enforcement.evaluate(rig.ports) == []
    assert [e["dedup_key"] for e in rig.pager.events] == ["budget-policy/game-server/20261207T0300"]
    assert "the burn began at 00:00 UTC, before 1.6.66 was promoted at 01:00 UTC" in rig.pager.events[0]["summary"]
    assert rig.notifier.messages[-1]["text"].startswith(":rotating_light: Budget policy: nothing to roll back for "
                                                       "game-server. 83% of the budget consumed, but the burn began")
    assert enforcement.evaluate(rig.ports) == [] and len(rig.pager.events) == 1


def test_a_pager_that_is_down_is_said_in_the_sre_channel(rig: Rig) -> None:
    rig.pager.down = True
    rig.publish("game-server", "availability", "rollback", NOW)  # and no deploy at all
    assert enforcement.evaluate(rig.ports) == []
    assert rig.store.policy_actions("game-server")[0]["action"] == "page"
    assert rig.notifier.messages[-1]["text"].startswith(":warning: the page for game-server was NOT sent")


def test_a_stale_published_state_decides_nothing(rig: Rig) -> None:
    rig.deployed("game-server", "d1", "1.6.66", PROMOTED)
    rig.burn("availability", PROMOTED)
    rig.publish("game-server", "availability", "rollback", NOW - timedelta(hours=3))
    assert enforcement.evaluate(rig.ports) == [] and rig.store.policy_actions() == []


def test_propose_asks_a_person_and_records_the_answer(rig: Rig) -> None:
    rig.deployed("matchmaking", "m1", "2.1.0", PROMOTED)
    rig.burn("matchmaking-success", PROMOTED, bad=0.2)
    rig.publish("matchmaking", "matchmaking-success", "rollback", NOW)
    runs = enforcement.evaluate(rig.ports, ["matchmaking"])
    assert [(r["trigger_dag_id"], r["trigger_run_id"]) for r in runs] == [
        ("budget_policy_approval", "proposal__budget-rollback__matchmaking__20261207T030000Z")]
    proposal = runs[0]["conf"]
    assert proposal["deploy_conf"]["rollback_of"] == "m1" and proposal["episode_start"] == NOW.isoformat()
    assert "Approve or reject in the Airflow UI" in rig.notifier.messages[-1]["text"]
    assert rig.store.policy_actions("matchmaking")[0]["action"] == "propose"

    assert enforcement.answered(rig.ports, "matchmaking", proposal["episode_start"], proposal["run_id"],
                                ["Roll back"], {"id": "7", "name": "kim"}) is True
    decision = rig.store.policy_actions("matchmaking")[0]
    assert (decision["action"], decision["deployment_id"]) == ("rollback", proposal["run_id"])
    assert decision["details"]["answer"]["by"] == "kim"
    assert "was approved by kim" in rig.notifier.messages[-1]["text"]
    assert enforcement.answered(rig.ports, "matchmaking", proposal["episode_start"], proposal["run_id"], ["Keep"],
                                None) is False
    assert "rejected by nobody in time (the default applies)" in rig.notifier.messages[-1]["text"]


def test_the_run_it_starts_is_a_valid_rollback_request_of_the_deploy_dag(rig: Rig) -> None:
    """The conf goes through the deploy use case's own validation (kind automatic-rollback, the cause kept)."""
    from gamesre.app.deploy import DeployConfigs, DeployPorts, validate
    from gamesre.calendar import load_calendar
    from gamesre.deploy.config import load_deploy_config

    rig.deployed("game-server", "d1", "1.6.66", PROMOTED)
    rig.burn("availability", PROMOTED)
    rig.publish("game-server", "availability", "rollback", NOW)
    run = enforcement.evaluate(rig.ports)[0]
    services = load_services()
    deploy_ports = DeployPorts(store=rig.store, alertmanager=None, backend=None, notifier=rig.notifier,  # type: ignore[arg-type]
                               clock=lambda: NOW, run_url=str, configs=DeployConfigs(
                                   services=services, deploy=load_deploy_config(), policy=load_policies(),
                                   slos=load_slos(), calendar=load_calendar(services=services)))
    request = validate(deploy_ports, run["conf"], run["trigger_run_id"], "airflow")
    assert (request.kind, request.version, request.rollback_of) == ("automatic-rollback", "1.5.0", "d1")
    assert rig.store.deployment(run["trigger_run_id"])["cause"]["policy"]["state"] == "rollback"
