"""Prometheus rules from the SLO specs: SLI recording rules and multiwindow multi-burn-rate alerts.

`python -m gamesre rules` (gamesre/cli.py) writes include/prometheus/slo_rules.yml from `generate_from_files()`,
`--check` verifies the committed file is what the specs generate. Per SLO:

- `slo:sli_error:ratio_rate<W>` for W in 5m, 30m, 1h, 2h, 6h, 1d, 3d: the error ratio the budgeting method
  uses. Occurrences: bad / total events from rate() of the counter selectors. Timeslice methods: the mean
  over W of `slo:timeslice_error:ratio1m`, recorded once a minute (group interval 1m) for minutes with at
  least min_events events: 1/0 for a bad/good slice (timeslices, threshold SLIs) or the minute's bad share
  (ratio-timeslices). No-data minutes are skipped here whatever the no_data policy; SloDataAbsent covers them.
- `slo:sli_events:count<W>`: events in W (occurrences) or evaluated minutes in W (timeslice methods), for
  the minimum-traffic guard.
- One alert per burn tier of policies.yaml: both windows at or above factor x (1 - target), with
  factor = budget_fraction x window / long_window; a calendar month's length comes from
  days_in_month() at the Asia/Seoul instant; every threshold is divided by the peak strictness while the
  UTC time of day is inside the evening peak; and the long window must carry the minimum traffic.
- SloDataAbsent: the SLI's source series have been gone for `absent_data.after`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from gamesre.core.config import display_path
from gamesre.core.durations import parse_duration
from gamesre.core.paths import PROMETHEUS_DIR
from gamesre.slo.selectors import minute_increase
from gamesre.slo.spec import (
    BURN_WINDOWS,
    POLICIES_PATH,
    SLOS_PATH,
    BurnTier,
    Policy,
    RatioSli,
    Selector,
    Slo,
    ThresholdSli,
    load_policies,
    load_slos,
)
from gamesre.slo.windows import MINUTE, nominal_window_seconds

RULES_FILE = "slo_rules.yml"
RULES_PATH = PROMETHEUS_DIR / RULES_FILE
KST_OFFSET_SECONDS = 9 * 3600

ERROR_RATIO = "slo:sli_error:ratio_rate"
EVENTS = "slo:sli_events:count"
TIMESLICE_ERROR = "slo:timeslice_error:ratio1m"


def _exact(value: float) -> Fraction:
    """The decimal a float was written as (0.999 -> 999/1000), so products stay exact."""
    return Fraction(repr(float(value)))


def _lit(value: Fraction | float) -> str:
    """A PromQL number literal, 12 significant digits, no float noise (0.0144, not 0.014400000000000001)."""
    text = f"{float(value):.12g}"
    return text


def _sum_over(selectors: Sequence[Selector], func: str, window: str) -> str:
    return " + ".join(f"sum({func}({s.promql()}[{window}]))" for s in selectors)


def _matcher(slo: Slo) -> str:
    return f'{{slo="{slo.name}"}}'


def _peak_divisor(policy: Policy) -> str | None:
    """A scalar expression equal to the strictness during the evening peak (UTC time of day), else 1."""
    strictness = _exact(policy.evening_peak.strictness)
    if strictness == 1:
        return None
    start, end = ((m - KST_OFFSET_SECONDS // 60) % 1440 for m in policy.evening_peak.minutes_of_day())
    minute_of_day = "(hour() * 60 + minute())"
    if start < end:
        inside = f"({minute_of_day} >= bool {start}) * ({minute_of_day} < bool {end})"
    else:
        inside = f"clamp_max(({minute_of_day} >= bool {start}) + ({minute_of_day} < bool {end}), 1)"
    return f"scalar(1 + {_lit(strictness - 1)} * {inside})"


def burn_threshold_expr(slo: Slo, tier: BurnTier, policy: Policy) -> tuple[str, str]:
    """(PromQL threshold on the error ratio, human description of the burn factor) for one tier."""
    long_seconds = parse_duration(tier.long_window)
    budget = 1 - _exact(slo.target)
    divisor = _peak_divisor(policy)
    if slo.window == "calendar-month":
        per_day = _exact(tier.budget_fraction) * 86400 / long_seconds
        expr = f"{_lit(per_day * budget)} * scalar(days_in_month(vector(time() + {KST_OFFSET_SECONDS})))"
        human = f"{_lit(per_day)}x per day of the calendar month ({_lit(per_day * 28)}x-{_lit(per_day * 31)}x)"
    else:
        factor = _exact(tier.budget_fraction) * nominal_window_seconds(slo.window) / long_seconds
        expr = _lit(factor * budget)
        human = f"{_lit(factor)}x"
    if divisor:
        expr = f"{expr} / {divisor}"
    return expr, human


def ratio_error_expr(sli: RatioSli, window: str) -> str:
    total = f"({_sum_over(sli.total_selectors(), 'rate', window)}) > 0"
    if sli.uses_bad:
        return f"(({_sum_over(sli.bad_selectors(), 'rate', window)}) or vector(0)) / ({total})"
    return f"clamp_min(1 - (({_sum_over(sli.good_selectors(), 'rate', window)}) or vector(0)) / ({total}), 0)"


def _minute_error_expr(slo: Slo) -> str:
    """The minute's error for timeslice methods, only for minutes with at least min_events events."""
    sli = slo.sli
    if isinstance(sli, ThresholdSli):
        return f"1 - ({sli.promql()})"
    total = f"({minute_increase(sli.total_selectors())})"
    if sli.uses_bad:
        bad_share = f"(({minute_increase(sli.bad_selectors())}) or vector(0)) / {total}"
        good_share = f"1 - {bad_share}"
    else:
        good_share = f"(({minute_increase(sli.good_selectors())}) or vector(0)) / {total}"
        bad_share = f"1 - {good_share}"
    if slo.budgeting_method == "timeslices":
        error = f"({good_share} < bool {_lit(slo.timeslice_target or 1.0)})"
    else:
        error = f"clamp({bad_share}, 0, 1)"
    return f"{error} and ({total} >= {slo.min_events})"


def _presence_selectors(slo: Slo) -> list[Selector]:
    """Series that must exist for the SLI to have data (good/bad/part series may legitimately be absent)."""
    sli = slo.sli
    found: list[Selector] = []
    if isinstance(sli, RatioSli):
        found = list(sli.total_selectors())
    else:
        for c in sli.conditions:
            found += [c.selector] if c.kind == "gauge" else list(c.whole)
    unique: dict[str, Selector] = {}
    for sel in found:
        unique.setdefault(sel.promql(), sel)
    return list(unique.values())


def _labels(slo: Slo) -> dict[str, str]:
    return {"slo": slo.name, "service": slo.service}


def recording_group(slo: Slo) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    group: dict[str, Any] = {"name": f"slo-{slo.name}-sli"}
    sel = _matcher(slo)
    if slo.budgeting_method == "occurrences":
        assert isinstance(slo.sli, RatioSli)  # validated: threshold SLIs are timeslices
        for w in BURN_WINDOWS:
            rules.append({"record": f"{ERROR_RATIO}{w}", "expr": ratio_error_expr(slo.sli, w), "labels": _labels(slo)})
        for w in BURN_WINDOWS:
            rules.append(
                {
                    "record": f"{EVENTS}{w}",
                    "expr": _sum_over(slo.sli.total_selectors(), "increase", w),
                    "labels": _labels(slo),
                }
            )
    else:
        group["interval"] = "1m"  # one evaluation per minute slice
        rules.append({"record": TIMESLICE_ERROR, "expr": _minute_error_expr(slo), "labels": _labels(slo)})
        for w in BURN_WINDOWS:
            rules.append(
                {
                    "record": f"{ERROR_RATIO}{w}",
                    "expr": f"avg_over_time({TIMESLICE_ERROR}{sel}[{w}])",
                    "labels": _labels(slo),
                }
            )
        for w in BURN_WINDOWS:
            rules.append(
                {
                    "record": f"{EVENTS}{w}",
                    "expr": f"count_over_time({TIMESLICE_ERROR}{sel}[{w}])",
                    "labels": _labels(slo),
                }
            )
    group["rules"] = rules
    return group


def min_traffic(slo: Slo, tier: BurnTier, policy: Policy) -> int:
    """Events (occurrences) or evaluated minutes (timeslice methods) the long window needs to alert."""
    if slo.budgeting_method == "occurrences":
        return policy.min_traffic.events
    minutes = parse_duration(tier.long_window) // MINUTE
    return math.ceil(policy.min_traffic.timeslice_coverage * minutes)


def alert_name(tier: BurnTier) -> str:
    """SloBurn + the tier name in CamelCase: page_fast -> SloBurnPageFast."""
    return "SloBurn" + "".join(part.capitalize() for part in tier.name.split("_"))


def _runbook(slo: Slo) -> dict[str, str]:
    return {"runbook_url": slo.runbook_url} if slo.runbook_url else {}


def alert_group(slo: Slo, policy: Policy) -> dict[str, Any]:
    sel = _matcher(slo)
    rules: list[dict[str, Any]] = []
    peak = policy.evening_peak
    for tier in policy.burn_alerts:
        threshold, factor = burn_threshold_expr(slo, tier, policy)
        expr = (
            "(\n"
            f"  {ERROR_RATIO}{tier.long_window}{sel} >= {threshold}\n"
            "and\n"
            f"  {ERROR_RATIO}{tier.short_window}{sel} >= {threshold}\n"
            ")\n"
            "and\n"
            f"{EVENTS}{tier.long_window}{sel} >= {min_traffic(slo, tier, policy)}\n"
        )
        rules.append(
            {
                "alert": alert_name(tier),
                "expr": expr,
                "labels": {
                    "severity": tier.severity,
                    **_labels(slo),
                    "team": slo.owner,
                    "tier": tier.name,
                    "long_window": tier.long_window,
                    "short_window": tier.short_window,
                    **_runbook(slo),
                },
                "annotations": {
                    "summary": (
                        f"SLO {slo.name}: error budget burning at {factor} or more "
                        f"over {tier.long_window} and {tier.short_window}"
                    ),
                    "description": (
                        f"The {slo.name} SLO ({_lit(slo.target * 100)}% over {slo.window}, "
                        f"{slo.budgeting_method}) burns its error budget at {factor} or more over {tier.long_window}, "
                        f"a pace that spends {_lit(tier.budget_fraction * 100)}% of the budget in {tier.long_window}, "
                        f"and {tier.short_window} confirms it is still burning. Thresholds are divided by "
                        f"{_lit(peak.strictness)} during the evening peak {peak.start}-{peak.end} {peak.timezone}; "
                        f"the value is the {tier.long_window} error ratio."
                    ),
                    **_runbook(slo),
                },
            }
        )
    after = policy.absent_data.after
    absent = " or ".join(f"absent_over_time({s.promql()}[{after}])" for s in _presence_selectors(slo))
    rules.append(
        {
            "alert": "SloDataAbsent",
            "expr": absent,
            "for": policy.absent_data.for_,
            "labels": {"severity": policy.absent_data.severity, **_labels(slo), "team": slo.owner, **_runbook(slo)},
            "annotations": {
                "summary": f"SLO {slo.name}: its source series have been absent for {after}",
                "description": (
                    f"No samples of the series the {slo.name} SLI is computed from for {after}: the SLO cannot be "
                    "evaluated and its budget state turns no_data (blocking deploys and game-days)."
                ),
                **_runbook(slo),
            },
        }
    )
    return {"name": f"slo-{slo.name}-alerts", "rules": rules}


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_presenter)


def header(sources: Iterable[str]) -> str:
    return (
        "# GENERATED FILE - DO NOT EDIT.\n"
        "# Generated by `python -m gamesre rules` (plugins/gamesre/slo/rules.py) from\n"
        + "".join(f"#   {s}\n" for s in sources)
        + "# Change the specs, then regenerate: PYTHONPATH=plugins python -m gamesre rules\n"
        "# `python -m gamesre rules --check` fails when this file is not what the specs generate.\n"
        "# Definitions: docs/slo.md.\n"
    )


def generate(slos: Iterable[Slo], policy: Policy, sources: Sequence[str] = ()) -> str:
    """The rules file's text: deterministic for the same specs (no timestamps, file order kept)."""
    groups: list[dict[str, Any]] = []
    for slo in slos:
        groups.append(recording_group(slo))
        groups.append(alert_group(slo, policy))
    body = yaml.dump({"groups": groups}, Dumper=_Dumper, sort_keys=False, width=10_000, allow_unicode=True)
    return header(sources) + body


def generate_from_files(slos_path: Path = SLOS_PATH, policies_path: Path = POLICIES_PATH) -> str:
    slos = load_slos(slos_path)
    policy = load_policies(policies_path)
    sources = [display_path(slos_path), display_path(policies_path), "include/config/metrics.yaml"]
    return generate(slos, policy, sources)

