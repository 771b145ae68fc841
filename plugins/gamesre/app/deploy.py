"""Guarded deploys of a game service: validate, gates, the staged rollout step by step, rollback, and the end.

The DAG (dags/game_service_deploy.py) and its StageRolloutOperator run these with the ports that
gamesre.airflow.deps builds. Every step is idempotent (DESIGN.md, decision 9): backends read before they act, the
record is an upsert by run id, and a verdict is an upsert by (run, stage, step).

The deployment record (SRE store table `deployment`, one row per run) is kept complete for DORA metrics and
incident timelines: request, gates, per-stage plan and steps, timings (requested, first traffic, finished,
rolled back), outcome and reason. Each step's verdict with its evidence is a `deploy_verdict` row.
"""
from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from gamesre.app.facts import AlertsPort, read_alerts
from gamesre.app.ports import Clock, Notifier
from gamesre.calendar import Calendar
from gamesre.core.services import ServiceCatalog
from gamesre.deploy.analysis import Thresholds, slis_for
from gamesre.deploy.approvals import ApprovalAsk, ask_text, describe_reviewers, required_reviews, reviewers_of
from gamesre.deploy.backend import DeployBackend
from gamesre.deploy.config import DeployConfig
from gamesre.deploy.control import ONE_SHOT, Control, control_state, refusal
from gamesre.deploy.gates import ROLLBACK_GATES, GateFacts, blocked, judge_gates
from gamesre.deploy.outcome import OUTCOMES_OK, decide_outcome, left_half_done
from gamesre.deploy.plan import RolloutPlan, build_plan
from gamesre.deploy.request import INCIDENT_ID, KINDS, DeployRequest, InvalidDeployRequest, parse_request
from gamesre.reports.deploy_report import evidence_markdown
from gamesre.slo.spec import Policy, SloCatalog

log = logging.getLogger(__name__)

LOCK_STALE_AFTER_S = 6 * 3600  # a lock this old belongs to a run that died without releasing it
EMOJI = {"promoted": ":white_check_mark:", "rolled_back": ":rewind:", "blocked": ":no_entry:",
         "timed_out": ":hourglass:", "invalid": ":x:", "failed": ":boom:", "dry_run": ":memo:",
         "rejected": ":no_entry_sign:", "aborted": ":octagonal_sign:"}


class DeployBlocked(RuntimeError):
    """A gate refused the stage; the message lists every failed gate with its reason."""


class DeployRolledBack(RuntimeError):
    """The analysis failed or timed out and the stage was rolled back; the message is the verdict."""


class DeployRejected(RuntimeError):
    """A reviewer rejected the stage (or the deploy ended while the review waited); the message says who and why."""


class ControlRefused(ValueError):
    """A request to steer a deploy that cannot be taken; the message names the field and why. Nothing recorded."""


class DeployStore(Protocol):
    def upsert_deployment(self, record: dict[str, Any]) -> None: ...

    def update_deployment(self, deployment_id: str, **fields: Any) -> None: ...

    def deployment(self, deployment_id: str) -> dict[str, Any] | None: ...

    def deploy_lock(self, service: str) -> dict[str, Any] | None: ...

    def acquire_deploy_lock(self, service: str, run_id: str, version: str, *,
                            stale_after_s: float) -> dict[str, Any] | None: ...

    def release_deploy_lock(self, service: str, run_id: str) -> bool: ...

    def current_state(self, scope: str, name: str) -> dict[str, Any] | None: ...

    def windows(self, start: datetime | None = None, end: datetime | None = None, *,
                include_cancelled: bool = False) -> list[dict[str, Any]]: ...

    def open_incidents(self, service: str | None = None) -> list[dict[str, Any]]: ...

    def incident(self, incident_key: str) -> dict[str, Any] | None: ...

    def add_incident_event(self, incident_key: str, kind: str, summary: str, *, actor: str = ...,
                           at: datetime | None = None, details: dict[str, Any] | None = None) -> None: ...

    def deployments(self, service: str | None = None, since: datetime | None = None,
                    ids: Sequence[str] | None = None) -> list[dict[str, Any]]: ...

    def record_verdict(self, deployment_id: str, stage: str, step: int, step_label: str, decision: str,
                       reason: str, evidence: dict[str, Any], *, decided_at: datetime | None = None) -> None: ...

    def verdicts(self, deployment_id: str) -> list[dict[str, Any]]: ...

    def add_deploy_control(self, deployment_id: str, action: str, actor: str, reason: str,
                           requested_at: datetime | None = None, applied: str | None = None) -> int: ...

    def deploy_controls(self, deployment_id: str) -> list[dict[str, Any]]: ...

    def mark_deploy_control(self, control_id: int, applied: str, applied_at: datetime | None = None) -> bool: ...


@dataclass(frozen=True)
class DeployConfigs:
    """The declarative files a deploy reads, parsed once per task."""

    services: ServiceCatalog
    deploy: DeployConfig
    policy: Policy
    slos: SloCatalog
    calendar: Calendar  # include/config/calendar.yaml, without the registered windows


@dataclass
class DeployPorts:
    store: DeployStore
    alertmanager: AlertsPort
    backend: Callable[[str, str], DeployBackend]  # (service, stage) -> the service's backend in that environment
    notifier: Notifier
    clock: Clock
    configs: DeployConfigs
    run_url: Callable[[str], str]  # a run id -> the run's page in the Airflow UI
    sleep: Callable[[float], None] = field(default=time.sleep)
    monotonic: Callable[[], float] = field(default=time.monotonic)


# --- validation -----------------------------------------------------------------------------------------------

def validate(ports: DeployPorts, conf: Mapping[str, Any] | None, run_id: str, default_requester: str) -> DeployRequest:
    """The validated request; InvalidDeployRequest (naming every bad field) otherwise.

    Nothing is changed for an invalid request except its deployment record (outcome `invalid`), so the
    attempt is on record; a valid one gets a record with outcome `running`.
    """
    raw = dict(conf or {})
    now = ports.clock()
    service = raw.get("service")
    rollback = raw.get("kind") not in (None, "", "deploy")  # the rollback kinds check against the service's history
    history = ports.store.deployments(service=service) if rollback and isinstance(service, str) else []
    try:
        request = parse_request(raw, ports.configs.services, ports.configs.deploy, default_requester=default_requester,
                                history=history)
    except InvalidDeployRequest as exc:
        ports.store.upsert_deployment({
            "id": run_id, "service": str(raw.get("service") or "")[:128],
            "version": str(raw.get("version") or "")[:128],
            "image": "", "strategy": str(raw.get("strategy") or "")[:32], "stages": [], "backend": "",
            "change_ticket": str(raw.get("change_ticket") or "")[:128],
            "requested_by": str(raw.get("requested_by") or default_requester)[:128], "dry_run": False,
            "forced": False, "force_reason": "", "outcome": "invalid", "reason": str(exc),
            "kind": raw["kind"] if raw.get("kind") in KINDS else "deploy",
            "rollback_of": str(raw.get("rollback_of") or "")[:250] or None,
            "requested_at": now, "finished_at": now, "run_url": ports.run_url(run_id)})
        raise
    spec = ports.configs.services.get(request.service)
    ports.store.upsert_deployment({
        "id": run_id, "service": request.service, "version": request.version, "image": request.image,
        "strategy": request.strategy, "stages": list(request.stages), "backend": spec.deploy.backend,
        "change_ticket": request.change_ticket, "requested_by": request.requested_by, "dry_run": request.dry_run,
        "forced": request.force, "force_reason": request.force_reason, "outcome": "running", "reason": "",
        "requested_at": now, "run_url": ports.run_url(run_id), "kind": request.kind,
        "rollback_of": request.rollback_of or None, "cause": dict(request.cause) if request.cause else None})
    return request


# --- the stage log in the record ------------------------------------------------------------------------------

def _update_stage(ports: DeployPorts, run_id: str, stage: str, **fields: Any) -> dict[str, Any]:
    record = ports.store.deployment(run_id) or {}
    stage_log = list(record.get("stage_log") or [])
    entry = next((e for e in stage_log if e.get("stage") == stage), None)
    if entry is None:
        entry = {"stage": stage, "steps": []}
        stage_log.append(entry)
    for key, value in fields.items():
        if key == "step":
            entry["steps"] = [s for s in entry["steps"] if s.get("index") != value.get("index")] + [value]
        else:
            entry[key] = value.isoformat() if isinstance(value, datetime) else value
    ports.store.update_deployment(run_id, stage_log=stage_log)
    return entry


# --- gates: gather every fact, then judge once -------------------------------------------------------------------

def stage_gates(ports: DeployPorts, request: DeployRequest, stage: str) -> tuple[str, ...]:
    """deploy.yaml's gates of the stage; a rollback's are the lock and the backend's health, whatever the stage."""
    return ROLLBACK_GATES if request.is_rollback else tuple(ports.configs.deploy.stages[stage].gates)


def gather_gate_facts(ports: DeployPorts, request: DeployRequest, stage: str, run_id: str, *,
                      take_lock: bool = True) -> GateFacts:
    """Read what the stage's gates need, each from its one source. The lock gate takes the service's deploy lock
    (kept until finalize); a dry run (or `take_lock=False`) only looks at it. Alertmanager down is a fact too: it
    blocks."""
    gates = stage_gates(ports, request, stage)
    now = ports.clock()
    facts = GateFacts(now=now)
    if "lock" in gates:
        holder = (ports.store.deploy_lock(request.service) if request.dry_run or not take_lock else
                  ports.store.acquire_deploy_lock(request.service, run_id, request.version,
                                                  stale_after_s=LOCK_STALE_AFTER_S))
        facts = replace(facts, lock_holder=holder)
    if "page_alerts" in gates:
        spec = ports.configs.services.get(request.service)
        facts = replace(facts, alerts=read_alerts(ports.alertmanager, spec.matchers))
    if "budget" in gates:
        facts = replace(facts, service_state=ports.store.current_state("service", request.service))
    if "calendar" in gates:
        calendar = ports.configs.calendar.with_store_rows(ports.store.windows(now, now, include_cancelled=True))
        verdict = calendar.deploy_allowed(now, request.service)
        facts = replace(facts, maintenance=(verdict.allowed, verdict.reason))
    if "incident" in gates:
        facts = replace(facts, open_incidents=tuple(ports.store.open_incidents(service=request.service)))
    if "backend" in gates:
        try:
            facts = replace(facts, backend=(ports.backend(request.service, stage).status().to_dict(), ""))
        except Exception as exc:  # unreachable or unreadable: the gate says so
            facts = replace(facts, backend=(None, str(exc) or type(exc).__name__))
    return facts


def _judge(ports: DeployPorts, request: DeployRequest, stage: str, run_id: str, facts: GateFacts) -> tuple[Any, float]:
    settings = ports.configs.deploy.stages[stage]
    return judge_gates(stage_gates(ports, request, stage), facts, ports.configs.policy, run_id=run_id,
                       force=request.force, force_reason=request.force_reason, peak_mode=ports.configs.deploy.peak,
                       strictest=settings.strictest, change_ticket=request.change_ticket, version=request.version)


def check_gates(ports: DeployPorts, request: DeployRequest, stage: str, run_id: str) -> dict[str, Any]:
    """Evaluate the stage's gates; DeployBlocked when any refuses. Returns {"strictness", "gates", "approvals"}.

    The stage's log also says which reviews the stage needs and who may give them (a dry run shows them so)."""
    record = ports.store.deployment(run_id) or {}
    if record.get("outcome") not in (None, "running"):  # rejected or aborted while its reviews waited
        raise DeployBlocked(f"stage {stage} not started: the deploy ended {record.get('outcome')}: "
                            f"{record.get('reason')}")
    facts = gather_gate_facts(ports, request, stage, run_id)
    results, strictness = _judge(ports, request, stage, run_id, facts)
    docs = [r.to_dict() for r in results]
    reviews = stage_approvals(ports, request, stage)
    _update_stage(ports, run_id, stage, gates=docs, gates_at=facts.now, strictness=strictness, approvals=reviews)
    for r in results:
        log.info("gate %s: %s%s: %s", r.gate, "passed" if r.passed else "BLOCKED",
                 " (bypassed by force)" if r.bypassed else "", r.reason)
    _refuse_if_blocked(ports, stage, run_id, results)
    return {"strictness": strictness, "gates": docs, "approvals": reviews}


def _refuse_if_blocked(ports: DeployPorts, stage: str, run_id: str, results: Sequence[Any]) -> None:
    refused = blocked(results)
    if refused:
        reason = f"stage {stage} blocked: " + "; ".join(f"{r.gate}: {r.reason}" for r in refused)
        ports.store.update_deployment(run_id, outcome="blocked", reason=reason)
        raise DeployBlocked(reason)


# --- approvals -------------------------------------------------------------------------------------------------

def stage_approvals(ports: DeployPorts, request: DeployRequest, stage: str) -> list[dict[str, str]]:
    """The reviews the stage needs for this request, each with who may give it (none for a rollback: it restores
    a version that served, and waiting for reviews would keep players on the bad one)."""
    if request.is_rollback:
        return []
    env = ports.configs.services.get(request.service).deploy.environments.get(stage)
    reviews = required_reviews(ports.configs.deploy, stage, env.approvals if env else None)
    out = []
    for review in reviews:
        who = reviewers_of(ports.configs.deploy, review)
        out.append({"review": review, "reviewers": describe_reviewers(who.users, who.roles)})
    return out


def approval_ask(ports: DeployPorts, request: DeployRequest, stage: str, review: str, run_id: str, *,
                 attempt: int = 1) -> ApprovalAsk | None:
    """The review to ask of people before the stage, or None when the stage does not need it (not in the request,
    not required for the service, a rollback, a dry run: the dry run's gates task lists the reviews instead).

    The stage's gates are evaluated first (without taking the lock): when they block, nobody is asked and the
    deploy ends `blocked` (DeployBlocked). The body shows the plan, those gate results, the earlier stages'
    verdicts with their evidence, and the change ticket. The service's channel is told who is asked."""
    if stage not in request.stages or request.dry_run:
        return None
    needed = {a["review"]: a["reviewers"] for a in stage_approvals(ports, request, stage)}
    if review not in needed:
        return None
    record = ports.store.deployment(run_id) or {}
    if record.get("outcome") not in (None, "running"):  # a retried review after a rejection or an abort
        raise DeployRejected(f"{stage} {review} review not asked: the deploy ended {record.get('outcome')}: "
                             f"{record.get('reason')}")
    config = ports.configs.deploy
    who = reviewers_of(config, review)
    timeout_s = config.approvals.timeout_s if config.approvals else 0
    facts = gather_gate_facts(ports, request, stage, run_id, take_lock=False)
    results, _ = _judge(ports, request, stage, run_id, facts)
    _refuse_if_blocked(ports, stage, run_id, results)  # nobody is asked to approve what cannot go ahead
    verdicts = ports.store.verdicts(run_id)
    subject, body = ask_text(request.to_dict(), stage, review, reviewers=needed[review], timeout_s=timeout_s,
                             plan=[s.label for s in stage_plan(ports, request, stage).steps],
                             gates=[r.to_dict() for r in results],
                             previous=evidence_markdown(record, verdicts) if verdicts else "",
                             run_url=ports.run_url(run_id))
    again = (" Asked again: the task was restarted and an earlier answer, if any, was not taken."
             if attempt > 1 else "")
    ports.notifier.message(f":raised_hand: Deploy {request.service} {request.version} to {stage} waits for the "
                           f"*{review}* review ({needed[review]}): Required actions of {ports.run_url(run_id)}"
                           + again,
                           channel_id=ports.configs.services.channel_id(request.service))
    return ApprovalAsk(review=review, stage=stage, users=tuple(who.users), roles=tuple(who.roles),
                       timeout_s=timeout_s, subject=subject, body=body)


def approval_answered(ports: DeployPorts, request: DeployRequest, stage: str, review: str, run_id: str, *,
                      approved: bool, user: str, reason: str) -> str:
    """Record a reviewer's answer; a rejection ends the deploy `rejected` (DeployRejected) before anything of the
    stage changed. Returns what was recorded."""
    where = f"{stage} {review} review"
    ports.store.add_deploy_control(run_id, "approve" if approved else "reject", user,
                                   reason or ("" if approved else "no reason given"), applied=where)
    if approved:
        said = f"{where}: approved by {user}" + (f": {reason}" if reason else "")
        ports.notifier.message(f":white_check_mark: Deploy {request.service} {request.version}: {said}",
                               channel_id=ports.configs.services.channel_id(request.service))
        return said
    why = f"{where}: rejected by {user}: {reason or 'no reason given'}"
    _end_waiting(ports, request, run_id, "rejected", why)
    raise DeployRejected(why)


def approval_unanswered(ports: DeployPorts, request: DeployRequest, stage: str, review: str, run_id: str, *,
                        timed_out: bool) -> None:
    """The review ended without an answer: its timeout passed (the deploy ends `blocked`), or the deploy ended
    meanwhile (another review rejected it, a person aborted it: the abort is recorded as applied here).
    Always raises DeployRejected or DeployBlocked with the reason."""
    where = f"{stage} {review} review"
    record = ports.store.deployment(run_id) or {}
    if record.get("outcome") not in (None, "running"):
        raise DeployRejected(f"{where} no longer asked: the deploy ended {record.get('outcome')}: "
                             f"{record.get('reason')}")
    pending = control_state(controls(ports, run_id)).pending
    if pending is not None and pending.action == "abort":
        if ports.store.mark_deploy_control(pending.id, f"while waiting for the {where}"):
            _end_waiting(ports, request, run_id, "aborted", f"{where}: {pending.describe()}")
        raise DeployRejected(f"{where}: {pending.describe()}")
    if not timed_out:
        raise DeployRejected(f"{where} ended without an answer")
    timeout_s = ports.configs.deploy.approvals.timeout_s if ports.configs.deploy.approvals else 0
    why = (f"{where}: no answer within {timeout_s}s: the stage is blocked (a deploy is never approved by "
           "silence); trigger the deploy again to ask again")
    _end_waiting(ports, request, run_id, "blocked", why)
    raise DeployBlocked(why)


def _end_waiting(ports: DeployPorts, request: DeployRequest, run_id: str, outcome: str, why: str) -> None:
    ports.store.update_deployment(run_id, outcome=outcome, reason=why)
    ports.notifier.message(f"{EMOJI[outcome]} Deploy {request.service} {request.version}: *{outcome}*. {why}",
                           channel_id=ports.configs.services.channel_id(request.service))


# --- people steering a running deploy --------------------------------------------------------------------------

def controls(ports: DeployPorts, run_id: str) -> list[Control]:
    return [Control.from_row(r) for r in ports.store.deploy_controls(run_id)]


def request_control(ports: DeployPorts, run_id: str, action: str, actor: str, reason: str) -> dict[str, Any]:
    """Record a person's request to pause, resume, promote (the step, or fully) or abort the deploy run `run_id`.

    Refused (ControlRefused, nothing recorded) for an unknown run, a finished one, a dry run, a rollback, an
    action that does not apply (resume when not paused), or without a reason. The analysis trigger takes it at
    its next poll; the service's channel is told who asked and why."""
    record = ports.store.deployment(run_id)
    why_not = refusal(action, reason, record, controls(ports, run_id))
    if why_not:
        raise ControlRefused(why_not)
    assert record is not None
    now = ports.clock()
    control_id = ports.store.add_deploy_control(run_id, action, actor, reason.strip(), requested_at=now)
    asked = Control(control_id, action, actor, reason.strip(), now)
    text = f"Deploy {record['service']} {record['version']}: {asked.describe()}"
    ports.notifier.message(f":joystick: {text}\nRun: {record.get('run_url')}",
                           channel_id=ports.configs.services.channel_id(str(record["service"])))
    return {"id": control_id, "run_id": run_id, "action": action, "actor": actor, "reason": reason.strip(),
            "service": record["service"], "version": record["version"]}


# --- the rollout ---------------------------------------------------------------------------------------------

def stage_plan(ports: DeployPorts, request: DeployRequest, stage: str) -> RolloutPlan:
    config = ports.configs.deploy
    env = ports.configs.services.get(request.service).deploy.environments[stage]
    return build_plan(request.strategy, canary_steps=request.canary_steps,
                      rolling_batches=config.strategies.rolling.batches,
                      scale_down_delay_s=config.strategies.blue_green.scale_down_delay_s,
                      synthetic=env.traffic == "synthetic", immediate=request.is_rollback)


def analysis_spec(ports: DeployPorts, request: DeployRequest, stage: str, step_index: int, step_label: str,
                  backend: DeployBackend, *, run_id: str, since: float, strictness: float,
                  min_duration_s: float | None = None, max_pause_s: float | None = None) -> dict[str, Any]:
    """What the CanaryAnalysisTrigger needs (JSON-safe): SLIs, cohorts, thresholds and times."""
    judged, skipped = slis_for(ports.configs.slos.for_service(request.service))
    t = Thresholds.from_settings(ports.configs.deploy.analysis.model_dump(), strictness=strictness)
    if min_duration_s is not None:
        t = replace(t, min_duration_s=min_duration_s, max_duration_s=min_duration_s + t.max_duration_s)
    cohorts = backend.cohorts()
    return {"service": request.service, "stage": stage, "step": step_index, "step_label": step_label,
            "slis": [s.to_dict() for s in judged], "not_judged": skipped,
            "cohorts": {"candidate": cohorts.candidate, "baseline": cohorts.baseline},
            "thresholds": asdict(t), "since": since, "step_started": ports.clock().timestamp(),
            # people's requests (deploy_control) are read from the store's log at every poll
            "deployment_id": run_id,
            "max_pause_s": max_pause_s if max_pause_s is not None else ports.configs.deploy.analysis.max_pause_s}


def start_stage(ports: DeployPorts, request: DeployRequest, stage: str, run_id: str) -> dict[str, Any]:
    """Prepare the new version in the stage's environment and carry out the plan's first step.

    Returns the state the operator defers with: {"plan", "step", "since"}.
    """
    plan = stage_plan(ports, request, stage)
    backend = ports.backend(request.service, stage)
    before = backend.status()
    record = ports.store.deployment(run_id) or {}
    if not record.get("previous_version"):
        ports.store.update_deployment(run_id, previous_version=before.stable_version)
    _update_stage(ports, run_id, stage, plan=plan.to_dict(), backend=backend.kind, started_at=ports.clock(),
                  before=before.to_dict(), outcome="running")
    first = 0
    try:
        backend.prepare(request.version, plan)
        if plan.steps[0].kind == "preview":
            smoke = backend.synthetic_traffic(ports.configs.deploy.analysis.synthetic_traffic_s)
            _update_stage(ports, run_id, stage, synthetic_traffic=smoke)
            if not smoke:  # a blue-green preview nobody sends traffic to: judged by readiness, SLIs after the switch
                first = _preview_by_readiness(ports, backend, run_id, stage)
        _apply_step(backend, plan, first)
    except Exception as exc:
        rollback(ports, request, stage, run_id, f"the rollout failed at its first step: {exc}")
        raise
    now = ports.clock()
    if not record.get("started_at"):
        ports.store.update_deployment(run_id, started_at=now)
    _update_stage(ports, run_id, stage, traffic_at=now)
    return {"plan": plan.to_dict(), "step": first, "since": now.timestamp()}


def _preview_by_readiness(ports: DeployPorts, backend: DeployBackend, run_id: str, stage: str,
                          timeout_s: float = 300) -> int:
    """A preview without traffic (Kubernetes blue-green): wait until it is ready; its SLIs are judged after the switch.

    Returns the index of the next step (the switch). Not ready in time raises, which rolls back.
    """
    deadline = ports.monotonic() + timeout_s
    status = backend.status()
    while not status.ready:
        if ports.monotonic() > deadline:
            raise RuntimeError(f"the preview is not ready after {timeout_s:.0f}s: {status.detail}")
        ports.sleep(5)
        status = backend.status()
    reason = (f"preview ready ({status.detail}); no traffic reaches a preview on the {backend.kind} backend, so its "
              "SLIs are judged after the switch, with an instant switch back")
    ports.store.record_verdict(run_id, stage, 0, "preview", "pass", reason, {"status": status.to_dict()})
    _update_stage(ports, run_id, stage, step={"index": 0, "label": "preview", "decision": "pass", "reason": reason,
                                              "at": ports.clock().isoformat()})
    return 1


def _apply_step(backend: DeployBackend, plan: RolloutPlan, index: int) -> None:
    step = plan.steps[index]
    if step.shift_index is not None:
        backend.shift(step.shift_index)
    log.info("step %d (%s) applied: %s", index, step.label, backend.status().detail)


def step_verdict(ports: DeployPorts, request: DeployRequest, stage: str, run_id: str, state: Mapping[str, Any],
                 event: Mapping[str, Any]) -> dict[str, Any] | None:
    """Record a step's verdict; roll back on fail/timed_out (DeployRolledBack); else the next state or None.

    None means the stage is done: the new version was promoted in this environment.
    """
    plan = RolloutPlan.from_dict(state["plan"])
    index = int(state["step"])
    hold = index >= len(plan.steps)  # the blue-green scale-down delay, watched like a step
    label = "scale-down delay" if hold else plan.steps[index].label
    decision = str(event.get("decision", "error"))
    reason = str(event.get("reason", "the analysis ended without a verdict"))
    ports.store.record_verdict(run_id, stage, index, label, decision, reason, dict(event),
                               decided_at=datetime.fromisoformat(event["decided_at"]) if event.get("decided_at")
                               else None)
    _update_stage(ports, run_id, stage, step={"index": index, "label": label, "decision": decision,
                                              "reason": reason, "at": ports.clock().isoformat()})
    log.info("%s %s: %s: %s", stage, label, decision, reason)
    control = event.get("control")
    if control:  # a person's request decided the step: it is applied here, once
        ports.store.mark_deploy_control(int(control["id"]), f"{stage} {label}")
    if decision == "aborted":
        why = f"{stage} {label}: {reason}"
        rollback(ports, request, stage, run_id, why, outcome="aborted")
        raise DeployRolledBack(why)
    if decision != "pass" and request.is_rollback:
        # Going back to the suspect would undo the rollback: the version stays, and the run says it did not verify.
        why = (f"{stage}: rolled back to {request.version}, but its verification did not pass ({decision}: {reason}); "
               "it serves all traffic now: the rolled-back change may not be the cause, look at the service")
        _finish_stage(ports, request, stage, run_id)
        ports.store.update_deployment(run_id, outcome="failed", reason=why)
        raise DeployRolledBack(why)
    settings = ports.configs.deploy.stages[stage]
    if decision == "timed_out" and settings.on_inconclusive == "pause" and not state.get("held") and not control:
        return _hold_for_a_person(ports, request, stage, run_id, state, label, reason)
    if decision != "pass":
        outcome = "timed_out" if decision == "timed_out" else "rolled_back"
        what = "analysis inconclusive at the deadline" if outcome == "timed_out" else "regression"
        why = f"{stage} {label}: {what}: {reason}"
        rollback(ports, request, stage, run_id, why, outcome=outcome)
        raise DeployRolledBack(why)
    backend = ports.backend(request.service, stage)
    nxt = index + 1
    state = {k: v for k, v in state.items() if k not in ("held", "max_pause_s")}  # a hold is the step's own
    if control and control.get("action") == "promote_full":  # the rest of the stage's steps, and the hold, skipped
        last = len(plan.steps) - 1
        try:
            if index < last:
                _apply_step(backend, plan, last)
            _finish_stage(ports, request, stage, run_id)
        except Exception as exc:
            rollback(ports, request, stage, run_id, f"{stage} full promotion failed: {exc}")
            raise
        return None
    if nxt < len(plan.steps):
        try:
            _apply_step(backend, plan, nxt)
        except Exception as exc:
            rollback(ports, request, stage, run_id, f"{stage} {plan.steps[nxt].label} failed: {exc}")
            raise
        return {**state, "step": nxt}
    if plan.strategy == "blue-green" and plan.scale_down_delay_s and not hold:
        return {**state, "step": nxt, "hold_s": plan.scale_down_delay_s}
    try:
        _finish_stage(ports, request, stage, run_id)
    except Exception as exc:
        if not request.is_rollback:  # a rollback that cannot finish is left to the safety net, never reverted
            rollback(ports, request, stage, run_id, f"{stage} promotion failed: {exc}")
        raise
    return None


def _hold_for_a_person(ports: DeployPorts, request: DeployRequest, stage: str, run_id: str,
                       state: Mapping[str, Any], label: str, reason: str) -> dict[str, Any]:
    """Inconclusive at the deadline in a stage set to `on_inconclusive: pause`: the step holds its traffic under a
    pause by the analysis itself, watched for regressions, and a person decides within `decide_within`: promote,
    resume (one more step deadline of evidence, then rolled back if still inconclusive), or abort."""
    within = ports.configs.deploy.stages[stage].decide_within_s
    why = (f"{stage} {label}: inconclusive at the step deadline ({reason}); paused for a person to decide within "
           f"{within // 60} min (deploy_control: promote, resume for one more deadline, abort); no decision: "
           "rolled back")
    ports.store.add_deploy_control(run_id, "pause", "analysis", why, requested_at=ports.clock())
    ports.notifier.message(f":pause_button: Deploy {request.service} {request.version}: {why}\n"
                           f"Run: {ports.run_url(run_id)}",
                           channel_id=ports.configs.services.channel_id(request.service))
    log.warning("%s", why)
    return {**state, "held": True, "max_pause_s": within}


def step_progress(stage: str, state: Mapping[str, Any], event: Mapping[str, Any],
                  following: Mapping[str, Any] | None) -> dict[str, Any]:
    """One decided step for clients following the run (XCom `step-<index>`): the decision with each SLI's numbers,
    the person's request that decided it, and the step applied next (None: the stage ended)."""
    plan = RolloutPlan.from_dict(state["plan"])
    index = int(state["step"])
    nxt = int(following["step"]) if following is not None else None
    return {"stage": stage, "index": index,
            "label": plan.steps[index].label if index < len(plan.steps) else "scale-down delay",
            "decision": event.get("decision", "error"), "reason": event.get("reason", ""),
            "slis": [{k: s.get(k) for k in ("slo", "decision", "reason", "candidate", "baseline")}
                     for s in event.get("slis") or []],
            "control": event.get("control"), "decided_at": event.get("decided_at"),
            "next": (plan.steps[nxt].label if nxt < len(plan.steps) else "scale-down delay") if nxt is not None
            else None}


def _finish_stage(ports: DeployPorts, request: DeployRequest, stage: str, run_id: str) -> None:
    """The stage's version becomes the stable one (backend.promote), recorded."""
    backend = ports.backend(request.service, stage)
    backend.promote()
    _update_stage(ports, run_id, stage, outcome="promoted", finished_at=ports.clock(),
                  after=backend.status().to_dict())


def rollback(ports: DeployPorts, request: DeployRequest, stage: str, run_id: str, reason: str, *,
             outcome: str = "failed") -> None:
    """Traffic back on stable at once, the new version scaled down; recorded with the reason."""
    backend = ports.backend(request.service, stage)
    backend.rollback(reason)
    now = ports.clock()
    ports.store.update_deployment(run_id, outcome=outcome, reason=reason, rolled_back_at=now)
    _update_stage(ports, run_id, stage, outcome="rolled_back", finished_at=now, rolled_back_at=now,
                  after=backend.status().to_dict())
    log.warning("rolled back %s in %s: %s", request.service, stage, reason)


# --- the end --------------------------------------------------------------------------------------------------

def finalize(ports: DeployPorts, request: DeployRequest | None, run_id: str) -> dict[str, Any]:
    """Decide the outcome, make sure nothing is left half-rolled-out, release the lock, record and notify.

    `request` is None when the run never got a valid request (validation failed or crashed).
    """
    record = ports.store.deployment(run_id)
    if record is None:  # validation itself crashed before recording
        record = {"id": run_id, "outcome": "failed", "reason": "the run failed before its request was recorded",
                  "service": "", "version": "", "stages": [], "stage_log": []}
        ports.store.upsert_deployment({**record, "image": "", "strategy": "", "backend": "", "change_ticket": "",
                                       "requested_by": "", "dry_run": False, "forced": False,
                                       "requested_at": ports.clock(), "run_url": ports.run_url(run_id)})
    outcome, reason = decide_outcome(record, stages=request.stages if request else None,
                                     version=request.version if request else "",
                                     dry_run=bool(request and request.dry_run))
    if request is not None:
        for stage in left_half_done(record, outcome, dry_run=request.dry_run):  # the safety net
            try:
                if request.is_rollback:  # finish it: never back to the version rolled back
                    _finish_stage(ports, request, stage, run_id)
                    reason += f" ({stage}: the rollback to {request.version} was finished by the safety net)"
                else:
                    rollback(ports, request, stage, run_id, reason, outcome=outcome)
            except Exception as exc:
                reason += f" (the safety {'finish' if request.is_rollback else 'rollback'} of {stage} failed too: " \
                          f"{exc}; check by hand)"
        if not request.dry_run:
            ports.store.release_deploy_lock(request.service, run_id)
        for pending in controls(ports, run_id):  # requests the run never took say so
            if pending.action in ONE_SHOT and pending.applied is None:
                ports.store.mark_deploy_control(pending.id, f"not applied: the deploy ended {outcome} first")
    ports.store.update_deployment(run_id, outcome=outcome, reason=reason, finished_at=ports.clock())
    record = ports.store.deployment(run_id) or record
    result = {"outcome": outcome, "reason": reason, "service": record.get("service"),
              "version": record.get("version"), "stages": record.get("stages"), "run_url": record.get("run_url"),
              "previous_version": record.get("previous_version")}
    _notify(ports, record, ports.store.verdicts(run_id), result)
    if request is not None and not request.dry_run:
        _tell_incident(ports, request, record, result)
    return result


def _tell_incident(ports: DeployPorts, request: DeployRequest, record: Mapping[str, Any],
                   result: Mapping[str, Any]) -> None:
    """A deploy whose change ticket is an incident's id (the remedy it asked for) ends on the incident's timeline
    and in its channel."""
    incident = ports.store.incident(request.change_ticket) if INCIDENT_ID.match(request.change_ticket) else None
    if incident is None:
        return
    what = (f"rollback of {request.service} to {request.version}" if request.is_rollback
            else f"deploy {request.service} {request.version}")
    summary = f"{what} (run {record.get('id')}): {result['outcome']}. {result['reason']}"
    ports.store.add_incident_event(incident["id"], "mitigation", summary, actor=request.requested_by,
                                   at=ports.clock(), details={"deployment": record.get("id"), "kind": request.kind,
                                                              "rollback_of": request.rollback_of or None,
                                                              "outcome": result["outcome"],
                                                              "run_url": record.get("run_url")})
    channel_id = (incident.get("details") or {}).get("channel_id")
    if channel_id:
        ports.notifier.message(f"{EMOJI.get(str(result['outcome']), '')} *{incident['id']}*: {summary}\n"
                               f"Run: {record.get('run_url')}", channel_id=channel_id)


def succeeded(result: Mapping[str, Any]) -> bool:
    """The run fails unless the deploy was promoted (or was a dry run): CI and the UI see the outcome."""
    return result["outcome"] in OUTCOMES_OK


def _person_line(control: Control) -> str:
    """A review's answer or a person's request as the outcome notice lists it."""
    verb = {"approve": "approved", "reject": "rejected"}.get(control.action)
    if verb:
        return f"{control.applied} {verb} by {control.actor}" + (f" ({control.reason})" if control.reason else "")
    return control.describe() + (f" [{control.applied}]" if control.applied else "")


def _notify(ports: DeployPorts, record: Mapping[str, Any], verdicts: list[dict[str, Any]],
            result: Mapping[str, Any]) -> None:
    """The outcome in the service's channel (the SRE channel when the service is unknown), the evidence as a file;
    a notification failure never fails the run."""
    outcome = str(result["outcome"])
    text = (f"{EMOJI.get(outcome, '')} Deploy {record.get('service') or '?'} {record.get('version') or '?'}: "
            f"*{outcome}*. {result['reason']}\nRun and evidence: {record.get('run_url')}")
    people = [_person_line(c) for c in controls(ports, str(record.get("id")))] if record.get("id") else []
    if people:
        text += "\nPeople: " + "; ".join(people)
    channel_id = ports.configs.services.channel_id(str(record.get("service") or ""))
    ports.notifier.message(text, channel_id=channel_id)
    if verdicts:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"deploy-evidence-{record.get('service')}-{record.get('version')}.md"
            path.write_text(evidence_markdown(record, verdicts))
            ports.notifier.file(path, channel_id=channel_id, title=f"Deploy evidence: "
                                f"{record.get('service')} {record.get('version')} ({outcome})")

