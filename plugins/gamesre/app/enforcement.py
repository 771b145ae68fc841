"""The budget policy acts (docs/slo.md "Enforcement"): after each published policy state, roll back the change that
spent a service's budget, propose it to a person, or tell; page when there is nothing to roll back.

`evaluate` gathers the facts per service (published states, deployments, the ledger of its burning SLOs, the
decisions already taken), lets gamesre.slo.enforcement decide, records the decision once per service and policy
episode (the store's primary key: a concurrent run cannot decide twice), tells the owning team's channel and any
open incident's timeline, pages the owners when there is no suspect, and returns the runs to start: a
`game_service_deploy` run of kind `automatic-rollback` (mode act) or a `budget_policy_approval` run (mode propose),
which the DAG triggers. `answered` records what a person (or the timeout's default) answered a proposal.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from gamesre.app.ports import Clock, Notifier
from gamesre.core.services import ServiceCatalog
from gamesre.core.time import KST, as_utc
from gamesre.slo.enforcement import BLOCKING_SLO_STATES, Decision, Mode, Settings, SloMinutes, decide
from gamesre.slo.policy import is_stale
from gamesre.slo.spec import Policy, SloCatalog

log = logging.getLogger(__name__)

DEPLOY_DAG = "game_service_deploy"
APPROVAL_DAG = "budget_policy_approval"
REQUESTER = "budget-policy"
HISTORY = timedelta(days=35)  # how far back an episode is looked for (a window and then some)


class EnforcementStore(Protocol):
    def state_history(self, scope: str, name: str, since: datetime | None = None) -> list[dict[str, Any]]: ...
    def current_state(self, scope: str, name: str) -> dict[str, Any] | None: ...
    def deployments(self, service: str | None = None, since: datetime | None = None,
                    ids: Sequence[str] | None = None) -> list[dict[str, Any]]: ...
    def ledger(self, slo: str, start: int | None = None, end: int | None = None) -> Any: ...
    def policy_actions(self, service: str | None = None, since: datetime | None = None) -> list[dict[str, Any]]: ...
    def record_policy_action(self, record: dict[str, Any]) -> bool: ...
    def update_policy_action(self, service: str, episode_start: datetime, *, answer: dict[str, Any],
                             **fields: Any) -> None: ...
    def open_incidents(self, service: str | None = None) -> list[dict[str, Any]]: ...
    def add_incident_event(self, incident_key: str, kind: str, summary: str, *, actor: str = ...,
                           at: datetime | None = None, details: dict[str, Any] | None = None) -> None: ...


class Pager(Protocol):
    def trigger(self, *, summary: str, source: str, dedup_key: str, severity: str,
                details: dict[str, Any]) -> str: ...


@dataclass
class EnforcementPorts:
    store: EnforcementStore
    notifier: Notifier
    pager: Callable[[], Pager]  # opened only to page
    clock: Clock
    services: ServiceCatalog
    slos: SloCatalog
    policy: Policy

    @property
    def settings(self) -> Settings:
        return Settings.from_policy(self.policy.enforcement, self.services.names)


def evaluate(ports: EnforcementPorts, services: Sequence[str] | None = None,
             mode: Mode | None = None) -> list[dict[str, Any]]:
    """Decide for every service (or those named); the runs to start, as TriggerDagRunOperator kwargs
    ({trigger_dag_id, trigger_run_id, conf}). `mode` overrides policies.yaml's for this evaluation (a person
    running it by hand: `propose` to decide themselves, `notify` to only look)."""
    now = as_utc(ports.clock())
    settings = ports.settings if mode is None else replace(ports.settings, mode=mode, modes={})
    runs = []
    for service in services or ports.services.names:
        decision = decide_for(ports, service, now, settings)
        log.info("%s: %s: %s", service, decision.action, decision.reason)
        if decision.action == "none":
            continue
        run = _carry_out(ports, decision, now, settings)
        if run is not None:
            runs.append(run)
    return runs


def decide_for(ports: EnforcementPorts, service: str, now: datetime, settings: Settings) -> Decision:
    """The facts of one service, then the domain's decision. A stale or missing published state decides nothing."""
    store = ports.store
    current = store.current_state("service", service)
    if current is None or is_stale(current["computed_at"], now, ports.policy):
        return Decision(service, "none", "no fresh published state: nothing is enforced on stale facts",
                        str((current or {}).get("state", "unknown")))
    history = store.state_history("service", service, since=now - HISTORY)
    slo_states = dict((current.get("details") or {}).get("slo_states") or {})
    burning = [s for s in ports.slos.for_service(service) if slo_states.get(s.name) in BLOCKING_SLO_STATES]
    start = int((now - settings.look_back - timedelta(hours=1)).timestamp()) // 60 * 60
    minutes = []
    consumed: list[float] = []
    for slo in burning:
        ledger = store.ledger(slo.name, start, int(now.timestamp()) + 60)
        minutes.append(SloMinutes(slo.name, slo.target, [int(m) for m in ledger.minutes],
                                  [float(g) for g in ledger.good], [float(t) for t in ledger.total]))
        remaining = ((store.current_state("slo", slo.name) or {}).get("details") or {}).get(
            "budget_remaining_adjusted")
        if remaining is not None:
            consumed.append(1 - float(remaining))
    decided = [a["episode_start"] for a in store.policy_actions(service, since=now - HISTORY)]
    deployments = store.deployments(service=service, since=now - settings.look_back - timedelta(days=1))
    return decide(service, now, history, deployments, minutes, settings, decided_episodes=decided,
                  consumed=max(consumed) if consumed else None)


def _carry_out(ports: EnforcementPorts, decision: Decision, now: datetime,
               settings: Settings) -> dict[str, Any] | None:
    """Record the decision (once per episode), tell people, and return the run to start (None: nothing to start,
    or the episode was decided by someone else meanwhile)."""
    service, suspect = decision.service, decision.suspect
    assert decision.episode_start is not None
    run_id = ""
    conf: dict[str, Any] = {}
    if decision.action in ("rollback", "propose") and suspect is not None:
        run_id = f"budget-rollback__{service}__{now:%Y%m%dT%H%M%SZ}"
        incidents = ports.store.open_incidents(service=service)
        ticket = incidents[0]["id"] if incidents else f"POLICY-{int(decision.episode_start.timestamp())}"
        conf = {"kind": "automatic-rollback", "service": service, "rollback_of": suspect["id"],
                "change_ticket": ticket, "requested_by": REQUESTER,
                "cause": {"policy": {"state": decision.state, "reason": decision.reason,
                                     "episode_start": decision.episode_start.isoformat(),
                                     "evidence": dict(decision.evidence)}}}
    recorded = ports.store.record_policy_action({
        "service": service, "episode_start": decision.episode_start, "action": decision.action,
        "state": decision.state, "decided_at": now, "reason": decision.reason,
        "deployment_id": run_id if decision.action == "rollback" else None,
        "details": {**decision.to_dict(), "run_id": run_id or None}})
    if not recorded:
        log.info("%s: the episode was decided by another run meanwhile", service)
        return None
    text = _message(decision, run_id, settings)
    ports.notifier.message(text, channel_id=ports.services.channel_id(service))
    for incident in ports.store.open_incidents(service=service):
        ports.store.add_incident_event(incident["id"], "policy", text, actor=REQUESTER, at=now,
                                       details=decision.to_dict())
    if decision.action == "page":
        _page(ports, decision)
    if decision.action == "rollback":
        return {"trigger_dag_id": DEPLOY_DAG, "trigger_run_id": run_id, "conf": conf}
    if decision.action == "propose":
        return {"trigger_dag_id": APPROVAL_DAG, "trigger_run_id": f"proposal__{run_id}",
                "conf": {"service": service, "run_id": run_id, "deploy_conf": conf, "reason": decision.reason,
                         "episode_start": decision.episode_start.isoformat()}}
    return None


def _message(decision: Decision, run_id: str, settings: Settings) -> str:
    suspect = decision.suspect or {}
    head = {"rollback": ":rewind: Budget policy: rolling back",
            "propose": ":raising_hand: Budget policy: a rollback is proposed for",
            "notify": ":warning: Budget policy (notify only): a rollback would undo",
            "page": ":rotating_light: Budget policy: nothing to roll back for"}[decision.action]
    what = (f"{decision.service} {suspect.get('version')} -> {suspect.get('previous_version')} (deployment "
            f"{suspect.get('id')})" if suspect else decision.service)
    tail = {"rollback": f"\nRun: {DEPLOY_DAG} {run_id}",
            "propose": f"\nApprove or reject in the Airflow UI (Required actions, {APPROVAL_DAG}) within "
                       f"{settings.propose_timeout}; no answer: {settings.propose_default}",
            "notify": "", "page": "\nThe owners are paged."}[decision.action]
    return f"{head} {what}. {decision.reason}.{tail}"


def _page(ports: EnforcementPorts, decision: Decision) -> None:
    """PagerDuty for the owners; a pager that cannot be reached is logged, the message in Slack stands."""
    try:
        ports.pager().trigger(summary=f"{decision.service}: {decision.reason}"[:1000], source="gamesre budget policy",
                              dedup_key=f"budget-policy/{decision.service}/{decision.episode_start:%Y%m%dT%H%M}",
                              severity="critical", details=decision.to_dict())
    except Exception as exc:
        log.error("could not page the owners of %s: %s", decision.service, exc)
        ports.notifier.message(f":warning: the page for {decision.service} was NOT sent ({exc})",
                               channel_id=ports.services.sre.slack.channel_id)


ROLL_BACK, KEEP = "Roll back", "Keep"  # the proposal's options in the Airflow UI


def answered(ports: EnforcementPorts, service: str, episode_start: str, run_id: str, chosen: Sequence[str],
             responder: Mapping[str, Any] | None) -> bool:
    """Record a proposal's answer (the options chosen, and who; no one: the timeout's default applied) on the
    episode's decision, and say it. True when the rollback goes ahead."""
    now = as_utc(ports.clock())
    go = list(chosen) == [ROLL_BACK]
    who = str(responder.get("name") or responder.get("id")) if responder else "nobody in time (the default applies)"
    verdict = "approved" if go else "rejected"
    ports.store.update_policy_action(service, datetime.fromisoformat(episode_start),
                                     action="rollback" if go else "propose", deployment_id=run_id if go else None,
                                     answer={"chosen": list(chosen), "by": who, "at": now.isoformat()})
    text = (f":ballot_box_with_check: Budget policy: the rollback of {service} ({run_id}) was {verdict} by {who} at "
            f"{now.astimezone(KST):%H:%M} KST" + ("; it starts now" if go else "; the deploy freeze stays"))
    ports.notifier.message(text, channel_id=ports.services.channel_id(service))
    for incident in ports.store.open_incidents(service=service):
        ports.store.add_incident_event(incident["id"], "policy", text, actor=REQUESTER, at=now,
                                       details={"episode_start": episode_start, "run_id": run_id, "answer": verdict})
    log.info("%s", text)
    return go
