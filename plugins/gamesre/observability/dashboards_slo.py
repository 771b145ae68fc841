"""PromQL and panels derived from one SLO of include/config/slos.yaml: its SLI over a window, budget remaining,
burn rates against the policy's alert tiers, and the 24 h trend.

Occurrence SLOs are computed from their own counter selectors (so history shows too); timeslice SLOs
(timeslices, ratio-timeslices) from the per-minute recording rule `slo:timeslice_error:ratio1m`, and burn rates
from the generated `slo:sli_error:ratio_rate<window>` recording rules (include/prometheus/slo_rules.yml).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from gamesre.core.durations import parse_duration
from gamesre.observability.dashboards_panels import (
    GREEN,
    ORANGE,
    RED,
    PanelSpec,
    Query,
    Series,
    number,
    stat_panel,
    steps,
    threshold_override,
    timeseries_panel,
)
from gamesre.slo.rules import ERROR_RATIO, TIMESLICE_ERROR
from gamesre.slo.selectors import Selector
from gamesre.slo.spec import Policy, RatioSli, Slo
from gamesre.slo.windows import ROLLING_DAYS

# Grafana's relative panel time for each SLO window: the last N days, or this month so far (the dashboard's
# timezone, Asia/Seoul, decides where the month starts).
PANEL_TIME = {"rolling-28d": "28d", "rolling-30d": "30d", "calendar-month": "now/M"}
WINDOW_TITLE = {"rolling-28d": "28 d", "rolling-30d": "30 d", "calendar-month": "month to date"}
NOMINAL_DAYS = {**ROLLING_DAYS, "calendar-month": 30}  # burn factors of calendar months drawn for 30 days


def percent(value: float) -> str:
    return f"{float(value) * 100:.12g}%"


def _sum(series: Series, selectors: Sequence[Selector], func: str, window: str) -> str:
    terms = [f"sum({func}({series(s.metric, s.matchers, s.matchers_regex)}[{window}]))" for s in selectors]
    return " + ".join(terms)


def error_over(slo: Slo, series: Series, window: str) -> str:
    """The SLO's error share over `window` (a PromQL duration or Grafana's `$__range`), as the SLO counts it."""
    if slo.budgeting_method != "occurrences" or not isinstance(slo.sli, RatioSli):
        return f"avg_over_time({series(TIMESLICE_ERROR, {'slo': slo.name})}[{window}])"
    total = f"({_sum(series, slo.sli.total_selectors(), 'increase', window)})"
    if slo.sli.uses_bad:
        return f"(({_sum(series, slo.sli.bad_selectors(), 'increase', window)}) or vector(0)) / {total}"
    return f"clamp_min(1 - (({_sum(series, slo.sli.good_selectors(), 'increase', window)}) or vector(0)) / {total}, 0)"


def ratio_error(sli: RatioSli, series: Series, window: str, regex: Mapping[str, str] | None = None,
                by: str | None = None) -> str:
    """A ratio SLI's error share over the trailing `window` from its counters (optionally filtered by extra regex
    matchers, and per value of the label `by`)."""
    grouping = f" by ({by})" if by else ""

    def total(selectors: Sequence[Selector]) -> str:
        return " + ".join(f"sum{grouping}(rate({series(x.metric, x.matchers, {**x.matchers_regex, **(regex or {})})}"
                          f"[{window}]))" for x in selectors)

    events = f"(({total(sli.total_selectors())}) > 0)"
    if sli.uses_bad:
        return f"(({total(sli.bad_selectors())}) or {events} * 0) / {events}"
    return f"clamp_min(1 - (({total(sli.good_selectors())}) or {events} * 0) / {events}, 0)"


def error_rate_now(slo: Slo, series: Series, window: str = "1h") -> str:
    """The SLO's error share over the trailing `window` at every point of a graph (for the trend lines):
    occurrence SLOs from their counters (history shows too), timeslice SLOs from their recording rule."""
    if slo.budgeting_method != "occurrences" or not isinstance(slo.sli, RatioSli):
        return series(f"{ERROR_RATIO}{window}", {"slo": slo.name})
    return ratio_error(slo.sli, series, window)


def burn_windows(policy: Policy) -> list[str]:
    """The long windows of the policy's burn tiers, shortest first (each has a recording rule)."""
    return sorted({t.long_window for t in policy.burn_alerts}, key=parse_duration)


def burn_factor(slo: Slo, policy: Policy, window: str) -> float | None:
    """The highest alerting burn rate whose long window is `window` (the line a page or ticket starts at)."""
    window_seconds = NOMINAL_DAYS[slo.window] * 86400
    factors = [t.factor(window_seconds) for t in policy.burn_alerts if t.long_window == window]
    return max(factors) if factors else None


def burn_rate_expr(slo: Slo, series: Series, window: str) -> str:
    return f"{series(f'{ERROR_RATIO}{window}', {'slo': slo.name})} / {number(slo.error_budget)}"


def sli_thresholds(slo: Slo) -> list[tuple[float | None, str]]:
    return [(None, RED), (slo.target, GREEN)]


def remaining_thresholds(policy: Policy) -> list[tuple[float | None, str]]:
    """Red below the rollback line, orange below the deploy-freeze line (shares of the budget consumed)."""
    return [(None, RED), (1 - policy.budget.rollback, ORANGE), (1 - policy.budget.deploy_freeze, GREEN)]


def slo_summary(slo: Slo) -> str:
    return (f"{slo.description.strip()} Target {percent(slo.target)} over {slo.window} ({slo.budgeting_method}); "
            f"error budget {percent(slo.error_budget)}. Source: include/config/slos.yaml, SLO {slo.name}.")


def slo_panels(slo: Slo, policy: Policy, series: Series) -> list[PanelSpec]:
    """The SLO's row: SLI and budget remaining over its window, burn rates, and the 24 h trend."""
    when = WINDOW_TITLE[slo.window]
    panel_time = PANEL_TIME[slo.window]
    error = error_over(slo, series, "$__range")
    panels = [
        stat_panel(f"{slo.name}: SLI, {when}", f"{slo_summary(slo)} Green at or above the target.",
                   [Query(f"1 - ({error})", "SLI", instant=True)], unit="percentunit", decimals=3,
                   thresholds=steps(*sli_thresholds(slo)), time_from=panel_time, width=4),
        stat_panel(f"{slo.name}: error budget remaining, {when}",
                   f"Share of the {percent(slo.error_budget)} error budget left over {slo.window}: "
                   f"1 - error / budget. Orange once {percent(policy.budget.deploy_freeze)} is spent (deploy freeze), "
                   f"red once {percent(policy.budget.rollback)} is spent (rollback), negative when overspent.",
                   [Query(f"1 - ({error}) / {number(slo.error_budget)}", "budget remaining", instant=True)],
                   unit="percentunit", decimals=1, thresholds=steps(*remaining_thresholds(policy)),
                   time_from=panel_time, width=4),
    ]
    windows = burn_windows(policy)
    overrides = []
    for window in windows:
        factor = burn_factor(slo, policy, window)
        if factor is not None:
            overrides.append(threshold_override(f"{window} burn rate", [(None, GREEN), (factor, RED)]))
    panels.append(timeseries_panel(
        f"{slo.name}: error budget burn rate",
        "Error ratio over each alert window divided by the error budget (1 = spending exactly the budget over "
        "the SLO window). Red lines: the burn rate at which each window's alert tier fires "
        "(include/config/policies.yaml; divided by the evening-peak strictness 18:00-22:00 KST).",
        [Query(burn_rate_expr(slo, series, w), f"{w} burn rate") for w in windows],
        unit="x", min_value=0, overrides=overrides, width=8))
    panels.append(timeseries_panel(
        f"{slo.name}: SLI, 24 h trend",
        f"The SLI over the trailing hour at each point of the last 24 h; the line is the {percent(slo.target)} target.",
        [Query(f"1 - ({error_rate_now(slo, series)})", "SLI (1 h)")],
        unit="percentunit", thresholds=steps(*sli_thresholds(slo)), width=8,
        time_from="24h"))
    return panels
