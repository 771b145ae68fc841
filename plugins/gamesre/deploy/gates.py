"""Gates before each deploy stage: pure decisions on what the I/O layer read (store, Alertmanager, calendar).

Each gate returns a GateResult that explains itself (reason + evidence). A stage starts only when every gate
of the stage (deploy.yaml `stages.<stage>.gates`) passed. `force` (with a reason) bypasses exactly one
thing: the 50% budget freeze (state deploy_freeze). Everything else that blocks keeps blocking:
- lock         another deploy of the service is running (one deploy per service at a time);
- page_alerts  a page-severity alert of the service is firing (active: not silenced, not inhibited);
- budget       the published service state is rollback (>= 80% consumed), fast_burn, no_data, missing,
               unknown or stale (older than policies.yaml state.stale_after), or deploy_freeze (>= 50%)
               without force. With force, every SLO of the service must be in a non-blocking state or in
               deploy_freeze: a freeze never hides a worse SLO;
- calendar     a maintenance window where services.yaml forbids deploys; and the evening peak when
               deploy.yaml `peak: block` (with `peak: stricter` the stage runs, its analysis 1.2x stricter);
- incident     a Sev0 or Sev1 incident is open on the service (docs/incidents.md), except for the remedy the
               incident asked for: a deploy whose change ticket is that incident's id.
A rollback (request kind `rollback`) has exactly two gates, whatever the stage lists: `lock` and
- backend      the backend cannot tell what runs (it is unreachable or its state unreadable), or the service
               already runs the version everywhere (nothing to roll back).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gamesre.core.gates import AlertsRead, GateResult, json_safe, page_alerts_gate
from gamesre.core.time import KST, as_utc
from gamesre.slo.policy import BLOCKING_STATES, STATES, is_evening_peak, is_stale
from gamesre.slo.spec import Policy


def lock_gate(holder: Mapping[str, Any] | None, run_id: str) -> GateResult:
    """holder: the lock row of the service ({run_id, version, acquired_at, ...}) or None."""
    if holder is None or holder.get("run_id") == run_id:
        return GateResult("lock", True, "no other deploy of the service is running",
                          evidence={"holder": None if holder is None else json_safe(holder)})
    since = holder.get("acquired_at")
    since_text = as_utc(since).astimezone(KST).strftime("%Y-%m-%d %H:%M %Z") if since else "an unknown time"
    return GateResult("lock", False,
                      f"{holder.get('service')} is being deployed by run {holder.get('run_id')!r} (version "
                      f"{holder.get('version')}, since {since_text}); one deploy per service at a time: wait for "
                      "it to finish, then trigger again", evidence={"holder": json_safe(holder)})


def budget_gate(state_row: Mapping[str, Any] | None, now: datetime, policy: Policy, *, force: bool,
                force_reason: str = "") -> GateResult:
    """state_row: the published service state ({state, computed_at, details: {slo_states}}) or None."""
    if state_row is None:
        return GateResult("budget", False, "no published error-budget state for the service: blocked until the "
                          "error_budget_report DAG has published one", evidence={"state": None})
    state = str(state_row.get("state"))
    computed_at = state_row.get("computed_at")
    evidence = {"state": state, "computed_at": json_safe(computed_at),
                "slo_states": dict((state_row.get("details") or {}).get("slo_states") or {})}
    if state not in STATES or computed_at is None:
        return GateResult("budget", False, f"unknown error-budget state {state!r}: blocked", evidence=evidence)
    if is_stale(computed_at, now, policy):
        age_min = (as_utc(now) - as_utc(computed_at)).total_seconds() / 60
        return GateResult("budget", False, f"the error-budget state is {age_min:.0f} min old (stale after "
                          f"{policy.state.stale_after}): blocked until a fresh one is published", evidence=evidence)
    if state == "deploy_freeze":
        worse = {slo: s for slo, s in evidence["slo_states"].items() if s in BLOCKING_STATES and s != "deploy_freeze"}
        if force and not worse:
            return GateResult("budget", True, f"deploy freeze (>= {policy.budget.deploy_freeze:.0%} of the budget "
                              f"consumed) bypassed by force: {force_reason}", bypassed=True, evidence=evidence)
        if force:
            return GateResult("budget", False, "force bypasses only the deploy freeze, but SLO(s) "
                              f"{', '.join(f'{k}={v}' for k, v in sorted(worse.items()))} block too", evidence=evidence)
        return GateResult("budget", False, f"deploy freeze: >= {policy.budget.deploy_freeze:.0%} of the error budget "
                          "consumed; only fixes ship (set force with a force_reason to bypass the freeze)",
                          evidence=evidence)
    if state in BLOCKING_STATES:
        why = {"rollback": f">= {policy.budget.rollback:.0%} of the error budget consumed",
               "fast_burn": "the budget is burning fast (page)",
               "no_data": "too little SLI data to judge the budget"}[state]
        return GateResult("budget", False, f"error-budget state {state}: {why}; force does not bypass it",
                          evidence=evidence)
    return GateResult("budget", True, f"error-budget state {state}", evidence=evidence)


def calendar_gate(maintenance_allowed: bool, maintenance_reason: str, now: datetime, policy: Policy, *,
                  peak_mode: str, strictest: bool) -> tuple[GateResult, float]:
    """(the result, the analysis strictness to apply: the peak strictness or 1.0)."""
    peak = is_evening_peak(now, policy)
    strictness = policy.evening_peak.strictness if (peak and strictest) else 1.0
    evidence = {"maintenance": maintenance_reason, "evening_peak": peak, "peak_mode": peak_mode,
                "strictness": strictness}
    if not maintenance_allowed:
        return GateResult("calendar", False, maintenance_reason, evidence=evidence), strictness
    if peak and strictest and peak_mode == "block":
        return GateResult("calendar", False, f"evening peak {policy.evening_peak.start}-{policy.evening_peak.end} "
                          f"{policy.evening_peak.timezone}: this stage does not start at peak (deploy.yaml peak: "
                          "block)", evidence=evidence), strictness
    note = (f"; evening peak: analysis {strictness:g}x stricter" if strictness != 1.0 else "")
    return GateResult("calendar", True, maintenance_reason + note, evidence=evidence), strictness


BLOCKING_SEVERITIES = ("sev0", "sev1")


def incident_gate(open_incidents: Sequence[Mapping[str, Any]], change_ticket: str) -> GateResult:
    """open_incidents: the incidents open on the service. A Sev0/Sev1 blocks, unless the deploy's change ticket is
    its id (the rollback or fix the incident asked for)."""
    evidence = {"open": [{"id": i["id"], "severity": i["severity"], "title": i["title"]} for i in open_incidents],
                "change_ticket": change_ticket}
    serious = [i for i in open_incidents if i["severity"] in BLOCKING_SEVERITIES]
    if not serious:
        lower = f" ({len(open_incidents)} of lower severity open)" if open_incidents else ""
        return GateResult("incident", True, f"no Sev0/Sev1 incident is open on the service{lower}", evidence=evidence)
    names = ", ".join(f"{i['id']} ({i['severity']}: {i['title']})" for i in serious)
    if any(i["id"] == change_ticket for i in serious):
        return GateResult("incident", True, f"the remedy {change_ticket} asked for (its id is the change ticket); "
                          f"open: {names}", evidence=evidence)
    return GateResult("incident", False, f"incident open on the service: {names}; only its remedy may deploy (change "
                      "ticket = the incident id)", evidence=evidence)


ROLLBACK_GATES = ("lock", "backend")


def backend_gate(status: Mapping[str, Any] | None, error: str, version: str) -> GateResult:
    """status: the backend's BackendStatus as a dict (None when it could not be read, `error` says why)."""
    if status is None:
        return GateResult("backend", False, f"the deploy backend cannot be read: {error}", evidence={"error": error})
    evidence = {"status": json_safe(dict(status))}
    if status.get("stable_version") == version and not status.get("candidate_version"):
        return GateResult("backend", False, f"the service already runs {version} everywhere: nothing to roll back",
                          evidence=evidence)
    return GateResult("backend", True, f"the backend answers: {status.get('detail')}", evidence=evidence)


def blocked(results: Sequence[GateResult]) -> list[GateResult]:
    return [r for r in results if not r.passed]


@dataclass(frozen=True)
class GateFacts:
    """What one stage's gates judge, gathered before any is judged (only the stage's own gates are read)."""

    now: datetime
    lock_holder: Mapping[str, Any] | None = None  # the service's deploy lock after trying to take it
    alerts: AlertsRead = field(default_factory=AlertsRead)  # the service's alerts from Alertmanager
    service_state: Mapping[str, Any] | None = None  # the published error-budget state of the service
    maintenance: tuple[bool, str] = (True, "")  # the calendar: deploys allowed now, and why (not)
    open_incidents: tuple[Mapping[str, Any], ...] = ()  # the incidents open on the service
    backend: tuple[Mapping[str, Any] | None, str] = (None, "not read")  # the backend's status, or why it is unknown


def judge_gates(gates: Sequence[str], facts: GateFacts, policy: Policy, *, run_id: str, force: bool,
                force_reason: str, peak_mode: str, strictest: bool,
                change_ticket: str = "", version: str = "") -> tuple[list[GateResult], float]:
    """Every gate of the stage, in deploy.yaml's order, judged from the facts; and the analysis strictness."""
    results: list[GateResult] = []
    strictness = 1.0
    for gate in gates:
        if gate == "lock":
            results.append(lock_gate(facts.lock_holder, run_id))
        elif gate == "page_alerts":
            results.append(page_alerts_gate(facts.alerts, scope="the service"))
        elif gate == "budget":
            results.append(budget_gate(facts.service_state, facts.now, policy, force=force,
                                       force_reason=force_reason))
        elif gate == "calendar":
            result, strictness = calendar_gate(*facts.maintenance, facts.now, policy, peak_mode=peak_mode,
                                               strictest=strictest)
            results.append(result)
        elif gate == "incident":
            results.append(incident_gate(facts.open_incidents, change_ticket))
        elif gate == "backend":
            results.append(backend_gate(*facts.backend, version))
    return results, strictness


