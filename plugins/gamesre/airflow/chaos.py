"""Airflow glue of the chaos game-days: validation, gates, steady state, inject, recover, verdict, report, reaper.

The DAGs (dags/chaos_experiment.py, dags/chaos_gameday.py) and the ChaosMonitorSensor only call these
functions. Each is idempotent (DESIGN.md, decision 8): backends read before they act, the run record is an
upsert by run id, and recovery reads what to undo from the record, not from XCom.

The run record (SRE store table `chaos_run`, one row per experiment run; refused and skipped runs too) is kept
complete for the reports, the checklists and incident timelines: request, targets, gates, steady state before
and after, every probe sample, the abort, the injection and its recovery, times, verdict, score.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gamesre.airflow.hooks.store import SREStoreHook
from gamesre.airflow.links import run_url
from gamesre.airflow.notify import post_message

if TYPE_CHECKING:
    from gamesre.chaos.catalog import ChaosCatalog, Experiment
    from gamesre.chaos.faults import ChaosBackend
    from gamesre.chaos.request import ExperimentRun
    from gamesre.core.services import ServiceCatalog
    from gamesre.integrations.store import SREStore

log = logging.getLogger(__name__)

EXPERIMENT_DAG_ID = "chaos_experiment"
GAMEDAY_DAG_ID = "chaos_gameday"
RECOVER_ATTEMPTS = 3  # inside one try of the recover task; the task itself retries too
FAILED_VERDICTS = ("fail", "aborted", "error", "invalid")


class ChaosRefused(RuntimeError):
    """A safety gate refused the experiment; the message lists every refusing gate with its reason."""


class SteadyStateBroken(RuntimeError):
    """The steady state did not hold before injection; nothing is injected."""


class RecoveryFailed(RuntimeError):
    """The fault could not be removed, or its removal not confirmed; the message says what is still injected."""


def _now() -> datetime:
    return datetime.now(UTC)


def _store() -> SREStore:
    return SREStoreHook().get_conn()


def _catalog() -> ChaosCatalog:
    from gamesre.chaos.catalog import load_catalog

    return load_catalog()


def _services() -> ServiceCatalog:
    from gamesre.core.services import load_services

    return load_services()


def make_backend(service: str) -> ChaosBackend:
    """The service's chaos backend, from the factory registered for its kind (services.yaml chaos.backend)."""
    import gamesre.integrations.backends  # noqa: F401  (registers the product's backend kinds)
    from gamesre.airflow.deps import HookConnections
    from gamesre.chaos.faults import FAULT_BACKENDS

    spec = _services().get(service)
    return FAULT_BACKENDS.create(spec.chaos.backend, spec, HookConnections())


def _run(doc: Mapping[str, Any]) -> ExperimentRun:
    from gamesre.chaos.request import ExperimentRun

    return ExperimentRun.from_dict(doc)


# --- validation -----------------------------------------------------------------------------------------------

def validate(conf: Mapping[str, Any] | None, run_id: str, default_requester: str, *,
             dag_id: str = EXPERIMENT_DAG_ID) -> dict[str, Any]:
    """The validated run, its targets resolved, as a dict; InvalidChaosRequest (naming every problem) otherwise.

    Rejected before anything is injected: unknown fields or experiment, a blast radius over the cap, a target
    that matches nothing, targets that already have a fault of another run (overlapping experiments), an
    environment the experiment or the policy does not allow. The attempt is recorded either way.
    """
    from gamesre.chaos.faults import ChaosBackendError
    from gamesre.chaos.request import InvalidChaosRequest, build_run, overlaps, pick_targets

    catalog = _catalog()
    services = _services()
    store = _store()
    raw = dict(conf or {})
    backends = {name: services.get(name).chaos.backend for name in services.names}
    base = {"id": run_id, "requested_at": _now(), "run_url": run_url(dag_id, run_id),
            "gameday_id": raw.get("gameday_id") if isinstance(raw.get("gameday_id"), str) else None}
    try:
        run = build_run(raw, catalog, run_id=run_id, requested_by=default_requester, backends=backends)
        try:
            backend = make_backend(run.service)
            candidates = backend.targets(run.selector)
            backend_active = [i.to_dict() for i in backend.injected(run.service)]
        except ChaosBackendError as exc:  # an unknown selector key, or the backend cannot be asked
            raise InvalidChaosRequest([f"target: {exc}"]) from None
        targets = pick_targets(run, candidates, catalog)
        active = [r["injection"] for r in store.unrecovered_chaos_runs() if r.get("injection")] + backend_active
        clashes = overlaps(targets, run.service, active, run_id)
        if clashes:
            raise InvalidChaosRequest([f"target: overlapping experiments: {c}" for c in clashes])
    except InvalidChaosRequest as exc:
        experiment = catalog.experiments.get(str(raw.get("experiment")))
        store.upsert_chaos_run({
            **base, "experiment": str(raw.get("experiment") or "")[:128],
            "title": experiment.title if experiment else "", "service": experiment.target.service if experiment else "",
            "backend": "", "environment": str(raw.get("environment") or catalog.policy.environment)[:16],
            "fault": experiment.fault_spec().to_dict() if experiment else {},
            "requested_by": str(raw.get("requested_by") or default_requester)[:128],
            "dry_run": bool(raw.get("dry_run")),
            "weight": experiment.weight if experiment else 0.0, "verdict": "invalid",
            "reason": str(exc), "finished_at": _now()})
        raise
    run = replace(run, targets=tuple(targets))
    store.upsert_chaos_run({
        **base, "experiment": run.experiment, "title": run.title, "service": run.service, "backend": run.backend,
        "environment": run.environment, "fault": run.fault.to_dict(), "targets": list(targets),
        "blast_radius": {"requested": str(run.blast_radius), "resolved": len(targets), "of": len(candidates)},
        "dry_run": run.dry_run, "requested_by": run.requested_by, "weight": run.weight, "verdict": "running"})
    log.info("%s on %s %s: targets %s", run.experiment, run.service, dict(run.selector), targets)
    return run.to_dict()


# --- gates ----------------------------------------------------------------------------------------------------

def check_gates(run_doc: Mapping[str, Any], run_id: str) -> list[dict[str, Any]]:
    """Evaluate every safety gate; ChaosRefused (recorded) when any refuses. The exclusive gate takes the
    game-day lock (kept until recover releases it); a dry run only looks at it. An outside system that cannot
    be asked (Alertmanager down) refuses, with the reason."""
    from airflow.sdk import Variable

    from gamesre.calendar import load_calendar
    from gamesre.chaos import gates as g
    from gamesre.slo.spec import load_policies, load_slos

    run = _run(run_doc)
    catalog = _catalog()
    store = _store()
    policy = load_policies()
    now = _now()
    span = timedelta(seconds=run.duration_s + run.recovery_time_s)
    results = [g.evening_peak_gate(now, span, policy)]
    services = _services()
    calendar = load_calendar(services=services).with_store_rows(store.windows(now, now + span,
                                                                              include_cancelled=True))
    verdict = calendar.chaos_allowed(now, run.service, span)
    results.append(g.calendar_gate(verdict.allowed, verdict.reason))
    slo_rows = {s.name: store.current_state("slo", s.name) for s in load_slos() if s.service == run.service}
    results.append(g.budget_gate(run.service, slo_rows, run.budget_floor, now, policy))
    results.append(_page_gate())
    results.append(g.incident_gate(store.open_incidents()))
    key = catalog.policy.kill_switch_variable
    results.append(g.kill_switch_gate(key, Variable.get(key, default=None)))
    if run.dry_run:
        holder = store.chaos_lock()
    else:
        holder = store.acquire_chaos_lock(run_id, run.experiment, stale_after_s=catalog.policy.lock_stale_after_s)
    results.append(g.exclusive_gate(holder, run_id))
    docs = [r.to_dict() for r in results]
    for r in results:
        log.info("gate %s: %s: %s", r.gate, "passed" if r.passed else "REFUSED", r.reason)
    refused = [r for r in results if not r.passed]
    store.update_chaos_run(run_id, gates=docs)
    if refused:
        if not run.dry_run and holder is None:
            store.release_chaos_lock(run_id)
        reason = "refused: " + "; ".join(f"{r.gate}: {r.reason}" for r in refused)
        store.update_chaos_run(run_id, verdict="refused", reason=reason)
        raise ChaosRefused(reason)
    return docs


def _page_gate() -> Any:
    from gamesre.airflow.hooks.alertmanager import AlertmanagerHook
    from gamesre.app.facts import read_alerts
    from gamesre.core.gates import page_alerts_gate

    return page_alerts_gate(read_alerts(AlertmanagerHook().get_conn()), refusal="refused")


# --- steady state ---------------------------------------------------------------------------------------------

def _experiment(run: ExperimentRun) -> Experiment:
    return _catalog().experiment(run.experiment)


def steady_state_before(run_doc: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """Every probe at one instant; SteadyStateBroken (recorded as skipped) when any is out of tolerance.

    The values become the baselines of the experiment's baseline probes.
    """
    from gamesre.airflow.hooks.prometheus import PrometheusHook
    from gamesre.chaos.probes import read_probes, steady_state
    from gamesre.integrations.prometheus import PrometheusError

    run = _run(run_doc)
    probes = _experiment(run).steady_state.probes
    client = PrometheusHook().get_conn()
    at = time.time()
    values: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    for probe in probes:
        try:
            values[probe.name] = client.scalar(probe.query, at)
        except PrometheusError as exc:
            errors[probe.name] = str(exc)
    readings = read_probes(probes, values, at, values, errors)
    holds, reason = steady_state(readings)
    result = {"passed": holds, "reason": reason, "at": at, "probes": [_reading_doc(r, probes) for r in readings],
              "baselines": {r.name: r.value for r in readings}}
    _store().update_chaos_run(run_id, steady_before=result)
    log.info("steady state before: %s", reason)
    if not holds:
        _store().update_chaos_run(run_id, verdict="skipped", reason=f"steady state did not hold before injection: "
                                  f"{reason}")
        raise SteadyStateBroken(reason)
    return result


def _reading_doc(reading: Any, probes: Any) -> dict[str, Any]:
    probe = next(p for p in probes if p.name == reading.name)
    return {**reading.to_dict(), "query": probe.query, "tolerance": probe.tolerance.describe()}


# --- inject, monitor, recover ---------------------------------------------------------------------------------

def inject(run_doc: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """Apply the fault; the Injection is written to the record before and after (the backend writes its own
    intent first too), so recover() and the reaper can always undo it."""
    run = _run(run_doc)
    store = _store()
    backend = make_backend(run.service)
    store.update_chaos_run(run_id, injected_at=_now())  # from here on, recovery is owed
    injection = backend.inject(run_id, run.experiment, run.fault, list(run.targets))
    store.update_chaos_run(run_id, injection=injection.to_dict())
    log.info("injected %s into %s: %s", run.fault.kind, ", ".join(injection.targets), run.fault.params)
    return injection.to_dict()


def burn_queries(service: str, slos: list[str], window: str) -> dict[str, str]:
    from gamesre.chaos.probes import burn_query
    from gamesre.slo.rules import ratio_error_expr
    from gamesre.slo.spec import RatioSli, load_slos

    out = {}
    for slo in load_slos():
        if slo.name in slos and slo.service == service and isinstance(slo.sli, RatioSli):
            out[slo.name] = burn_query(ratio_error_expr(slo.sli, window), slo.target)
    return out


def monitor_spec(run_doc: Mapping[str, Any], before: Mapping[str, Any], injected_at: float) -> dict[str, Any]:
    run = _run(run_doc)
    catalog = _catalog()
    experiment = catalog.experiment(run.experiment)
    return {"mode": "monitor", "run_id": run.run_id, "experiment": run.experiment,
            "probes": [p.model_dump() for p in experiment.steady_state.probes],
            "abort": experiment.abort.model_dump(), "baselines": dict(before.get("baselines") or {}),
            "started_at": injected_at, "duration_s": run.duration_s, "interval_s": run.probe_interval_s,
            "burn_queries": burn_queries(run.service, experiment.abort.burn_slos, experiment.abort.burn_window),
            "kill_switch_variable": catalog.policy.kill_switch_variable}


def recovery_spec(run_doc: Mapping[str, Any], before: Mapping[str, Any], recovered_at: float) -> dict[str, Any]:
    run = _run(run_doc)
    catalog = _catalog()
    experiment = catalog.experiment(run.experiment)
    return {"mode": "recovery", "run_id": run.run_id, "experiment": run.experiment,
            "probes": [p.model_dump() for p in experiment.steady_state.probes],
            "baselines": dict(before.get("baselines") or {}), "started_at": recovered_at,
            "recovery_time_s": run.recovery_time_s, "confirmations": catalog.policy.recovery_confirmations,
            "interval_s": run.probe_interval_s}


def monitor_done(run_doc: Mapping[str, Any], run_id: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """Record the monitor's decision; an abort stops the fault at once (recover confirms it next)."""
    from gamesre.chaos.faults import Injection

    store = _store()
    fields: dict[str, Any] = {"probes": _probe_docs(run_doc, event.get("samples") or {})}
    if event.get("outcome") == "aborted":
        at = datetime.fromtimestamp(float(event.get("at") or time.time()), UTC)
        fields.update(abort={"rule": event.get("rule"), "reason": event.get("reason"), "at": at.isoformat()},
                      aborted_at=at)
        record = store.chaos_run(run_id) or {}
        if record.get("injection"):
            try:
                make_backend(_run(run_doc).service).abort(Injection.from_dict(record["injection"]))
            except Exception as exc:  # recover (the teardown) retries and confirms
                log.warning("stopping the fault at once failed (recover will retry): %s", exc)
    store.update_chaos_run(run_id, **fields)
    log.info("monitor: %s (%s): %s", event.get("outcome"), event.get("rule"), event.get("reason"))
    return {k: event.get(k) for k in ("outcome", "rule", "reason", "at", "polls", "errors")}


def _probe_docs(run_doc: Mapping[str, Any], samples: Mapping[str, Any]) -> list[dict[str, Any]]:
    from gamesre.chaos.probes import probe_success

    experiment = _experiment(_run(run_doc))
    out = []
    for p in experiment.steady_state.probes:
        rows = list(samples.get(p.name) or [])
        out.append({"name": p.name, "query": p.query, "tolerance": p.tolerance.describe(), "weight": p.weight,
                    "bounds": {"low": p.tolerance.min, "high": p.tolerance.max}, "samples": rows,
                    "success_pct": probe_success(rows, experiment.abort.no_data)})
    return out


def recover(run_id: str) -> dict[str, Any]:
    """Remove this run's fault (if any) and confirm it, then release the game-day lock. Idempotent.

    Backend errors are retried here (RECOVER_ATTEMPTS, with back-off) and by the task's own retries; when the
    fault is still injected after that, RecoveryFailed is raised and the task's failure callback pages.
    """
    from gamesre.chaos.faults import ChaosBackendError, Injection, Recovery

    store = _store()
    record = store.chaos_run(run_id)
    if record is None or not record.get("injected_at"):
        store.release_chaos_lock(run_id)
        return {"recovered": True, "detail": "nothing was injected", "attempts": 0}
    if record.get("recovered_at"):
        store.release_chaos_lock(run_id)
        return dict(record.get("recovery") or {"recovered": True})
    backend = make_backend(str(record["service"]))
    doc = record.get("injection")
    injections = [Injection.from_dict(doc)] if doc else [i for i in backend.injected(str(record["service"]))
                                                         if i.run_id == run_id]
    attempts, outcome, last_error = 0, Recovery(True, (), "nothing of this run is injected"), ""
    for injection in injections:
        for attempt in range(1, RECOVER_ATTEMPTS + 1):
            attempts += 1
            try:
                outcome = backend.recover(injection)
                last_error = ""
                if outcome.recovered:
                    break
            except ChaosBackendError as exc:
                last_error = str(exc)
                log.warning("recovery attempt %d of %s failed: %s", attempt, injection.experiment, exc)
            time.sleep(min(30.0, 2.0 * 2 ** attempt))
        if not outcome.recovered or last_error:
            break
    recovered = outcome.recovered and not last_error
    result = {**outcome.to_dict(), "recovered": recovered, "attempts": attempts,
              "detail": last_error or outcome.detail}
    if not recovered:
        store.update_chaos_run(run_id, recovery=result)
        still = ", ".join(outcome.remaining) or f"{record['fault'].get('kind')} on {', '.join(record['targets'])}"
        raise RecoveryFailed(f"{record['experiment']}: the fault is still injected ({still}): "
                             f"{last_error or outcome.detail}")
    store.update_chaos_run(run_id, recovery=result, recovered_at=_now())
    store.release_chaos_lock(run_id)
    log.info("recovered: %s", result["detail"])
    return result


def page_unrecovered(context: Mapping[str, Any]) -> None:
    """on_failure_callback of recover (after its retries): page the on-call with what is still injected."""
    try:
        run_id = str(context["dag_run"].run_id)
        record = _store().chaos_run(run_id) or {}
        recovery = record.get("recovery") or {}
        remaining = recovery.get("remaining") or [f"{(record.get('fault') or {}).get('kind')} on "
                                                  f"{', '.join(record.get('targets') or [])}"]
        channel = _catalog().policy.oncall_channel
        text = (f"<!here> :rotating_light: *Chaos recovery FAILED* for `{record.get('experiment')}` on "
                f"{record.get('service')} ({record.get('backend')}). Still injected:\n"
                + "\n".join(f"• {r}" for r in remaining)
                + f"\nLast error: {recovery.get('detail') or context.get('exception')}\n"
                f"Recover by hand or re-run the task: {record.get('run_url') or run_id}")
        post_message(text, channel=channel)
        _store().update_chaos_run(run_id, verdict="error", reason=f"recovery failed, on-call paged: "
                                  f"{recovery.get('detail') or context.get('exception')}", finished_at=_now())
    except Exception as exc:  # a callback never raises
        log.warning("could not page about the failed recovery: %s", exc)


def steady_after_done(run_id: str, event: Mapping[str, Any]) -> dict[str, Any]:
    record = _store().chaos_run(run_id) or {}
    spec = {k: event.get(k) for k in ("passed", "recovered_within_s", "reason", "probes", "samples")}
    catalog = _catalog()
    spec["recovery_time_s"] = catalog.recovery_time_s(catalog.experiment(str(record.get("experiment"))))
    _store().update_chaos_run(run_id, steady_after=spec)
    return spec


# --- verdict, report, notification ----------------------------------------------------------------------------

def finalize(run_id: str, *, error: str | None = None) -> dict[str, Any]:
    """Decide the verdict and score from the record, release the lock, write the report, tell Slack."""
    from gamesre.chaos.probes import resilience_score, verdict

    store = _store()
    record = store.chaos_run(run_id)
    if record is None:
        return {"verdict": "error", "reason": "no chaos run record (validation did not run)"}
    if record["verdict"] in ("invalid", "refused", "skipped") or (record["verdict"] == "error"
                                                                  and record.get("finished_at")):
        decided, reason, score = record["verdict"], record["reason"], None
    else:
        recovery = record.get("recovery") or {}
        monitor = record.get("abort")
        decision = ({"outcome": "aborted", **monitor} if monitor else
                    ({"outcome": "completed"} if record.get("probes") and record.get("injected_at") else None))
        decided, reason = verdict(
            dry_run=bool(record.get("dry_run")),
            error=error or (None if record.get("injected_at") else "the fault was never injected"),
            decision=decision, recovered=recovery.get("recovered") if record.get("injected_at") else None,
            recovery_detail=str(recovery.get("detail") or ""), steady_after=record.get("steady_after"))
        score = None
        if decided in ("pass", "fail", "aborted") and record.get("experiment"):
            experiment = _catalog().experiment(record["experiment"])
            samples = {p["name"]: p.get("samples") or [] for p in record.get("probes") or []}
            score, _ = resilience_score(experiment.steady_state.probes, samples, experiment.abort.no_data)
    store.update_chaos_run(run_id, verdict=decided, reason=reason, score=score, finished_at=_now())
    if record.get("injected_at"):
        _record_window(store, record)
    if not (record.get("injected_at") and not record.get("recovered_at")):
        store.release_chaos_lock(run_id)  # never while a fault of this run may still be injected
    record = store.chaos_run(run_id) or record
    files = write_report([report_record(record)], name=_safe(run_id), suite_name=f"chaos.{record['experiment']}")
    _notify([report_record(record)], None, files)
    log.info("verdict %s (score %s): %s", decided, score, reason)
    return {"verdict": decided, "reason": reason, "score": score, "report": {k: str(v) for k, v in files.items()}}


def _record_window(store: SREStore, record: Mapping[str, Any]) -> None:
    """The fault's span as a `gameday` window, so SLO reports show it; SLOs with count_gamedays_against_budget:
    false leave it out of their budgets (gamesre.slo.evaluation)."""
    end = record.get("recovered_at") or _now()
    store.upsert_window({
        "id": f"gameday:{record['id']}"[:128], "kind": "gameday", "start": record["injected_at"],
        "end": max(end, record["injected_at"] + timedelta(minutes=1)), "services": [record["service"]],
        "reason": f"chaos game-day: {record['experiment']} ({(record.get('fault') or {}).get('kind')} on "
                  f"{', '.join(record.get('targets') or [])})",
        "owner": record.get("requested_by") or "chaos", "ticket": "", "status": "completed",
        "excludes_budget": False, "created_by": record.get("requested_by") or "chaos"})


def conclude(result: Mapping[str, Any]) -> str:
    """Fail the run when the hypothesis broke, the machinery failed or the request was invalid; a refusal by the
    safety gates or a skip (no steady state to start from) is a decision, not a failure."""
    from airflow.sdk.exceptions import AirflowFailException

    text = f"{result.get('verdict')}: {result.get('reason')}"
    if result.get("verdict") in FAILED_VERDICTS:
        raise AirflowFailException(text)
    return text


def report_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A chaos_run row in the shape gamesre.reports.chaos_report renders."""
    def iso(value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    out: dict[str, Any] = {k: iso(v) for k, v in row.items()}
    out["timeline"] = {k: iso(row.get(k)) for k in ("requested_at", "injected_at", "aborted_at", "recovered_at",
                                                    "finished_at")}
    return out


def report_dir() -> Path:
    root = os.environ.get("GAMESRE_REPORT_DIR") or os.path.join(os.environ.get("AIRFLOW_HOME", "."), "reports")
    return Path(root) / "chaos"


def _safe(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:150]


def write_report(runs: list[dict[str, Any]], *, name: str, suite_name: str,
                 gameday: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Markdown, HTML and JUnit XML of the runs, with the score history, in the report folder."""
    from gamesre.reports.chaos_report import junit_xml, render_html, render_markdown

    store = _store()
    since = _now() - timedelta(days=180)
    history = [{"id": r["id"], "experiment": r["experiment"], "finished_at": report_record(r)["finished_at"],
                "verdict": r["verdict"], "score": r["score"]}
               for r in store.chaos_runs(since=since) if r.get("score") is not None]
    history += [{"id": g["id"], "suite": g["suite"], "kind": "gameday", "finished_at": report_record(g)["finished_at"],
                 "verdict": g["verdict"], "score": g["score"]}
                for g in store.gamedays(since=since) if g.get("score") is not None]
    history.sort(key=lambda h: h.get("finished_at") or "")
    folder = report_dir()
    folder.mkdir(parents=True, exist_ok=True)
    files = {"markdown": folder / f"{name}.md", "html": folder / f"{name}.html", "junit": folder / f"{name}.junit.xml"}
    files["markdown"].write_text(render_markdown(runs, gameday=gameday, history=history))
    files["html"].write_text(render_html(runs, gameday=gameday, history=history))
    files["junit"].write_text(junit_xml(runs, suite_name=suite_name))
    return files


def _notify(runs: list[dict[str, Any]], gameday: Mapping[str, Any] | None, files: Mapping[str, Path]) -> None:
    from gamesre.reports.chaos_report import slack_summary

    text = slack_summary(runs, gameday=gameday, report_url=str(files.get("html")))
    services = _services()
    channels = {services.get(r["service"]).slack.channel for r in runs if r.get("service") in services.names}
    if not channels:
        post_message(text)
    for channel in sorted(channels):
        post_message(text, channel=channel)


# --- the reaper -------------------------------------------------------------------------------------------------

def reap(current_run_id: str | None = None) -> dict[str, Any]:
    """Find faults left behind by crashed runs and recover them.

    A fault is left behind when its run is not the one holding the (fresh) game-day lock: either the store
    says it was injected and never confirmed recovered, or a backend still shows a fault of ours. The holder's
    faults belong to a game-day in progress and are left alone.
    """
    from gamesre.chaos.faults import ChaosBackendError

    store = _store()
    catalog = _catalog()
    holder = store.chaos_lock()
    busy = None
    if holder is not None and (_now() - holder["acquired_at"]).total_seconds() <= catalog.policy.lock_stale_after_s:
        busy = holder["run_id"]
    found: dict[str, list[Any]] = {}
    for name in _services().names:
        try:
            backend = make_backend(name)
            leftovers = [i for i in backend.injected(name) if i.run_id not in (busy, current_run_id)]
        except Exception as exc:
            log.warning("reaper: cannot list the faults of %s: %s", name, exc)
            continue
        for injection in leftovers:
            found.setdefault(name, []).append(injection)
    for row in store.unrecovered_chaos_runs():
        if row["id"] in (busy, current_run_id) or not row.get("injection"):
            continue
        from gamesre.chaos.faults import Injection

        injection = Injection.from_dict(row["injection"])
        if not any(i.run_id == injection.run_id for i in found.get(injection.service, [])):
            found.setdefault(injection.service, []).append(injection)
    reaped, failed = [], []
    for service, injections in found.items():
        backend = make_backend(service)
        for injection in injections:
            try:
                outcome = backend.recover(injection)
            except ChaosBackendError as exc:
                failed.append(f"{injection.run_id}: {exc}")
                continue
            entry = f"{injection.experiment} ({injection.run_id}) on {', '.join(injection.targets)}"
            if not outcome.recovered:
                failed.append(f"{entry}: {outcome.detail}")
                continue
            reaped.append(entry)
            if store.chaos_run(injection.run_id) is not None:
                record = store.chaos_run(injection.run_id) or {}
                fields: dict[str, Any] = {"recovered_at": _now(),
                                          "recovery": {**outcome.to_dict(), "attempts": 1, "by": "reaper"}}
                if record.get("verdict") == "running":
                    fields.update(verdict="error", reason="the run crashed with the fault injected; the reaper "
                                  "recovered it", finished_at=_now())
                store.update_chaos_run(injection.run_id, **fields)
            if holder is not None and holder["run_id"] == injection.run_id:
                store.release_chaos_lock(injection.run_id)
    if failed:
        post_message("<!here> :rotating_light: *Chaos reaper could not recover* left-behind faults:\n"
                     + "\n".join(f"• {f}" for f in failed), channel=catalog.policy.oncall_channel)
        raise RecoveryFailed("; ".join(failed))
    for entry in reaped:
        log.warning("reaper recovered a left-behind fault: %s", entry)
    return {"reaped": reaped}


# --- game-days --------------------------------------------------------------------------------------------------

GAMEDAY_LATE_AFTER = timedelta(hours=1)


def plan_gameday(suite_name: str, run_id: str, *, dry_run: bool = False,
                 scheduled_for: datetime | None = None) -> list[dict[str, Any]]:
    """Record the game-day and return one chaos_experiment conf per experiment of the suite, in order.

    A scheduled game-day runs on time or not at all: one more than GAMEDAY_LATE_AFTER late (the DAG was
    unpaused on another day, or the scheduler was down) is refused, so nobody is surprised by faults
    injected at an hour nobody planned for. ChaosRefused then.
    """
    catalog = _catalog()
    suite = catalog.suite(suite_name)
    now = _now()
    record = {"id": run_id, "suite": suite_name, "experiments": list(suite.experiments), "verdict": "running",
              "started_at": now, "run_url": run_url(GAMEDAY_DAG_ID, run_id)}
    if scheduled_for is not None and now - scheduled_for > GAMEDAY_LATE_AFTER:
        from gamesre.core.time import KST

        reason = (f"refused: this scheduled game-day was due at {scheduled_for.astimezone(KST):%Y-%m-%d %H:%M %Z} "
                  f"and is {(now - scheduled_for).total_seconds() / 3600:.1f} h late; a late game-day does not run "
                  "(trigger one by hand to run it now)")
        _store().upsert_gameday({**record, "verdict": "refused", "reason": reason, "finished_at": now})
        raise ChaosRefused(reason)
    _store().upsert_gameday(record)
    who = f"{GAMEDAY_DAG_ID}:{suite_name}"
    return [{"experiment": e, "gameday_id": run_id, "dry_run": dry_run, "requested_by": who} for e in suite.experiments]


def gameday_verdict(runs: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """The game-day's verdict from its experiments' verdicts."""
    verdicts = [str(r.get("verdict")) for r in runs]
    if not verdicts:
        return "error", "no experiment ran"
    if any(v in ("error", "running", "invalid") for v in verdicts):
        return "error", "an experiment ended in error (see its report)"
    if any(v in ("fail", "aborted") for v in verdicts):
        bad = [f"{r['experiment']} {r['verdict']}" for r in runs if r.get("verdict") in ("fail", "aborted")]
        return "fail", "hypotheses broken: " + ", ".join(bad)
    if all(v == "refused" for v in verdicts):
        return "refused", "every experiment was refused by the safety gates: " + str(runs[0].get("reason"))
    if all(v in ("pass", "dry_run") for v in verdicts):
        return "pass", "every experiment passed"
    return "pass", "the experiments that ran passed; others were refused or skipped"


def gameday_report(run_id: str) -> dict[str, Any]:
    """Gather the game-day's experiment records, score it, record it, write the report and tell Slack."""
    from gamesre.reports.chaos_report import gameday_score

    store = _store()
    found = store.gamedays(ids=[run_id])
    gameday = found[0] if found else None
    runs = [report_record(r) for r in store.chaos_runs(gameday_id=run_id)]
    if gameday is not None and gameday["verdict"] == "refused" and not runs:
        decided, reason = "refused", str(gameday["reason"])
    else:
        decided, reason = gameday_verdict(runs)
    score = gameday_score(runs)
    if gameday is None:  # plan never ran: record what can be known
        store.upsert_gameday({"id": run_id, "suite": "?", "started_at": _now(), "run_url": run_url(GAMEDAY_DAG_ID,
                                                                                                   run_id)})
    store.update_gameday(run_id, verdict=decided, score=score, reason=reason, finished_at=_now())
    gameday_doc = report_record((store.gamedays(ids=[run_id]) or [{}])[0])
    files = write_report(runs, name=_safe(run_id), suite_name=f"chaos.gameday.{gameday_doc.get('suite')}",
                         gameday=gameday_doc)
    _notify(runs, gameday_doc, files)
    return {"verdict": decided, "reason": reason, "score": score, "experiments": len(runs),
            "report": {k: str(v) for k, v in files.items()}}
