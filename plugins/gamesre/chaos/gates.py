"""Safety gates before a game-day injects anything: pure decisions on the facts gathered before (GateFacts).

Every gate must pass; a refused experiment records every gate's result (GateResult: reason + evidence):
- evening_peak  the experiment (its duration plus the recovery time) would touch the evening peak
                18:00-22:00 KST;
- calendar      a maintenance window, a live-ops event or a holiday that forbids chaos overlaps it;
- budget        the worst error budget remaining among the target service's SLOs is at or below the
                experiment's floor; a missing, unknown or stale state blocks too (never "fine");
- page_alerts   a page-severity alert is firing (anywhere: a game-day during a page is never right);
- incident      an incident is open on the target service;
- kill_switch   the global kill switch Variable is on;
- exclusive     another game-day holds the lock (one at a time).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from gamesre.core.gates import AlertsRead, GateResult, page_alerts_gate
from gamesre.core.time import KST, as_utc
from gamesre.slo.policy import is_evening_peak, is_stale
from gamesre.slo.spec import Policy

if TYPE_CHECKING:
    from gamesre.calendar.schedule import Calendar
    from gamesre.chaos.request import ExperimentRun

KILL_SWITCH_ON = frozenset({"on", "true", "1", "yes", "stop", "enabled"})


def kill_switch_on(value: object) -> bool:
    """Whether a kill-switch Variable value means on (unset, '', off, false, 0 are off)."""
    return str(value or "").strip().lower() in KILL_SWITCH_ON


def run_switch_variable(kill_switch_variable: str, run_id: str) -> str:
    """The kill switch of one experiment run (scoped: it stops that run only): `<global switch>__<run id>`, the run
    id's characters other than letters, digits, `.`, `_` and `-` replaced by `-` (a Variable key travels in URLs)."""
    return f"{kill_switch_variable}__{re.sub(r'[^A-Za-z0-9._-]', '-', run_id)}"[:250]


def evening_peak_gate(start: datetime, span: timedelta, policy: Policy) -> GateResult:
    """Refuse when any minute of [start, start + span] falls in the evening peak."""
    t = as_utc(start)
    end = t + span
    minute = timedelta(minutes=1)
    hit = None
    probe = t
    while probe <= end:
        if is_evening_peak(probe, policy):
            hit = probe
            break
        probe += minute
    if hit is None and is_evening_peak(end, policy):
        hit = end
    peak = f"{policy.evening_peak.start}-{policy.evening_peak.end} {policy.evening_peak.timezone}"
    evidence = {"start": t.isoformat(), "end": end.isoformat(), "peak": peak}
    if hit is not None:
        return GateResult("evening_peak", False, f"the experiment would run into the evening peak {peak} (at "
                          f"{hit.astimezone(KST):%H:%M} KST): game-days stay out of the peak", evidence=evidence)
    return GateResult("evening_peak", True, f"clear of the evening peak {peak}", evidence=evidence)


def calendar_gate(allowed: bool, reason: str) -> GateResult:
    """allowed/reason: the Calendar's chaos_allowed verdict over the experiment's span."""
    return GateResult("calendar", allowed, reason, evidence={"verdict": reason})


def budget_gate(service: str, slo_rows: Mapping[str, Mapping[str, Any] | None], floor: float, now: datetime,
                policy: Policy) -> GateResult:
    """slo_rows: the published state row of every SLO of the service (None when there is none)."""
    evidence: dict[str, Any] = {"floor": floor, "slos": {}}
    problems = []
    remaining_all = []
    for slo, row in sorted(slo_rows.items()):
        if row is None:
            problems.append(f"{slo}: no published error-budget state")
            evidence["slos"][slo] = None
            continue
        details = row.get("details") or {}
        remaining = details.get("budget_remaining_adjusted", details.get("budget_remaining"))
        computed_at = row.get("computed_at")
        evidence["slos"][slo] = {"state": row.get("state"), "budget_remaining": remaining,
                                 "computed_at": as_utc(computed_at).isoformat() if computed_at else None}
        if computed_at is None or is_stale(computed_at, now, policy):
            problems.append(f"{slo}: the published state is stale (older than {policy.state.stale_after})")
            continue
        if remaining is None:
            problems.append(f"{slo}: no budget remaining in the published state ({row.get('state')})")
            continue
        remaining_all.append((float(remaining), slo))
        if float(remaining) <= floor:
            problems.append(f"{slo}: {float(remaining):.1%} of the error budget remains, at or below the floor "
                            f"{floor:.0%}")
    if not slo_rows:
        problems.append(f"{service} has no SLO with a published state")
    if problems:
        return GateResult("budget", False, "error budget: " + "; ".join(problems), evidence=evidence)
    worst, worst_slo = min(remaining_all)
    return GateResult("budget", True, f"worst budget remaining {worst:.1%} ({worst_slo}), above the floor "
                      f"{floor:.0%}", evidence=evidence)


def incident_gate(open_incidents: Iterable[Mapping[str, Any]]) -> GateResult:
    incidents = [dict(i) for i in open_incidents]
    if not incidents:
        return GateResult("incident", True, "no incident is open", evidence={"open": []})
    names = ", ".join(f"{i.get('id')} ({i.get('severity')}: {i.get('title')})" for i in incidents)
    return GateResult("incident", False, f"incident(s) open: {names}",
                      evidence={"open": [{k: (v.isoformat() if isinstance(v, datetime) else v)
                                          for k, v in i.items()} for i in incidents]})


def kill_switch_gate(variable: str, value: object) -> GateResult:
    on = kill_switch_on(value)
    evidence = {"variable": variable, "value": None if value is None else str(value)}
    if on:
        return GateResult("kill_switch", False, f"the chaos kill switch (Variable {variable}) is on: no game-day "
                          "runs until it is turned off", evidence=evidence)
    return GateResult("kill_switch", True, f"the kill switch (Variable {variable}) is off", evidence=evidence)


def exclusive_gate(holder: Mapping[str, Any] | None, run_id: str) -> GateResult:
    """holder: the game-day lock row ({run_id, experiment, acquired_at}) or None."""
    if holder is None or holder.get("run_id") == run_id:
        return GateResult("exclusive", True, "no other game-day is running", evidence={"holder": None})
    since = holder.get("acquired_at")
    since_text = as_utc(since).astimezone(KST).strftime("%Y-%m-%d %H:%M %Z") if since else "an unknown time"
    return GateResult("exclusive", False, f"another game-day is running: {holder.get('experiment')} in run "
                      f"{holder.get('run_id')!r} since {since_text}; one game-day at a time",
                      evidence={"holder": {k: (as_utc(v).isoformat() if isinstance(v, datetime) else v)
                                           for k, v in holder.items()}})


# --- all the gates, over the gathered facts -------------------------------------------------------------------

@dataclass(frozen=True)
class GateFacts:
    """Everything the gates judge, read before any gate runs (one read per outside system)."""

    now: datetime
    calendar: Calendar  # the calendar with the store's ad-hoc windows and cancellations over the span
    slo_states: Mapping[str, Mapping[str, Any] | None]  # the published state of every SLO of the service
    alerts: AlertsRead
    open_incidents: Sequence[Mapping[str, Any]]
    kill_switch: object  # the kill-switch Variable's value (None: unset)
    lock_holder: Mapping[str, Any] | None  # the game-day lock's holder when another run has it


def experiment_span(run: ExperimentRun) -> timedelta:
    """How long the experiment may touch the service: its duration plus the recovery time."""
    return timedelta(seconds=run.duration_s + run.recovery_time_s)


def judge(run: ExperimentRun, facts: GateFacts, policy: Policy, *, kill_switch_variable: str) -> list[GateResult]:
    """Every gate's result, in a fixed order: evening_peak, calendar, budget, page_alerts, incident, kill_switch,
    exclusive."""
    span = experiment_span(run)
    calendar = facts.calendar.chaos_allowed(facts.now, run.service, span)
    return [evening_peak_gate(facts.now, span, policy), calendar_gate(calendar.allowed, calendar.reason),
            budget_gate(run.service, facts.slo_states, run.budget_floor, facts.now, policy),
            page_alerts_gate(facts.alerts, refusal="refused"), incident_gate(facts.open_incidents),
            kill_switch_gate(kill_switch_variable, facts.kill_switch), exclusive_gate(facts.lock_holder, run.run_id)]


def refusal(results: Iterable[GateResult]) -> str | None:
    """The reason recorded for a refused experiment (every refusing gate with its reason), or None when all pass."""
    refused = [r for r in results if not r.passed]
    if not refused:
        return None
    return "refused: " + "; ".join(f"{r.gate}: {r.reason}" for r in refused)
