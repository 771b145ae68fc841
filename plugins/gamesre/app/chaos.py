"""The chaos game-day workflow, one function per step the DAGs run: validate, gates, steady state, inject, monitor,
recover, verdict and report, the reaper, and the game-day suite.

Every step takes its dependencies in ChaosPorts (gamesre.airflow.deps.chaos_ports builds the real ones from Airflow
hooks; tests pass in-memory ones) and is idempotent (DESIGN.md, decision 9): backends read before they act, the run
record is an upsert by run id, and recovery reads what to undo from the record, not from XCom. A step gathers its
facts, lets the chaos domain decide (gamesre.chaos.gates, probes, outcome, gameday, reaper, records), then acts and
records. The run record (SRE store table `chaos_run`) is described in gamesre.chaos.records.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from gamesre.app.facts import AlertsPort, read_alerts
from gamesre.app.ports import Clock, Notifier, utcnow
from gamesre.calendar import Calendar, load_calendar
from gamesre.chaos import gameday, gates, outcome, reaper, records
from gamesre.chaos.catalog import ChaosCatalog, load_catalog
from gamesre.chaos.faults import ChaosBackend, Injection, Recovery
from gamesre.chaos.probes import burn_queries
from gamesre.chaos.request import ExperimentRun, InvalidChaosRequest, build_run, overlaps, pick_targets
from gamesre.core.errors import OutsideSystemError
from gamesre.core.services import ServiceCatalog, load_services
from gamesre.reports.chaos_report import gameday_score, junit_xml, render_html, render_markdown, slack_summary
from gamesre.slo.spec import Policy, SloCatalog, load_policies, load_slos

log = logging.getLogger(__name__)

RECOVER_ATTEMPTS = 3  # inside one try of the recover task; the task itself retries too
HISTORY = timedelta(days=180)  # the score trend in the reports


class ChaosRefused(RuntimeError):
    """A safety gate refused the experiment (or a scheduled game-day was late); the message lists every reason."""


class SteadyStateBroken(RuntimeError):
    """The steady state did not hold before injection; nothing is injected."""


class RecoveryFailed(RuntimeError):
    """The fault could not be removed, or its removal not confirmed; the message says what is still injected."""


# --- ports ------------------------------------------------------------------------------------------------------

class ChaosStore(Protocol):
    """The SRE store's chaos, window, state and incident records, as the chaos steps use them."""

    def upsert_chaos_run(self, record: dict[str, Any]) -> None: ...

    def update_chaos_run(self, run_id: str, **fields: Any) -> None: ...

    def chaos_run(self, run_id: str) -> dict[str, Any] | None: ...

    def chaos_runs(self, *, gameday_id: str | None = None, since: datetime | None = None) -> list[dict[str, Any]]: ...

    def unrecovered_chaos_runs(self) -> list[dict[str, Any]]: ...

    def acquire_chaos_lock(self, run_id: str, experiment: str, *, stale_after_s: float) -> dict[str, Any] | None: ...

    def release_chaos_lock(self, run_id: str) -> bool: ...

    def chaos_lock(self) -> dict[str, Any] | None: ...

    def upsert_gameday(self, record: dict[str, Any]) -> None: ...

    def update_gameday(self, gameday_id: str, **fields: Any) -> None: ...

    def gamedays(self, since: datetime | None = None, ids: Sequence[str] | None = None) -> list[dict[str, Any]]: ...

    def windows(self, start: datetime | None = None, end: datetime | None = None, *,
                include_cancelled: bool = False) -> list[dict[str, Any]]: ...

    def upsert_window(self, window: dict[str, Any]) -> None: ...

    def current_state(self, scope: str, name: str) -> dict[str, Any] | None: ...

    def open_incidents(self, service: str | None = None) -> list[dict[str, Any]]: ...


class PrometheusPort(Protocol):
    def scalar(self, expr: str, at: float) -> float | None:
        """The single value of an instant query at `at` (epoch seconds), None when it returns nothing."""
        ...


def _calendar_with(services: ServiceCatalog) -> Calendar:
    return load_calendar(services=services)


@dataclass
class ChaosConfig:
    """The configuration the chaos steps read, each file parsed once per task and only when first needed: a step
    that does not read a file (recover never reads slos.yaml) does not depend on it. Tests pass other loaders."""

    load_catalog: Callable[[], ChaosCatalog] = load_catalog
    load_services: Callable[[], ServiceCatalog] = load_services
    load_slos: Callable[[], SloCatalog] = load_slos
    load_policy: Callable[[], Policy] = load_policies
    load_calendar: Callable[[ServiceCatalog], Calendar] = _calendar_with

    @cached_property
    def catalog(self) -> ChaosCatalog:
        """The experiments, suites and chaos policy (include/config/chaos/)."""
        return self.load_catalog()

    @cached_property
    def services(self) -> ServiceCatalog:
        return self.load_services()

    @cached_property
    def slos(self) -> SloCatalog:
        return self.load_slos()

    @cached_property
    def policy(self) -> Policy:
        """The error-budget policy (policies.yaml): the evening peak, stale states."""
        return self.load_policy()

    @cached_property
    def calendar(self) -> Calendar:
        return self.load_calendar(self.services)


@dataclass(frozen=True)
class ChaosPorts:
    """Everything the chaos steps need from outside."""

    store: ChaosStore
    prometheus: PrometheusPort
    alertmanager: AlertsPort
    backend: Callable[[str], ChaosBackend]  # the fault backend of a service (services.yaml chaos.backend)
    notifier: Notifier
    kill_switch: Callable[[str], object]  # the value of the kill-switch Variable of that name; None when unset
    report_dir: Path  # where the Markdown, HTML and JUnit reports are written
    config: ChaosConfig = field(default_factory=ChaosConfig)
    clock: Clock = utcnow
    sleep: Callable[[float], None] = time.sleep  # the back-off between recovery attempts


# --- validation -------------------------------------------------------------------------------------------------

def validate(ports: ChaosPorts, conf: Mapping[str, Any] | None, run_id: str, default_requester: str, *,
             run_url: str) -> dict[str, Any]:
    """The validated run, its targets resolved, as a dict; InvalidChaosRequest (naming every problem) otherwise.

    Rejected before anything is injected: unknown fields or experiment, a blast radius over the cap, a target
    that matches nothing, targets that already have a fault of another run (overlapping experiments), an
    environment the experiment or the policy does not allow. The attempt is recorded either way.
    """
    catalog, services, store = ports.config.catalog, ports.config.services, ports.store
    raw = dict(conf or {})
    backends = {name: services.get(name).chaos.backend for name in services.names}
    base = {"id": run_id, "requested_at": ports.clock(), "run_url": run_url,
            "gameday_id": raw.get("gameday_id") if isinstance(raw.get("gameday_id"), str) else None}
    try:
        run = build_run(raw, catalog, run_id=run_id, requested_by=default_requester, backends=backends)
        try:
            backend = ports.backend(run.service)
            candidates = backend.targets(run.selector)
            backend_active = [i.to_dict() for i in backend.injected(run.service)]
        except OutsideSystemError as exc:  # an unknown selector key, or the backend cannot be asked
            raise InvalidChaosRequest([f"target: {exc}"]) from None
        targets = pick_targets(run, candidates, catalog)
        active = [r["injection"] for r in store.unrecovered_chaos_runs() if r.get("injection")] + backend_active
        clashes = overlaps(targets, run.service, active, run_id)
        if clashes:
            raise InvalidChaosRequest([f"target: overlapping experiments: {c}" for c in clashes])
    except InvalidChaosRequest as exc:
        store.upsert_chaos_run({**base, **records.rejected_run(raw, catalog, reason=str(exc),
                                                               requested_by=default_requester),
                                "finished_at": ports.clock()})
        raise
    run = replace(run, targets=tuple(targets))
    store.upsert_chaos_run({**base, **records.accepted_run(run, candidates)})
    log.info("%s on %s %s: targets %s", run.experiment, run.service, dict(run.selector), targets)
    return run.to_dict()


# --- gates ------------------------------------------------------------------------------------------------------

def gather_gate_facts(ports: ChaosPorts, run: ExperimentRun, run_id: str) -> gates.GateFacts:
    """Read every fact the gates judge: the calendar with the store's windows over the experiment's span, the
    published states of the service's SLOs, the firing alerts, the service's open incidents, the kill switch, and
    last the game-day lock (taken for a real run, only looked at for a dry run)."""
    store, config = ports.store, ports.config
    policy = config.catalog.policy
    now = ports.clock()
    span = gates.experiment_span(run)
    calendar = config.calendar.with_store_rows(store.windows(now, now + span, include_cancelled=True))
    slo_states = {s.name: store.current_state("slo", s.name) for s in config.slos if s.service == run.service}
    alerts = read_alerts(ports.alertmanager)
    incidents = store.open_incidents(service=run.service)
    kill_switch = ports.kill_switch(policy.kill_switch_variable)
    if run.dry_run:
        holder = store.chaos_lock()
    else:
        holder = store.acquire_chaos_lock(run_id, run.experiment, stale_after_s=policy.lock_stale_after_s)
    return gates.GateFacts(now, calendar, slo_states, alerts, incidents, kill_switch, holder)


def check_gates(ports: ChaosPorts, run_doc: Mapping[str, Any], run_id: str) -> list[dict[str, Any]]:
    """Evaluate every safety gate; ChaosRefused (recorded) when any refuses. The exclusive gate takes the
    game-day lock (kept until recover releases it); a dry run only looks at it. An outside system that cannot
    be asked (Alertmanager down) refuses, with the reason."""
    run = ExperimentRun.from_dict(run_doc)
    policy = ports.config.policy  # read before the lock is taken, like every other fact
    facts = gather_gate_facts(ports, run, run_id)
    took_lock = not run.dry_run and facts.lock_holder is None
    try:
        results = gates.judge(run, facts, policy, kill_switch_variable=ports.config.catalog.policy.kill_switch_variable)
    except Exception:
        if took_lock:  # a gate that cannot judge must not keep the game-day lock
            ports.store.release_chaos_lock(run_id)
        raise
    docs = [r.to_dict() for r in results]
    for r in results:
        log.info("gate %s: %s: %s", r.gate, "passed" if r.passed else "REFUSED", r.reason)
    ports.store.update_chaos_run(run_id, gates=docs)
    reason = gates.refusal(results)
    if reason is not None:
        if took_lock:
            ports.store.release_chaos_lock(run_id)
        ports.store.update_chaos_run(run_id, verdict="refused", reason=reason)
        raise ChaosRefused(reason)
    return docs


# --- steady state -----------------------------------------------------------------------------------------------

def steady_state_before(ports: ChaosPorts, run_doc: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """Every probe at one instant; SteadyStateBroken (recorded as skipped) when any is out of tolerance.

    The values become the baselines of the experiment's baseline probes.
    """
    run = ExperimentRun.from_dict(run_doc)
    probes = ports.config.catalog.experiment(run.experiment).steady_state.probes
    at = ports.clock().timestamp()
    values: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    for probe in probes:
        try:
            values[probe.name] = ports.prometheus.scalar(probe.query, at)
        except OutsideSystemError as exc:
            errors[probe.name] = str(exc)
    result = records.steady_state_check(probes, values, errors, at)
    ports.store.update_chaos_run(run_id, steady_before=result)
    log.info("steady state before: %s", result["reason"])
    if not result["passed"]:
        ports.store.update_chaos_run(run_id, verdict="skipped", reason="steady state did not hold before injection: "
                                     f"{result['reason']}")
        raise SteadyStateBroken(result["reason"])
    return result


# --- inject, monitor, recover -----------------------------------------------------------------------------------

def inject(ports: ChaosPorts, run_doc: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """Apply the fault; the record says so before and after (the backend writes its own intent first too), so
    recover() and the reaper can always undo it."""
    run = ExperimentRun.from_dict(run_doc)
    backend = ports.backend(run.service)
    ports.store.update_chaos_run(run_id, injected_at=ports.clock())  # from here on, recovery is owed
    injection = backend.inject(run_id, run.experiment, run.fault, list(run.targets))
    ports.store.update_chaos_run(run_id, injection=injection.to_dict())
    log.info("injected %s into %s: %s", run.fault.kind, ", ".join(injection.targets), run.fault.params)
    return injection.to_dict()


def monitor_spec(ports: ChaosPorts, run_doc: Mapping[str, Any], before: Mapping[str, Any],
                 run_id: str) -> dict[str, Any]:
    """What the monitor trigger watches while the fault is injected (from the recorded injection time on)."""
    run = ExperimentRun.from_dict(run_doc)
    catalog = ports.config.catalog
    experiment = catalog.experiment(run.experiment)
    injected_at = (ports.store.chaos_run(run_id) or {}).get("injected_at") or ports.clock()
    return {"mode": "monitor", "run_id": run.run_id, "experiment": run.experiment,
            "probes": [p.model_dump() for p in experiment.steady_state.probes],
            "abort": experiment.abort.model_dump(), "baselines": dict(before.get("baselines") or {}),
            "started_at": injected_at.timestamp(), "duration_s": run.duration_s, "interval_s": run.probe_interval_s,
            "burn_queries": burn_queries(ports.config.slos, run.service, experiment.abort.burn_slos,
                                         experiment.abort.burn_window),
            "kill_switch_variable": catalog.policy.kill_switch_variable,
            "run_switch_variable": gates.run_switch_variable(catalog.policy.kill_switch_variable, run_id)}


def recovery_spec(ports: ChaosPorts, run_doc: Mapping[str, Any], before: Mapping[str, Any],
                  run_id: str) -> dict[str, Any] | None:
    """What the trigger watches after recovery until the steady state is back; None when the fault was not
    recovered (there is no steady state to wait for)."""
    recovered_at = (ports.store.chaos_run(run_id) or {}).get("recovered_at")
    if recovered_at is None:
        return None
    run = ExperimentRun.from_dict(run_doc)
    catalog = ports.config.catalog
    experiment = catalog.experiment(run.experiment)
    return {"mode": "recovery", "run_id": run.run_id, "experiment": run.experiment,
            "probes": [p.model_dump() for p in experiment.steady_state.probes],
            "baselines": dict(before.get("baselines") or {}), "started_at": recovered_at.timestamp(),
            "recovery_time_s": run.recovery_time_s, "confirmations": catalog.policy.recovery_confirmations,
            "interval_s": run.probe_interval_s}


def monitor_done(ports: ChaosPorts, run_doc: Mapping[str, Any], run_id: str,
                 event: Mapping[str, Any]) -> dict[str, Any]:
    """Record the monitor's decision; an abort stops the fault at once (recover confirms it next)."""
    run = ExperimentRun.from_dict(run_doc)
    experiment = ports.config.catalog.experiment(run.experiment)
    fields: dict[str, Any] = {"probes": records.probe_samples(experiment, event.get("samples") or {})}
    if event.get("outcome") == "aborted":
        at = datetime.fromtimestamp(float(event.get("at") or ports.clock().timestamp()), UTC)
        fields.update(abort={"rule": event.get("rule"), "reason": event.get("reason"), "at": at.isoformat()},
                      aborted_at=at)
        record = ports.store.chaos_run(run_id) or {}
        if record.get("injection"):
            try:
                ports.backend(run.service).abort(Injection.from_dict(record["injection"]))
            except Exception as exc:  # recover (the teardown) retries and confirms
                log.warning("stopping the fault at once failed (recover will retry): %s", exc)
    ports.store.update_chaos_run(run_id, **fields)
    log.info("monitor: %s (%s): %s", event.get("outcome"), event.get("rule"), event.get("reason"))
    return {k: event.get(k) for k in ("outcome", "rule", "reason", "at", "polls", "errors")}


def recover(ports: ChaosPorts, run_id: str) -> dict[str, Any]:
    """Remove this run's fault (if any) and confirm it, then release the game-day lock. Idempotent.

    Backend errors are retried here (RECOVER_ATTEMPTS, with back-off) and by the task's own retries; when the
    fault is still injected after that, RecoveryFailed is raised and the task's failure callback pages.
    """
    store = ports.store
    record = store.chaos_run(run_id)
    if record is None or not record.get("injected_at"):
        store.release_chaos_lock(run_id)
        return {"recovered": True, "detail": "nothing was injected", "attempts": 0}
    if record.get("recovered_at"):
        store.release_chaos_lock(run_id)
        return dict(record.get("recovery") or {"recovered": True})
    backend = ports.backend(str(record["service"]))
    doc = record.get("injection")
    injections = [Injection.from_dict(doc)] if doc else [i for i in backend.injected(str(record["service"]))
                                                         if i.run_id == run_id]
    attempts, recovery, last_error = 0, Recovery(True, (), "nothing of this run is injected"), ""
    for injection in injections:
        for attempt in range(1, RECOVER_ATTEMPTS + 1):
            attempts += 1
            try:
                recovery = backend.recover(injection)
                last_error = ""
                if recovery.recovered:
                    break
            except OutsideSystemError as exc:
                last_error = str(exc)
                log.warning("recovery attempt %d of %s failed: %s", attempt, injection.experiment, exc)
            ports.sleep(min(30.0, 2.0 * 2 ** attempt))
        if not recovery.recovered or last_error:
            break
    recovered = recovery.recovered and not last_error
    result = {**recovery.to_dict(), "recovered": recovered, "attempts": attempts,
              "detail": last_error or recovery.detail}
    if not recovered:
        store.update_chaos_run(run_id, recovery=result)
        still = ", ".join(recovery.remaining) or f"{record['fault'].get('kind')} on {', '.join(record['targets'])}"
        raise RecoveryFailed(f"{record['experiment']}: the fault is still injected ({still}): "
                             f"{last_error or recovery.detail}")
    store.update_chaos_run(run_id, recovery=result, recovered_at=ports.clock())
    store.release_chaos_lock(run_id)
    log.info("recovered: %s", result["detail"])
    return result


def page_unrecovered(ports: ChaosPorts, run_id: str, exception: object = None) -> None:
    """After recover failed for good: page the on-call with what is still injected, and end the run in error."""
    record = ports.store.chaos_run(run_id) or {}
    recovery = record.get("recovery") or {}
    remaining = recovery.get("remaining") or [f"{(record.get('fault') or {}).get('kind')} on "
                                              f"{', '.join(record.get('targets') or [])}"]
    last_error = recovery.get("detail") or exception
    text = (f"<!here> :rotating_light: *Chaos recovery FAILED* for `{record.get('experiment')}` on "
            f"{record.get('service')} ({record.get('backend')}). Still injected:\n"
            + "\n".join(f"• {r}" for r in remaining)
            + f"\nLast error: {last_error}\n"
            f"Recover by hand or re-run the task: {record.get('run_url') or run_id}")
    ports.notifier.message(text, channel_id=ports.config.catalog.policy.oncall_channel_id)
    ports.store.update_chaos_run(run_id, verdict="error", reason=f"recovery failed, on-call paged: {last_error}",
                                 finished_at=ports.clock())


def steady_after_done(ports: ChaosPorts, run_id: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """Record whether the steady state came back after recovery, with the recovery time it had."""
    record = ports.store.chaos_run(run_id) or {}
    spec = {k: event.get(k) for k in ("passed", "recovered_within_s", "reason", "probes", "samples")}
    catalog = ports.config.catalog
    spec["recovery_time_s"] = catalog.recovery_time_s(catalog.experiment(str(record.get("experiment"))))
    ports.store.update_chaos_run(run_id, steady_after=spec)
    return spec


# --- verdict, report, notification ------------------------------------------------------------------------------

def finalize(ports: ChaosPorts, run_id: str, *, error: str | None = None) -> dict[str, Any]:
    """Decide the verdict and score from the record, release the lock, write the report, tell Slack."""
    store = ports.store
    record = store.chaos_run(run_id)
    if record is None:
        return {"verdict": "error", "reason": "no chaos run record (validation did not run)"}
    decided = outcome.experiment_outcome(record, ports.config.catalog, error=error)
    now = ports.clock()
    store.update_chaos_run(run_id, verdict=decided.verdict, reason=decided.reason, score=decided.score,
                           finished_at=now)
    if record.get("injected_at"):
        store.upsert_window(records.gameday_window(record, now))
    if not outcome.fault_may_remain(record):
        store.release_chaos_lock(run_id)  # never while a fault of this run may still be injected
    runs = [records.report_record(store.chaos_run(run_id) or record)]
    files = write_report(ports, runs, name=_file_name(run_id), suite_name=f"chaos.{record['experiment']}")
    notify(ports, runs, None, files)
    log.info("verdict %s (score %s): %s", decided.verdict, decided.score, decided.reason)
    return {"verdict": decided.verdict, "reason": decided.reason, "score": decided.score,
            "report": {k: str(v) for k, v in files.items()}}


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:150]


def write_report(ports: ChaosPorts, runs: list[dict[str, Any]], *, name: str, suite_name: str,
                 gameday: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Markdown, HTML and JUnit XML of the runs, with the score history, in the report folder."""
    since = ports.clock() - HISTORY
    history = records.score_history(ports.store.chaos_runs(since=since), ports.store.gamedays(since=since))
    folder = ports.report_dir
    folder.mkdir(parents=True, exist_ok=True)
    files = {"markdown": folder / f"{name}.md", "html": folder / f"{name}.html", "junit": folder / f"{name}.junit.xml"}
    files["markdown"].write_text(render_markdown(runs, gameday=gameday, history=history))
    files["html"].write_text(render_html(runs, gameday=gameday, history=history))
    files["junit"].write_text(junit_xml(runs, suite_name=suite_name))
    return files


def notify(ports: ChaosPorts, runs: list[dict[str, Any]], gameday: Mapping[str, Any] | None,
           files: Mapping[str, Path]) -> None:
    """The summary, then the HTML report as a Slack file, to the channel of every service the runs touched (the SRE
    channel when none): readable from Slack, not a path on the worker."""
    text = slack_summary(runs, gameday=gameday)
    services = ports.config.services
    touched = {r["service"] for r in runs if r.get("service") in services.names}
    channel_ids = sorted({services.channel_id(name) for name in touched} or {services.sre.slack.channel_id})
    title = f"Chaos report: {gameday.get('suite')} game day" if gameday else "Chaos report: " + ", ".join(
        str(r.get("experiment")) for r in runs)
    for channel_id in channel_ids:
        ports.notifier.message(text, channel_id=channel_id)
        if "html" in files:
            ports.notifier.file(files["html"], channel_id=channel_id, title=title[:200],
                                comment="The full report")


# --- the reaper -------------------------------------------------------------------------------------------------

def reap(ports: ChaosPorts, current_run_id: str | None = None) -> dict[str, Any]:
    """Find the faults crashed runs left behind (gamesre.chaos.reaper) and recover them; the on-call is paged and
    RecoveryFailed raised for those that cannot be."""
    store, config = ports.store, ports.config
    holder = store.chaos_lock()
    busy = reaper.lock_in_use(holder, ports.clock(), config.catalog.policy.lock_stale_after_s)
    shown: dict[str, list[Injection]] = {}
    for name in config.services.names:
        try:
            shown[name] = ports.backend(name).injected(name)
        except Exception as exc:  # one backend that cannot be asked must not keep the others' faults in place
            log.warning("reaper: cannot list the faults of %s: %s", name, exc)
    found = reaper.left_behind(shown, store.unrecovered_chaos_runs(), spared=(busy, current_run_id))
    reaped, failed = [], []
    for service, injections in found.items():
        backend = ports.backend(service)
        for injection in injections:
            try:
                recovery = backend.recover(injection)
            except OutsideSystemError as exc:
                failed.append(f"{injection.run_id}: {exc}")
                continue
            entry = f"{injection.experiment} ({injection.run_id}) on {', '.join(injection.targets)}"
            if not recovery.recovered:
                failed.append(f"{entry}: {recovery.detail}")
                continue
            reaped.append(entry)
            record = store.chaos_run(injection.run_id)
            if record is not None:
                fields: dict[str, Any] = {"recovered_at": ports.clock(),
                                          "recovery": {**recovery.to_dict(), "attempts": 1, "by": "reaper"}}
                if record.get("verdict") == "running":
                    fields.update(verdict="error", reason="the run crashed with the fault injected; the reaper "
                                  "recovered it", finished_at=ports.clock())
                store.update_chaos_run(injection.run_id, **fields)
            if holder is not None and holder["run_id"] == injection.run_id:
                store.release_chaos_lock(injection.run_id)
    if failed:
        ports.notifier.message("<!here> :rotating_light: *Chaos reaper could not recover* left-behind faults:\n"
                               + "\n".join(f"• {f}" for f in failed),
                               channel_id=config.catalog.policy.oncall_channel_id)
        raise RecoveryFailed("; ".join(failed))
    for entry in reaped:
        log.warning("reaper recovered a left-behind fault: %s", entry)
    return {"reaped": reaped}


# --- game-days --------------------------------------------------------------------------------------------------

def plan_gameday(ports: ChaosPorts, suite_name: str, run_id: str, *, run_url: str, requested_by: str,
                 dry_run: bool = False, scheduled_for: datetime | None = None) -> list[dict[str, Any]]:
    """Record the game-day and return one chaos_experiment conf per experiment of the suite, in order; a
    scheduled game-day too late to run (gamesre.chaos.gameday.late_refusal) is recorded refused: ChaosRefused."""
    suite = ports.config.catalog.suite(suite_name)
    now = ports.clock()
    record = {"id": run_id, "suite": suite_name, "experiments": list(suite.experiments), "verdict": "running",
              "started_at": now, "run_url": run_url}
    reason = gameday.late_refusal(scheduled_for, now)
    if reason is not None:
        ports.store.upsert_gameday({**record, "verdict": "refused", "reason": reason, "finished_at": now})
        raise ChaosRefused(reason)
    ports.store.upsert_gameday(record)
    return gameday.experiment_confs(suite, run_id, dry_run=dry_run, requested_by=requested_by)


def gameday_report(ports: ChaosPorts, run_id: str, *, run_url: str) -> dict[str, Any]:
    """Gather the game-day's experiment records, score it, record it, write the report and tell Slack."""
    store = ports.store
    found = store.gamedays(ids=[run_id])
    runs = [records.report_record(r) for r in store.chaos_runs(gameday_id=run_id)]
    decided, reason = gameday.gameday_outcome(found[0] if found else None, runs)
    score = gameday_score(runs)
    if not found:  # plan never ran: record what can be known
        store.upsert_gameday({"id": run_id, "suite": "?", "started_at": ports.clock(), "run_url": run_url})
    store.update_gameday(run_id, verdict=decided, score=score, reason=reason, finished_at=ports.clock())
    gameday_doc = records.report_record((store.gamedays(ids=[run_id]) or [{}])[0])
    files = write_report(ports, runs, name=_file_name(run_id), suite_name=f"chaos.gameday.{gameday_doc.get('suite')}",
                         gameday=gameday_doc)
    notify(ports, runs, gameday_doc, files)
    return {"verdict": decided, "reason": reason, "score": score, "experiments": len(runs),
            "report": {k: str(v) for k, v in files.items()}}
