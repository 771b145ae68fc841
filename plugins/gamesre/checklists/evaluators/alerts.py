"""Alert evaluators: what fires now and what resolved, noisy alerts, silent rules, firings without SLO impact."""
from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from pydantic import Field

from gamesre.checklists.analytics import (
    alert_stats,
    alerts_without_impact,
    epoch_seconds,
    firing_impact,
    firing_intervals,
    never_fired,
    noisy_alerts,
    rule_keys,
    series_key,
)
from gamesre.checklists.evaluators._common import (
    MAX_ROWS,
    duration_text,
    iso_or_none,
    ledger_of,
    listing,
    records,
    slo_specs,
)
from gamesre.checklists.params import Duration, seconds
from gamesre.checklists.periods import DAY, Period
from gamesre.checklists.registry import CheckContext, CheckError, ParamsModel, Verdict, VerdictStatus, evaluator


def _intervals(ctx: CheckContext) -> pd.DataFrame:
    step = ctx.meta("alert_samples")["step"]
    if not isinstance(step, int | float) or isinstance(step, bool) or step <= 0:
        raise CheckError(f"input 'alert_samples': meta step must be a positive number of seconds, got {step!r}")
    return firing_intervals(ctx.data("alert_samples"), float(step))


def _interval_rows(frame: pd.DataFrame, limit: int = MAX_ROWS) -> list[dict[str, Any]]:
    rows = records(frame, ("alertname", "series", "start", "end", "duration"), times=("start", "end"), limit=limit)
    for row in rows:
        row["duration_text"] = duration_text(row["duration"])
    return rows


def _since_period_start_minus_a_day(params: ParamsModel, period: Period, at: int) -> tuple[int, int]:
    # A firing is counted in the period it started in; a day before shows whether one was already going.
    return period.start - DAY, period.end


# --- firing now, resolved recently ----------------------------------------------------------------------


class AlertsNowParams(ParamsModel):
    """page_severities: an active (not silenced) alert with one of these severities fails the item."""

    lookback: Duration = "24h"
    page_severities: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] = Field(
        default_factory=lambda: ["page"])


def _lookback_window(params: AlertsNowParams, period: Period, at: int) -> tuple[int, int]:
    return at - seconds(params.lookback), at


@evaluator("alerts_now", params_model=AlertsNowParams, window=_lookback_window,
           inputs=("alertmanager_alerts", "alert_samples"))
def alerts_now(ctx: CheckContext, params: AlertsNowParams) -> Verdict:
    """Alerts firing now (Alertmanager) and the firings that resolved in the lookback (ALERTS)."""
    current = ctx.data("alertmanager_alerts")
    firing: list[dict[str, Any]] = []
    suppressed = 0
    active_keys: set[str] = set()
    starts = epoch_seconds(current["starts_at"], "alertmanager starts_at") if len(current) else pd.Series([])
    for (_, row), started in zip(current.iterrows(), starts, strict=True):
        labels = {str(k): str(v) for k, v in dict(row["labels"]).items()}
        if str(row["state"]) != "active":
            suppressed += 1
            continue
        active_keys.add(series_key(str(row["alertname"]), labels))
        firing.append({"alertname": str(row["alertname"]), "severity": labels.get("severity", ""),
                       "service": labels.get("service", ""), "slo": labels.get("slo", ""),
                       "since": iso_or_none(started), "for": duration_text(ctx.at - started), "labels": labels})
    intervals = _intervals(ctx)
    step = float(ctx.meta("alert_samples")["step"])
    start = ctx.at - seconds(params.lookback)
    still = intervals["series"].isin(active_keys) | (intervals["end"] >= ctx.at - step)
    resolved = intervals[~still & (intervals["end"] > start)].sort_values("end", ascending=False, kind="stable")
    pages = [a for a in firing if a["severity"] in params.page_severities]
    status: VerdictStatus
    names = sorted({a["alertname"] for a in firing})
    if pages:
        status = "fail"
        summary = f"{len(pages)} page alert(s) firing: " + listing(
            [f"{a['alertname']} ({a['slo'] or a['service'] or 'no service'}, for {a['for']})" for a in pages])
    elif firing:
        status, summary = "warn", f"{len(firing)} alert(s) firing, none paging: {listing(names)}"
    else:
        status, summary = "pass", "no alert firing"
    summary += f"; {len(resolved)} firing(s) resolved in the last {params.lookback}"
    if suppressed:
        summary += f"; {suppressed} silenced or inhibited"
    return Verdict(status, summary, {
        "firing": firing[:MAX_ROWS], "firing_total": len(firing), "suppressed_total": suppressed,
        "resolved": _interval_rows(resolved), "resolved_total": len(resolved),
        "thresholds": {"page_severities": params.page_severities, "lookback": params.lookback},
    })


# --- noisy alerts ---------------------------------------------------------------------------------------


class NoisyParams(ParamsModel):
    """An alert is noisy with at least min_fires firings in the period and a median duration below
    max_median_duration: it fires often and resolves before anyone could act."""

    min_fires: Annotated[int, Field(ge=1)] = 5
    max_median_duration: Duration = "10m"


@evaluator("noisy_alerts", params_model=NoisyParams, inputs=("alert_samples",),
           window=_since_period_start_minus_a_day)
def noisy_alerts_check(ctx: CheckContext, params: NoisyParams) -> Verdict:
    """Alerts that fire often and resolve fast, from the period's ALERTS samples."""
    stats = alert_stats(_intervals(ctx), ctx.period.start, ctx.period.end)
    noisy = noisy_alerts(stats, min_fires=params.min_fires, max_median_duration=seconds(params.max_median_duration))
    rows = [{"alertname": str(name), "fires": int(r.fires), "median_duration": float(r.median_duration),
             "median_duration_text": duration_text(r.median_duration), "max_duration": float(r.max_duration),
             "total_duration": float(r.total_duration), "series": int(r.series), "noisy": name in noisy.index}
            for name, r in stats.head(MAX_ROWS).iterrows()]
    thresholds = {"min_fires": params.min_fires, "max_median_duration": params.max_median_duration}
    if noisy.empty:
        fired = f"{int(stats['fires'].sum())} firing(s) of {len(stats)} alert(s)" if len(stats) else "no alert fired"
        return Verdict("pass", f"no noisy alert in {ctx.period.label} ({fired})",
                       {"alerts": rows, "alerts_total": len(stats), "thresholds": thresholds})
    described = [f"{name} ({int(r.fires)} fires, median {duration_text(r.median_duration)})"
                 for name, r in noisy.iterrows()]
    return Verdict("warn", f"{len(noisy)} noisy alert(s): {listing(described)}; raise their thresholds or `for`",
                   {"alerts": rows, "alerts_total": len(stats), "noisy": [str(n) for n in noisy.index],
                    "thresholds": thresholds})


# --- rules that never fired -----------------------------------------------------------------------------


class SilentParams(ParamsModel):
    """lookback: how far back a rule must not have fired to be listed (ALERTS retention permitting)."""

    lookback: Duration = "28d"


def _silent_window(params: SilentParams, period: Period, at: int) -> tuple[int, int]:
    return period.end - seconds(params.lookback), period.end


@evaluator("silent_alerts", params_model=SilentParams, inputs=("alert_rules", "alert_samples"),
           window=_silent_window)
def silent_alerts(ctx: CheckContext, params: SilentParams) -> Verdict:
    """Alerting rules that never fired in the lookback: review whether they can still fire."""
    rules = ctx.data("alert_rules")
    if rules.empty:
        raise CheckError("Prometheus reports no alerting rules: the rule files did not load")
    # Only the firings of the lookback count: the run may have fetched ALERTS further back for other items.
    start, end = _silent_window(params, ctx.period, ctx.at)
    intervals = _intervals(ctx)
    unfired = never_fired(rules, intervals[(intervals["end"] > start) & (intervals["start"] < end)])
    total = len(rule_keys(rules))
    evidence = {"never_fired": records(unfired, ("alertname", "rule", "severity")),
                "never_fired_total": len(unfired), "rules_total": total,
                "thresholds": {"lookback": params.lookback}}
    if unfired.empty:
        return Verdict("pass", f"all {total} alerting rules fired at least once in {params.lookback}", evidence)
    return Verdict("warn", f"{len(unfired)} of {total} alerting rules never fired in {params.lookback}: "
                           f"{listing(list(unfired['rule']))}", evidence)


# --- firings without SLO impact -------------------------------------------------------------------------


class ImpactParams(ParamsModel):
    """A firing had an SLO impact when a related SLO had a bad minute in [start - impact_before, end): a minute
    whose error ratio exceeded bad_minute_burn x (1 - target)."""

    impact_before: Duration = "5m"
    bad_minute_burn: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] = 1.0


@evaluator("alerts_without_slo_impact", params_model=ImpactParams, inputs=("alert_samples", "slos", "ledgers"),
           window=_since_period_start_minus_a_day)
def alerts_without_slo_impact(ctx: CheckContext, params: ImpactParams) -> Verdict:
    """Alerts that fired in the period while no related SLO had a bad minute: candidates to demote or drop."""
    intervals = _intervals(ctx)
    chosen = intervals[(intervals["start"] >= ctx.period.start) & (intervals["start"] < ctx.period.end)]
    slos = slo_specs(ctx)
    ledgers = {slo.name: ledger_of(ctx, slo.name) for slo in slos}
    impact = firing_impact(chosen, slos, ledgers, before=seconds(params.impact_before),
                           burn_threshold=params.bad_minute_burn)
    quiet = alerts_without_impact(impact)
    unknown = int((impact["impact"] == "unknown").sum()) if len(impact) else 0
    firings = [{**row, "slos": list(s), "impact": i, "bad_minutes": int(b), "judged_minutes": int(j)}
               for row, s, i, b, j in zip(_interval_rows(impact, limit=len(impact)), impact["slos"],
                                          impact["impact"], impact["bad_minutes"], impact["judged_minutes"],
                                          strict=True)][:MAX_ROWS]
    evidence: dict[str, Any] = {
        "alerts": [{"alertname": str(n), **{k: int(v) for k, v in r.items()}} for n, r in quiet.iterrows()],
        "firings": firings, "firings_total": len(impact), "unknown_total": unknown,
        "thresholds": {"impact_before": params.impact_before, "bad_minute_burn": params.bad_minute_burn},
    }
    if not quiet.empty:
        return Verdict("warn", f"{len(quiet)} alert(s) fired with no SLO impact: " + listing(
            [f"{n} ({int(r.without_impact)} firing(s))" for n, r in quiet.iterrows()]), evidence)
    if unknown:
        return Verdict("warn", f"{unknown} of {len(impact)} firing(s) could not be judged: no ledger data for "
                               "their SLOs", evidence)
    return Verdict("pass", f"every one of {len(impact)} firing(s) in {ctx.period.label} had an SLO impact"
                   if len(impact) else f"no alert fired in {ctx.period.label}", evidence)
