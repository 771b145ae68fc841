"""SLO evaluators: attainment, budget burn and its change, spend patterns, target review, policy review."""
from __future__ import annotations

from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import Field

from gamesre.checklists.analytics import (
    STALE,
    UNKNOWN,
    as_ledger,
    attainment,
    budget_spend_by_minute,
    period_budget,
    period_counts,
    recommend_target,
    spend_by_weekday_hour,
    state_at,
    state_entries,
    state_segments,
    time_in_states,
    top_spending_periods,
)
from gamesre.checklists.evaluators._common import (
    duration_text,
    exclusions_of,
    kst_text,
    ledger_of,
    listing,
    pct,
    slo_specs,
)
from gamesre.checklists.params import Share, SloScope
from gamesre.checklists.periods import DAY, Period, months_before
from gamesre.checklists.registry import CheckContext, CheckError, ParamsModel, Verdict, combine, evaluator
from gamesre.core.durations import parse_duration
from gamesre.core.time import iso
from gamesre.slo.budget import compute_snapshot
from gamesre.slo.policy import BLOCKING_STATES, severity_rank
from gamesre.slo.spec import Slo
from gamesre.slo.windows import window_bounds


def _selected(ctx: CheckContext, scope: SloScope) -> list[Slo]:
    chosen = scope.select(slo_specs(ctx))
    if not chosen:
        raise CheckError(f"none of the SLOs in the 'slos' input matches {scope.references() or 'the item'}")
    return chosen


# --- attainment -----------------------------------------------------------------------------------------


class AttainmentParams(SloScope):
    """min_coverage: below this share of minutes with data, a met target is only a warn."""

    min_coverage: Share = 0.9


@evaluator("slo_attainment", params_model=AttainmentParams, inputs=("slos", "ledgers", "exclusions"))
def slo_attainment(ctx: CheckContext, params: AttainmentParams) -> Verdict:
    """Each SLO's attainment over the item's period against its target (maintenance windows excluded)."""
    per_slo: list[dict[str, Any]] = []
    notes: dict[str, list[str]] = {"fail": [], "warn": [], "pass": []}
    for slo in _selected(ctx, params):
        a = attainment(slo, ledger_of(ctx, slo.name), ctx.period.start, ctx.period.end,
                       exclusions_of(ctx, slo.service))
        if a.sli is None:
            status, note = "warn", f"{slo.name}: no SLI ({a.reason})"
        elif not a.met:
            status, note = "fail", f"{slo.name} {pct(a.sli, 3)} below its {pct(slo.target, 3)} target " \
                                   f"(burn {a.burn_rate:.2f}x)"
        elif (a.coverage or 0.0) < params.min_coverage:
            status, note = "warn", f"{slo.name} {pct(a.sli, 3)} met {pct(slo.target, 3)} but with data for only " \
                                   f"{pct(a.coverage, 1)} of the minutes"
        else:
            status, note = "pass", f"{slo.name} {pct(a.sli, 3)} (target {pct(slo.target, 3)})"
        notes[status].append(note)
        per_slo.append({**a.to_dict(), "owner": slo.owner, "status": status})
    status = combine(row["status"] for row in per_slo)
    if status == "pass":
        summary = f"every SLO met its target over {ctx.period.label}: " + "; ".join(notes["pass"])
    else:
        summary = "; ".join(notes["fail"] + notes["warn"])
    return Verdict(status, summary, {"slos": per_slo, "thresholds": {"min_coverage": params.min_coverage}})


# --- budget burn: state now and change since yesterday --------------------------------------------------


class BudgetBurnParams(SloScope):
    """warn_daily_consumption: a day that spent at least this share of the window's budget is a warn."""

    warn_daily_consumption: Share = 0.1


def _burn_window(params: BudgetBurnParams, period: Period, at: int) -> tuple[int, int]:
    return at - 33 * DAY, at  # the longest SLO window (a 31-day month) ending a day ago, and a margin


def _history_of(history: pd.DataFrame, scope: str, name: str) -> pd.DataFrame:
    return history[(history["scope"].astype(str) == scope) & (history["name"].astype(str) == name)]


@evaluator("budget_burn", params_model=BudgetBurnParams, window=_burn_window,
           inputs=("slos", "ledgers", "exclusions", "policy", "policy_history"))
def budget_burn(ctx: CheckContext, params: BudgetBurnParams) -> Verdict:
    """The published error-budget state of each SLO now and a day ago, and the budget spent in between."""
    policy = ctx.data("policy")
    stale_after = parse_duration(policy.state.stale_after)
    history = ctx.data("policy_history")
    rows: list[dict[str, Any]] = []
    notes: dict[str, list[str]] = {"fail": [], "warn": []}
    for slo in _selected(ctx, params):
        ledger = as_ledger(ledger_of(ctx, slo.name))
        exclusions = exclusions_of(ctx, slo.service)
        now = compute_snapshot(slo, ledger, ctx.at, exclusions)
        before = compute_snapshot(slo, ledger, ctx.at - DAY, exclusions)
        mine = _history_of(history, "slo", slo.name)
        state, published = state_at(mine, ctx.at, stale_after)
        state_before, _ = state_at(mine, ctx.at - DAY, stale_after)
        consumed, consumed_before = now.budget_consumed_adjusted, before.budget_consumed_adjusted
        delta = None if consumed is None or consumed_before is None else consumed - consumed_before
        if state in BLOCKING_STATES or state in (UNKNOWN, STALE):
            status = "fail"
            why = {UNKNOWN: "no published state", STALE: "the published state is stale"}.get(state, state)
            notes["fail"].append(f"{slo.name}: {why} ({pct(consumed, 1)} of the budget spent)")
        elif state in ("slow_burn", "ticket") or severity_rank(state) < severity_rank(state_before) or (
                delta is not None and delta >= params.warn_daily_consumption):
            status = "warn"
            notes["warn"].append(f"{slo.name}: {state_before} -> {state}, {pct(delta, 1)} of the budget spent "
                                 "in the last 24 h")
        else:
            status = "pass"
        rows.append({
            "slo": slo.name, "owner": slo.owner, "status": status, "state": state, "state_day_ago": state_before,
            "state_published_at": None if published is None else iso(int(published)),
            "budget_consumed": consumed, "budget_consumed_day_ago": consumed_before, "budget_consumed_change": delta,
            "budget_remaining": now.budget_remaining_adjusted, "burn_rates": dict(now.burn_rates_adjusted),
            "window": now.window, "coverage": now.coverage_adjusted,
        })
    status = combine(r["status"] for r in rows)
    summary = "; ".join(notes["fail"] + notes["warn"]) or (
        "every SLO is in a non-blocking state with a normal day's burn: " +
        ", ".join(f"{r['slo']} {r['state']} ({pct(r['budget_consumed'], 1)} spent)" for r in rows))
    thresholds = {"warn_daily_consumption": params.warn_daily_consumption, "stale_after": policy.state.stale_after,
                  "blocking_states": sorted(BLOCKING_STATES)}
    return Verdict(status, summary, {"slos": rows, "thresholds": thresholds})


# --- spend patterns -------------------------------------------------------------------------------------


class PatternParams(SloScope):
    """top_n hours listed per SLO; an hour that spent at least warn_hour_budget_share of the SLO window's
    whole budget is a warn (2% in an hour is the fast-burn page tier of policies.yaml)."""

    top_n: Annotated[int, Field(ge=1, le=50)] = 5
    warn_hour_budget_share: Share = 0.02


@evaluator("budget_patterns", params_model=PatternParams, inputs=("slos", "ledgers", "exclusions"))
def budget_patterns(ctx: CheckContext, params: PatternParams) -> Verdict:
    """When the error budget was spent over the period: by KST weekday and hour, and the top hours."""
    per_slo: list[dict[str, Any]] = []
    notes: list[str] = []
    for slo in _selected(ctx, params):
        frame = ledger_of(ctx, slo.name)
        exclusions = exclusions_of(ctx, slo.service)
        spend = budget_spend_by_minute(slo, frame, ctx.period.start, ctx.period.end, exclusions)
        raw = period_counts(slo, frame, ctx.period.start, ctx.period.end, adjusted=False)
        window_minutes = window_bounds(slo.window, ctx.period.end).minutes
        budget = period_budget(slo, raw, window_minutes)
        if budget is None or raw.covered == 0:
            per_slo.append({"slo": slo.name, "owner": slo.owner, "status": "warn", "reason": "no data"})
            notes.append(f"{slo.name}: no data in the period")
            continue
        table = spend_by_weekday_hour(spend)
        top = top_spending_periods(spend, n=params.top_n)
        top_rows: list[dict[str, Any]] = [
            {"start": iso(int(r.start)), "local": kst_text(r.start), "units": float(r.units),
             "window_budget_share": float(r.units) / budget} for r in top.itertuples()]
        over = [r for r in top_rows if r["window_budget_share"] >= params.warn_hour_budget_share]
        status = "warn" if over else "pass"
        if over:
            notes.append(f"{slo.name}: {len(over)} hour(s) spent at least {pct(params.warn_hour_budget_share, 0)} "
                         f"of the {slo.window} budget, worst {over[0]['local']} "
                         f"({pct(over[0]['window_budget_share'], 1)})")
        per_slo.append({
            "slo": slo.name, "owner": slo.owner, "status": status,
            "unit": "events" if slo.budgeting_method == "occurrences" else "minutes",
            "spent": float(spend.sum()), "window": slo.window, "window_budget": budget,
            "window_budget_share": float(spend.sum()) / budget,
            "by_weekday": [float(x) for x in table.sum(axis=1)],
            "by_hour": [float(x) for x in table.sum(axis=0)],
            "weekday_hour": [[float(x) for x in row] for row in table.to_numpy()],
            "top_hours": top_rows,
        })
    status = combine(r["status"] for r in per_slo)
    summary = "; ".join(notes) or "no single hour spent {} or more of an SLO's window budget; top hours: {}".format(
        pct(params.warn_hour_budget_share, 0),
        ", ".join(f"{r['slo']} {r['top_hours'][0]['local']}" for r in per_slo if r.get("top_hours")) or "none")
    return Verdict(status, summary, {"slos": per_slo, "thresholds": {
        "warn_hour_budget_share": params.warn_hour_budget_share, "top_n": params.top_n},
        "layout": "by_weekday: Monday first; weekday_hour: 7 rows (Monday first) x 24 KST hours"})


# --- the SLO target review ------------------------------------------------------------------------------


class TargetReviewParams(SloScope):
    """See analytics.recommend_target for the rules these thresholds feed."""

    months: Annotated[int, Field(ge=1, le=12)] = 3
    min_coverage: Share = 0.9
    tighten_max_consumed: Share = 0.25
    loosen_min_exhaustions: Annotated[int, Field(ge=1, le=12)] = 2
    exhaustion_share: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] = 1.0


def _months_window(params: TargetReviewParams, period: Period, at: int) -> tuple[int, int]:
    months = months_before(at, params.months)
    return months[0].start, months[-1].end


@evaluator("slo_target_review", params_model=TargetReviewParams, window=_months_window,
           inputs=("slos", "ledgers", "exclusions"))
def slo_target_review(ctx: CheckContext, params: TargetReviewParams) -> Verdict:
    """Recommend tightening, keeping or loosening each SLO's target from its last months of attainment."""
    months = months_before(ctx.at, params.months)
    reviews: list[dict[str, Any]] = []
    notes: list[str] = []
    for slo in _selected(ctx, params):
        frame = ledger_of(ctx, slo.name)
        exclusions = exclusions_of(ctx, slo.service)
        monthly = [attainment(slo, frame, m.start, m.end, exclusions) for m in months]
        review = recommend_target(slo.name, slo.target, monthly, min_months=params.months,
                                  min_coverage=params.min_coverage, tighten_max_consumed=params.tighten_max_consumed,
                                  loosen_min_exhaustions=params.loosen_min_exhaustions,
                                  exhaustion_share=params.exhaustion_share)
        status = "pass" if review.recommendation == "keep" and review.confident else "warn"
        if status == "warn":
            to = f" to {pct(review.suggested_target, 3)}" if review.suggested_target is not None else ""
            notes.append(f"{slo.name}: {review.recommendation}{to} ({review.reason})")
        reviews.append({**review.to_dict(), "owner": slo.owner, "status": status,
                        "month_labels": [m.label for m in months]})
    status = combine(r["status"] for r in reviews)
    summary = "; ".join(notes) or "keep every target: " + ", ".join(
        f"{r['slo']} {pct(r['target'], 3)}" for r in reviews)
    return Verdict(status, summary, {"reviews": reviews, "thresholds": params.model_dump()})


# --- the error-budget policy review ---------------------------------------------------------------------


Scope = Literal["service", "slo"]
_SCOPES: tuple[Scope, ...] = ("service", "slo")


class PolicyReviewParams(ParamsModel):
    """warn_entries: this many entries into deploy_freeze or rollback for one SLO or service is a warn;
    max_unknown_share: more of the period without a fresh published state is a warn."""

    scopes: Annotated[list[Scope], Field(min_length=1)] = Field(default_factory=lambda: [*_SCOPES])
    warn_entries: Annotated[int, Field(ge=1)] = 1
    max_unknown_share: Share = 0.05


def _policy_window(params: PolicyReviewParams, period: Period, at: int) -> tuple[int, int]:
    return period.start - DAY, period.end  # the state holding when the period began


@evaluator("budget_policy_review", params_model=PolicyReviewParams, window=_policy_window,
           inputs=("policy", "policy_history"))
def budget_policy_review(ctx: CheckContext, params: PolicyReviewParams) -> Verdict:
    """How often deploy freeze and rollback triggered, and the time spent in each policy state."""
    policy = ctx.data("policy")
    stale_after = parse_duration(policy.state.stale_after)
    history = ctx.data("policy_history")
    period = ctx.period
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for scope in params.scopes:
        names = sorted(set(history.loc[history["scope"].astype(str) == scope, "name"].astype(str)))
        for name in names:
            mine = _history_of(history, scope, name)
            times = time_in_states(state_segments(mine, period.start, period.end, stale_after))
            entries = state_entries(mine, period.start, period.end)
            counts = {s: int((entries["state"] == s).sum()) for s in ("deploy_freeze", "rollback")}
            dark = (times.get(UNKNOWN, 0.0) + times.get(STALE, 0.0)) / period.seconds
            why = []
            if sum(counts.values()) >= params.warn_entries:
                why.append(f"{counts['deploy_freeze']} freeze and {counts['rollback']} rollback entr(ies)")
            if dark > params.max_unknown_share:
                why.append(f"no fresh published state for {pct(dark, 1)} of the month")
            if why:
                notes.append(f"{scope} {name}: " + ", ".join(why))
            rows.append({
                "scope": scope, "name": name, "status": "warn" if why else "pass", "entries": counts,
                "entry_times": [{"state": e.state, "at": iso(int(e.at)), "previous": e.previous}
                                for e in entries.itertuples()],
                "seconds_in_state": times, "share_in_state": {s: v / period.seconds for s, v in times.items()},
                "time_in_state": {s: duration_text(v) for s, v in times.items()},
            })
    if not rows:
        return Verdict("warn", f"no policy state was published for {', '.join(params.scopes)} in {period.label}",
                       {"rows": [], "thresholds": params.model_dump()})
    status = combine(r["status"] for r in rows)
    entered = sum(sum(r["entries"].values()) for r in rows)
    summary = "; ".join(notes) if notes else (
        f"{entered} deploy freeze or rollback entr(ies) in {period.label} (warn at {params.warn_entries} per SLO "
        "or service); most of the time in: " + listing(
            [f"{r['scope']} {r['name']} {max(r['seconds_in_state'], key=r['seconds_in_state'].get)}" for r in rows]))
    return Verdict(status, summary, {"rows": rows, "thresholds": params.model_dump()})
