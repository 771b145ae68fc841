"""The checklists' inputs fetched from the real systems: Prometheus, Alertmanager, the SRE store, config, git.

    plan = fetch_plan(items, at)                     # gamesre.checklists.runner: input name -> [start, end)
    inputs = fetch_inputs(plan, at, prometheus=..., alertmanager=..., store=...)
    results = run_checklist(items, inputs, at)

Each input named in the plan (the catalog is gamesre.checklists.inputs.INPUTS) is fetched once over its
span, in the shape the catalog documents, and wrapped in `InputData` with its provenance (the system, the
queries, links for people). A system that fails (unreachable, an error answer, no client configured) makes
every input that needs it `Unavailable` with a reason naming the system and the error: never an exception,
never partial data passed off as whole. Once a system is unreachable it is not asked again in the same call,
so a Prometheus that hangs costs one timeout, not one per input.

Where each input comes from:

| input | source |
|---|---|
| slos, policy | include/config: `load_slos()`, `load_policies()` |
| ledgers, exclusions, policy_history, deployments, incidents | the SRE store |
| chaos_runs, chaos_probes, chaos_active_faults | the store's game-day records (`chaos_run`; unrecovered runs) |
| alertmanager_alerts | Alertmanager API v2 `/alerts` |
| alert_samples | a range query of `ALERTS{alertstate="firing"}` (step 60 s, in chunks Prometheus accepts) |
| alert_rules | Prometheus `/api/v1/rules?type=alert` |
| series_freshness | the newest sample (`timestamp()`) of every game series of the metric contract and of every series
  selector the committed Grafana dashboards' panel queries read (include/grafana/dashboards/*.json, template
  variables at All; `gamesre.observability.panel_queries`) |
| scrape_targets | Prometheus `/api/v1/targets` |
| sample_timestamps | raw samples of `game_build_info{track="stable"}` per job/instance (one per successful scrape) |
| versions_running | Prometheus build info, Alertmanager `/api/v2/status`, the installed Python distributions |
| pinned_requirements | requirements.txt through `gamesre.checklists.versions.parse_requirements` |
| runbooks | `git log -1 --format=%ct` of include/runbooks/*.md and docs/*.md (file times outside a git checkout) |

No Airflow imports here: the checklist DAGs adapt this module, the CLI and the tests call it directly.
"""
from __future__ import annotations

import importlib.metadata
import math
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import sqlalchemy as sa
from packaging.utils import canonicalize_name

from gamesre.checklists.inputs import INPUTS, InputData, Unavailable
from gamesre.checklists.versions import parse_requirements
from gamesre.core.config import SpecError
from gamesre.core.contract import Contract, ContractError, load_contract
from gamesre.core.paths import REPO_ROOT
from gamesre.core.time import KST
from gamesre.integrations.alertmanager import AlertmanagerClient, AlertmanagerError, AlertmanagerUnreachable
from gamesre.integrations.prometheus import PrometheusClient, PrometheusError, PrometheusUnreachable
from gamesre.integrations.store import SREStore, StoreError
from gamesre.slo.spec import Policy, SloCatalog, load_policies, load_slos

ALERTS_QUERY = 'ALERTS{alertstate="firing"}'
GAP_SELECTOR = 'game_build_info{track="stable"}'  # every stable instance exposes it on every scrape
RUNBOOK_GLOBS = ("include/runbooks/*.md", "docs/*.md")
MAX_POINTS = 10_000  # per series per range query; Prometheus refuses more than 11,000
# Chaos run verdicts that are experiment runs in the catalog's sense; refused, skipped, invalid and dry runs
# tested nothing (they are counted in the provenance).
CHAOS_RUN_VERDICTS = ("pass", "fail", "aborted", "error", "running")
_TIME = tuple[int, int]


# --- configuration ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceConfig:
    """What `config` may override; everything else comes from include/config and the repository."""

    slos: SloCatalog | None = None  # default: load_slos()
    policy: Policy | None = None  # default: load_policies()
    contract: Contract | None = None  # default: load_contract()
    repo_root: Path = REPO_ROOT  # where requirements.txt, the runbooks and docs live
    runbook_globs: tuple[str, ...] = RUNBOOK_GLOBS
    requirements: Path | None = None  # default: <repo_root>/requirements.txt
    alert_step: int = 60  # seconds between the points of the ALERTS range query
    freshness_resolution: int = 60  # seconds between the subquery steps of the freshness queries
    gap_selector: str = GAP_SELECTOR
    prometheus_link_url: str | None = None  # Prometheus as people reach it (links); default: the client's URL
    alertmanager_link_url: str | None = None

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | None) -> SourceConfig:
        doc = dict(config or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ValueError(f"unknown checklist source setting(s) {', '.join(unknown)} (known: "
                             f"{', '.join(sorted(known))})")
        for key in ("repo_root", "requirements"):
            if doc.get(key) is not None:
                doc[key] = Path(doc[key])
        if "runbook_globs" in doc:
            doc["runbook_globs"] = tuple(doc["runbook_globs"])
        for key in ("alert_step", "freshness_resolution"):
            if key in doc and not (isinstance(doc[key], int) and doc[key] > 0):
                raise ValueError(f"{key} must be a positive whole number of seconds, got {doc[key]!r}")
        return cls(**doc)


# --- failures: one reason per system ----------------------------------------------------------------------


class _SourceFailure(Exception):
    """A system could not give an input; `reason` names the system and the error."""

    def __init__(self, system: str, reason: str, queries: Sequence[str] = ()):
        super().__init__(reason)
        self.system = system
        self.reason = reason
        self.queries = tuple(queries)


def _failure(exc: Exception, queries: Sequence[str] = ()) -> _SourceFailure:
    """The system and reason behind an exception raised while fetching."""
    if isinstance(exc, _SourceFailure):
        return exc
    if isinstance(exc, PrometheusError | AlertmanagerError):  # their messages name the system and its URL
        system = "prometheus" if isinstance(exc, PrometheusError) else "alertmanager"
        text = str(exc)
        return _SourceFailure(system, text if text.lower().startswith(system) else f"{system}: {text}", queries)
    if isinstance(exc, StoreError | sa.exc.SQLAlchemyError):
        detail = getattr(exc, "orig", None) or exc
        return _SourceFailure("store", f"store: {type(exc).__name__}: {detail}", queries)
    if isinstance(exc, SpecError | ContractError):
        return _SourceFailure("config", f"config: {exc}", queries)
    return _SourceFailure("", f"{type(exc).__name__}: {exc}", queries)


@dataclass
class _Fetcher:
    """One call's state: the clients, the config, what is already loaded and which systems are down."""

    at: int
    prometheus: PrometheusClient | None
    alertmanager: AlertmanagerClient | None
    store: SREStore
    config: SourceConfig
    down: dict[str, str] = field(default_factory=dict)  # system -> the reason it is down
    _cache: dict[str, Any] = field(default_factory=dict)

    # -- clients, guarded --------------------------------------------------------------------------------

    def prom(self) -> PrometheusClient:
        if "prometheus" in self.down:
            raise _SourceFailure("prometheus", self.down["prometheus"])
        if self.prometheus is None:
            raise _SourceFailure("prometheus", "prometheus: no Prometheus client configured")
        return self.prometheus

    def am(self) -> AlertmanagerClient:
        if "alertmanager" in self.down:
            raise _SourceFailure("alertmanager", self.down["alertmanager"])
        if self.alertmanager is None:
            raise _SourceFailure("alertmanager", "alertmanager: no Alertmanager client configured")
        return self.alertmanager

    def note_down(self, exc: Exception, failure: _SourceFailure) -> None:
        if isinstance(exc, PrometheusUnreachable | AlertmanagerUnreachable | StoreError) or (
                isinstance(exc, sa.exc.OperationalError) and failure.system == "store"):
            self.down.setdefault(failure.system, failure.reason)

    # -- config, loaded once -----------------------------------------------------------------------------

    def _once(self, key: str, load: Callable[[], Any]) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = load()
            except Exception as exc:
                self._cache[key] = _failure(exc)
        value = self._cache[key]
        if isinstance(value, _SourceFailure):
            raise value
        return value

    def slos(self) -> SloCatalog:
        given = self.config.slos
        return cast(SloCatalog, self._once("slos", lambda: given if given is not None else load_slos()))

    def policy(self) -> Policy:
        given = self.config.policy
        return cast(Policy, self._once("policy", lambda: given if given is not None else load_policies()))

    def contract(self) -> Contract:
        given = self.config.contract
        return cast(Contract, self._once("contract", lambda: given if given is not None else load_contract()))

    def services(self) -> list[str]:
        """Every service with an SLO or in the metric contract, in that order."""
        names = [s.service for s in self.slos()]
        try:
            names += list(self.contract().services)
        except _SourceFailure:
            pass  # the SLOs name the services that matter to budgets
        return list(dict.fromkeys(names))

    def now_meta(self) -> dict[str, str]:
        """For inputs that describe the present: read when fetched, whatever instant the run judges."""
        return {"read_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "run_at": datetime.fromtimestamp(self.at, UTC).isoformat()}

    # -- links ---------------------------------------------------------------------------------------------

    def graph_link(self, expr: str, start: float, end: float) -> str:
        base = self.config.prometheus_link_url or (self.prometheus.url if self.prometheus else "")
        moment = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"{base}/graph?" + urlencode({"g0.expr": expr, "g0.tab": "0", "g0.range_input": f"{int(end - start)}s",
                                             "g0.end_input": moment})

    def prom_page(self, page: str) -> str:
        base = self.config.prometheus_link_url or (self.prometheus.url if self.prometheus else "")
        return f"{base}/{page}"


# --- helpers ----------------------------------------------------------------------------------------------


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _epoch(value: datetime | None) -> float:
    """An aware datetime (or None) as float epoch seconds (NaN for None)."""
    return math.nan if value is None else value.timestamp()


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def _rfc3339(text: str | None) -> float:
    """Prometheus' RFC 3339 times (up to nanoseconds) as epoch seconds; NaN for the zero time or nothing."""
    match = _RFC3339.match(text or "")
    if match is None or match.group(1).startswith("0001-"):
        return math.nan
    head, fraction, zone = match.groups()
    whole = datetime.fromisoformat(head + ("+00:00" if zone == "Z" else zone)).timestamp()
    return whole + (float(f"0.{fraction}") if fraction else 0.0)


def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """Rows as a DataFrame with at least `columns` (an empty input keeps its columns)."""
    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    frame = pd.DataFrame(rows)
    for column in columns:
        if column not in frame.columns:
            frame[column] = None
    return frame


def _labels(metric: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in metric.items() if k != "__name__"}


# --- config inputs ----------------------------------------------------------------------------------------


def _slos(f: _Fetcher, span: _TIME) -> InputData:
    catalog = f.slos()
    return InputData(catalog, source="config", queries=(f"load_slos() from {catalog.source}",),
                     meta={"slos": catalog.names()})


def _policy(f: _Fetcher, span: _TIME) -> InputData:
    return InputData(f.policy(), source="config", queries=("load_policies() from policies.yaml",))


# --- store inputs -----------------------------------------------------------------------------------------


def _ledgers(f: _Fetcher, span: _TIME) -> InputData:
    start, end = span
    frames: dict[str, pd.DataFrame] = {}
    for slo in f.slos():
        ledger = f.store.ledger(slo.name, start, end)
        frames[slo.name] = pd.DataFrame({"minute": ledger.minutes.astype(np.int64), "good": ledger.good,
                                         "total": ledger.total, "span": ledger.span})
    rows = {name: len(frame) for name, frame in frames.items()}
    return InputData(frames, source="store", queries=(f"SREStore.ledger(slo, {start}, {end}) for each SLO",),
                     meta={"rows": rows, "span": [start, end], "store": f.store.safe_url})


def _exclusions(f: _Fetcher, span: _TIME) -> InputData:
    start, end = span
    out: dict[str, list[tuple[int, int]]] = {}
    notes: dict[str, str] = {}
    catalog = list(f.slos())
    for service in f.services():
        mine = [s for s in catalog if s.service == service]
        # The input is per service; game-day windows are left out of a budget only for SLOs that ask for it
        # (count_gamedays_against_budget: false), so they are excluded here only when every SLO of the
        # service asks for it.
        gamedays = bool(mine) and all(not s.count_gamedays_against_budget for s in mine)
        if any(not s.count_gamedays_against_budget for s in mine) and not gamedays:
            notes[service] = ("some SLOs of this service leave game-days out of their budgets and others do not; "
                              "the game-day windows are counted against every one of them here")
        out[service] = f.store.exclusions(service, _dt(start), _dt(end), include_gamedays=gamedays)
    meta: dict[str, Any] = {"windows": {k: len(v) for k, v in out.items()}}
    if notes:
        meta["notes"] = notes
    return InputData(out, source="store", queries=(f"SREStore.exclusions(service, {start}, {end}) per service",),
                     meta=meta)


def _policy_history(f: _Fetcher, span: _TIME) -> InputData:
    start, end = span
    rows: list[dict[str, Any]] = []
    names = [("slo", s.name) for s in f.slos()] + [("service", s) for s in f.services()]
    for scope, name in names:
        for row in f.store.state_history(scope, name, since=_dt(start)):
            at = row["computed_at"].timestamp()
            if at < end:
                rows.append({"scope": scope, "name": name, "state": str(row["state"]), "computed_at": at,
                             "reasons": row.get("reasons")})
    frame = _frame(rows, ("scope", "name", "state", "computed_at"))
    return InputData(frame, source="store",
                     queries=(f"SREStore.state_history(scope, name, since={start}) for every SLO and service",),
                     meta={"rows": len(frame), "span": [start, end]})


_DEPLOY_TIMES = ("requested_at", "started_at", "finished_at", "rolled_back_at")
_DEPLOY_COLUMNS = ("id", "service", "version", "outcome", "dry_run", "stages", *_DEPLOY_TIMES, "run_url", "reason",
                   "previous_version", "strategy")


def _deployments(f: _Fetcher, span: _TIME) -> InputData:
    """Deploys requested before the span's end that are still running or did anything inside the span."""
    start, end = span
    rows = []
    for record in f.store.deployments():
        times = {k: _epoch(record.get(k)) for k in _DEPLOY_TIMES}
        if not times["requested_at"] < end:
            continue
        inside = any(start <= t < end for t in times.values() if not math.isnan(t))
        if record["outcome"] != "running" and not inside:
            continue
        rows.append({**{k: record.get(k) for k in _DEPLOY_COLUMNS if k not in _DEPLOY_TIMES},
                     "stages": list(record.get("stages") or []), "dry_run": bool(record.get("dry_run")), **times})
    frame = _frame(rows, _DEPLOY_COLUMNS)
    return InputData(frame, source="store",
                     queries=(f"SREStore.deployments(): requested before {end}, running or active in [{start}, "
                              f"{end})",),
                     links=tuple(str(u) for u in frame["run_url"] if u)[:20], meta={"rows": len(frame)})


_INCIDENT_TIMES = ("opened_at", "acknowledged_at", "resolved_at")
_INCIDENT_COLUMNS = ("id", "severity", "title", "team", "status", *_INCIDENT_TIMES, "postmortem_due",
                     "postmortem_status", "postmortem_owner")


def _incidents(f: _Fetcher, span: _TIME) -> InputData:
    """Incidents opened before the span's end that are not resolved, or did anything inside the span; and every
    one with a postmortem still to finish (the postmortem check looks at due dates, not at the span)."""
    start, end = span
    rows = []
    for record in f.store.incidents():
        times = {k: _epoch(record.get(k)) for k in _INCIDENT_TIMES}
        postmortem = (record.get("details") or {}).get("postmortem") or {}
        due = _due_epoch(postmortem.get("due"))
        if not times["opened_at"] < end:
            continue
        inside = any(start <= t < end for t in times.values() if not math.isnan(t))
        pending = not math.isnan(due) and postmortem.get("status") != "final"
        if record["status"] == "resolved" and not inside and not pending:
            continue
        rows.append({"id": record["id"], "severity": record["severity"], "title": record["title"],
                     "team": record.get("team"), "status": record["status"], **times, "postmortem_due": due,
                     "postmortem_status": postmortem.get("status") or ("draft" if postmortem else ""),
                     "postmortem_owner": postmortem.get("owner") or ""})
    frame = _frame(rows, _INCIDENT_COLUMNS)
    return InputData(frame, source="store",
                     queries=(f"SREStore.incidents(): opened before {end}, open or active in [{start}, {end}), or "
                              "with a postmortem to finish",), meta={"rows": len(frame)})


def _due_epoch(day: str | None) -> float:
    """The end of a KST due day (postmortems are due by the end of it), as epoch seconds; NaN for none."""
    if not day:
        return math.nan
    return float((datetime.fromisoformat(day) + timedelta(days=1)).replace(tzinfo=KST).timestamp())


def _chaos_records(f: _Fetcher, span: _TIME) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The chaos_run records that are experiment runs touching the span (or still running), and what was
    left out by verdict."""
    start, end = span
    if "chaos" not in f._cache:
        f._cache["chaos"] = f.store.chaos_runs()
    kept: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    for record in f._cache["chaos"]:
        requested, finished = _epoch(record.get("requested_at")), _epoch(record.get("finished_at"))
        if record.get("dry_run") or record["verdict"] not in CHAOS_RUN_VERDICTS:
            skipped[str(record["verdict"])] = skipped.get(str(record["verdict"]), 0) + 1
            continue
        if not requested < end:
            continue
        if requested >= start or (not math.isnan(finished) and finished >= start) or math.isnan(finished):
            kept.append(record)
    return kept, skipped


def _chaos_runs(f: _Fetcher, span: _TIME) -> InputData:
    records, skipped = _chaos_records(f, span)
    rows = [{"run_id": r["id"], "experiment": r["experiment"], "service": r["service"],
             "started_at": _epoch(r.get("requested_at")), "finished_at": _epoch(r.get("finished_at")),
             "verdict": r["verdict"], "score": math.nan if r.get("score") is None else float(r["score"]),
             "gameday_id": r.get("gameday_id"), "injected_at": _epoch(r.get("injected_at")),
             "recovered_at": _epoch(r.get("recovered_at")), "reason": r.get("reason", ""),
             "run_url": r.get("run_url", "")} for r in records]
    frame = _frame(rows, INPUTS["chaos_runs"].columns)
    return InputData(frame, source="store",
                     queries=(f"SREStore.chaos_runs(): verdict in {', '.join(CHAOS_RUN_VERDICTS)}, not dry runs",),
                     meta={"rows": len(frame), "left_out": skipped, "started_at": "requested_at of the run"})


def _probe_failed_after(record: Mapping[str, Any]) -> set[str]:
    after = record.get("steady_after") or {}
    return {str(p.get("name")) for p in after.get("probes") or [] if isinstance(p, Mapping)
            and p.get("passed") is False}


def _chaos_probes(f: _Fetcher, span: _TIME) -> InputData:
    records, _ = _chaos_records(f, span)
    rows = []
    for record in records:
        failed_after = _probe_failed_after(record)
        for probe in record.get("probes") or []:
            if not isinstance(probe, Mapping):
                continue
            samples = [s for s in probe.get("samples") or [] if isinstance(s, list | tuple) and len(s) >= 3]
            failed = sum(1 for s in samples if s[2] is False)
            no_data = sum(1 for s in samples if s[2] is None)
            name = str(probe.get("name"))
            rows.append({"run_id": record["id"], "experiment": record["experiment"], "probe": name,
                         "passed": failed == 0 and name not in failed_after, "polls": len(samples),
                         "failed_polls": failed, "no_data_polls": no_data,
                         "failed_after_recovery": name in failed_after,
                         "success_pct": probe.get("success_pct"), "query": probe.get("query")})
    frame = _frame(rows, INPUTS["chaos_probes"].columns)
    if len(frame):
        frame["passed"] = frame["passed"].astype(bool)
    return InputData(frame, source="store", queries=("SREStore.chaos_runs(): probes of each run",),
                     meta={"rows": len(frame), "rule": "a probe's hypothesis failed in a run when a poll during the "
                           "fault was outside its tolerance, or its reading after recovery was (no-data polls "
                           "are counted in the score, not here)"})


def _chaos_active_faults(f: _Fetcher, span: _TIME) -> InputData:
    rows = []
    for record in f.store.unrecovered_chaos_runs():
        if record.get("dry_run"):
            continue
        injection = record.get("injection") or {}
        targets = list(injection.get("targets") or record.get("targets") or []) or [""]
        fault = (record.get("fault") or {}).get("kind", "")
        for target in targets:
            rows.append({"service": record["service"], "target": str(target), "fault": str(fault),
                         "injected_at": _epoch(record.get("injected_at")), "run_id": record["id"],
                         "experiment": record["experiment"], "verdict": record["verdict"]})
    frame = _frame(rows, INPUTS["chaos_active_faults"].columns)
    return InputData(frame, source="store",
                     queries=("SREStore.unrecovered_chaos_runs(): injected, recovery not confirmed",),
                     meta={"rows": len(frame), "view": "the store's record of injections (the reaper's view)",
                           **f.now_meta()})


# --- Alertmanager -----------------------------------------------------------------------------------------


def _alertmanager_alerts(f: _Fetcher, span: _TIME) -> InputData:
    am = f.am()
    rows = [{"alertname": a.labels.get("alertname", ""), "labels": dict(a.labels), "state": a.state,
             "starts_at": a.starts_at.timestamp(), "fingerprint": a.fingerprint,
             "silenced_by": list(a.silenced_by), "inhibited_by": list(a.inhibited_by),
             "summary": a.annotations.get("summary", "")} for a in am.alerts()]
    frame = _frame(rows, INPUTS["alertmanager_alerts"].columns)
    base = f.config.alertmanager_link_url or am.url
    return InputData(frame, source="alertmanager", queries=("GET /api/v2/alerts (active, silenced, inhibited)",),
                     links=(f"{base}/#/alerts",), meta={"rows": len(frame), **f.now_meta()})


# --- Prometheus -------------------------------------------------------------------------------------------


def _alert_samples(f: _Fetcher, span: _TIME) -> InputData:
    """A range query of the firing ALERTS series at absolute multiples of `alert_step`, in chunks."""
    prom = f.prom()
    start, end = span
    step = f.config.alert_step
    first = -(-start // step) * step
    rows: list[dict[str, Any]] = []
    queries = []
    chunk = first
    while chunk < end:
        last = min(chunk + (MAX_POINTS - 1) * step, end - 1)
        last -= (last - chunk) % step
        queries.append(f"query_range({ALERTS_QUERY}, {chunk}..{last}, step={step}s)")
        for series in prom.query_range(ALERTS_QUERY, chunk, last, step):
            labels = _labels(series.get("metric", {}))
            name = labels.pop("alertname", "")
            for ts, _value in series.get("values") or []:
                rows.append({"alertname": name, "labels": labels, "timestamp": float(ts),
                             "alertstate": labels.get("alertstate", "firing")})
        chunk = last + step
    frame = _frame(rows, (*INPUTS["alert_samples"].columns, "alertstate"))
    return InputData(frame, source="prometheus", queries=tuple(queries),
                     links=(f.graph_link(ALERTS_QUERY, start, end),),
                     meta={"step": step, "samples": len(frame), "span": [start, end]})


def _alert_rules(f: _Fetcher, span: _TIME) -> InputData:
    prom = f.prom()
    rows = []
    for group in prom.rules("alert"):
        for rule in group.get("rules") or []:
            if rule.get("type", "alerting") != "alerting":
                continue
            rows.append({"alertname": str(rule.get("name", "")), "labels": dict(rule.get("labels") or {}),
                         "group": str(group.get("name", "")), "file": str(group.get("file", "")),
                         "interval": group.get("interval"), "for": rule.get("duration"),
                         "query": str(rule.get("query", "")), "health": str(rule.get("health", ""))})
    frame = _frame(rows, INPUTS["alert_rules"].columns)
    return InputData(frame, source="prometheus", queries=("GET /api/v1/rules?type=alert",),
                     links=(f.prom_page("alerts"),), meta={"rules": len(frame)})


def _freshness_queries(f: _Fetcher) -> list[tuple[str, str, str]]:
    """(name, kind, selector) for every contract game series and every selector a dashboard panel reads."""
    from gamesre.observability.panel_queries import dashboard_selectors, recorded_series

    contract = f.contract()
    out = [(series, "metric", series) for m in contract.metrics.values() for series in m.series_names()]
    read = dashboard_selectors(contract.all_series() | recorded_series())
    for selector, places in read.items():
        more = f" (+{len(places) - 1} more)" if len(places) > 1 else ""
        out.append((f"{places[0]}{more}: {selector}", "dashboard", selector))
    return out


def _series_freshness(f: _Fetcher, span: _TIME) -> InputData:
    """Each series' newest sample at or before the span's end, looking back over the span.

    `max_over_time(timestamp(s)[span:res])` finds the newest sample up to the last subquery step; the
    instant `timestamp(s)` adds the samples after it. Both are sample times, never evaluation times.
    """
    prom = f.prom()
    start, end = span
    span_s = max(int(end - start), f.config.freshness_resolution)
    res = f.config.freshness_resolution
    rows = []
    queries = []
    for name, kind, selector in _freshness_queries(f):
        expr = (f"max(max_over_time(timestamp({selector})[{span_s}s:{res}s]) or "
                f'label_replace(timestamp({selector}), "freshness_probe", "instant", "", ""))')
        queries.append(expr)
        result = prom.query(expr, end)
        newest = max((float(r["value"][1]) for r in result), default=math.nan)
        rows.append({"name": name, "kind": kind, "query": selector, "newest": newest, "expr": expr})
    frame = _frame(rows, INPUTS["series_freshness"].columns)
    return InputData(frame, source="prometheus", queries=tuple(queries),
                     links=(f.graph_link(f"time() - timestamp({GAP_SELECTOR})", start, end),),
                     meta={"at": end, "lookback": span_s,
                           "dashboards": "the series selectors of include/grafana/dashboards/*.json",
                           "checked": {"metric": int((frame["kind"] == "metric").sum()),
                                       "dashboard": int((frame["kind"] == "dashboard").sum())}})


def _scrape_targets(f: _Fetcher, span: _TIME) -> InputData:
    prom = f.prom()
    rows = []
    for target in prom.targets("active"):
        labels = target.get("labels") or {}
        discovered = target.get("discoveredLabels") or {}
        rows.append({"job": str(labels.get("job") or target.get("scrapePool") or discovered.get("job", "")),
                     "instance": str(labels.get("instance") or discovered.get("__address__", "")),
                     "health": str(target.get("health", "unknown")),
                     "last_scrape": _rfc3339(target.get("lastScrape")),
                     "last_error": str(target.get("lastError") or ""), "scrape_url": str(target.get("scrapeUrl", "")),
                     "labels": dict(labels)})
    frame = _frame(rows, INPUTS["scrape_targets"].columns)
    return InputData(frame, source="prometheus", queries=("GET /api/v1/targets?state=active",),
                     links=(f.prom_page("targets"),), meta={"targets": len(frame), **f.now_meta()})


def _sample_timestamps(f: _Fetcher, span: _TIME) -> InputData:
    """Raw sample times of the gap selector per job/instance: a range query's lookback would hide gaps."""
    prom = f.prom()
    start, end = span
    selector = f.config.gap_selector
    # (start - 1, end]: a sample exactly at `start` belongs to the span; the evaluator keeps [start, end).
    series = prom.raw_samples(selector, start - 1, end)
    parts = []
    for s in series:
        key = f"{s.labels.get('job', '')}/{s.labels.get('instance', '')}" if "instance" in s.labels else \
            "{" + ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()) if k != "__name__") + "}"
        parts.append(pd.DataFrame({"series": key, "timestamp": s.t}))
    frame = (pd.concat(parts, ignore_index=True).drop_duplicates().sort_values(["series", "timestamp"])
             .reset_index(drop=True) if parts else _frame([], INPUTS["sample_timestamps"].columns))
    return InputData(frame, source="prometheus", queries=(f"{selector}[{end - start + 1}s] @ {end}",),
                     links=(f.graph_link(selector, start, end),),
                     meta={"selector": selector, "series": int(frame["series"].nunique()) if len(frame) else 0,
                           "samples": len(frame), "key": "job/instance (one sample per successful scrape)"})


# --- versions and documents -------------------------------------------------------------------------------


def _python_versions() -> dict[str, str]:
    """apache-airflow and every installed apache-airflow-providers-* distribution."""
    out: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        if name == "apache-airflow" or name.startswith("apache-airflow-providers-"):
            out[str(name)] = dist.version
    return dict(sorted(out.items()))


def _versions_running(f: _Fetcher, span: _TIME) -> InputData:
    """What runs now; a component that cannot be read is None, with the reason in meta['errors']."""
    versions: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    queries: list[str] = []
    for component, read in (("prometheus", lambda: str(f.prom().build_info()["version"])),
                            ("alertmanager", lambda: f.am().version())):
        queries.append("GET /api/v1/status/buildinfo" if component == "prometheus" else "GET /api/v2/status")
        try:
            versions[component] = read()
        except Exception as exc:
            failure = _failure(exc)
            f.note_down(exc, failure)
            versions[component] = None
            errors[component] = failure.reason
    queries.append("importlib.metadata: apache-airflow, apache-airflow-providers-*")
    python = _python_versions()
    if "apache-airflow" not in python:
        errors["apache-airflow"] = "apache-airflow is not installed in this Python environment"
        python["apache-airflow"] = None  # type: ignore[assignment]
    versions.update(python)
    meta: dict[str, Any] = {"sources": {"prometheus": "prometheus build info", "alertmanager": "alertmanager status",
                                        "python": "installed distributions"}, **f.now_meta()}
    if errors:
        meta["errors"] = errors
    return InputData(versions, source="prometheus, alertmanager, python", queries=tuple(queries), meta=meta)


def _pinned_requirements(f: _Fetcher, span: _TIME) -> InputData:
    path = f.config.requirements or f.config.repo_root / "requirements.txt"
    try:
        text = path.read_text()
    except OSError as exc:
        raise _SourceFailure("repository", f"repository: cannot read {path}: {exc}") from exc
    pins = parse_requirements(text)
    return InputData(pins, source="repository", queries=(f"parse_requirements({path.name})",),
                     meta={"path": str(path), "pins": len(pins)})


def _git(root: Path, *args: str) -> str | None:
    """git's output, or None when git is missing or `root` is not a work tree."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _runbooks(f: _Fetcher, span: _TIME) -> InputData:
    root = f.config.repo_root
    paths = sorted({p for pattern in f.config.runbook_globs for p in root.glob(pattern) if p.is_file()})
    in_git = (_git(root, "rev-parse", "--is-inside-work-tree") or "").strip() == "true"
    rows, from_mtime = [], []
    for path in paths:
        relative = path.relative_to(root).as_posix()
        stamp = (_git(root, "log", "-1", "--format=%ct", "--", relative) or "").strip() if in_git else ""
        if stamp:
            rows.append({"path": relative, "updated_at": float(stamp), "from": "git"})
        else:
            rows.append({"path": relative, "updated_at": path.stat().st_mtime, "from": "mtime"})
            from_mtime.append(relative)
    frame = _frame(rows, INPUTS["runbooks"].columns)
    meta: dict[str, Any] = {"documents": len(frame), "globs": list(f.config.runbook_globs)}
    if not in_git:
        meta["note"] = f"{root} is not a git checkout: the file modification times stand in for the last change"
    elif from_mtime:
        meta["note"] = "not committed yet, so the file modification time stands in: " + ", ".join(from_mtime)
    return InputData(frame, source="git" if in_git else "filesystem",
                     queries=tuple(f"git log -1 --format=%ct -- {g}" for g in f.config.runbook_globs), meta=meta)


# --- the entry point --------------------------------------------------------------------------------------


_FETCHERS: dict[str, tuple[str, Callable[[_Fetcher, _TIME], InputData]]] = {
    "slos": ("config", _slos),
    "policy": ("config", _policy),
    "ledgers": ("store", _ledgers),
    "exclusions": ("store", _exclusions),
    "policy_history": ("store", _policy_history),
    "alertmanager_alerts": ("alertmanager", _alertmanager_alerts),
    "alert_samples": ("prometheus", _alert_samples),
    "alert_rules": ("prometheus", _alert_rules),
    "series_freshness": ("prometheus", _series_freshness),
    "scrape_targets": ("prometheus", _scrape_targets),
    "sample_timestamps": ("prometheus", _sample_timestamps),
    "chaos_runs": ("store", _chaos_runs),
    "chaos_probes": ("store", _chaos_probes),
    "chaos_active_faults": ("store", _chaos_active_faults),
    "deployments": ("store", _deployments),
    "incidents": ("store", _incidents),
    "versions_running": ("prometheus, alertmanager, python", _versions_running),
    "pinned_requirements": ("repository", _pinned_requirements),
    "runbooks": ("git", _runbooks),
}


def fetch_inputs(
    plan: Mapping[str, tuple[int, int]],
    at: int,
    *,
    prometheus: PrometheusClient | None,
    alertmanager: AlertmanagerClient | None,
    store: SREStore,
    config: dict[str, Any] | None = None,
) -> dict[str, InputData | Unavailable]:
    """Every input of `plan` (input name -> [start, end) epoch span, from `fetch_plan`) fetched once.

    `at` is the run's instant (epoch seconds); what is "now" (Alertmanager's alerts, the targets, the running
    versions, the store's unrecovered faults) is read as it is when this runs. `config` overrides SourceConfig
    fields (e.g. {"slos": catalog, "repo_root": path}); an unknown key is a ValueError. A client of None means
    the system is not configured: the inputs that need it are Unavailable, saying so.
    """
    fetcher = _Fetcher(int(at), prometheus, alertmanager, store, SourceConfig.from_mapping(config))
    out: dict[str, InputData | Unavailable] = {}
    for name, span in plan.items():
        entry = _FETCHERS.get(name)
        if entry is None:
            known = "in the catalog but has no fetcher here" if name in INPUTS else "not an input of the catalog"
            out[name] = Unavailable(f"{name!r} is {known} (gamesre.checklists.inputs.INPUTS)")
            continue
        source, fetch = entry
        try:
            out[name] = fetch(fetcher, (int(span[0]), int(span[1])))
        except Exception as exc:  # every failure becomes this input's Unavailable, never the caller's exception
            failure = _failure(exc)
            fetcher.note_down(exc, failure)
            out[name] = Unavailable(failure.reason, source=failure.system or source, queries=failure.queries)
    return out


def needs(name: str) -> str:
    """The system an input is fetched from (prometheus, alertmanager, store, config, repository, git)."""
    return _FETCHERS[name][0]


__all__ = ["ALERTS_QUERY", "GAP_SELECTOR", "SourceConfig", "fetch_inputs", "needs"]
