"""game_service_deploy end to end: REST-triggered runs in a real Airflow moving real traffic on the demo fleet.

The fleet's defective demo builds (demo/builds.yaml) stand in for bad releases: 1.6.66 fails 3% of player
requests, 1.6.400 adds 400 ms to every action. Everything is checked from outside: the run and task states
over the REST API, HAProxy's weights, the instances' builds, the SRE store's record and Slack.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from demo.airflow_env import AIRFLOW_USER, REPO_ROOT
from gamesre.core.time import KST
from tests.e2e.deploy.conftest import DeployStack
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

DAG = "game_service_deploy"
SERVICE = "game-server"


def fleet_state(stack: DeployStack, service: str = SERVICE) -> dict[str, Any]:
    """{instance: (version, HAProxy weight)} of the service's instances."""
    out = {}
    for name, info in stack.fleet["instances"].items():
        if info["service"] != service:
            continue
        build = requests.get(f"{info['url']}/admin/build", timeout=5).json()
        out[name] = (build["version"], stack.haproxy.get_weight(info["job"], name))
    return out


ASKED_SINCE: dict[tuple[str, str], float] = {}  # (run, review task) -> when it was first seen waiting
SETTLE_S = 8.0


def approve_asked(stack: DeployStack, run_id: str) -> list[str]:
    """Answer every review the run asks with Approve, each as the reviewer it is assigned to, once it has waited
    SETTLE_S seconds. Answered sooner, Airflow 3.3 can fail the review: the answer resumes the deferred task at
    once, and when the scheduler queues it before it has processed the exit of the process that deferred (7 s
    late on this loaded machine), it takes that exit for the new try's and fails it ("state changed
    externally"). The review then retries and is asked again (DeployApprovalOperator), and this answers it
    again: slower, not wrong. A person is never that fast."""
    done = []
    for detail in stack.airflow.pending_reviews(DAG, run_id):
        task_id = detail["task_instance"]["task_id"]
        if time.monotonic() - ASKED_SINCE.setdefault((run_id, task_id), time.monotonic()) < SETTLE_S:
            continue
        user = detail["assigned_users"][0]["id"]
        resp = stack.airflow.answer(DAG, run_id, task_id, "Approve", user=user, reason="e2e: looks good")
        assert resp.status_code == 200, resp.text
        done.append(task_id)
    return done


def wait_approving(stack: DeployStack, run_id: str, timeout: float = 600) -> dict[str, Any]:
    """Wait for the run to end, approving its reviews as they are asked (prod needs three)."""
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = stack.airflow.call("GET", f"dags/{DAG}/dagRuns/{run_id}").json()
        if run.get("state") in ("success", "failed"):
            return run
        approve_asked(stack, run_id)
        time.sleep(2)
    raise AssertionError(f"{DAG} run {run_id} did not finish within {timeout}s: {run}")


def run_deploy(stack: DeployStack, conf: dict[str, Any], timeout: float = 600) -> tuple[str, dict, dict]:
    run_id = stack.airflow.trigger(DAG, conf)
    run = wait_approving(stack, run_id, timeout=timeout)
    return run_id, run, stack.airflow.task_instances(DAG, run_id)


def outcome(stack: DeployStack, run_id: str) -> dict[str, Any]:
    return stack.airflow.xcom(DAG, run_id, "finalize")


def test_invalid_confs_fail_at_validation_and_change_nothing(deploy_stack: DeployStack) -> None:
    stack = deploy_stack
    stack.publish_state(SERVICE, "normal")
    before = fleet_state(stack)
    # The Params form rejects what its schema can: an unknown service never becomes a run.
    stack.airflow.wait_for_dag(DAG)
    stack.airflow.call("PATCH", f"dags/{DAG}", json={"is_paused": False}).raise_for_status()
    resp = stack.airflow.call("POST", f"dags/{DAG}/dagRuns",
                              json={"logical_date": None, "conf": {"service": "no-such-service", "version": "1.0.0"}})
    assert resp.status_code == 400, resp.text
    cases = {
        "version": {"service": SERVICE, "version": "docker.io/evil/game-server:1.5.1", "change_ticket": "CHG-1"},
        "force_reason": {"service": SERVICE, "version": "1.5.1", "change_ticket": "CHG-2", "force": True},
        "change_ticket": {"service": SERVICE, "version": "1.5.1"},
    }
    runs = {field: stack.airflow.trigger(DAG, conf) for field, conf in cases.items()}
    for field, run_id in runs.items():
        run = stack.airflow.wait(DAG, run_id, timeout=180)
        tis = stack.airflow.task_instances(DAG, run_id)
        assert run["state"] == "failed", field
        assert tis["validate"]["state"] == "failed", field
        assert tis["rollout_prod"]["state"] in ("upstream_failed", "skipped"), tis["rollout_prod"]
        result = outcome(stack, run_id)
        assert result["outcome"] == "invalid", result
        assert f"{field}:" in result["reason"], result
        assert f"{field}:" in stack.airflow.task_log(DAG, run_id, "validate")
        assert stack.store.deployment(run_id)["outcome"] == "invalid"
    assert fleet_state(stack) == before


def test_a_dry_run_evaluates_the_gates_and_changes_nothing(deploy_stack: DeployStack) -> None:
    stack = deploy_stack
    stack.publish_state(SERVICE, "normal")
    before = fleet_state(stack)
    run_id, run, tis = run_deploy(stack, {"service": SERVICE, "version": "1.5.1", "change_ticket": "CHG-5",
                                          "dry_run": True}, timeout=300)
    assert run["state"] == "success", {t: ti["state"] for t, ti in tis.items()}
    assert {tis[f"gates_{s}"]["state"] for s in ("dev", "staging", "prod")} == {"success"}
    result = outcome(stack, run_id)
    assert result["outcome"] == "dry_run", result
    plan = stack.airflow.xcom(DAG, run_id, "rollout_prod")["plan"]
    assert [s["weight"] for s in plan["steps"]] == [10, 25, 50, 100]
    assert fleet_state(stack) == before and stack.store.deploy_lock(SERVICE) is None
    assert stack.store.verdicts(run_id) == []


def test_deploy_during_a_freeze_is_blocked(deploy_stack: DeployStack, slack_sink) -> None:
    stack = deploy_stack
    stack.publish_state(SERVICE, "deploy_freeze", {"availability": "deploy_freeze"})
    before = fleet_state(stack)
    slack_sink.clear()
    run_id, run, tis = run_deploy(stack, {"service": SERVICE, "version": "1.5.1", "stages": ["prod"],
                                          "change_ticket": "CHG-10"})
    assert run["state"] == "failed"
    # nobody is asked to review what the gates block: the reviews fail with the gates' reason
    assert {tis[f"approve_prod_{r}"]["state"] for r in ("technical", "security", "business")} == {"failed"}
    assert stack.airflow.pending_reviews(DAG, run_id) == []
    assert tis["gates_prod"]["state"] == tis["rollout_prod"]["state"] == "upstream_failed"
    result = outcome(stack, run_id)
    assert result["outcome"] == "blocked" and "deploy freeze" in result["reason"], result
    assert fleet_state(stack) == before
    assert stack.store.deploy_lock(SERVICE) is None  # released by finalize
    assert any("blocked" in m.get("text", "") and "1.5.1" in m.get("text", "") for m in slack_sink.messages())


@pytest.mark.parametrize(("version", "failing_slis"), [
    ("1.6.66", {"availability", "error-rate", "data-save-success"}),  # 3% of player requests (saves too) fail
    ("1.6.400", {"latency"}),  # +400 ms on every action
])
def test_a_bad_canary_is_rolled_back_and_stable_traffic_restored(deploy_stack: DeployStack, slack_sink,
                                                                  version: str, failing_slis: set[str]) -> None:
    stack = deploy_stack
    stack.publish_state(SERVICE, "normal")
    before = fleet_state(stack)
    slack_sink.clear()
    run_id, run, tis = run_deploy(stack, {"service": SERVICE, "version": version, "stages": ["prod"],
                                          "change_ticket": "CHG-20"})
    assert run["state"] == "failed"
    assert tis["rollout_prod"]["state"] == "failed"
    assert tis["finalize"]["state"] == "success"
    result = outcome(stack, run_id)
    assert result["outcome"] == "rolled_back", result
    assert fleet_state(stack) == before  # every instance on the stable build, the canary at weight 0 again

    record = stack.store.deployment(run_id)
    stage = record["stage_log"][0]
    assert stage["stage"] == "prod" and stage["outcome"] == "rolled_back"
    assert record["rolled_back_at"] is not None and record["previous_version"] == before["gs-stable-1"][0]
    verdicts = stack.store.verdicts(run_id)
    assert verdicts and verdicts[-1]["decision"] == "fail"
    failed = {s["slo"] for s in verdicts[-1]["evidence"]["slis"] if s["decision"] == "fail"}
    assert failed and failed <= failing_slis, verdicts[-1]["reason"]
    sli = next(s for s in verdicts[-1]["evidence"]["slis"] if s["decision"] == "fail")
    assert sli["rule"] in ("sprt_reject", "fast_abort")
    assert "increase(" in sli["queries"]["candidate"]["total"] and f'version="{version}"' in \
        sli["queries"]["candidate"]["total"]
    assert max(sli["statistic"]["llr"], sli["statistic"]["llr_fast"]) >= sli["statistic"]["sprt_upper"]
    assert any("rolled_back" in m.get("text", "") and version in m.get("text", "") for m in slack_sink.messages())


def test_a_healthy_version_is_promoted_through_every_stage(deploy_stack: DeployStack, slack_sink, tmp_path) -> None:
    """Shipped the way CI ships: scripts/trigger_deploy.py gets a token, triggers, follows and exits 0."""
    stack = deploy_stack
    stack.publish_state(SERVICE, "normal")
    slack_sink.clear()
    run_id = "ci__game-server__1.5.1__e2e"
    env = {**os.environ, "AIRFLOW_URL": stack.airflow.url, "AIRFLOW_USERNAME": AIRFLOW_USER,
           "AIRFLOW_PASSWORD": stack.airflow.password}
    client = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "scripts" / "trigger_deploy.py"), "--service", SERVICE, "--version", "1.5.1",
         "--change-ticket", "CHG-30", "--canary-steps", "50,100", "--run-id", run_id, "--poll", "2", "--json"],
        env=env, stdout=(tmp_path / "stdout").open("w"), stderr=(tmp_path / "stderr").open("w"), text=True)
    try:
        # While it runs, a second deploy of the same service is rejected by the lock gate, naming the first run.
        deadline = time.monotonic() + 120
        while stack.store.deploy_lock(SERVICE) is None and time.monotonic() < deadline:
            time.sleep(1)
        assert stack.store.deploy_lock(SERVICE)["run_id"] == run_id
        second_id, second, _ = run_deploy(stack, {"service": SERVICE, "version": "1.5.2", "stages": ["dev"],
                                                  "change_ticket": "CHG-31"}, timeout=180)
        assert second["state"] == "failed"
        rejected = outcome(stack, second_id)
        assert rejected["outcome"] == "blocked" and run_id in rejected["reason"], rejected
        deadline = time.monotonic() + 900
        while client.poll() is None and time.monotonic() < deadline:  # prod waits for its three reviews
            approve_asked(stack, run_id)
            time.sleep(2)
        client.wait(timeout=60)
    finally:
        client.kill()
    stdout, stderr = (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()
    assert client.returncode == 0, stderr
    assert json.loads(stdout.strip().splitlines()[-1])["outcome"] == "promoted"
    assert "rollout_prod" in stderr  # progress lines, one per task state change

    tis = stack.airflow.task_instances(DAG, run_id)
    assert stack.airflow.call("GET", f"dags/{DAG}/dagRuns/{run_id}").json()["state"] == "success", \
        {t: ti["state"] for t, ti in tis.items()}
    state = fleet_state(stack)
    assert {v for v, _ in state.values()} == {"1.5.1"}
    assert state["gs-canary-1"][1] == 0 and all(w > 0 for n, (_, w) in state.items() if n != "gs-canary-1")
    record = stack.store.deployment(run_id)
    assert record["outcome"] == "promoted" and record["previous_version"] == "1.4.2"
    assert [e["stage"] for e in record["stage_log"]] == ["dev", "staging", "prod"]
    assert all(e["outcome"] == "promoted" for e in record["stage_log"])
    assert record["requested_at"] <= record["started_at"] <= record["finished_at"]
    labels = [(v["stage"], v["step_label"], v["decision"]) for v in stack.store.verdicts(run_id)]
    assert labels == [("dev", "preview", "pass"), ("staging", "preview", "pass"), ("prod", "canary 50%", "pass"),
                      ("prod", "canary 100%", "pass")]
    assert stack.store.deploy_lock(SERVICE) is None
    assert any("promoted" in m.get("text", "") for m in slack_sink.messages())


def test_an_incident_rolls_the_suspect_deploy_back_on_the_live_fleet(deploy_stack: DeployStack, slack_sink) -> None:
    """The incident's `rollback` action (incident_action over REST) starts a rollback run of game_service_deploy: all
    traffic back on the version the suspect replaced, the suspect's instances back too, recorded in the deployment
    (kind rollback, rollback_of) and on the incident's timeline. After the test above, the suspect is its 1.5.1."""
    stack = deploy_stack
    stack.publish_state(SERVICE, "rollback")  # 80% of the budget gone: a rollback is never blocked by it
    live = [d for d in stack.store.deployments(service=SERVICE) if d["outcome"] == "promoted"]
    if not live or live[-1]["kind"] != "deploy":  # run alone: ship the suspect first
        stack.publish_state(SERVICE, "normal")
        shipped, run, _ = run_deploy(stack, {"service": SERVICE, "version": "1.5.1", "stages": ["prod"],
                                             "canary_steps": [100], "change_ticket": "CHG-40"})
        assert run["state"] == "success", outcome(stack, shipped)
        stack.publish_state(SERVICE, "rollback")
        live = [stack.store.deployment(shipped)]
    suspect = live[-1]
    old, bad = suspect["previous_version"], suspect["version"]
    assert {v for v, _ in fleet_state(stack).values()} == {bad}
    incident_id = f"INC-{datetime.now(KST):%Y%m%d}-901"
    created = requests.post(f"{slack_sink.url}/api/conversations.create",
                            json={"name": f"inc-e2e-rollback-{int(time.time())}"}, timeout=5).json()
    channel_id = created["channel"]["id"]  # the incident's channel, as its assemble step would have made it
    stack.store.upsert_incident({"id": incident_id, "severity": "sev1", "title": f"actions failing since {bad}",
                                 "services": [SERVICE], "team": "game-server", "opened_at": datetime.now(UTC),
                                 "details": {"channel_id": channel_id}})
    stack.airflow.call("PATCH", f"dags/{DAG}", json={"is_paused": False}).raise_for_status()
    slack_sink.clear()

    action = stack.airflow.trigger("incident_action", {"incident_id": incident_id, "action": "rollback",
                                                       "text": "errors since the promotion", "requested_by": "kim"})
    assert stack.airflow.wait("incident_action", action, timeout=180)["state"] == "success"
    asked = next(e for e in stack.store.incident_events(incident_id) if e["kind"] == "mitigation")
    assert asked["summary"].startswith(f"rollback of {SERVICE} {bad} -> {old} asked for by kim (deployment "
                                       f"{suspect['id']})")
    rollback_id = asked["details"]["deploy_run_id"]
    run = stack.airflow.wait(DAG, rollback_id, timeout=300)
    assert run["state"] == "success", outcome(stack, rollback_id)

    state = fleet_state(stack)
    assert {v for v, _ in state.values()} == {old}  # every instance back on the old version
    assert state["gs-canary-1"][1] == 0 and all(w > 0 for n, (_, w) in state.items() if n != "gs-canary-1")
    record = stack.store.deployment(rollback_id)
    assert (record["kind"], record["rollback_of"], record["version"], record["previous_version"]) == (
        "rollback", suspect["id"], old, bad)
    assert (record["outcome"], record["change_ticket"], record["requested_by"]) == ("promoted", incident_id, "kim")
    prod = record["stage_log"][0]
    assert [g["gate"] for g in prod["gates"]] == ["lock", "backend"] and all(g["passed"] for g in prod["gates"])
    # all traffic at once, with the fleet's whole capacity: every instance in one rolling batch
    assert [s["label"] for s in prod["plan"]["steps"]] == ["rolling batch to 100%"]
    assert [(v["step_label"], v["decision"]) for v in stack.store.verdicts(rollback_id)] == [
        ("rolling batch to 100%", "pass")]
    done = [e for e in stack.store.incident_events(incident_id) if e["kind"] == "mitigation"][-1]
    assert done["summary"].startswith(f"rollback of {SERVICE} to {old} (run {rollback_id}): promoted")
    assert done["details"]["deployment"] == rollback_id and done["actor"] == "kim"
    said = [m["text"] for m in slack_sink.messages(channel_id)]
    assert said[0].startswith(f"*{incident_id}*: rollback of {SERVICE} {bad} -> {old} asked for by kim")
    assert said[1].startswith(f":white_check_mark: *{incident_id}*: rollback of {SERVICE} to {old}")
    assert any(f"Deploy {SERVICE} {old}: *promoted*" in m["text"] for m in slack_sink.messages("C07GAMESRV1"))
    stack.store.update_incident(incident_id, status="resolved", resolved_at=datetime.now(UTC))
    stack.publish_state(SERVICE, "normal")


def serving(stack: DeployStack, version: str, previous: str, deployment_id: str, promoted: datetime) -> None:
    """The fleet as a promotion of `version` over `previous` leaves it (every game-server instance on it, the canary
    without weight), and that deployment's record: what the budget policy finds after a bad build shipped."""
    for info in stack.fleet["instances"].values():
        if info["service"] == SERVICE:
            requests.put(f"{info['url']}/admin/build", json={"version": version}, timeout=5).raise_for_status()
    deadline = time.monotonic() + 60
    while {v for v, _ in fleet_state(stack).values()} != {version} and time.monotonic() < deadline:
        time.sleep(0.5)
    stack.store.upsert_deployment({
        "id": deployment_id, "service": SERVICE, "version": version, "image": f"demo:{version}",
        "previous_version": previous, "strategy": "canary", "stages": ["prod"], "backend": "local",
        "change_ticket": "CHG-50", "requested_by": "ci", "dry_run": False, "forced": False, "outcome": "promoted",
        "requested_at": promoted - timedelta(minutes=4), "finished_at": promoted})


def after_the_last_change(stack: DeployStack) -> datetime:
    """A promotion time after every change already recorded (the tests before this one shipped and rolled back):
    20 minutes ago when that is later."""
    done = [d["finished_at"] for d in stack.store.deployments(service=SERVICE) if d["finished_at"]]
    return max([datetime.now(UTC) - timedelta(minutes=20), *(t + timedelta(seconds=1) for t in done)])


def spent(stack: DeployStack, burning_since: datetime) -> None:
    """The availability ledger of the last 3 hours (healthy, then 2% of the actions failing from `burning_since`)
    and the service's published state `rollback` at 83% consumed, as slo_ingest and error_budget_report would
    leave them."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = []
    for m in range(180, -1, -1):
        at = now - timedelta(minutes=m)
        rows.append((int(at.timestamp()), 980.0 if at >= burning_since else 1000.0, 1000.0))
    stack.store.upsert_ledger("availability", rows)
    stack.store.publish_state("slo", "availability", "rollback", datetime.now(UTC), [],
                              {"budget_remaining_adjusted": 0.17})
    stack.publish_state(SERVICE, "normal")  # the episode before has ended
    stack.publish_state(SERVICE, "rollback", {"availability": "rollback"})


def test_the_budget_policy_rolls_a_spent_budgets_change_back_itself_or_when_a_person_approves(
        deploy_stack: DeployStack, slack_sink) -> None:
    """Act (game-server's mode): a policy-state asset event -> budget_policy_enforcement -> an automatic-rollback run
    -> the old version everywhere, with the evidence recorded and said. Propose (a run by hand with mode propose):
    the approval is a required action; approved over the REST API, the rollback runs."""
    stack, airflow = deploy_stack, deploy_stack.airflow
    promoted = after_the_last_change(stack)
    serving(stack, "1.5.1", "1.4.2", "e2e-policy-1", promoted)
    spent(stack, promoted.replace(second=0, microsecond=0))
    for dag in ("budget_policy_enforcement", "budget_policy_approval", DAG):
        airflow.wait_for_dag(dag)
        airflow.call("PATCH", f"dags/{dag}", json={"is_paused": False}).raise_for_status()
    slack_sink.clear()

    # the event error_budget_report emits after publishing, as the scheduler sees it
    assets = airflow.call("GET", "assets", params={"name_pattern": "error_budget_policy_state"}).json()["assets"]
    airflow.call("POST", "assets/events", json={"asset_id": assets[0]["id"], "extra": {"from": "e2e"}}
                 ).raise_for_status()
    decision = wait_for(lambda: stack.store.policy_actions(SERVICE), 120, "the policy's decision")[0]
    assert decision["action"] == "rollback" and decision["details"]["suspect"]["id"] == "e2e-policy-1"
    rollback_id = decision["deployment_id"]
    runs = airflow.call("GET", "dags/budget_policy_enforcement/dagRuns").json()["dag_runs"]
    enforced = max(runs, key=lambda r: r["run_after"])["dag_run_id"]
    assert airflow.wait("budget_policy_enforcement", enforced, timeout=120)["state"] == "success", \
        airflow.task_instances("budget_policy_enforcement", enforced)
    assert airflow.wait(DAG, rollback_id, timeout=300)["state"] == "success", outcome(stack, rollback_id)
    assert {v for v, _ in fleet_state(stack).values()} == {"1.4.2"}
    record = stack.store.deployment(rollback_id)
    assert (record["kind"], record["rollback_of"], record["requested_by"], record["outcome"]) == (
        "automatic-rollback", "e2e-policy-1", "budget-policy", "promoted")
    evidence = record["cause"]["policy"]["evidence"]["slos"]["availability"]
    assert evidence["burn_before"] == 0.0 and evidence["burn_after"] > 10  # 2% errors on a 0.1% budget: ~20x
    said = [m["text"] for m in slack_sink.messages("C07GAMESRV1")]
    assert any(t.startswith(":rewind: Budget policy: rolling back game-server 1.5.1 -> 1.4.2 (deployment "
                            "e2e-policy-1). 83% of the budget consumed; the burn began at") for t in said)
    assert any("Deploy game-server 1.4.2: *promoted*" in t for t in said)

    # Propose: the next bad build, shipped after that rollback, and a person decides
    promoted = after_the_last_change(stack)
    serving(stack, "1.5.1", "1.4.2", "e2e-policy-2", promoted)
    spent(stack, promoted.replace(second=0, microsecond=0))
    enforcement_run = airflow.trigger("budget_policy_enforcement", {"services": [SERVICE], "mode": "propose"})
    assert airflow.wait("budget_policy_enforcement", enforcement_run, timeout=180)["state"] == "success"
    proposal = stack.store.policy_actions(SERVICE)[-1]
    assert proposal["action"] == "propose" and proposal["details"]["suspect"]["id"] == "e2e-policy-2"
    approval_run = f"proposal__{proposal['details']['run_id']}"

    def required() -> list[dict[str, Any]]:
        """The required action, once its task waits for the answer (an answer while the task is still starting to
        wait makes Airflow kill it: seen when answering within a second of the action appearing)."""
        details = airflow.call("GET", "dags/~/dagRuns/~/hitlDetails").json().get("hitl_details") or []
        return [d for d in details if d["task_instance"]["dag_run_id"] == approval_run
                and d["task_instance"]["state"] in ("awaiting_input", "deferred")]

    waiting = wait_for(required, 120, "the approval among the required actions")[0]
    time.sleep(SETTLE_S)  # answered sooner, Airflow can fail the task it resumes (see approve_asked)
    assert waiting["subject"] == "Roll back game-server (e2e-policy-2)?" and waiting["options"] == ["Roll back", "Keep"]
    answer = airflow.call("PATCH", f"dags/budget_policy_approval/dagRuns/{approval_run}/taskInstances/approve/-1/"
                          "hitlDetails", json={"chosen_options": ["Roll back"]})
    assert answer.status_code == 200, answer.text
    assert airflow.wait("budget_policy_approval", approval_run, timeout=180)["state"] == "success"
    rollback_id = proposal["details"]["run_id"]
    assert airflow.wait(DAG, rollback_id, timeout=300)["state"] == "success", outcome(stack, rollback_id)
    assert {v for v, _ in fleet_state(stack).values()} == {"1.4.2"}
    answered = stack.store.policy_actions(SERVICE)[-1]
    assert (answered["action"], answered["deployment_id"]) == ("rollback", rollback_id)
    assert answered["details"]["answer"]["by"] == AIRFLOW_USER
    stack.publish_state(SERVICE, "normal")


def diagnose(stack: DeployStack, run_id: str) -> str:
    """The run's task states, its record and the logs of its tasks that ran and did not succeed: what a failing
    wait shows."""
    tis = stack.airflow.task_instances(DAG, run_id)
    record = stack.store.deployment(run_id) or {}
    lines = [f"{t}: {ti['state']} (try {ti['try_number']})" for t, ti in tis.items()]
    lines.append(f"record: {record.get('outcome')}: {record.get('reason')}")
    for t, ti in tis.items():
        if ti["state"] in ("failed", "up_for_retry", "deferred", "running"):
            try:
                log = stack.airflow.task_log(DAG, run_id, t, max(1, ti["try_number"]))
            except requests.HTTPError as exc:
                log = str(exc)
            lines.append(f"--- {t} log ---\n{log[-3000:]}")
    return "\n".join(lines)


def steer(stack: DeployStack, run_id: str, action: str, reason: str) -> str:
    """A deploy_control run (over REST, as the admin) that must be taken; returns its run id."""
    control = stack.airflow.trigger("deploy_control", {"run_id": run_id, "action": action, "reason": reason})
    assert stack.airflow.wait("deploy_control", control, timeout=120)["state"] == "success", \
        stack.airflow.task_log("deploy_control", control, "request")
    return control


def test_prod_waits_for_its_reviews_then_people_pause_promote_and_abort_it(deploy_stack: DeployStack,
                                                                           slack_sink) -> None:
    """Three reviews answered over the REST API by their reviewers (anyone else is refused), then the 25% step is
    paused (held past its pass), promoted by hand while paused (the 50% step follows, held too), resumed and aborted
    (rolled back at the next poll), each request recorded with its user and where it took effect."""
    stack, airflow = deploy_stack, deploy_stack.airflow
    calm(stack)
    before = fleet_state(stack)
    slack_sink.clear()
    run_id = airflow.trigger(DAG, {"service": SERVICE, "version": "1.5.3", "stages": ["prod"],
                                   "canary_steps": [25, 50, 100], "change_ticket": "CHG-60"})
    asked = three_waiting(stack, run_id, settle=False)
    by_task = {d["task_instance"]["task_id"]: d for d in asked}
    assert {t: [u["id"] for u in d["assigned_users"]] for t, d in by_task.items()} == {
        "approve_prod_technical": ["sre-lead"], "approve_prod_security": ["security-lead"],
        "approve_prod_business": ["product-owner"]}
    technical = by_task["approve_prod_technical"]
    assert technical["subject"] == f"Technical review: deploy {SERVICE} 1.5.3 to prod"
    assert "Change ticket: CHG-60" in technical["body"] and "canary 25% → canary 50% → canary 100%" in technical["body"]
    refused = airflow.answer(DAG, run_id, "approve_prod_technical", "Approve", user="security-lead", reason="me")
    assert refused.status_code == 403, refused.text
    assert len(airflow.pending_reviews(DAG, run_id)) == 3 and fleet_state(stack) == before  # still waiting
    assert any("waits for the *security* review (security-lead)" in m.get("text", "")
               for m in slack_sink.messages("C07GAMESRV1"))
    assert wait_for(lambda: sorted(approve_asked(stack, run_id)), 60, "the reviews answered") == sorted(by_task)

    def canary_weight() -> int:
        return fleet_state(stack)["gs-canary-1"][1]

    try:
        wait_for(lambda: canary_weight() > 0, 180, "the 25% step's traffic on the canary")
    except AssertionError:
        raise AssertionError(diagnose(stack, run_id)) from None
    at_25 = canary_weight()
    steer(stack, run_id, "pause", "watching the save latency")
    time.sleep(35)  # past the step's min_duration (30 s): a healthy build would have passed by now
    assert canary_weight() == at_25 and stack.store.verdicts(run_id) == []  # held
    steer(stack, run_id, "promote", "enough evidence")  # taken while paused: a person decided this step
    wait_for(lambda: canary_weight() > at_25, 60, "the 50% step after the promotion")
    first = stack.store.verdicts(run_id)[0]
    assert (first["step_label"], first["decision"]) == ("canary 25%", "pass")
    assert first["reason"] == f"promoted the current step by {AIRFLOW_USER}: enough evidence"
    steer(stack, run_id, "resume", "save latency is fine")  # the 50% step was held by the pause too
    steer(stack, run_id, "abort", "players report crashes")
    run = stack.airflow.wait(DAG, run_id, timeout=180)
    assert run["state"] == "failed"
    result = outcome(stack, run_id)
    assert result["outcome"] == "aborted" and "aborted by admin: players report crashes" in result["reason"], result
    assert fleet_state(stack) == before
    record = stack.store.deployment(run_id)
    controls = stack.store.deploy_controls(run_id)
    reviews = sorted((c["action"], c["actor"], c["applied"]) for c in controls if c["action"] == "approve")
    assert reviews == [("approve", "product-owner", "prod business review"),
                       ("approve", "security-lead", "prod security review"),
                       ("approve", "sre-lead", "prod technical review")]
    assert [(c["action"], c["actor"], c["applied"]) for c in controls if c["action"] != "approve"] == [
        ("pause", AIRFLOW_USER, None), ("promote", AIRFLOW_USER, "prod canary 25%"), ("resume", AIRFLOW_USER, None),
        ("abort", AIRFLOW_USER, "prod canary 50%")]
    abort = controls[-1]
    decided = stack.store.verdicts(run_id)[-1]
    assert decided["decision"] == "aborted"
    # the analysis took the abort at its next poll (every 5 s); the rollback followed when the task resumed
    assert (decided["decided_at"] - abort["requested_at"]).total_seconds() <= 5 + 2
    assert (record["rolled_back_at"] - abort["requested_at"]).total_seconds() <= 30
    assert any(":octagonal_sign:" in m.get("text", "") and "*aborted*" in m.get("text", "")
               for m in slack_sink.messages("C07GAMESRV1"))


def test_a_paused_step_still_rolls_a_breaching_build_back(deploy_stack: DeployStack) -> None:
    """Paused while its reviews wait, the 3%-error build's first step holds no regression: the analysis rolls it back
    at the breach, the pause notwithstanding."""
    stack = deploy_stack
    calm(stack)
    before = fleet_state(stack)
    run_id = stack.airflow.trigger(DAG, {"service": SERVICE, "version": "1.6.66", "stages": ["prod"],
                                         "canary_steps": [25, 100], "change_ticket": "CHG-80"})
    three_waiting(stack, run_id, settle=False)
    steer(stack, run_id, "pause", "hold every step: watch it by hand")
    run = wait_approving(stack, run_id, timeout=400)
    assert run["state"] == "failed"
    result = outcome(stack, run_id)
    assert result["outcome"] == "rolled_back" and "canary 25%: regression" in result["reason"], result
    verdict = stack.store.verdicts(run_id)[-1]
    pause = next(c for c in stack.store.deploy_controls(run_id) if c["action"] == "pause")
    assert verdict["decision"] == "fail" and verdict["decided_at"] > pause["requested_at"]
    assert fleet_state(stack) == before


def ci_client(stack: DeployStack, out: Any, *args: str) -> subprocess.Popen:
    """scripts/trigger_deploy.py as CI runs it (admin credentials from the environment), its output to `out`."""
    env = {**os.environ, "AIRFLOW_URL": stack.airflow.url, "AIRFLOW_USERNAME": AIRFLOW_USER,
           "AIRFLOW_PASSWORD": stack.airflow.password}
    return subprocess.Popen([sys.executable, str(REPO_ROOT / "scripts" / "trigger_deploy.py"), *args, "--poll", "2"],
                            env=env, stdout=out, stderr=subprocess.STDOUT, text=True)


def calm(stack: DeployStack) -> None:
    """Nothing in the way of a prod deploy of the service: a normal budget state, no open incident on it (a test
    before may have left one)."""
    stack.publish_state(SERVICE, "normal")
    for incident in stack.store.open_incidents(SERVICE):
        stack.store.update_incident(incident["id"], status="resolved", resolved_at=datetime.now(UTC))


def three_waiting(stack: DeployStack, run_id: str, settle: bool = True) -> list[dict[str, Any]]:
    """The run's three prod reviews once they wait (and, with `settle`, have waited SETTLE_S: see approve_asked)."""
    try:
        asked = wait_for(lambda: (lambda p: p if len(p) == 3 else None)(stack.airflow.pending_reviews(DAG, run_id)),
                         180, "the three reviews among the required actions")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnose(stack, run_id)}") from None
    if settle:
        time.sleep(SETTLE_S)
    return asked


def test_the_ci_client_shows_the_reviews_it_waits_for_and_ends_rejected_or_aborted(deploy_stack: DeployStack,
                                                                                    tmp_path) -> None:
    """Two CI deploys wait for their reviews at once (neither holds the deploy lock while it waits): a reviewer
    rejects one (its client exits 5), the client aborts the other (both clients exit 2). Nothing changed in prod."""
    stack = deploy_stack
    calm(stack)
    for dag in (DAG, "deploy_control"):  # the client triggers both; Airflow creates DAGs paused
        stack.airflow.wait_for_dag(dag)
        stack.airflow.call("PATCH", f"dags/{dag}", json={"is_paused": False}).raise_for_status()
    before = fleet_state(stack)
    request = ("--service", SERVICE, "--version", "1.5.3", "--stages", "prod", "--change-ticket", "CHG-70")
    stamp = int(time.time())
    rejected_id, aborted_id = f"ci__game-server__1.5.3__rejected-{stamp}", f"ci__game-server__1.5.3__aborted-{stamp}"
    logs = {name: tmp_path / f"{name}.log" for name in ("rejected", "aborted", "abort")}
    with contextlib.ExitStack() as opened:
        out = {name: opened.enter_context(path.open("w")) for name, path in logs.items()}
        clients = {name: ci_client(stack, out[name], *request, "--run-id", run_id)
                   for name, run_id in (("rejected", rejected_id), ("aborted", aborted_id))}
        for client in clients.values():
            opened.callback(client.kill)
        three_waiting(stack, rejected_id, settle=False)
        three_waiting(stack, aborted_id)
        answer = stack.airflow.answer(DAG, rejected_id, "approve_prod_business", "Reject", user="product-owner",
                                      reason="the event banner is not translated yet")
        assert answer.status_code == 200, answer.text
        aborter = ci_client(stack, out["abort"], "--abort", aborted_id, "--reason", "wrong build tagged")
        assert aborter.wait(timeout=240) == 2, logs["abort"].read_text()
        assert clients["rejected"].wait(timeout=240) == 5, logs["rejected"].read_text()
        assert clients["aborted"].wait(timeout=240) == 2, logs["aborted"].read_text()

    said = logs["rejected"].read_text()
    for line in ("waiting for the technical review before prod from sre-lead",
                 "waiting for the business review before prod from product-owner",
                 "business review before prod: Reject by product-owner: the event banner is not translated yet",
                 "result: rejected (exit 5)"):
        assert line in said, said
    record = stack.store.deployment(rejected_id)
    assert record["outcome"] == "rejected" and "rejected by product-owner" in record["reason"]
    assert stack.airflow.task_instances(DAG, rejected_id)["rollout_prod"]["state"] == "upstream_failed"

    said = logs["aborted"].read_text()
    assert "waiting for the security review before prod from security-lead" in said, said
    assert "result: aborted (exit 2)" in said and "result: aborted (exit 2)" in logs["abort"].read_text(), said
    record = stack.store.deployment(aborted_id)
    assert record["outcome"] == "aborted" and "aborted by admin: wrong build tagged" in record["reason"], record
    for run_id in (rejected_id, aborted_id):
        assert stack.airflow.pending_reviews(DAG, run_id) == []  # the other reviews stopped waiting
    assert fleet_state(stack) == before and stack.store.deploy_lock(SERVICE) is None
