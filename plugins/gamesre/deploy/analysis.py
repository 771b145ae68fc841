"""Canary analysis: is the new version worse than the baseline on the service's SLIs? Pure statistics.

Every SLI the service's SLOs use is judged as counts of bad and total events of the candidate (the new
version) and of the baseline (the version it replaces), over the same span: both counted from the same
instant by `sum(increase(...[span]))` at the same evaluation time.

Per SLI, with budget = 1 - target and B the configured regression burn (divided by the evening-peak
strictness when the stage is the strictest one and the peak holds):

    p0 = max(baseline bad ratio, budget)       H0: the candidate is as good as the baseline or the SLO
    p1 = p0 + (B - 1) x budget                 H1: it burns the budget B times faster on top of that
    LLR = bad x ln(p1/p0) + good x ln((1-p1)/(1-p0))      (Wald's sequential probability ratio test)

    fail          LLR >= ln((1-beta)/alpha): by Wald's bound a version at p0 is rolled back with
                  probability at most alpha by this test, however often it is polled
    fast abort    the same test against H1' "it alone burns the budget F = 14.4 times faster"
                  (p1' = p0 + (F - 1) x budget) crosses the same bound: a clear breach has a larger log
                  ratio per bad event, so it needs fewer of them and rolls back at once. With both tests a
                  version at p0 is rolled back with probability at most 2 x alpha (union bound)
    pass          at least min_samples candidate events, and LLR <= ln(beta/(1-alpha)) (Wald's acceptance)
                  or LLR <= 0 (the evidence favours H0)
    inconclusive  fewer than min_samples events, no data, or a query error: keep observing. A fail needs no
                  minimum (a clear breach is clear on few events); a pass always needs min_samples
    observing     enough events, 0 < LLR < the bound: keep observing

A step passes when every SLI passes after min_duration, and fails at once when any SLI fails. At max_duration
the test is truncated: SLIs still `observing` (enough events, no rejection) pass, so one stray bad event on
low traffic is not a rollback; but an SLI without min_samples events or without data has given no evidence,
and the step ends `timed_out`, which rolls back: never promote without evidence. The counts run from the
start of the stage, so evidence builds up over the steps and a moderate regression keeps adding to the LLR
at every weight.
SLIs that cannot be split by version (threshold SLIs over the whole fleet, e.g. concurrent sessions) are
listed as `not_judged` with the reason.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from gamesre.slo.selectors import Selector
from gamesre.slo.spec import Slo

Decision = Literal["pass", "fail", "inconclusive"]
StepDecision = Literal["pass", "fail", "timed_out", "continue"]


@dataclass(frozen=True)
class Thresholds:
    """The analysis settings of one step, after the peak strictness is applied."""

    min_samples: int
    alpha: float
    beta: float
    regression_burn: float
    fast_abort_burn: float
    min_duration_s: float
    max_duration_s: float
    interval_s: float
    strictness: float = 1.0  # the evening-peak strictness applied (1.0: none)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, strictness: float = 1.0) -> Thresholds:
        """From deploy.yaml's analysis settings (AnalysisSettings); burns divided by the strictness."""
        from gamesre.core.durations import parse_seconds

        return cls(
            min_samples=int(settings["min_samples"]), alpha=float(settings["alpha"]), beta=float(settings["beta"]),
            regression_burn=max(1.0 + 1e-9, float(settings["regression_burn"]) / strictness),
            fast_abort_burn=max(1.0 + 1e-9, float(settings["fast_abort_burn"]) / strictness),
            min_duration_s=parse_seconds(settings["min_duration"]),
            max_duration_s=parse_seconds(settings["max_duration"]),
            interval_s=parse_seconds(settings["interval"]), strictness=strictness)

    @property
    def upper(self) -> float:
        """Wald's rejection bound ln((1-beta)/alpha)."""
        return math.log((1 - self.beta) / self.alpha)

    @property
    def lower(self) -> float:
        """Wald's acceptance bound ln(beta/(1-alpha))."""
        return math.log(self.beta / (1 - self.alpha))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sprt_upper": self.upper, "sprt_lower": self.lower}


@dataclass(frozen=True)
class SliSpec:
    """One SLI to judge: PromQL selectors of its bad (or good) and total events, and its SLO target."""

    slo: str
    target: float
    total: tuple[str, ...]  # PromQL selectors (without the cohort matchers)
    good: tuple[str, ...] = ()  # either good or bad is given
    bad: tuple[str, ...] = ()

    @property
    def budget(self) -> float:
        return 1.0 - self.target

    def to_dict(self) -> dict[str, Any]:
        return {"slo": self.slo, "target": self.target, "total": list(self.total), "good": list(self.good),
                "bad": list(self.bad)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SliSpec:
        return cls(raw["slo"], float(raw["target"]), tuple(raw["total"]), tuple(raw.get("good", ())),
                   tuple(raw.get("bad", ())))


def slis_for(slos: Iterable[Slo]) -> tuple[list[SliSpec], list[dict[str, str]]]:
    """(the SLIs that can be judged per version, the ones that cannot with the reason)."""
    judged: list[SliSpec] = []
    skipped: list[dict[str, str]] = []
    for slo in slos:
        sli = slo.sli
        if sli.kind != "ratio":
            skipped.append({"slo": slo.name, "decision": "not_judged",
                            "reason": f"{sli.kind} SLI over the whole fleet (e.g. capacity): it has no per-version "
                                      "event counts to compare"})
            continue
        total = tuple(s.promql() for s in sli.total_selectors())
        if sli.uses_bad:
            judged.append(SliSpec(slo.name, slo.target, total, bad=tuple(s.promql() for s in sli.bad_selectors())))
        else:
            judged.append(SliSpec(slo.name, slo.target, total, good=tuple(s.promql() for s in sli.good_selectors())))
    return judged, skipped


def with_matchers(selector: str, cohort: Mapping[str, str]) -> str:
    """A PromQL selector `m{a="b"}` with the cohort's exact matchers added (validated label names)."""
    if not cohort:
        return selector
    extra = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(cohort.items()))
    for label in cohort:
        Selector(metric="x", matchers={label: "v"})  # raises for an invalid label name
    if selector.endswith("}"):
        inner = selector[selector.index("{") + 1:-1]
        return f"{selector[:selector.index('{')]}{{{inner + ',' if inner else ''}{extra}}}"
    return f"{selector}{{{extra}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def count_query(selectors: Sequence[str], cohort: Mapping[str, str], span_s: int) -> str:
    """Events the cohort's counters gained over the last span_s seconds (counter resets handled)."""
    span = max(1, math.ceil(span_s))
    return " + ".join(f"sum(increase({with_matchers(s, cohort)}[{span}s]))" for s in selectors)


def sli_queries(sli: SliSpec, cohort: Mapping[str, str], span_s: int) -> dict[str, str]:
    """{"total": ..., "good"|"bad": ...} PromQL for one cohort."""
    out = {"total": count_query(sli.total, cohort, span_s)}
    if sli.bad:
        out["bad"] = count_query(sli.bad, cohort, span_s)
    else:
        out["good"] = count_query(sli.good, cohort, span_s)
    return out


@dataclass(frozen=True)
class Counts:
    total: float
    bad: float

    @classmethod
    def from_values(cls, values: Mapping[str, float | None]) -> Counts | None:
        """Counts from the query results; None when a needed value is missing (no data).

        An absent bad series next to a present total is 0 bad events: error counters often appear only at the
        first error. An absent good series is not read as "everything failed": that stays no data.
        """
        total = values.get("total")
        if total is None:
            return None
        bad: float | None
        if "bad" in values:
            bad = values["bad"] if values["bad"] is not None else 0.0
        else:
            good = values.get("good")
            bad = None if good is None else total - good
        if bad is None:
            return None
        total = max(0.0, float(total))
        return cls(total, min(total, max(0.0, float(bad))))

    @property
    def ratio(self) -> float | None:
        return self.bad / self.total if self.total > 0 else None


def llr(bad: float, total: float, p0: float, p1: float) -> float:
    """Wald's log-likelihood ratio of H1 (bad ratio p1) against H0 (p0) for binomial counts."""
    good = max(0.0, total - bad)
    return bad * math.log(p1 / p0) + good * math.log((1 - p1) / (1 - p0))


def hypotheses(budget: float, baseline_ratio: float | None, regression_burn: float) -> tuple[float, float]:
    """(p0, p1) as in the module docstring; p1 is capped below 1."""
    p0 = max(budget, baseline_ratio or 0.0)
    p0 = min(p0, 0.98)
    p1 = min(p0 + (regression_burn - 1.0) * budget, (1 + p0) / 2, 0.99)
    return p0, max(p1, p0 * 1.0001 + 1e-12)


@dataclass(frozen=True)
class SliVerdict:
    slo: str
    decision: Decision
    rule: str  # sprt_reject | fast_abort | sprt_accept | evidence_favours_h0 | min_samples | no_data | observing
    reason: str
    candidate: dict[str, float | None]
    baseline: dict[str, float | None] | None
    statistic: dict[str, float]
    queries: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.3%}"


def judge_sli(sli: SliSpec, candidate: Counts | None, baseline: Counts | None, t: Thresholds, *,
              queries: dict[str, dict[str, str]] | None = None, error: str | None = None) -> SliVerdict:
    """The verdict of one SLI on the counts so far (see the module docstring)."""
    queries = queries or {}
    base_doc = None if baseline is None else {"total": baseline.total, "bad": baseline.bad, "ratio": baseline.ratio}
    if error is not None or candidate is None:
        why = error or "no data for the new version"
        return SliVerdict(sli.slo, "inconclusive", "no_data", f"{why}: keep observing", {}, base_doc, {}, queries)
    cand_doc = {"total": candidate.total, "bad": candidate.bad, "ratio": candidate.ratio}
    baseline_ratio = baseline.ratio if baseline is not None and baseline.total >= t.min_samples else None
    p0, p1 = hypotheses(sli.budget, baseline_ratio, t.regression_burn)
    _, p1_fast = hypotheses(sli.budget, baseline_ratio, t.fast_abort_burn)
    stat = llr(candidate.bad, candidate.total, p0, p1)
    fast = llr(candidate.bad, candidate.total, p0, p1_fast)
    statistic = {"p0": p0, "p1": p1, "llr": stat, "p1_fast": p1_fast, "llr_fast": fast, "sprt_upper": t.upper,
                 "sprt_lower": t.lower, "burn_rate": (candidate.ratio or 0.0) / sli.budget,
                 "min_samples": float(t.min_samples)}

    def verdict(decision: Decision, rule: str, reason: str) -> SliVerdict:
        return SliVerdict(sli.slo, decision, rule, reason, cand_doc, base_doc, statistic, queries)

    ratio_text = (f"{_fmt(candidate.ratio)} bad of {candidate.total:.0f} (baseline {_fmt(baseline_ratio)}, "
                  f"budget {_fmt(sli.budget)})")
    if fast >= t.upper:
        return verdict("fail", "fast_abort", f"{ratio_text}: a clear breach, it alone burns the budget at "
                       f"{t.fast_abort_burn:.1f}x or more (LLR {fast:.2f} >= {t.upper:.2f} for H1 {_fmt(p1_fast)} "
                       f"over H0 {_fmt(p0)})")
    if stat >= t.upper:
        return verdict("fail", "sprt_reject", f"{ratio_text}: LLR {stat:.2f} >= {t.upper:.2f}, a regression "
                       f"(H1 bad ratio {_fmt(p1)} over H0 {_fmt(p0)})")
    if candidate.total < t.min_samples:
        return verdict("inconclusive", "min_samples",
                       f"{candidate.total:.0f} of {t.min_samples} events needed: low traffic is not failure, "
                       "keep observing")
    if stat <= t.lower:
        return verdict("pass", "sprt_accept", f"{ratio_text}: LLR {stat:.2f} <= {t.lower:.2f}, as good as H0")
    if stat <= 0:
        return verdict("pass", "evidence_favours_h0", f"{ratio_text}: LLR {stat:.2f} <= 0, the evidence favours "
                       f"H0 ({_fmt(p0)}) over H1 ({_fmt(p1)})")
    return verdict("inconclusive", "observing", f"{ratio_text}: LLR {stat:.2f} between 0 and {t.upper:.2f}, "
                   "keep observing")


@dataclass(frozen=True)
class StepVerdict:
    decision: StepDecision
    reason: str
    elapsed_s: float
    slis: tuple[SliVerdict, ...]
    not_judged: tuple[dict[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "reason": self.reason, "elapsed_s": self.elapsed_s,
                "slis": [s.to_dict() for s in self.slis], "not_judged": list(self.not_judged)}


def judge_step(verdicts: Sequence[SliVerdict], elapsed_s: float, t: Thresholds,
               not_judged: Sequence[dict[str, str]] = ()) -> StepVerdict:
    """Combine the SLI verdicts of one poll into the step's decision."""
    failed = [v for v in verdicts if v.decision == "fail"]
    if failed:
        return StepVerdict("fail", "; ".join(f"{v.slo}: {v.reason}" for v in failed), elapsed_s, tuple(verdicts),
                           tuple(not_judged))
    if not verdicts:
        reason = "no SLI of the service can be judged per version: no evidence to promote on"
        decision: StepDecision = "timed_out" if elapsed_s >= t.max_duration_s else "continue"
        return StepVerdict(decision, reason, elapsed_s, (), tuple(not_judged))
    pending = [v for v in verdicts if v.decision != "pass"]
    if not pending and elapsed_s >= t.min_duration_s:
        return StepVerdict("pass", "every SLI passed: " + "; ".join(f"{v.slo}: {v.reason}" for v in verdicts),
                           elapsed_s, tuple(verdicts), tuple(not_judged))
    if elapsed_s >= t.max_duration_s:
        # The truncated test: at the deadline an SLI with enough events whose test did not reject (0 < LLR <
        # the bound) passes; one without enough events or data has given no evidence, and that rolls back.
        blind = [v for v in pending if v.rule != "observing"]
        if not blind:
            return StepVerdict("pass", f"no regression by the {t.max_duration_s:.0f}s deadline (the sequential test "
                               "did not reject, with enough events): " +
                               "; ".join(f"{v.slo}: {v.reason}" for v in verdicts),
                               elapsed_s, tuple(verdicts), tuple(not_judged))
        reason = "; ".join(f"{v.slo}: {v.reason}" for v in blind)
        return StepVerdict("timed_out", f"still no evidence at the {t.max_duration_s:.0f}s deadline: {reason}",
                           elapsed_s, tuple(verdicts), tuple(not_judged))
    waiting = "; ".join(f"{v.slo}: {v.rule}" for v in pending) or f"min_duration {t.min_duration_s:.0f}s"
    return StepVerdict("continue", f"observing ({waiting})", elapsed_s, tuple(verdicts), tuple(not_judged))
