"""Steady-state probes, the abort rules, the resilience score and the verdict of one experiment. Pure.

A probe is a PromQL instant query with a tolerance (gamesre.chaos.catalog.Tolerance). The monitor polls every
probe once per probe interval while the fault is injected; `MonitorState.observe` takes one poll and says
whether the experiment must stop:

- kill switch     the global kill switch is on: abort at once;
- consecutive     a probe failed `consecutive_failures` polls in a row (no data counts as a failure when the
                  experiment's no_data policy is `abort`, and breaks nothing and confirms nothing when `ignore`);
- burn_rate       an SLO of `burn_slos` burns its budget at `burn_rate` x or faster over `burn_window`;
- duration        the fault ran its whole duration: the monitor ends `completed`.

Score: per probe, the share of judged polls that passed (no-data polls count as failed under `abort`, are left
out under `ignore`); the experiment's resilience score is Σ weight x probe success % / Σ weight (0-100).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gamesre.chaos.catalog import AbortRules, Probe, Tolerance
from gamesre.slo.rules import ratio_error_expr
from gamesre.slo.spec import RatioSli, Slo

VERDICTS = ("pass", "fail", "aborted", "error", "invalid", "refused", "skipped", "dry_run")


@dataclass(frozen=True)
class ProbeReading:
    """One probe at one instant: its value (None: no data), whether it passed (None: not judged) and why."""

    name: str
    at: float
    value: float | None
    passed: bool | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def judge(tolerance: Tolerance, value: float | None, baseline: float | None = None) -> tuple[bool | None, str]:
    """(passed, reason) of a value under a tolerance; (None, why) when there is nothing to judge."""
    value = _finite(value)
    if value is None:
        return None, "no data"
    if tolerance.min is not None and value < tolerance.min:
        return False, f"{value:.6g} is below {tolerance.min:g}"
    if tolerance.max is not None and value > tolerance.max:
        return False, f"{value:.6g} is above {tolerance.max:g}"
    if tolerance.type == "range":
        return True, f"{value:.6g} within {tolerance.describe()}"
    assert tolerance.worse is not None and tolerance.max_change is not None
    baseline = _finite(baseline)
    if baseline is None:
        return None, "no baseline value was measured before injection"
    worse_by = (value - baseline) if tolerance.worse == "higher" else (baseline - value)
    scale = abs(baseline)
    if scale == 0:
        change = 0.0 if worse_by <= 0 else math.inf
    else:
        change = worse_by / scale
    if change > tolerance.max_change:
        return False, (f"{value:.6g} is {change:.0%} {tolerance.worse} than the baseline {baseline:.6g} (at most "
                       f"{tolerance.max_change:.0%})")
    return True, f"{value:.6g} vs baseline {baseline:.6g}: within {tolerance.max_change:.0%}"


def read_probes(probes: Sequence[Probe], values: Mapping[str, float | None], at: float,
                baselines: Mapping[str, float | None] | None = None,
                errors: Mapping[str, str] | None = None) -> list[ProbeReading]:
    """Judge every probe's value; a query error is no data, with the error as the reason."""
    readings = []
    for probe in probes:
        if errors and probe.name in errors:
            readings.append(ProbeReading(probe.name, at, None, None, f"no data: {errors[probe.name]}"))
            continue
        value = _finite(values.get(probe.name))
        passed, reason = judge(probe.tolerance, value, (baselines or {}).get(probe.name))
        readings.append(ProbeReading(probe.name, at, value, passed, reason))
    return readings


def steady_state(readings: Sequence[ProbeReading]) -> tuple[bool, str]:
    """Whether the steady state holds at one instant: every probe passed (no data is not a pass)."""
    bad = [r for r in readings if r.passed is not True]
    if not bad:
        return True, "every probe within tolerance"
    return False, "; ".join(f"{r.name}: {r.reason}" for r in bad)


@dataclass(frozen=True)
class Decision:
    outcome: str  # completed | aborted
    rule: str  # duration | kill_switch | consecutive_failures | no_data | burn_rate
    reason: str
    at: float


@dataclass
class MonitorState:
    """What the monitor has seen so far; JSON-safe (`to_dict`/`from_dict`) so a trigger can resume it."""

    started_at: float
    duration_s: float
    samples: dict[str, list[list[Any]]] = field(default_factory=dict)  # probe -> [[at, value, passed], ...]
    streak: dict[str, int] = field(default_factory=dict)  # consecutive failing polls per probe
    burns: list[dict[str, Any]] = field(default_factory=list)  # [{at, slo, burn}]
    polls: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> MonitorState:
        return cls(**{k: doc[k] for k in ("started_at", "duration_s", "samples", "streak", "burns", "polls")})

    def observe(self, readings: Sequence[ProbeReading], rules: AbortRules, *, at: float,
                burn_rates: Mapping[str, float | None] | None = None,
                kill_switch: bool | str = False) -> Decision | None:
        """Record one poll; the decision to stop, or None to keep watching. `kill_switch`: on (True, or the reason it
        was turned on), or off."""
        self.polls += 1
        failing: list[tuple[str, str, bool]] = []  # (probe, reason, all of the streak was no data)
        for r in readings:
            self.samples.setdefault(r.name, []).append([r.at, r.value, r.passed])
            counts = r.passed is False or (r.passed is None and rules.no_data == "abort")
            if r.passed is None and rules.no_data == "ignore":
                continue  # neither breaks nor resets the streak
            self.streak[r.name] = self.streak.get(r.name, 0) + 1 if counts else 0
            if self.streak[r.name] >= rules.consecutive_failures:
                recent = self.samples[r.name][-rules.consecutive_failures:]
                failing.append((r.name, r.reason, all(s[2] is None for s in recent)))
        for slo, burn in (burn_rates or {}).items():
            self.burns.append({"at": at, "slo": slo, "burn": burn})
        if kill_switch:
            return Decision("aborted", "kill_switch", kill_switch if isinstance(kill_switch, str)
                            else "the chaos kill switch was turned on", at)
        if failing:
            name, reason, no_data = failing[0]
            rule = "no_data" if no_data else "consecutive_failures"
            what = "had no data" if no_data else "failed"
            return Decision("aborted", rule, f"probe {name} {what} {rules.consecutive_failures} polls in a row "
                            f"(last: {reason})", at)
        if rules.burn_rate is not None:
            over = {slo: b for slo, b in (burn_rates or {}).items() if b is not None and b >= rules.burn_rate}
            if over:
                slo, burn = max(over.items(), key=lambda kv: kv[1])
                return Decision("aborted", "burn_rate", f"SLO {slo} burns its error budget at {burn:.1f}x over "
                                f"{rules.burn_window} (abort at {rules.burn_rate:g}x)", at)
        if at - self.started_at >= self.duration_s:
            return Decision("completed", "duration", f"the fault ran its whole duration ({self.duration_s:g}s) "
                            "without breaking an abort rule", at)
        return None


def probe_success(samples: Sequence[Sequence[Any]], no_data: str) -> float | None:
    """Percent of the judged polls that passed; None when no poll was judged."""
    judged = [s for s in samples if s[2] is not None or no_data == "abort"]
    if not judged:
        return None
    return 100.0 * sum(1 for s in judged if s[2] is True) / len(judged)


def resilience_score(probes: Sequence[Probe], samples: Mapping[str, Sequence[Sequence[Any]]],
                     no_data: str) -> tuple[float | None, dict[str, float | None]]:
    """(Σ weight x probe success % / Σ weight, per-probe success %); probes never judged are left out."""
    per_probe = {p.name: probe_success(samples.get(p.name, ()), no_data) for p in probes}
    weighted = [(p.weight, per_probe[p.name]) for p in probes if per_probe[p.name] is not None]
    if not weighted:
        return None, per_probe
    total = sum(w for w, _ in weighted)
    return sum(w * float(pct) for w, pct in weighted if pct is not None) / total, per_probe


def burn_query(error_ratio_expr: str, target: float) -> str:
    """PromQL for the burn rate of an SLO: its error ratio over the window divided by its error budget."""
    return f"({error_ratio_expr}) / {1 - target:.12g}"


def burn_queries(slos: Iterable[Slo], service: str, names: Sequence[str], window: str) -> dict[str, str]:
    """The burn-rate query over `window` of each SLO of `names` that belongs to `service` and has a ratio SLI."""
    return {slo.name: burn_query(ratio_error_expr(slo.sli, window), slo.target) for slo in slos
            if slo.name in names and slo.service == service and isinstance(slo.sli, RatioSli)}


def verdict(*, refused: str | None = None, dry_run: bool = False, skipped: str | None = None,
            error: str | None = None, decision: Mapping[str, Any] | None = None,
            recovered: bool | None = None, recovery_detail: str = "",
            steady_after: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """(verdict, reason) of one experiment run from what happened, in order of precedence.

    refused    a safety gate said no: nothing was injected
    dry_run    the run only checked the gates and the steady state
    skipped    the steady state did not hold before injection: nothing was injected
    error      injection, monitoring or recovery failed (a fault that is still injected is always an error)
    aborted    an abort rule stopped the fault early (the hypothesis broke, or the kill switch)
    fail       the fault ran its course but the steady state did not return within the recovery time
    pass       the steady state held, the fault was removed and the steady state returned in time
    """
    if refused:
        return "refused", refused
    if dry_run:
        return "dry_run", "dry run: gates and steady state checked, nothing injected"
    if skipped:
        return "skipped", f"the steady state did not hold before injection, nothing injected: {skipped}"
    if recovered is False:
        return "error", f"recovery not confirmed, the fault may still be injected: {recovery_detail}"
    if error:
        return "error", error
    if decision is None:
        return "error", "the monitor gave no decision"
    if decision.get("outcome") == "aborted":
        return "aborted", f"aborted ({decision.get('rule')}): {decision.get('reason')}"
    if steady_after is not None and not steady_after.get("passed"):
        return "fail", (f"the steady state did not return within {steady_after.get('recovery_time_s', 0):g}s of "
                        f"recovery: {steady_after.get('reason', '')}")
    if steady_after is None:
        return "error", "the steady state after recovery was not checked"
    return "pass", ("the steady state held through the fault and returned "
                    f"{steady_after.get('recovered_within_s', 0):.0f}s after recovery")
