"""The chaos run record's documents (SRE store table `chaos_run`): what a request, a steady-state check and the
monitor's samples leave in it, the game-day window of a fault's span, and the shape the reports read. Pure.

The record is kept complete for the reports, the checklists and incident timelines: request, targets, gates,
steady state before and after, every probe sample, the abort, the injection and its recovery, times, verdict,
score; refused, skipped and invalid runs are recorded too.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from gamesre.chaos.catalog import ChaosCatalog, Experiment, Probe
from gamesre.chaos.probes import probe_success, read_probes, steady_state
from gamesre.chaos.request import ExperimentRun

TIMELINE = ("requested_at", "injected_at", "aborted_at", "recovered_at", "finished_at")


def accepted_run(run: ExperimentRun, candidates: Sequence[str]) -> dict[str, Any]:
    """The fields of a valid request whose targets (run.targets) were picked among `candidates`."""
    targets = list(run.targets)
    return {"experiment": run.experiment, "title": run.title, "service": run.service, "backend": run.backend,
            "environment": run.environment, "fault": run.fault.to_dict(), "targets": targets,
            "blast_radius": {"requested": str(run.blast_radius), "resolved": len(targets), "of": len(candidates)},
            "dry_run": run.dry_run, "requested_by": run.requested_by, "weight": run.weight, "verdict": "running"}


def rejected_run(raw: Mapping[str, Any], catalog: ChaosCatalog, *, reason: str, requested_by: str) -> dict[str, Any]:
    """The fields of an invalid request (verdict `invalid`): what can be told from it, cut to the columns' sizes."""
    experiment = catalog.experiments.get(str(raw.get("experiment")))
    return {"experiment": str(raw.get("experiment") or "")[:128], "title": experiment.title if experiment else "",
            "service": experiment.target.service if experiment else "", "backend": "",
            "environment": str(raw.get("environment") or catalog.policy.environment)[:16],
            "fault": experiment.fault_spec().to_dict() if experiment else {},
            "requested_by": str(raw.get("requested_by") or requested_by)[:128], "dry_run": bool(raw.get("dry_run")),
            "weight": experiment.weight if experiment else 0.0, "verdict": "invalid", "reason": reason}


def steady_state_check(probes: Sequence[Probe], values: Mapping[str, float | None], errors: Mapping[str, str],
                       at: float) -> dict[str, Any]:
    """Every probe read at one instant, judged: {passed, reason, at, probes, baselines}. The values become the
    baselines of the experiment's baseline probes; a probe Prometheus could not answer (`errors`) has no data."""
    readings = read_probes(probes, values, at, values, errors)
    holds, reason = steady_state(readings)
    by_name = {p.name: p for p in probes}
    return {"passed": holds, "reason": reason, "at": at,
            "probes": [{**r.to_dict(), "query": by_name[r.name].query,
                        "tolerance": by_name[r.name].tolerance.describe()} for r in readings],
            "baselines": {r.name: r.value for r in readings}}


def probe_samples(experiment: Experiment, samples: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every probe of the experiment with the monitor's samples ([at, value, passed]) and its success %."""
    out = []
    for p in experiment.steady_state.probes:
        rows = list(samples.get(p.name) or [])
        out.append({"name": p.name, "query": p.query, "tolerance": p.tolerance.describe(), "weight": p.weight,
                    "bounds": {"low": p.tolerance.min, "high": p.tolerance.max}, "samples": rows,
                    "success_pct": probe_success(rows, experiment.abort.no_data)})
    return out


def gameday_window(record: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The fault's span as a `gameday` window (at least a minute; until now while it is not recovered), so SLO
    reports show it; SLOs with count_gamedays_against_budget: false leave it out of their budgets."""
    end = record.get("recovered_at") or now
    return {"id": f"gameday:{record['id']}"[:128], "kind": "gameday", "start": record["injected_at"],
            "end": max(end, record["injected_at"] + timedelta(minutes=1)), "services": [record["service"]],
            "reason": f"chaos game-day: {record['experiment']} ({(record.get('fault') or {}).get('kind')} on "
                      f"{', '.join(record.get('targets') or [])})",
            "owner": record.get("requested_by") or "chaos", "ticket": "", "status": "completed",
            "excludes_budget": False, "created_by": record.get("requested_by") or "chaos"}


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def report_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A chaos_run (or chaos_gameday) row in the shape gamesre.reports.chaos_report renders: instants as ISO text,
    and the run's timeline."""
    out: dict[str, Any] = {k: _iso(v) for k, v in row.items()}
    out["timeline"] = {k: _iso(row.get(k)) for k in TIMELINE}
    return out


def score_history(runs: Iterable[Mapping[str, Any]], gamedays: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The scored experiment runs and game-days, oldest finish first: the reports' score trend."""
    history = [{"id": r["id"], "experiment": r["experiment"], "finished_at": _iso(r.get("finished_at")),
                "verdict": r["verdict"], "score": r["score"]} for r in runs if r.get("score") is not None]
    history += [{"id": g["id"], "suite": g["suite"], "kind": "gameday", "finished_at": _iso(g.get("finished_at")),
                 "verdict": g["verdict"], "score": g["score"]} for g in gamedays if g.get("score") is not None]
    history.sort(key=lambda h: h.get("finished_at") or "")
    return history
