"""The data a checklist evaluator may ask for: a catalog of named inputs, their shapes, and their provenance.

An evaluator never talks to Prometheus, Alertmanager or the store. It declares the inputs it needs by
name; the checklist run fetches each needed input once (integrations do the I/O), wraps it in `InputData`
with where it came from (the source, the queries, links), or in `Unavailable` with the reason when the
fetch failed. An item whose input is unavailable or malformed is `error` with that reason; the other items
still run. Times are UTC epoch seconds or timezone-aware datetimes; never naive datetimes.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["frame", "frames", "mapping", "object"]


@dataclass(frozen=True)
class InputSpec:
    """One named input: what it holds and the shape the evaluators rely on."""

    name: str
    kind: Kind  # frame: a pandas DataFrame; frames: a mapping of names to DataFrames; mapping; object
    description: str
    columns: tuple[str, ...] = ()  # required columns of each DataFrame
    meta: tuple[str, ...] = ()  # required keys of InputData.meta


INPUTS: dict[str, InputSpec] = {
    spec.name: spec
    for spec in (
        InputSpec("slos", "object", "the validated SLO specs: a gamesre.slo.spec.SloCatalog (or a list of Slo)"),
        InputSpec("policy", "object", "the validated error-budget policy: gamesre.slo.spec.Policy"),
        InputSpec("ledgers", "frames", "per SLO name, its ledger rows over the data window: minute (epoch "
                  "seconds of the slice start), good, total", columns=("minute", "good", "total")),
        InputSpec("exclusions", "mapping", "per service, the [start, end) epoch intervals of maintenance "
                  "windows that exclude budget (SREStore.exclusions)"),
        InputSpec("policy_history", "frame", "published policy states (policy_state_history rows): scope "
                  "(slo | service), name, state, computed_at", columns=("scope", "name", "state", "computed_at")),
        InputSpec("alertmanager_alerts", "frame", "alerts Alertmanager holds now (API v2): alertname, labels "
                  "(a mapping), state (active | suppressed | unprocessed), starts_at",
                  columns=("alertname", "labels", "state", "starts_at")),
        InputSpec("alert_samples", "frame", "samples of the ALERTS series over the data window (a range query "
                  "with step meta['step'] seconds): alertname, labels (a mapping), timestamp; an alertstate "
                  "column, when present, keeps only firing samples", columns=("alertname", "labels", "timestamp"),
                  meta=("step",)),
        InputSpec("alert_rules", "frame", "the alerting rules Prometheus has loaded: alertname, labels (the "
                  "rule's static labels, a mapping)", columns=("alertname", "labels")),
        InputSpec("series_freshness", "frame", "per contract metric and dashboard query, its newest sample: "
                  "name, kind (metric | dashboard), query, newest (epoch seconds; NaN when the query returned "
                  "nothing)", columns=("name", "kind", "query", "newest")),
        InputSpec("scrape_targets", "frame", "Prometheus scrape targets (/api/v1/targets): job, instance, "
                  "health (up | down | unknown), last_scrape, last_error",
                  columns=("job", "instance", "health", "last_scrape", "last_error")),
        InputSpec("sample_timestamps", "frame", "the raw sample timestamps of the series watched for gaps "
                  "over the data window: series, timestamp", columns=("series", "timestamp")),
        InputSpec("chaos_runs", "frame", "game-day experiment runs: run_id, experiment, service, started_at, "
                  "finished_at (null while running), verdict (pass | fail | aborted | error | running), score "
                  "(the weighted resilience score, 0-100; null when none)",
                  columns=("run_id", "experiment", "service", "started_at", "finished_at", "verdict", "score")),
        InputSpec("chaos_probes", "frame", "steady-state hypothesis probes of game-day runs: run_id, "
                  "experiment, probe, passed (bool)", columns=("run_id", "experiment", "probe", "passed")),
        InputSpec("chaos_active_faults", "frame", "faults injected right now (backends and the reaper's "
                  "view): service, target, fault, injected_at, run_id",
                  columns=("service", "target", "fault", "injected_at", "run_id")),
        InputSpec("deployments", "frame", "deployment records (the store's deployment table): id, service, "
                  "version, outcome, dry_run, stages, requested_at, started_at, finished_at, rolled_back_at, "
                  "run_url", columns=("id", "service", "version", "outcome", "dry_run", "stages", "requested_at",
                                      "started_at", "finished_at", "rolled_back_at", "run_url")),
        InputSpec("incidents", "frame", "incident records (the store's incident table): id, severity, title, team, "
                  "status (open | mitigated | resolved), opened_at, acknowledged_at, resolved_at (epoch seconds; "
                  "NaN when not yet), postmortem_due (epoch seconds of the due day's end in KST; NaN when none is "
                  "required), postmortem_status (draft | final | ''), postmortem_owner",
                  columns=("id", "severity", "title", "team", "status", "opened_at", "acknowledged_at",
                           "resolved_at", "postmortem_due", "postmortem_status", "postmortem_owner")),
        InputSpec("versions_running", "mapping", "component name -> the version it runs now (None when it "
                  "could not be read): prometheus, alertmanager, apache-airflow, providers ..."),
        InputSpec("pinned_requirements", "mapping", "Python package -> its pinned version in requirements.txt "
                  "(gamesre.checklists.versions.parse_requirements)"),
        InputSpec("runbooks", "frame", "runbooks and docs with their last change (e.g. git log): path, "
                  "updated_at", columns=("path", "updated_at")),
    )
}


@dataclass(frozen=True)
class InputData:
    """A fetched input and where it came from; the provenance goes into every result that used it."""

    value: Any
    source: str = ""  # prometheus | alertmanager | store | config | git | airflow ...
    queries: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source}
        if self.queries:
            out["queries"] = list(self.queries)
        if self.links:
            out["links"] = list(self.links)
        if self.meta:
            out["meta"] = dict(self.meta)
        return out


@dataclass(frozen=True)
class Unavailable:
    """An input that could not be fetched, and why (e.g. `prometheus: connection refused`)."""

    reason: str
    source: str = ""
    queries: tuple[str, ...] = ()

    def provenance(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "unavailable": self.reason}
        if self.queries:
            out["queries"] = list(self.queries)
        return out


def shape_problem(name: str, data: InputData) -> str | None:
    """Why `data` does not have the shape the catalog promises for input `name`, or None when it does."""
    spec = INPUTS.get(name)
    if spec is None:
        return f"{name!r} is not a known input"
    missing_meta = [k for k in spec.meta if k not in data.meta]
    if missing_meta:
        return f"input {name!r} lacks meta {', '.join(missing_meta)}"
    value = data.value
    if spec.kind == "frame":
        return _frame_problem(name, value, spec.columns)
    if spec.kind == "frames":
        if not isinstance(value, Mapping):
            return f"input {name!r} should be a mapping of names to tables, got {type(value).__name__}"
        for key, frame in value.items():
            problem = _frame_problem(f"{name}[{key!r}]", frame, spec.columns)
            if problem:
                return problem
        return None
    if spec.kind == "mapping" and not isinstance(value, Mapping):
        return f"input {name!r} should be a mapping, got {type(value).__name__}"
    if value is None:
        return f"input {name!r} is None"
    return None


def _frame_problem(name: str, value: Any, columns: tuple[str, ...]) -> str | None:
    present = getattr(value, "columns", None)
    if present is None:
        return f"input {name} should be a table (a pandas DataFrame), got {type(value).__name__}"
    missing = [c for c in columns if c not in set(present)]
    if missing:
        return f"input {name} lacks column(s) {', '.join(missing)}"
    return None


__all__ = ["INPUTS", "InputData", "InputSpec", "Unavailable", "shape_problem"]
