"""Data sanity evaluators: fresh data behind every metric and dashboard query, scrape targets up, no gaps."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from gamesre.checklists.analytics import epoch_seconds, series_gaps, stale_series
from gamesre.checklists.evaluators._common import MAX_ROWS, duration_text, iso_or_none, listing, records
from gamesre.checklists.params import Duration, seconds
from gamesre.checklists.periods import Period
from gamesre.checklists.registry import CheckContext, CheckError, ParamsModel, Verdict, evaluator


class FreshnessParams(ParamsModel):
    """A metric or dashboard query whose newest sample is older than max_age (or that has none) fails."""

    max_age: Duration = "5m"


def _now(params: ParamsModel, period: Period, at: int) -> tuple[int, int]:
    return at - 3600, at


@evaluator("series_freshness", params_model=FreshnessParams, inputs=("series_freshness",), window=_now)
def series_freshness(ctx: CheckContext, params: FreshnessParams) -> Verdict:
    """Every contract metric and dashboard query has a sample newer than max_age."""
    frame = ctx.data("series_freshness")
    if frame.empty:
        raise CheckError("no metric or dashboard query to check (the freshness input is empty)")
    stale = stale_series(frame, ctx.at, seconds(params.max_age))
    rows = []
    for _, row in stale.head(MAX_ROWS).iterrows():
        age = row["age"]
        rows.append({"name": str(row["name"]), "kind": str(row.get("kind", "")), "query": str(row.get("query", "")),
                     "newest": iso_or_none(ctx.at - age if age == age else None),
                     "age": None if age != age else float(age),
                     "age_text": "no data" if age != age else duration_text(age)})
    kinds = frame["kind"].astype(str).value_counts().to_dict() if "kind" in frame.columns else {}
    evidence: dict[str, Any] = {"stale": rows, "stale_total": len(stale), "checked_total": len(frame),
                                "checked_by_kind": {str(k): int(v) for k, v in kinds.items()},
                                "thresholds": {"max_age": params.max_age}}
    if stale.empty:
        return Verdict("pass", f"all {len(frame)} metrics and queries have data newer than {params.max_age}", evidence)
    return Verdict("fail", f"{len(stale)} of {len(frame)} metrics or queries have no data newer than "
                           f"{params.max_age}: " + listing([f"{r['name']} ({r['age_text']})" for r in rows]), evidence)


class TargetsParams(ParamsModel):
    """required_jobs: scrape jobs that must have at least one target (e.g. the metric contract's)."""

    required_jobs: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)


@evaluator("scrape_targets", params_model=TargetsParams, inputs=("scrape_targets",), window=_now)
def scrape_targets(ctx: CheckContext, params: TargetsParams) -> Verdict:
    """No scrape target is down, and every required job has targets."""
    frame = ctx.data("scrape_targets")
    if frame.empty and not params.required_jobs:
        raise CheckError("Prometheus reports no scrape targets")
    health = frame["health"].astype(str)
    down = frame[health != "up"].copy()
    if len(down):
        down["last_scrape"] = epoch_seconds(down["last_scrape"], "targets last_scrape").to_numpy()
    jobs = set(frame["job"].astype(str))
    missing = [job for job in params.required_jobs if job not in jobs]
    by_job = {str(job): {"up": int((g["health"].astype(str) == "up").sum()), "total": len(g)}
              for job, g in frame.groupby("job")}
    evidence: dict[str, Any] = {"down": records(down, ("job", "instance", "health", "last_scrape", "last_error"),
                                times=("last_scrape",)),
                "down_total": len(down), "missing_jobs": missing, "jobs": by_job,
                "thresholds": {"required_jobs": params.required_jobs}}
    problems = [f"{r['job']}/{r['instance']} {r['health']}" + (f" ({r['last_error']})" if r["last_error"] else "")
                for r in evidence["down"]]
    problems += [f"job {job} has no target" for job in missing]
    if problems:
        return Verdict("fail", f"{len(down)} target(s) not up, {len(missing)} required job(s) missing: "
                               f"{listing(problems)}", evidence)
    return Verdict("pass", f"all {len(frame)} targets of {len(jobs)} jobs are up", evidence)


class GapParams(ParamsModel):
    """A stretch longer than max_gap without a sample of a watched series, over the lookback, fails;
    expected_series with no sample at all count as one gap over the whole lookback."""

    max_gap: Duration = "5m"
    lookback: Duration = "24h"
    expected_series: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)


def _gap_window(params: GapParams, period: Period, at: int) -> tuple[int, int]:
    return at - seconds(params.lookback), at


@evaluator("sample_gaps", params_model=GapParams, inputs=("sample_timestamps",), window=_gap_window)
def sample_gaps(ctx: CheckContext, params: GapParams) -> Verdict:
    """No watched series has a gap longer than max_gap in the lookback."""
    frame = ctx.data("sample_timestamps")
    if frame.empty and not params.expected_series:
        raise CheckError("no series to check for gaps (the sample input is empty)")
    start = ctx.at - seconds(params.lookback)
    gaps = series_gaps(frame, start, ctx.at, seconds(params.max_gap), params.expected_series)
    rows = records(gaps, ("series", "start", "end", "seconds", "edge"), times=("start", "end"))
    for row in rows:
        row["length"] = duration_text(row["seconds"])
    watched = len({*map(str, frame["series"].unique()), *params.expected_series})
    evidence: dict[str, Any] = {"gaps": rows, "gaps_total": len(gaps), "series_total": watched,
                "series_with_gaps": sorted(set(gaps["series"].astype(str))) if len(gaps) else [],
                "thresholds": {"max_gap": params.max_gap, "lookback": params.lookback}}
    if gaps.empty:
        return Verdict("pass", f"no gap longer than {params.max_gap} in {watched} series over the last "
                               f"{params.lookback}", evidence)
    return Verdict("fail", f"{len(gaps)} gap(s) longer than {params.max_gap} in "
                           f"{len(evidence['series_with_gaps'])} of {watched} series, longest: " +
                   listing([f"{r['series']} {r['length']} from {r['start']}" for r in rows], 3), evidence)
