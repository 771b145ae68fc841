"""Deploy evaluators: pipeline status and stuck runs, weekly success rate, monthly DORA metrics."""
from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from pydantic import Field, field_validator

from gamesre.checklists.analytics import (
    FAILURE_OUTCOMES,
    FINISHED_OUTCOMES,
    DoraMetrics,
    deploy_outcomes,
    deployment_frame,
    dora_metrics,
    stuck_deploys,
)
from gamesre.checklists.evaluators._common import duration_text, listing, pct, records
from gamesre.checklists.params import Duration, Share, seconds
from gamesre.checklists.periods import Period
from gamesre.checklists.registry import CheckContext, ParamsModel, Verdict, evaluator

_OUTCOMES = ("running", "promoted", "rolled_back", "blocked", "timed_out", "invalid", "failed", "dry_run")
_DEPLOY_COLUMNS = ("id", "service", "version", "outcome", "requested_at", "finished_at", "rolled_back_at", "run_url")
_TIMES = ("requested_at", "started_at", "finished_at", "rolled_back_at")


def _deploy_rows(frame: pd.DataFrame, **kwargs: Any) -> list[dict[str, Any]]:
    columns = [c for c in _DEPLOY_COLUMNS if c in frame.columns]
    return records(frame, columns, times=_TIMES, **kwargs)


def _outcome_table(outcomes: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {str(service): {k: (None if v != v else v) for k, v in row.items()} for service, row in
            outcomes.astype(object).iterrows()}


class PipelineParams(ParamsModel):
    """lookback: the window of recent deploys; a run still running stuck_after after its request is stuck."""

    lookback: Duration = "24h"
    stuck_after: Duration = "2h"


def _pipeline_window(params: PipelineParams, period: Period, at: int) -> tuple[int, int]:
    return at - max(seconds(params.lookback), seconds(params.stuck_after)) - 86_400, at


@evaluator("deploy_pipeline", params_model=PipelineParams, inputs=("deployments",), window=_pipeline_window)
def deploy_pipeline(ctx: CheckContext, params: PipelineParams) -> Verdict:
    """The last deploys, the failed and rolled-back ones, and runs stuck in `running`."""
    frame = deployment_frame(ctx.data("deployments"))
    start = ctx.at - seconds(params.lookback)
    recent = frame[frame["requested_at"] >= start].sort_values("requested_at", ascending=False, kind="stable")
    bad = recent[recent["outcome"].isin(("rolled_back", "timed_out", "failed"))]
    stuck = stuck_deploys(ctx.data("deployments"), ctx.at, seconds(params.stuck_after))
    evidence = {
        "recent": _deploy_rows(recent), "recent_total": len(recent),
        "by_outcome": {o: int((recent["outcome"] == o).sum()) for o in _OUTCOMES if (recent["outcome"] == o).any()},
        "failed_or_rolled_back": _deploy_rows(bad), "stuck": _deploy_rows(stuck), "stuck_total": len(stuck),
        "thresholds": {"lookback": params.lookback, "stuck_after": params.stuck_after},
    }
    if len(stuck):
        return Verdict("fail", f"{len(stuck)} deploy run(s) stuck in running: " + listing(
            [f"{r.service} {r.version} for {duration_text(r.age)}" for r in stuck.itertuples()]), evidence)
    if len(bad):
        described = [f"{r.service} {r.version} {r.outcome}" for r in bad.itertuples()]
        return Verdict("warn", f"{len(bad)} of {len(recent)} deploy(s) in the last {params.lookback} did not "
                               f"promote: {listing(described)}", evidence)
    return Verdict("pass", f"{len(recent)} deploy(s) in the last {params.lookback}, none failed, none stuck", evidence)


class SuccessParams(ParamsModel):
    """warn below min_success_rate (promoted over finished deploys) or above max_rollbacks in the period."""

    min_success_rate: Share = 0.9
    max_rollbacks: Annotated[int, Field(ge=0)] = 2


@evaluator("deploy_success", params_model=SuccessParams, inputs=("deployments",))
def deploy_success(ctx: CheckContext, params: SuccessParams) -> Verdict:
    """Deployment success rate and rollback frequency over the period, per service."""
    outcomes = deploy_outcomes(ctx.data("deployments"), ctx.period.start, ctx.period.end)
    overall = outcomes.loc["all"]
    evidence = {"services": _outcome_table(outcomes), "thresholds": params.model_dump()}
    if int(overall["finished"]) == 0 and int(overall["rollbacks"]) == 0:
        return Verdict("pass", f"no deploy finished in {ctx.period.label}", evidence)
    rate, rollbacks = overall["success_rate"], int(overall["rollbacks"])
    notes = []
    if rate is not None and rate == rate and rate < params.min_success_rate:
        notes.append(f"success rate {pct(rate, 1)} below {pct(params.min_success_rate, 0)}")
    if rollbacks > params.max_rollbacks:
        notes.append(f"{rollbacks} rollbacks, more than {params.max_rollbacks}")
    text = (f"{int(overall['promoted'])} of {int(overall['finished'])} deploy(s) promoted ({pct(rate, 1)}), "
            f"{rollbacks} rollback(s)")
    if notes:
        return Verdict("warn", f"{text}: {'; '.join(notes)}", evidence)
    return Verdict("pass", text, evidence)


class DoraParams(ParamsModel):
    """Deploys through production_stage finished in the period; a metric past its warn_ threshold is a warn."""

    production_stage: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")] | None = "prod"
    failure_outcomes: Annotated[list[str], Field(min_length=1)] = Field(default_factory=lambda: [*FAILURE_OUTCOMES])
    finished_outcomes: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: [*FINISHED_OUTCOMES])
    warn_change_failure_rate: Share = 0.15
    warn_lead_time: Duration = "1d"
    warn_time_to_restore: Duration = "1h"
    min_deploys: Annotated[int, Field(ge=0)] = 1

    @field_validator("failure_outcomes", "finished_outcomes")
    @classmethod
    def _known(cls, outcomes: list[str]) -> list[str]:
        unknown = [o for o in outcomes if o not in _OUTCOMES]
        if unknown:
            raise ValueError(f"unknown outcome(s) {', '.join(unknown)} (deploy outcomes: {', '.join(_OUTCOMES)})")
        return outcomes


@evaluator("dora", params_model=DoraParams, inputs=("deployments",))
def dora(ctx: CheckContext, params: DoraParams) -> Verdict:
    """Deploy frequency, lead time, change failure rate and time to restore over the period."""
    frame = ctx.data("deployments")

    def metrics(records: pd.DataFrame) -> DoraMetrics:
        return dora_metrics(records, ctx.period.start, ctx.period.end, production_stage=params.production_stage,
                            failure_outcomes=params.failure_outcomes, finished_outcomes=params.finished_outcomes)

    overall = metrics(frame)
    services = sorted(set(frame["service"].astype(str))) if len(frame) else []
    per_service = {s: metrics(frame[frame["service"].astype(str) == s]).to_dict() for s in services}
    evidence = {"overall": overall.to_dict(), "services": per_service, "thresholds": params.model_dump(),
                "readable": {"lead_time_median": duration_text(overall.lead_time_median),
                             "time_to_restore_median": duration_text(overall.time_to_restore_median)}}
    text = (f"{overall.deploys} production deploy(s) ({overall.deploys_per_week:.1f}/week), lead time median "
            f"{duration_text(overall.lead_time_median)}, change failure rate {pct(overall.change_failure_rate, 1)} "
            f"({overall.failures}/{overall.finished}), time to restore median "
            f"{duration_text(overall.time_to_restore_median)}")
    notes = []
    if overall.deploys < params.min_deploys:
        notes.append(f"fewer than {params.min_deploys} production deploy(s)")
    cfr = overall.change_failure_rate
    if cfr is not None and cfr > params.warn_change_failure_rate:
        notes.append(f"change failure rate above {pct(params.warn_change_failure_rate, 0)}")
    if overall.lead_time_median is not None and overall.lead_time_median > seconds(params.warn_lead_time):
        notes.append(f"median lead time above {params.warn_lead_time}")
    restore = overall.time_to_restore_median
    if restore is not None and restore > seconds(params.warn_time_to_restore):
        notes.append(f"median time to restore above {params.warn_time_to_restore}")
    if notes:
        return Verdict("warn", f"{text}: {'; '.join(notes)}", evidence)
    return Verdict("pass", text, evidence)
