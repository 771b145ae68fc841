"""The deploy use case with in-memory ports: validation, gates gathered then judged, the rollout, and the end
(including the safety net that rolls back a stage left half done)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gamesre.app.deploy import (
    ControlRefused,
    DeployBlocked,
    DeployConfigs,
    DeployPorts,
    DeployRejected,
    DeployRolledBack,
    approval_answered,
    approval_ask,
    approval_unanswered,
    check_gates,
    finalize,
    request_control,
    start_stage,
    step_progress,
    step_verdict,
    succeeded,
    validate,
)
from gamesre.calendar import load_calendar
from gamesre.core.errors import OutsideSystemError
from gamesre.core.services import load_services
from gamesre.deploy.backend import BackendStatus, Cohorts, DeployBackend, DeployBackendError
from gamesre.deploy.config import load_deploy_config
from gamesre.deploy.request import InvalidDeployRequest
from gamesre.slo.spec import load_policies, load_slos
from tests.fakes.memory_store import memory_store
from tests.fakes.notifier import RecordingNotifier

NOW = datetime(2026, 3, 18, 2, 0, tzinfo=UTC)  # Wednesday 11:00 KST: no maintenance, no evening peak
RUN = "manual__deploy-1"


@dataclass
class FakeBackend(DeployBackend):
    """Traffic moves in memory; `fail` names a method that raises like a backend that cannot act."""

    kind: str = "fake"
    stable: str = "1.5.0"
    candidate: str | None = None
    weight: int = 0
    calls: list[str] = field(default_factory=list)
    fail: str = ""

    def _do(self, what: str) -> None:
        self.calls.append(what)
        if self.fail and what.startswith(self.fail):
            raise DeployBackendError(f"fake backend: {what} failed")

    def status(self) -> BackendStatus:
        return BackendStatus(self.stable, self.candidate, self.weight, True, f"weight {self.weight}")

    def prepare(self, version: str, plan: Any) -> None:
        self._do(f"prepare {version}")
        self.candidate = version

    def shift(self, step: int) -> None:
        self._do(f"shift {step}")
        self.weight = [10, 25, 50, 100][step]

    def promote(self) -> None:
        self._do("promote")
        self.stable, self.candidate, self.weight = str(self.candidate), None, 0

    def rollback(self, reason: str) -> None:
        self._do("rollback")
        self.candidate, self.weight = None, 0

    def cohorts(self) -> Cohorts:
        return Cohorts({"version": str(self.candidate)}, {"version": self.stable})

    def synthetic_traffic(self, seconds: float) -> bool:
        self.calls.append(f"smoke {seconds:g}")
        return True


@dataclass
class FakeAlertmanager:
    alerts_now: list[Any] = field(default_factory=list)
    down: bool = False

    def alerts(self, filter: Any = ()) -> list[Any]:
        if self.down:
            raise OutsideSystemError("Alertmanager at http://am is unreachable: ConnectionError")
        return self.alerts_now


@pytest.fixture
def ports() -> DeployPorts:
    services = load_services()
    configs = DeployConfigs(services=services, deploy=load_deploy_config(), policy=load_policies(),
                            slos=load_slos(), calendar=load_calendar(services=services))
    backends: dict[tuple[str, str], FakeBackend] = {}
    built = DeployPorts(store=memory_store(), alertmanager=FakeAlertmanager(),
                        backend=lambda service, stage: backends.setdefault((service, stage), FakeBackend()),
                        notifier=RecordingNotifier(), clock=lambda: NOW, configs=configs,
                        run_url=lambda run_id: f"http://airflow/runs/{run_id}", sleep=lambda s: None)
    built.store.publish_state("service", "game-server", "normal", NOW - timedelta(minutes=20), [], {})
    return built


def conf(**changes: Any) -> dict[str, Any]:
    return {"service": "game-server", "version": "1.5.1", "stages": ["prod"], "change_ticket": "CHG-1",
            **changes}


def test_an_invalid_request_is_recorded_and_changes_nothing_else(ports) -> None:
    with pytest.raises(InvalidDeployRequest, match="version"):
        validate(ports, conf(version="not a tag!"), RUN, "ci")
    record = ports.store.deployment(RUN)
    assert record["outcome"] == "invalid" and "version" in record["reason"]
    assert ports.store.deploy_lock("game-server") is None


def test_gates_pass_take_the_lock_and_are_recorded_with_their_evidence(ports) -> None:
    request = validate(ports, conf(), RUN, "ci")
    result = check_gates(ports, request, "prod", RUN)
    assert [g["gate"] for g in result["gates"]] == ["lock", "page_alerts", "budget", "calendar", "incident"]
    assert all(g["passed"] for g in result["gates"]) and result["strictness"] == 1.0
    assert ports.store.deploy_lock("game-server")["run_id"] == RUN
    assert ports.store.deployment(RUN)["stage_log"][0]["gates"] == result["gates"]


def test_a_second_deploy_and_alertmanager_down_block_with_every_reason(ports) -> None:
    check_gates(ports, validate(ports, conf(), RUN, "ci"), "prod", RUN)
    ports.alertmanager.down = True  # type: ignore[attr-defined]
    other = validate(ports, conf(version="1.5.2"), "manual__deploy-2", "ci")
    with pytest.raises(DeployBlocked) as blocked:
        check_gates(ports, other, "prod", "manual__deploy-2")
    text = str(blocked.value)
    assert "lock: game-server is being deployed by run 'manual__deploy-1'" in text
    assert "page_alerts: cannot read the firing alerts (fail safe: blocked): Alertmanager at http://am" in text
    assert ports.store.deployment("manual__deploy-2")["outcome"] == "blocked"


def test_an_open_sev1_incident_blocks_prod_except_the_remedy_it_asked_for(ports) -> None:
    ports.store.upsert_incident({"id": "INC-20261125-001", "severity": "sev1", "title": "saves failing",
                                 "services": ["game-server"], "opened_at": NOW - timedelta(minutes=20)})
    ports.store.upsert_incident({"id": "INC-20261125-002", "severity": "sev2", "title": "queue slow",
                                 "services": ["matchmaking"], "opened_at": NOW - timedelta(minutes=5)})
    with pytest.raises(DeployBlocked, match=r"incident: incident open on the service: INC-20261125-001 \(sev1"):
        check_gates(ports, validate(ports, conf(), RUN, "ci"), "prod", RUN)
    ports.store.release_deploy_lock("game-server", RUN)
    remedy = validate(ports, conf(version="1.5.0", change_ticket="INC-20261125-001"), "manual__remedy", "sre")
    gate = check_gates(ports, remedy, "prod", "manual__remedy")["gates"][-1]
    assert gate["passed"] and gate["reason"].startswith("the remedy INC-20261125-001 asked for")
    ports.store.update_incident("INC-20261125-001", severity="sev2")  # lowered by a person: no longer blocks
    ports.store.release_deploy_lock("game-server", "manual__remedy")
    gate = check_gates(ports, validate(ports, conf(), "manual__3", "ci"), "prod", "manual__3")["gates"][-1]
    assert gate["passed"]
    assert gate["reason"] == "no Sev0/Sev1 incident is open on the service (1 of lower severity open)"


def test_a_stale_or_missing_budget_state_blocks(ports) -> None:
    ports.store.publish_state("service", "game-server", "normal", NOW - timedelta(hours=3), [], {})
    with pytest.raises(DeployBlocked, match=r"budget: .*stale"):
        check_gates(ports, validate(ports, conf(), RUN, "ci"), "prod", RUN)


def test_a_canary_passes_every_step_and_is_promoted(ports) -> None:
    request = validate(ports, conf(), RUN, "ci")
    check_gates(ports, request, "prod", RUN)
    state: dict[str, Any] | None = start_stage(ports, request, "prod", RUN)
    backend = ports.backend("game-server", "prod")
    assert backend.calls == ["prepare 1.5.1", "shift 0"] and state["step"] == 0
    steps = 0
    while state is not None:
        state = step_verdict(ports, request, "prod", RUN, state, {"decision": "pass", "reason": "ok"})
        steps += 1
    assert steps == 4 and backend.calls[-1] == "promote" and backend.stable == "1.5.1"
    result = finalize(ports, request, RUN)
    assert result["outcome"] == "promoted" and succeeded(result)
    assert result["previous_version"] == "1.5.0"
    assert ports.store.deploy_lock("game-server") is None
    message = ports.notifier.messages[-1]
    assert message["channel_id"] == "C07GAMESRV1" and "*promoted*" in message["text"]  # services.yaml's id
    evidence = ports.notifier.files[-1]
    assert evidence["channel_id"] == "C07GAMESRV1" and b"### canary 10%: pass" in evidence["content"]


def test_a_failing_step_rolls_back_at_once(ports) -> None:
    request = validate(ports, conf(), RUN, "ci")
    check_gates(ports, request, "prod", RUN)
    state = start_stage(ports, request, "prod", RUN)
    with pytest.raises(DeployRolledBack, match="prod canary 10%: regression: availability breached"):
        step_verdict(ports, request, "prod", RUN, state, {"decision": "fail", "reason": "availability breached"})
    assert ports.backend("game-server", "prod").calls[-1] == "rollback"
    result = finalize(ports, request, RUN)
    assert result["outcome"] == "rolled_back" and not succeeded(result)


def test_the_safety_net_rolls_back_a_stage_left_half_done(ports) -> None:
    request = validate(ports, conf(), RUN, "ci")
    check_gates(ports, request, "prod", RUN)
    start_stage(ports, request, "prod", RUN)  # then the rollout task dies: the stage stays `running`
    backend = ports.backend("game-server", "prod")
    assert backend.weight == 10
    result = finalize(ports, request, RUN)
    assert result["outcome"] == "failed" and "ended before every stage was promoted" in result["reason"]
    assert backend.calls[-1] == "rollback" and backend.weight == 0
    assert ports.store.deployment(RUN)["stage_log"][0]["outcome"] == "rolled_back"
    assert ports.store.deploy_lock("game-server") is None


def test_a_safety_rollback_that_fails_is_said_in_the_outcome(ports) -> None:
    request = validate(ports, conf(), RUN, "ci")
    check_gates(ports, request, "prod", RUN)
    start_stage(ports, request, "prod", RUN)
    ports.backend("game-server", "prod").fail = "rollback"
    result = finalize(ports, request, RUN)
    assert "the safety rollback of prod failed too" in result["reason"] and "check by hand" in result["reason"]


def test_a_dry_run_looks_at_the_lock_but_never_takes_it(ports) -> None:
    request = validate(ports, conf(dry_run=True), RUN, "ci")
    check_gates(ports, request, "prod", RUN)
    assert ports.store.deploy_lock("game-server") is None
    result = finalize(ports, request, RUN)
    assert result["outcome"] == "dry_run" and succeeded(result)


def test_a_run_whose_validation_crashed_is_recorded_as_failed(ports) -> None:
    result = finalize(ports, None, RUN)
    assert result["outcome"] == "failed"
    assert ports.store.deployment(RUN)["reason"] == "the run failed before its request was recorded"


# --- rollbacks ------------------------------------------------------------------------------------------------

INCIDENT = "INC-20260318-001"


def promoted_deploy(ports: DeployPorts) -> None:
    """deploy-1 took game-server from 1.5.0 to 1.6.66 (promoted): what the rollbacks below undo."""
    request = validate(ports, conf(version="1.6.66"), "deploy-1", "ci")
    check_gates(ports, request, "prod", "deploy-1")
    state: dict[str, Any] | None = start_stage(ports, request, "prod", "deploy-1")
    while state is not None:
        state = step_verdict(ports, request, "prod", "deploy-1", state, {"decision": "pass", "reason": "ok"})
    assert finalize(ports, request, "deploy-1")["outcome"] == "promoted"
    ports.backend("game-server", "prod").calls.clear()


def rollback_conf(**changes: Any) -> dict[str, Any]:
    return {"kind": "rollback", "service": "game-server", "rollback_of": "deploy-1", "change_ticket": INCIDENT,
            **changes}


def test_a_rollback_passes_only_the_lock_and_backend_gates_whatever_the_budget_and_incidents_say(ports) -> None:
    promoted_deploy(ports)
    ports.store.publish_state("service", "game-server", "rollback", NOW - timedelta(minutes=5), [], {})
    ports.store.upsert_incident({"id": "INC-20260318-009", "severity": "sev0", "title": "another incident",
                                 "services": ["game-server"], "opened_at": NOW - timedelta(minutes=3)})
    request = validate(ports, rollback_conf(), RUN, "incident:kim")
    record = ports.store.deployment(RUN)
    assert (record["kind"], record["rollback_of"]) == ("rollback", "deploy-1")
    gates = check_gates(ports, request, "prod", RUN)["gates"]
    assert [(g["gate"], g["passed"]) for g in gates] == [("lock", True), ("backend", True)]
    assert gates[1]["reason"] == "the backend answers: weight 0"


def test_a_rollback_to_what_already_serves_or_with_the_backend_away_is_blocked(ports) -> None:
    promoted_deploy(ports)
    request = validate(ports, rollback_conf(), RUN, "sre")
    ports.backend("game-server", "prod").stable = "1.5.0"  # someone rolled it back by hand already
    with pytest.raises(DeployBlocked, match=r"backend: the service already runs 1\.5\.0 everywhere: nothing to roll"):
        check_gates(ports, request, "prod", RUN)
    ports.store.release_deploy_lock("game-server", RUN)

    def away(service: str, stage: str) -> DeployBackend:
        raise DeployBackendError("local backend: HAProxy at 127.0.0.1:9999 refused the connection")

    ports.backend = away
    request = validate(ports, rollback_conf(), "manual__2", "sre")
    with pytest.raises(DeployBlocked, match="backend: the deploy backend cannot be read: local backend: HAProxy"):
        check_gates(ports, request, "prod", "manual__2")


def test_a_rollback_moves_all_traffic_at_once_and_tells_the_incident_that_asked_for_it(ports) -> None:
    promoted_deploy(ports)
    ports.store.upsert_incident({"id": INCIDENT, "severity": "sev1", "title": "actions failing",
                                 "services": ["game-server"], "opened_at": NOW - timedelta(minutes=10),
                                 "details": {"channel_id": "CINC1"}})
    request = validate(ports, rollback_conf(), RUN, "incident:kim")
    check_gates(ports, request, "prod", RUN)
    state = start_stage(ports, request, "prod", RUN)
    backend = ports.backend("game-server", "prod")
    assert backend.calls == ["prepare 1.5.0", "shift 0"]
    assert [s["label"] for s in state["plan"]["steps"]] == ["rolling batch to 100%"]
    assert step_verdict(ports, request, "prod", RUN, state, {"decision": "pass", "reason": "1.5.0 healthy"}) is None
    assert backend.calls[-1] == "promote" and backend.stable == "1.5.0"
    result = finalize(ports, request, RUN)
    assert result["outcome"] == "promoted" and result["previous_version"] == "1.6.66"
    event = ports.store.incident_events(INCIDENT)[-1]
    assert event["kind"] == "mitigation" and event["actor"] == "incident:kim"
    assert event["summary"].startswith(f"rollback of game-server to 1.5.0 (run {RUN}): promoted")
    assert event["details"]["rollback_of"] == "deploy-1"
    said = [m for m in ports.notifier.messages if m["channel_id"] == "CINC1"]
    assert len(said) == 1 and said[0]["text"].startswith(f":white_check_mark: *{INCIDENT}*: rollback of game-server")


def test_a_rollback_whose_verification_fails_keeps_the_old_version_and_fails_the_run(ports) -> None:
    promoted_deploy(ports)
    request = validate(ports, rollback_conf(), RUN, "sre")
    check_gates(ports, request, "prod", RUN)
    state = start_stage(ports, request, "prod", RUN)
    with pytest.raises(DeployRolledBack, match=r"rolled back to 1\.5\.0, but its verification did not pass"):
        step_verdict(ports, request, "prod", RUN, state, {"decision": "fail", "reason": "availability breached"})
    backend = ports.backend("game-server", "prod")
    assert "rollback" not in backend.calls and backend.stable == "1.5.0"  # never back to the suspect
    result = finalize(ports, request, RUN)
    assert result["outcome"] == "failed" and "may not be the cause" in result["reason"] and not succeeded(result)


def test_the_safety_net_finishes_a_rollback_left_half_done_rather_than_undoing_it(ports) -> None:
    promoted_deploy(ports)
    request = validate(ports, rollback_conf(), RUN, "sre")
    check_gates(ports, request, "prod", RUN)
    start_stage(ports, request, "prod", RUN)  # the task dies with all traffic on 1.5.0
    result = finalize(ports, request, RUN)
    backend = ports.backend("game-server", "prod")
    assert backend.calls[-1] == "promote" and backend.stable == "1.5.0"
    assert "the rollback to 1.5.0 was finished by the safety net" in result["reason"]


# --- approvals ---------------------------------------------------------------------------------------------------


def test_prod_asks_three_reviews_from_their_reviewers_with_the_facts_to_decide_on(ports) -> None:
    request = validate(ports, conf(stages=["staging", "prod"]), RUN, "ci")
    assert approval_ask(ports, request, "staging", "technical", RUN) is None  # staging needs no review
    check_gates(ports, request, "staging", RUN)
    ports.store.record_verdict(RUN, "staging", 0, "preview", "pass", "smoke traffic clean", {"slis": []})
    asks = {r: approval_ask(ports, request, "prod", r, RUN) for r in ("technical", "security", "business")}
    assert {r: a.users for r, a in asks.items() if a} == {
        "technical": ("sre-lead",), "security": ("security-lead",), "business": ("product-owner",)}
    ask = asks["security"]
    assert ask is not None and ask.timeout_s == 4 * 3600
    assert ask.subject == "Security review: deploy game-server 1.5.1 to prod"
    for fact in ("canary 10% → canary 25% → canary 50% → canary 100%", "Change ticket: CHG-1", "Requested by: ci",
                 "✅ `budget`", "preview: pass", "http://airflow/runs/manual__deploy-1"):
        assert fact in ask.body, fact
    assert ports.store.deploy_lock("game-server")["run_id"] == RUN  # staging's gates took it; asking looks only
    said = [m["text"] for m in ports.notifier.messages]
    assert any("waits for the *technical* review (sre-lead)" in t for t in said)


def test_a_dry_run_lists_the_reviews_a_deploy_would_need_and_asks_nobody(ports) -> None:
    request = validate(ports, conf(dry_run=True), RUN, "ci")
    assert approval_ask(ports, request, "prod", "technical", RUN) is None
    check_gates(ports, request, "prod", RUN)
    assert ports.store.deployment(RUN)["stage_log"][0]["approvals"] == [
        {"review": "technical", "reviewers": "sre-lead"}, {"review": "security", "reviewers": "security-lead"},
        {"review": "business", "reviewers": "product-owner"}]


def test_nobody_is_asked_to_review_what_the_gates_block(ports) -> None:
    ports.store.publish_state("service", "game-server", "deploy_freeze", NOW, [], {})
    request = validate(ports, conf(), RUN, "ci")
    with pytest.raises(DeployBlocked, match="stage prod blocked: budget"):
        approval_ask(ports, request, "prod", "technical", RUN)
    assert ports.store.deployment(RUN)["outcome"] == "blocked"
    assert ports.store.deploy_lock("game-server") is None  # looked at, never taken


def test_a_rejection_ends_the_deploy_with_the_reviewers_reason_and_the_other_reviews_stop(ports) -> None:
    request = validate(ports, conf(), RUN, "ci")
    approval_answered(ports, request, "prod", "technical", RUN, approved=True, user="sre-lead", reason="")
    with pytest.raises(DeployRejected, match="prod security review: rejected by security-lead: CVE-2026-1 open"):
        approval_answered(ports, request, "prod", "security", RUN, approved=False, user="security-lead",
                          reason="CVE-2026-1 open")
    record = ports.store.deployment(RUN)
    assert record["outcome"] == "rejected" and "CVE-2026-1" in record["reason"]
    assert "prod technical review: approved by sre-lead" in ports.notifier.messages[0]["text"]
    answers = [(r["action"], r["actor"], r["applied"]) for r in ports.store.deploy_controls(RUN)]
    assert answers == [("approve", "sre-lead", "prod technical review"),
                       ("reject", "security-lead", "prod security review")]
    with pytest.raises(DeployRejected, match="no longer asked: the deploy ended rejected"):
        approval_unanswered(ports, request, "prod", "business", RUN, timed_out=False)
    with pytest.raises(DeployBlocked, match="the deploy ended rejected"):  # the stage never starts
        check_gates(ports, request, "prod", RUN)
    with pytest.raises(DeployRejected, match="not asked: the deploy ended rejected"):  # a retried review
        approval_ask(ports, request, "prod", "business", RUN, attempt=2)
    result = finalize(ports, request, RUN)
    assert result["outcome"] == "rejected" and not succeeded(result)
    assert ports.backend("game-server", "prod").calls == []


def test_no_answer_in_time_blocks_the_deploy_never_approves_it(ports) -> None:
    request = validate(ports, conf(), RUN, "ci")
    with pytest.raises(DeployBlocked, match="no answer within 14400s: the stage is blocked"):
        approval_unanswered(ports, request, "prod", "business", RUN, timed_out=True)
    assert ports.store.deployment(RUN)["outcome"] == "blocked"


def test_an_abort_while_reviews_wait_ends_the_deploy_there(ports) -> None:
    request = validate(ports, conf(), RUN, "ci")
    request_control(ports, RUN, "abort", "kim", "wrong build")
    with pytest.raises(DeployRejected, match="aborted by kim: wrong build"):
        approval_unanswered(ports, request, "prod", "technical", RUN, timed_out=False)
    assert ports.store.deployment(RUN)["outcome"] == "aborted"
    assert ports.store.deploy_controls(RUN)[0]["applied"] == "while waiting for the prod technical review"


# --- people steering the rollout -------------------------------------------------------------------------------


def running(ports) -> tuple[Any, dict[str, Any]]:
    request = validate(ports, conf(), RUN, "ci")
    check_gates(ports, request, "prod", RUN)
    return request, start_stage(ports, request, "prod", RUN)


def test_a_control_request_is_recorded_said_and_refused_when_it_cannot_apply(ports) -> None:
    running(ports)
    with pytest.raises(ControlRefused, match="action: the deploy is not paused"):
        request_control(ports, RUN, "resume", "kim", "go on")
    assert ports.store.deploy_controls(RUN) == []
    taken = request_control(ports, RUN, "pause", "kim", "watching saves")
    assert (taken["action"], taken["actor"]) == ("pause", "kim")
    assert "paused by kim: watching saves" in ports.notifier.messages[-1]["text"]
    with pytest.raises(ControlRefused, match="run_id: no deploy with this run id"):
        request_control(ports, "nope", "abort", "kim", "x")


def test_an_abort_rolls_back_and_ends_the_deploy_aborted_with_who_and_why(ports) -> None:
    request, state = running(ports)
    control = request_control(ports, RUN, "abort", "kim", "players report crashes")
    event = {"decision": "aborted", "reason": "aborted by kim: players report crashes",
             "control": {"id": control["id"], "action": "abort"}}
    with pytest.raises(DeployRolledBack, match="prod canary 10%: aborted by kim"):
        step_verdict(ports, request, "prod", RUN, state, event)
    assert ports.backend("game-server", "prod").calls[-1] == "rollback"
    assert ports.store.deploy_controls(RUN)[0]["applied"] == "prod canary 10%"
    result = finalize(ports, request, RUN)
    assert result["outcome"] == "aborted" and "players report crashes" in result["reason"]
    notice = ports.notifier.messages[-1]["text"]
    assert ":octagonal_sign:" in notice
    assert "People: aborted by kim: players report crashes [prod canary 10%]" in notice


def test_promote_passes_one_step_and_promote_full_skips_the_rest_of_the_stage(ports) -> None:
    request, state = running(ports)
    backend = ports.backend("game-server", "prod")
    one = request_control(ports, RUN, "promote", "kim", "enough evidence")
    nxt = step_verdict(ports, request, "prod", RUN, state, {"decision": "pass", "reason": "promoted",
                                                            "control": {"id": one["id"], "action": "promote"}})
    assert nxt is not None and nxt["step"] == 1 and backend.weight == 25
    progress = step_progress("prod", state, {"decision": "pass", "reason": "promoted by kim"}, nxt)
    assert (progress["label"], progress["next"]) == ("canary 10%", "canary 25%")
    full = request_control(ports, RUN, "promote_full", "kim", "hotfix, all in")
    event = {"decision": "pass", "reason": "promoted fully", "control": {"id": full["id"], "action": "promote_full"}}
    assert step_verdict(ports, request, "prod", RUN, nxt, event) is None
    assert backend.calls[-2:] == ["shift 3", "promote"] and backend.stable == "1.5.1"
    assert [r["applied"] for r in ports.store.deploy_controls(RUN)] == ["prod canary 10%", "prod canary 25%"]


def test_a_request_the_run_never_took_is_marked_so_at_the_end(ports) -> None:
    request, state = running(ports)
    request_control(ports, RUN, "promote", "kim", "go")
    with pytest.raises(DeployRolledBack):
        step_verdict(ports, request, "prod", RUN, state, {"decision": "fail", "reason": "breach"})
    finalize(ports, request, RUN)
    assert ports.store.deploy_controls(RUN)[0]["applied"] == "not applied: the deploy ended rolled_back first"


def test_inconclusive_at_the_deadline_pauses_for_a_person_where_the_stage_says_so(ports) -> None:
    import copy
    from dataclasses import replace

    import yaml

    from gamesre.deploy.config import DEPLOY_PATH, parse_deploy_config

    raw = copy.deepcopy(yaml.safe_load(DEPLOY_PATH.read_text()))
    raw["stages"]["prod"].update(on_inconclusive="pause", decide_within="20m")
    ports.configs = replace(ports.configs, deploy=parse_deploy_config(raw))
    request, state = running(ports)
    held = step_verdict(ports, request, "prod", RUN, state, {"decision": "timed_out", "reason": "saves: 11 of 40"})
    assert held is not None and held["step"] == 0 and held["held"] and held["max_pause_s"] == 1200
    pause = ports.store.deploy_controls(RUN)[-1]
    assert (pause["action"], pause["actor"]) == ("pause", "analysis") and "saves: 11 of 40" in pause["reason"]
    assert ports.backend("game-server", "prod").weight == 10  # the step holds its traffic
    assert ":pause_button:" in ports.notifier.messages[-1]["text"]
    with pytest.raises(DeployRolledBack, match="analysis inconclusive at the deadline"):  # no second hold
        step_verdict(ports, request, "prod", RUN, held, {"decision": "timed_out", "reason": "still 20 of 40"})
    assert finalize(ports, request, RUN)["outcome"] == "timed_out"


def test_a_person_promoting_a_held_step_moves_on_without_the_hold(ports) -> None:
    request, state = running(ports)
    promote = request_control(ports, RUN, "promote", "kim", "saves are rare at night; latency is clean")
    event = {"decision": "pass", "reason": "promoted", "control": {"id": promote["id"], "action": "promote"}}
    nxt = step_verdict(ports, request, "prod", RUN, {**state, "held": True, "max_pause_s": 1200}, event)
    assert nxt is not None and nxt["step"] == 1 and "held" not in nxt and "max_pause_s" not in nxt
