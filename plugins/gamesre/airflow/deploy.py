"""Airflow glue of game_service_deploy: validation, gates, the rollout steps, rollback, record and notices.

The DAG (dags/game_service_deploy.py) and the StageRolloutOperator only call these functions. Every one is
idempotent (DESIGN.md, decision 8): backends read before they act, the record is an upsert by run id, and a
verdict is an upsert by (run, stage, step).

The deployment record (SRE store table `deployment`, one row per run) is kept complete for DORA metrics and
incident timelines: request, gates, per-stage plan and steps, timings (requested, first traffic, finished,
rolled back), outcome and reason. Each step's verdict with its evidence is a `deploy_verdict` row.
"""
from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gamesre.airflow.hooks.store import SREStoreHook
from gamesre.airflow.notify import post_file, post_message

if TYPE_CHECKING:
    from gamesre.core.services import ServiceCatalog, ServiceSpec
    from gamesre.deploy.backend import DeployBackend
    from gamesre.deploy.config import DeployConfig
    from gamesre.deploy.plan import RolloutPlan
    from gamesre.deploy.request import DeployRequest
    from gamesre.integrations.store import SREStore

log = logging.getLogger(__name__)

DAG_ID = "game_service_deploy"
LOCK_STALE_AFTER_S = 6 * 3600  # a lock this old belongs to a run that died without releasing it
OUTCOMES_OK = ("promoted", "dry_run")
EMOJI = {"promoted": ":white_check_mark:", "rolled_back": ":rewind:", "blocked": ":no_entry:",
         "timed_out": ":hourglass:", "invalid": ":x:", "failed": ":boom:", "dry_run": ":memo:"}


class DeployBlocked(RuntimeError):
    """A gate refused the stage; the message lists every failed gate with its reason."""


class DeployRolledBack(RuntimeError):
    """The analysis failed or timed out and the stage was rolled back; the message is the verdict."""


def _now() -> datetime:
    return datetime.now(UTC)


def _store() -> SREStore:
    return SREStoreHook().get_conn()


def _configs() -> tuple[ServiceCatalog, DeployConfig]:
    from gamesre.core.services import load_services
    from gamesre.deploy.config import load_deploy_config

    return load_services(), load_deploy_config()


def run_url(run_id: str) -> str:
    from gamesre.airflow.links import run_url as dag_run_url

    return dag_run_url(DAG_ID, run_id)


# --- validation -----------------------------------------------------------------------------------------------

def validate(conf: Mapping[str, Any] | None, run_id: str, default_requester: str) -> dict[str, Any]:
    """The validated request as a dict; InvalidDeployRequest (naming every bad field) otherwise.

    Nothing is changed for an invalid request except its deployment record (outcome `invalid`), so the
    attempt is on record; a valid one gets a record with outcome `running`.
    """
    from gamesre.deploy.request import InvalidDeployRequest, parse_request

    services, config = _configs()
    store = _store()
    raw = dict(conf or {})
    try:
        request = parse_request(raw, services, config, default_requester=default_requester)
    except InvalidDeployRequest as exc:
        store.upsert_deployment({
            "id": run_id, "service": str(raw.get("service") or "")[:128],
            "version": str(raw.get("version") or "")[:128],
            "image": "", "strategy": str(raw.get("strategy") or "")[:32], "stages": [], "backend": "",
            "change_ticket": str(raw.get("change_ticket") or "")[:128],
            "requested_by": str(raw.get("requested_by") or default_requester)[:128], "dry_run": False,
            "forced": False, "force_reason": "", "outcome": "invalid", "reason": str(exc),
            "requested_at": _now(), "finished_at": _now(), "run_url": run_url(run_id)})
        raise
    spec = services.get(request.service)
    store.upsert_deployment({
        "id": run_id, "service": request.service, "version": request.version, "image": request.image,
        "strategy": request.strategy, "stages": list(request.stages), "backend": spec.deploy.backend,
        "change_ticket": request.change_ticket, "requested_by": request.requested_by, "dry_run": request.dry_run,
        "forced": request.force, "force_reason": request.force_reason, "outcome": "running", "reason": "",
        "requested_at": _now(), "run_url": run_url(run_id)})
    return request.to_dict()


# --- the stage log in the record ------------------------------------------------------------------------------

def _update_stage(store: SREStore, run_id: str, stage: str, **fields: Any) -> dict[str, Any]:
    record = store.deployment(run_id) or {}
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
    store.update_deployment(run_id, stage_log=stage_log)
    return entry


# --- gates ---------------------------------------------------------------------------------------------------

def check_gates(request_doc: dict[str, Any], stage: str, run_id: str) -> dict[str, Any]:
    """Evaluate the stage's gates; DeployBlocked when any refuses. Returns {"strictness", "gates"}.

    The lock gate takes the service's deploy lock (kept until finalize); a dry run only looks at it.
    An outside system that cannot be asked (Alertmanager down) blocks, with the reason.
    """
    from gamesre.calendar import load_calendar
    from gamesre.deploy import gates as g
    from gamesre.deploy.request import DeployRequest
    from gamesre.slo.spec import load_policies

    request = DeployRequest.from_dict(request_doc)
    services, config = _configs()
    settings = config.stages[stage]
    spec = services.get(request.service)
    store = _store()
    policy = load_policies()
    now = _now()
    results: list[g.GateResult] = []
    strictness = 1.0
    for gate in settings.gates:
        if gate == "lock":
            if request.dry_run:
                results.append(g.lock_gate(store.deploy_lock(request.service), run_id))
            else:
                holder = store.acquire_deploy_lock(request.service, run_id, request.version,
                                                   stale_after_s=LOCK_STALE_AFTER_S)
                results.append(g.lock_gate(holder, run_id))
        elif gate == "page_alerts":
            results.append(_page_alerts_gate(spec))
        elif gate == "budget":
            results.append(g.budget_gate(store.current_state("service", request.service), now, policy,
                                         force=request.force, force_reason=request.force_reason))
        elif gate == "calendar":
            rows = store.windows(now, now, include_cancelled=True)
            calendar = load_calendar(services=services).with_store_rows(rows)
            verdict = calendar.deploy_allowed(now, request.service)
            result, strictness = g.calendar_gate(verdict.allowed, verdict.reason, now, policy,
                                                 peak_mode=config.peak, strictest=settings.strictest)
            results.append(result)
    docs = [r.to_dict() for r in results]
    _update_stage(store, run_id, stage, gates=docs, gates_at=now, strictness=strictness)
    for r in results:
        log.info("gate %s: %s%s: %s", r.gate, "passed" if r.passed else "BLOCKED",
                 " (bypassed by force)" if r.bypassed else "", r.reason)
    refused = g.blocked(results)
    if refused:
        reason = f"stage {stage} blocked: " + "; ".join(f"{r.gate}: {r.reason}" for r in refused)
        store.update_deployment(run_id, outcome="blocked", reason=reason)
        raise DeployBlocked(reason)
    return {"strictness": strictness, "gates": docs}


def _page_alerts_gate(spec: ServiceSpec) -> Any:
    from gamesre.airflow.hooks.alertmanager import AlertmanagerHook
    from gamesre.app.facts import read_alerts
    from gamesre.core.gates import page_alerts_gate

    return page_alerts_gate(read_alerts(AlertmanagerHook().get_conn(), spec.matchers), scope="the service")


# --- backends ------------------------------------------------------------------------------------------------

def make_backend(service: str, stage: str) -> DeployBackend:
    """The service's backend for one stage's environment (services.yaml deploy.backend / environments)."""
    services, _ = _configs()
    spec = services.get(service)
    env = spec.deploy.environments[stage]
    kind = spec.deploy.backend
    image_repo = f"{spec.deploy.image.registry}/{spec.deploy.image.repository}"
    if kind == "local":
        from gamesre.airflow.hooks.haproxy import HAProxyHook
        from gamesre.integrations.deploy.local import LocalDeployBackend, load_fleet

        fleet, fleet_file = load_fleet()
        return LocalDeployBackend(fleet, HAProxyHook().get_conn(), service, fleet_file=fleet_file,
                                  synthetic=env.traffic == "synthetic")
    from gamesre.airflow.hooks.kubernetes import api_client

    assert spec.kubernetes is not None  # services.yaml requires it for these backends
    namespace = env.namespace or spec.kubernetes.namespace
    if kind == "argo-rollouts":
        from gamesre.integrations.deploy.argo_rollouts import ArgoRolloutsBackend

        return ArgoRolloutsBackend(api_client(), namespace=namespace, rollout=str(spec.kubernetes.rollout),
                                   image_repo=image_repo)
    from gamesre.integrations.deploy.kubernetes import KubernetesDeployBackend

    return KubernetesDeployBackend(api_client(), namespace=namespace, deployment=str(spec.kubernetes.deployment),
                                   service=str(spec.kubernetes.service or spec.kubernetes.deployment),
                                   image_repo=image_repo, strategy=spec.deploy.strategy)


def stage_plan(request: DeployRequest, stage: str) -> RolloutPlan:
    from gamesre.deploy.plan import build_plan

    services, config = _configs()
    env = services.get(request.service).deploy.environments[stage]
    return build_plan(request.strategy, canary_steps=request.canary_steps,
                      rolling_batches=config.strategies.rolling.batches,
                      scale_down_delay_s=config.strategies.blue_green.scale_down_delay_s,
                      synthetic=env.traffic == "synthetic")


# --- the rollout ---------------------------------------------------------------------------------------------

def analysis_spec(request: DeployRequest, stage: str, step_index: int, step_label: str, backend: DeployBackend, *,
                  since: float, strictness: float, min_duration_s: float | None = None) -> dict[str, Any]:
    """What the CanaryAnalysisTrigger needs (JSON-safe): SLIs, cohorts, thresholds and times."""
    from dataclasses import asdict, replace

    from gamesre.deploy.analysis import Thresholds, slis_for
    from gamesre.slo.spec import load_slos

    _, config = _configs()
    judged, skipped = slis_for(load_slos().for_service(request.service))
    t = Thresholds.from_settings(config.analysis.model_dump(), strictness=strictness)
    if min_duration_s is not None:
        t = replace(t, min_duration_s=min_duration_s, max_duration_s=min_duration_s + t.max_duration_s)
    cohorts = backend.cohorts()
    return {"service": request.service, "stage": stage, "step": step_index, "step_label": step_label,
            "slis": [s.to_dict() for s in judged], "not_judged": skipped,
            "cohorts": {"candidate": cohorts.candidate, "baseline": cohorts.baseline},
            "thresholds": asdict(t), "since": since, "step_started": _now().timestamp()}


def start_stage(request_doc: dict[str, Any], stage: str, run_id: str) -> dict[str, Any]:
    """Prepare the new version in the stage's environment and carry out the plan's first step.

    Returns the state the operator defers with: {"plan", "step", "since"}.
    """
    from gamesre.deploy.request import DeployRequest

    request = DeployRequest.from_dict(request_doc)
    store = _store()
    plan = stage_plan(request, stage)
    backend = make_backend(request.service, stage)
    before = backend.status()
    record = store.deployment(run_id) or {}
    if not record.get("previous_version"):
        store.update_deployment(run_id, previous_version=before.stable_version)
    _update_stage(store, run_id, stage, plan=plan.to_dict(), backend=backend.kind, started_at=_now(),
                  before=before.to_dict(), outcome="running")
    first = 0
    try:
        backend.prepare(request.version, plan)
        if plan.steps[0].kind == "preview":
            smoke = backend.synthetic_traffic(_configs()[1].analysis.synthetic_traffic_s)
            _update_stage(store, run_id, stage, synthetic_traffic=smoke)
            if not smoke:  # a blue-green preview nobody sends traffic to: judged by readiness, SLIs after the switch
                first = _preview_by_readiness(backend, run_id, stage)
        _apply_step(backend, plan, first)
    except Exception as exc:
        rollback(request_doc, stage, run_id, f"the rollout failed at its first step: {exc}")
        raise
    now = _now()
    if not record.get("started_at"):
        store.update_deployment(run_id, started_at=now)
    _update_stage(store, run_id, stage, traffic_at=now)
    return {"plan": plan.to_dict(), "step": first, "since": now.timestamp()}


def _preview_by_readiness(backend: DeployBackend, run_id: str, stage: str, timeout_s: float = 300) -> int:
    """A preview without traffic (Kubernetes blue-green): wait until it is ready; its SLIs are judged after the switch.

    Returns the index of the next step (the switch). Not ready in time raises, which rolls back.
    """
    import time

    deadline = time.monotonic() + timeout_s
    status = backend.status()
    while not status.ready:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the preview is not ready after {timeout_s:.0f}s: {status.detail}")
        time.sleep(5)
        status = backend.status()
    reason = (f"preview ready ({status.detail}); no traffic reaches a preview on the {backend.kind} backend, so its "
              "SLIs are judged after the switch, with an instant switch back")
    store = _store()
    store.record_verdict(run_id, stage, 0, "preview", "pass", reason, {"status": status.to_dict()})
    _update_stage(store, run_id, stage, step={"index": 0, "label": "preview", "decision": "pass", "reason": reason,
                                              "at": _now().isoformat()})
    return 1


def _apply_step(backend: DeployBackend, plan: RolloutPlan, index: int) -> None:
    step = plan.steps[index]
    if step.shift_index is not None:
        backend.shift(step.shift_index)
    log.info("step %d (%s) applied: %s", index, step.label, backend.status().detail)


def step_verdict(request_doc: dict[str, Any], stage: str, run_id: str, state: dict[str, Any],
                 event: dict[str, Any]) -> dict[str, Any] | None:
    """Record a step's verdict; roll back on fail/timed_out (DeployRolledBack); else the next state or None.

    None means the stage is done: the new version was promoted in this environment.
    """
    from gamesre.deploy.plan import RolloutPlan
    from gamesre.deploy.request import DeployRequest

    request = DeployRequest.from_dict(request_doc)
    plan = RolloutPlan.from_dict(state["plan"])
    index = int(state["step"])
    hold = index >= len(plan.steps)  # the blue-green scale-down delay, watched like a step
    label = "scale-down delay" if hold else plan.steps[index].label
    store = _store()
    decision = str(event.get("decision", "error"))
    reason = str(event.get("reason", "the analysis ended without a verdict"))
    store.record_verdict(run_id, stage, index, label, decision, reason, event,
                         decided_at=datetime.fromisoformat(event["decided_at"]) if event.get("decided_at") else None)
    _update_stage(store, run_id, stage, step={"index": index, "label": label, "decision": decision,
                                              "reason": reason, "at": _now().isoformat()})
    log.info("%s %s: %s: %s", stage, label, decision, reason)
    if decision != "pass":
        outcome = "timed_out" if decision == "timed_out" else "rolled_back"
        what = "analysis inconclusive at the deadline" if outcome == "timed_out" else "regression"
        why = f"{stage} {label}: {what}: {reason}"
        rollback(request_doc, stage, run_id, why, outcome=outcome)
        raise DeployRolledBack(why)
    backend = make_backend(request.service, stage)
    nxt = index + 1
    if nxt < len(plan.steps):
        try:
            _apply_step(backend, plan, nxt)
        except Exception as exc:
            rollback(request_doc, stage, run_id, f"{stage} {plan.steps[nxt].label} failed: {exc}")
            raise
        return {**state, "step": nxt}
    if plan.strategy == "blue-green" and plan.scale_down_delay_s and not hold:
        return {**state, "step": nxt, "hold_s": plan.scale_down_delay_s}
    try:
        backend.promote()
    except Exception as exc:
        rollback(request_doc, stage, run_id, f"{stage} promotion failed: {exc}")
        raise
    _update_stage(store, run_id, stage, outcome="promoted", finished_at=_now(), after=backend.status().to_dict())
    return None


def rollback(request_doc: dict[str, Any], stage: str, run_id: str, reason: str, *, outcome: str = "failed") -> None:
    """Traffic back on stable at once, the new version scaled down; recorded with the reason."""
    from gamesre.deploy.request import DeployRequest

    request = DeployRequest.from_dict(request_doc)
    store = _store()
    backend = make_backend(request.service, stage)
    backend.rollback(reason)
    now = _now()
    store.update_deployment(run_id, outcome=outcome, reason=reason, rolled_back_at=now)
    _update_stage(store, run_id, stage, outcome="rolled_back", finished_at=now, rolled_back_at=now,
                  after=backend.status().to_dict())
    log.warning("rolled back %s in %s: %s", request.service, stage, reason)


# --- the end --------------------------------------------------------------------------------------------------

def finalize(request_doc: dict[str, Any] | None, run_id: str) -> dict[str, Any]:
    """Decide the outcome, make sure nothing is left half-rolled-out, release the lock, record and notify."""
    from gamesre.deploy.request import DeployRequest

    store = _store()
    record = store.deployment(run_id)
    if record is None:  # validation itself crashed before recording
        record = {"id": run_id, "outcome": "failed", "reason": "the run failed before its request was recorded",
                  "service": "", "version": "", "stages": [], "stage_log": []}
        store.upsert_deployment({**record, "image": "", "strategy": "", "backend": "", "change_ticket": "",
                                 "requested_by": "", "dry_run": False, "forced": False, "requested_at": _now(),
                                 "run_url": run_url(run_id)})
    outcome, reason = str(record["outcome"]), str(record.get("reason") or "")
    request = DeployRequest.from_dict(request_doc) if request_doc else None
    if outcome == "running" and request is not None:
        done = [e["stage"] for e in record.get("stage_log") or [] if e.get("outcome") == "promoted"]
        if request.dry_run:
            outcome, reason = "dry_run", "dry run: the request is valid and every gate was evaluated; nothing changed"
        elif done == list(request.stages):
            outcome, reason = "promoted", f"{request.version} promoted through {', '.join(done)}"
        else:
            outcome, reason = "failed", ("the run ended before every stage was promoted (a task failed or was "
                                         "stopped); see the run's task logs")
    if request is not None and not request.dry_run and outcome not in OUTCOMES_OK:
        for entry in record.get("stage_log") or []:  # the safety net: nothing stays half rolled out
            if entry.get("outcome") == "running":
                try:
                    rollback(request_doc or {}, entry["stage"], run_id, reason, outcome=outcome)
                except Exception as exc:
                    reason += f" (the safety rollback of {entry['stage']} failed too: {exc}; check by hand)"
    if request is not None and not request.dry_run:
        store.release_deploy_lock(request.service, run_id)
    store.update_deployment(run_id, outcome=outcome, reason=reason, finished_at=_now())
    record = store.deployment(run_id) or record
    result = {"outcome": outcome, "reason": reason, "service": record.get("service"),
              "version": record.get("version"), "stages": record.get("stages"), "run_url": record.get("run_url"),
              "previous_version": record.get("previous_version")}
    _notify(record, store.verdicts(run_id), result)
    return result


def evidence_markdown(record: Mapping[str, Any], verdicts: list[dict[str, Any]]) -> str:
    """The deploy's evidence for people: gates, then every step's verdict with queries and statistics."""
    lines = [f"# Deploy {record.get('service')} {record.get('version')}: {record.get('outcome')}", "",
             f"- reason: {record.get('reason')}", f"- run: {record.get('run_url')}",
             f"- strategy: {record.get('strategy')}, backend: {record.get('backend')}, stages: "
             f"{', '.join(record.get('stages') or [])}",
             f"- requested by {record.get('requested_by')} (ticket {record.get('change_ticket')})"
             + (f", forced: {record.get('force_reason')}" if record.get("forced") else ""), ""]
    for entry in record.get("stage_log") or []:
        lines += [f"## Stage {entry.get('stage')}: {entry.get('outcome', 'not started')}", ""]
        for gate in entry.get("gates") or []:
            mark = "bypassed" if gate.get("bypassed") else ("passed" if gate.get("passed") else "BLOCKED")
            lines.append(f"- gate {gate.get('gate')}: {mark}: {gate.get('reason')}")
        lines.append("")
        for v in (v for v in verdicts if v["stage"] == entry.get("stage")):
            lines += [f"### {v['step_label']}: {v['decision']}", "", v["reason"], ""]
            evidence = v.get("evidence") or {}
            for sli in evidence.get("slis", []):
                stat = sli.get("statistic") or {}
                lines.append(f"- {sli['slo']}: {sli['decision']} ({sli['rule']}): candidate {sli.get('candidate')}, "
                             f"baseline {sli.get('baseline')}, LLR {stat.get('llr', float('nan')):.2f} "
                             f"(p0 {stat.get('p0', float('nan')):.4%}, p1 {stat.get('p1', float('nan')):.4%})")
                for cohort, queries in (sli.get("queries") or {}).items():
                    for name, q in queries.items():
                        lines.append(f"  - {cohort} {name}: `{q}`")
            for skipped in evidence.get("not_judged", []):
                lines.append(f"- {skipped['slo']}: not judged: {skipped['reason']}")
            lines.append("")
    return "\n".join(lines)


def _notify(record: Mapping[str, Any], verdicts: list[dict[str, Any]], result: Mapping[str, Any]) -> None:
    outcome = str(result["outcome"])
    text = (f"{EMOJI.get(outcome, '')} Deploy {record.get('service') or '?'} {record.get('version') or '?'}: "
            f"*{outcome}*. {result['reason']}\nRun and evidence: {record.get('run_url')}")
    channel_id = None
    try:
        from gamesre.core.services import load_services

        if record.get("service"):
            spec = load_services().get(str(record["service"]))
            channel_id = spec.slack.channel_id
            post_message(text, channel=spec.slack.channel)
        else:
            post_message(text)
    except Exception as exc:  # a notification failure never fails the workflow
        log.warning("deploy notice not sent: %s", exc)
        return
    if channel_id and verdicts:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"deploy-evidence-{record.get('service')}-{record.get('version')}.md"
            path.write_text(evidence_markdown(record, verdicts))
            post_file(path, channel_id=channel_id, title=f"Deploy evidence: {record.get('service')} "
                      f"{record.get('version')} ({outcome})")


def conclude(result: Mapping[str, Any]) -> str:
    """The run fails unless the deploy was promoted (or was a dry run): CI and the UI see the outcome."""
    if result["outcome"] not in OUTCOMES_OK:
        raise RuntimeError(f"deploy {result['outcome']}: {result['reason']}")
    return str(result["outcome"])
