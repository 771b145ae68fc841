"""Chaos game-day evaluators: run status and leftovers, results and score trend, failed hypotheses."""
from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from pydantic import Field

from gamesre.checklists.analytics import (
    FAILED_VERDICTS,
    chaos_run_frame,
    epoch_seconds,
    failed_hypotheses,
    leftover_faults,
    score_trend,
)
from gamesre.checklists.evaluators._common import MAX_ROWS, duration_text, listing, records
from gamesre.checklists.params import Duration, seconds
from gamesre.checklists.periods import Period
from gamesre.checklists.registry import CheckContext, NoParams, ParamsModel, Verdict, evaluator

_RUN_COLUMNS = ("run_id", "experiment", "service", "started_at", "finished_at", "verdict", "score")


def _run_rows(runs: pd.DataFrame, limit: int = MAX_ROWS) -> list[dict[str, Any]]:
    return records(runs, _RUN_COLUMNS, times=("started_at", "finished_at"), limit=limit)


class ChaosStatusParams(ParamsModel):
    """lookback: how far back failed runs make a warn; max_runs: how many recent runs the evidence lists."""

    lookback: Duration = "7d"
    max_runs: Annotated[int, Field(ge=1, le=MAX_ROWS)] = 5


def _status_window(params: ChaosStatusParams, period: Period, at: int) -> tuple[int, int]:
    return at - seconds(params.lookback), at


@evaluator("chaos_status", params_model=ChaosStatusParams, inputs=("chaos_runs", "chaos_active_faults"),
           window=_status_window)
def chaos_status(ctx: CheckContext, params: ChaosStatusParams) -> Verdict:
    """The last game-day runs, and any fault still injected without a running game-day (left behind)."""
    runs = chaos_run_frame(ctx.data("chaos_runs"))
    active = ctx.data("chaos_active_faults")
    left = leftover_faults(active, runs).copy()
    if len(left):
        left["injected_at"] = epoch_seconds(left["injected_at"], "active faults injected_at").to_numpy()
    recent = runs[runs["started_at"] >= ctx.at - seconds(params.lookback)]
    failed = recent[recent["verdict"].isin(FAILED_VERDICTS)]
    running = runs[runs["finished_at"].isna() & (runs["verdict"] == "running")]
    evidence = {
        "last_runs": _run_rows(runs.iloc[::-1], params.max_runs), "runs_in_lookback": len(recent),
        "failed_runs": _run_rows(failed.iloc[::-1]), "running": _run_rows(running),
        "left_injected": records(left, ("service", "target", "fault", "injected_at", "run_id"), times=("injected_at",)),
        "active_faults_total": len(active),
        "thresholds": {"lookback": params.lookback},
    }
    if len(left):
        described = [f"{r.fault} on {r.service}/{r.target} since {duration_text(ctx.at - r.injected_at)}"
                     for r in left.itertuples()]
        return Verdict("fail", f"{len(left)} fault(s) still injected with no game-day running: {listing(described)}",
                       evidence)
    if len(failed):
        return Verdict("warn", f"{len(failed)} of {len(recent)} game-day run(s) in the last {params.lookback} "
                               "ended " + listing([f"{r.experiment} {r.verdict}" for r in failed.itertuples()]),
                       evidence)
    if len(recent):
        return Verdict("pass", f"{len(recent)} game-day run(s) in the last {params.lookback}, none failed; nothing "
                               "left injected", evidence)
    return Verdict("pass", f"no game-day run in the last {params.lookback}; nothing injected", evidence)


class ChaosResultsParams(ParamsModel):
    """warn when the period's mean score is warn_score_drop points (of 100) below the mean of the earlier
    runs in trend_lookback, when a hypothesis failed, or (expect_gameday) when no game-day ran."""

    trend_lookback: Duration = "56d"
    warn_score_drop: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 5.0
    expect_gameday: bool = True


def _trend_window(params: ChaosResultsParams, period: Period, at: int) -> tuple[int, int]:
    return period.end - seconds(params.trend_lookback), period.end


@evaluator("chaos_results", params_model=ChaosResultsParams, inputs=("chaos_runs", "chaos_probes"),
           window=_trend_window)
def chaos_results(ctx: CheckContext, params: ChaosResultsParams) -> Verdict:
    """The period's game-day verdicts, the resilience score against its trend, and failed hypotheses."""
    runs = ctx.data("chaos_runs")
    period = ctx.period
    earlier_start = period.end - seconds(params.trend_lookback)
    now = score_trend(runs, period.start, period.end)
    before = score_trend(runs, earlier_start, period.start)
    whole = score_trend(runs, earlier_start, period.end)
    failed = failed_hypotheses(ctx.data("chaos_probes"), runs, period.start, period.end)
    frame = chaos_run_frame(runs)
    in_period = frame[(frame["started_at"] >= period.start) & (frame["started_at"] < period.end)]
    drop = None if now["mean"] is None or before["mean"] is None else before["mean"] - now["mean"]
    evidence = {
        "runs": _run_rows(in_period), "runs_total": len(in_period),
        "verdicts": {str(k): int(v) for k, v in in_period["verdict"].value_counts().items()},
        "score_period": now, "score_before": before, "score_trend": whole, "score_drop": drop,
        "failed_hypotheses": [{"experiment": str(r.experiment), "probe": str(r.probe), "failures": int(r.failures),
                               "runs": list(r.runs)} for r in failed.itertuples()],
        "thresholds": params.model_dump(),
    }
    notes = []
    if len(failed):
        notes.append(f"{int(failed['failures'].sum())} failed hypothesis probe(s): " + listing(
            [f"{r.experiment}/{r.probe}" for r in failed.itertuples()]))
    if drop is not None and drop >= params.warn_score_drop:
        notes.append(f"resilience score {now['mean']:.1f}, down {drop:.1f} points from {before['mean']:.1f}")
    if in_period.empty and params.expect_gameday:
        notes.append(f"no game-day ran in {period.label}")
    if notes:
        return Verdict("warn", "; ".join(notes), evidence)
    score = "no score" if now["mean"] is None else f"score {now['mean']:.1f}"
    slope = whole["slope_per_week"]
    trend = "" if slope is None else f", trend {slope:+.1f} points/week over {params.trend_lookback}"
    return Verdict("pass", f"{len(in_period)} game-day run(s), every hypothesis held, {score}{trend}", evidence)


@evaluator("resilience_inputs", inputs=("chaos_runs", "chaos_probes"))
def resilience_inputs(ctx: CheckContext, params: NoParams) -> Verdict:
    """The failed game-day hypotheses of the period: the inputs of the resilience improvement plan."""
    runs = ctx.data("chaos_runs")
    period = ctx.period
    failed = failed_hypotheses(ctx.data("chaos_probes"), runs, period.start, period.end)
    frame = chaos_run_frame(runs)
    in_period = frame[(frame["started_at"] >= period.start) & (frame["started_at"] < period.end)]
    by_experiment = {str(k): int(v) for k, v in failed.groupby("experiment")["failures"].sum().items()} \
        if len(failed) else {}
    evidence = {
        "failed_hypotheses": [{"experiment": str(r.experiment), "probe": str(r.probe), "failures": int(r.failures),
                               "runs": list(r.runs)} for r in failed.itertuples()],
        "failures_by_experiment": by_experiment, "runs_total": len(in_period),
        "experiments": sorted(set(in_period["experiment"].astype(str))),
        "verdicts": {str(k): int(v) for k, v in in_period["verdict"].value_counts().items()},
    }
    if len(failed):
        return Verdict("warn", f"{len(failed)} hypothesis probe(s) failed in {period.label}, to plan fixes for: " +
                       listing([f"{r.experiment}/{r.probe} ({int(r.failures)}x)" for r in failed.itertuples()]),
                       evidence)
    if in_period.empty:
        return Verdict("warn", f"no game-day ran in {period.label}: no evidence for the resilience plan", evidence)
    return Verdict("pass", f"every hypothesis held in {len(in_period)} game-day run(s) of {period.label}", evidence)
