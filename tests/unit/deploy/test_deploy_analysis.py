"""Canary analysis: the SPRT math (hypothesis), SLI and step verdicts, PromQL, and a seeded simulation."""
from __future__ import annotations

import json
import math
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gamesre.deploy.analysis import (
    Counts,
    SliSpec,
    SliVerdict,
    Thresholds,
    count_query,
    hypotheses,
    judge_sli,
    judge_step,
    llr,
    sli_queries,
    slis_for,
    with_matchers,
)
from gamesre.deploy.config import load_deploy_config
from gamesre.slo.spec import load_slos

SETTINGS = load_deploy_config().analysis.to_dict()
T = Thresholds.from_settings(SETTINGS)  # shipped: min_samples 40, alpha 0.01, beta 0.05, B 6, F 14.4, 30s..240s
PEAK = Thresholds.from_settings(SETTINGS, strictness=1.2)
AVAILABILITY = SliSpec("availability", 0.999, ('game_action_requests_total{service="game-server"}',),
                       good=('game_action_requests_total{code="200",service="game-server"}',))
LATENCY = SliSpec("latency", 0.95, ("game_action_duration_seconds_count",),
                  good=('game_action_duration_seconds_bucket{le="0.5"}',))
PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

probabilities = st.floats(1e-6, 0.98)
totals = st.integers(1, 1_000_000)


# --- the math -------------------------------------------------------------------------------------------


@st.composite
def hypothesis_pairs(draw: st.DrawFn) -> tuple[float, float]:
    p0 = draw(st.floats(1e-6, 0.9))
    p1 = draw(st.floats(p0 * 1.001, 0.99))
    return p0, p1


@PROPS
@given(hypothesis_pairs(), totals, st.data())
def test_llr_increases_with_bad_events_for_a_fixed_total(pair: tuple[float, float], total: int,
                                                        data: st.DataObject) -> None:
    p0, p1 = pair
    low = data.draw(st.integers(0, total - 1))
    high = data.draw(st.integers(low + 1, total))
    assert llr(high, total, p0, p1) > llr(low, total, p0, p1)


@PROPS
@given(hypothesis_pairs(), totals)
def test_llr_of_no_bad_events_is_the_good_term_alone_and_negative(pair: tuple[float, float], total: int) -> None:
    p0, p1 = pair
    stat = llr(0, total, p0, p1)
    assert stat == pytest.approx(total * math.log((1 - p1) / (1 - p0)), rel=1e-12)
    assert stat < 0


@PROPS
@given(hypothesis_pairs(), totals)
def test_llr_favours_the_hypothesis_the_data_look_like(pair: tuple[float, float], total: int) -> None:
    """At the H0 ratio the expected LLR is -KL(p0||p1) < 0, at the H1 ratio +KL(p1||p0) > 0."""
    p0, p1 = pair
    assert llr(p0 * total, total, p0, p1) < 0 < llr(p1 * total, total, p0, p1)
    # and it is zero at the indifference ratio between them
    a, b = math.log(p1 / p0), math.log((1 - p0) / (1 - p1))
    ratio = b / (a + b)
    assert p0 < ratio < p1
    assert llr(ratio * total, total, p0, p1) == pytest.approx(0, abs=1e-6 * total * (a + b))


@PROPS
@given(hypothesis_pairs(), st.floats(0, 1), totals, st.integers(2, 50))
def test_llr_grows_linearly_with_the_evidence(pair: tuple[float, float], share: float, total: int, k: int) -> None:
    p0, p1 = pair
    one = llr(share * total, total, p0, p1)
    assert llr(k * share * total, k * total, p0, p1) == pytest.approx(k * one, rel=1e-9, abs=1e-9)


def test_llr_by_hand_for_the_shipped_availability_test() -> None:
    # p0 = 0.1%, p1 = 0.6%: each bad event adds ln 6, each good one ln(0.994/0.999)
    assert llr(3, 1000, 0.001, 0.006) == pytest.approx(3 * math.log(6) + 997 * math.log(0.994 / 0.999))
    assert llr(0, 0, 0.001, 0.006) == 0


@PROPS
@given(probabilities, st.none() | st.floats(0, 1), st.floats(1.0 + 1e-9, 1000))
def test_hypotheses_are_ordered_probabilities_at_or_above_the_budget(budget: float, baseline: float | None,
                                                                     burn: float) -> None:
    p0, p1 = hypotheses(budget, baseline, burn)
    assert 0 < p0 < p1 < 1
    assert p0 >= budget
    if baseline is not None and baseline <= 0.98:
        assert p0 >= baseline
    assert llr(1, 1, p0, p1) > 0 > llr(0, 1, p0, p1)  # the test can tell them apart


def test_hypotheses_by_hand() -> None:
    assert hypotheses(0.001, None, 6) == pytest.approx((0.001, 0.006))
    assert hypotheses(0.001, 0.0005, 6) == pytest.approx((0.001, 0.006))  # a better baseline: the SLO is H0
    assert hypotheses(0.001, 0.01, 6) == pytest.approx((0.01, 0.015))  # a worse baseline: regressions on top
    assert hypotheses(0.05, None, 6) == pytest.approx((0.05, 0.3))
    assert hypotheses(0.3, None, 6) == pytest.approx((0.3, 0.65))  # capped at halfway to 1


# --- counts ---------------------------------------------------------------------------------------------


def test_counts_from_good_and_total() -> None:
    assert Counts.from_values({"total": 1000.0, "good": 997.0}) == Counts(1000.0, 3.0)


def test_counts_from_bad_and_total() -> None:
    assert Counts.from_values({"total": 1000.0, "bad": 3.0}) == Counts(1000.0, 3.0)


def test_an_absent_bad_series_is_no_bad_event() -> None:
    assert Counts.from_values({"total": 10.0, "bad": None}) == Counts(10.0, 0.0)


@pytest.mark.parametrize("values", [{}, {"good": 5.0}, {"total": None, "bad": 1.0}, {"total": 10.0},
                                    {"total": 10.0, "good": None}])
def test_counts_with_a_missing_value_are_no_data(values: dict[str, float | None]) -> None:
    assert Counts.from_values(values) is None


def test_counts_are_clamped_to_a_possible_shape() -> None:
    # increase() extrapolates: good can exceed total a little, and a reset can make a value negative
    assert Counts.from_values({"total": 100.0, "good": 100.4}) == Counts(100.0, 0.0)
    assert Counts.from_values({"total": 100.0, "bad": 120.0}) == Counts(100.0, 100.0)
    assert Counts.from_values({"total": -2.0, "bad": 0.0}) == Counts(0.0, 0.0)
    assert Counts(0.0, 0.0).ratio is None
    assert Counts(200.0, 3.0).ratio == pytest.approx(0.015)


# --- one SLI --------------------------------------------------------------------------------------------


def judge(bad: float, total: float, baseline: Counts | None = None, t: Thresholds = T,
          sli: SliSpec = AVAILABILITY) -> SliVerdict:
    return judge_sli(sli, Counts(total, bad), baseline, t)


def test_a_clearly_broken_candidate_is_aborted_at_once() -> None:
    v = judge(50, 100)
    assert (v.decision, v.rule) == ("fail", "fast_abort")
    assert v.statistic["llr_fast"] >= T.upper and v.statistic["p1_fast"] == pytest.approx(0.0144)
    assert "50.000% bad of 100" in v.reason and "14.4x" in v.reason


def test_the_fast_test_needs_fewer_bad_events_than_the_sensitive_one() -> None:
    v = judge(2, 20)  # two bad events in twenty
    assert (v.decision, v.rule) == ("fail", "fast_abort")
    assert v.statistic["llr"] < T.upper <= v.statistic["llr_fast"]


def test_one_bad_event_of_a_rare_event_slo_never_aborts() -> None:
    data_save = SliSpec("data-save-success", 0.9999, ("t",), good=("g",))
    v = judge(1, 48, sli=data_save)  # one failed save: the budget's 1e-4 makes it look like a 200x burn
    assert v.decision == "inconclusive"
    assert v.statistic["llr_fast"] < T.upper


def test_three_percent_errors_are_a_regression_within_150_events() -> None:
    v = judge(5, 150)  # 3.3%: 33x the budget
    assert v.decision == "fail" and v.rule in ("fast_abort", "sprt_reject")
    assert max(v.statistic["llr"], v.statistic["llr_fast"]) >= T.upper


def test_no_errors_over_500_events_pass() -> None:
    v = judge(0, 500)
    assert (v.decision, v.rule) == ("pass", "evidence_favours_h0")
    assert T.lower < v.statistic["llr"] <= 0
    v = judge(0, 1000)
    assert (v.decision, v.rule) == ("pass", "sprt_accept")


def test_too_few_events_are_inconclusive_not_a_failure() -> None:
    v = judge(0, 30)
    assert (v.decision, v.rule) == ("inconclusive", "min_samples")
    assert "30 of 40 events needed" in v.reason


def test_a_broken_candidate_fails_even_below_min_samples() -> None:
    v = judge(8, 10)
    assert (v.decision, v.rule) == ("fail", "fast_abort")


def test_one_error_early_keeps_observing() -> None:
    v = judge(1, 100)
    assert (v.decision, v.rule) == ("inconclusive", "observing")
    assert 0 < v.statistic["llr"] < T.upper


def test_no_data_and_query_errors_are_inconclusive() -> None:
    v = judge_sli(AVAILABILITY, None, Counts(1000, 1), T)
    assert (v.decision, v.rule) == ("inconclusive", "no_data")
    assert v.reason == "no data for the new version: keep observing"
    assert v.baseline == {"total": 1000, "bad": 1, "ratio": 0.001}
    v = judge_sli(AVAILABILITY, Counts(100, 50), None, T, error="Prometheus answered 503")
    assert (v.decision, v.rule) == ("inconclusive", "no_data")  # an error never judges the counts it has
    assert v.reason == "Prometheus answered 503: keep observing"


def test_a_baseline_with_enough_events_raises_h0() -> None:
    v = judge(5, 150, baseline=Counts(1000, 30))  # the old version fails 3% too: not this build's fault
    assert v.statistic["p0"] == pytest.approx(0.03)
    assert v.decision != "fail"


def test_a_baseline_below_min_samples_is_ignored() -> None:
    v = judge(5, 150, baseline=Counts(39, 3))
    assert v.statistic["p0"] == pytest.approx(0.001)
    assert v.decision == "fail"
    assert v.statistic["p0"] == judge(5, 150).statistic["p0"]


def test_a_candidate_as_bad_as_a_broken_baseline_is_not_aborted() -> None:
    v = judge(50, 100, baseline=Counts(100, 60))
    assert v.decision == "pass"
    assert judge(50, 100, baseline=Counts(100, 10)).rule == "fast_abort"


def test_the_evening_peak_catches_a_smaller_regression() -> None:
    off_peak, peak = judge(6, 1260), judge(6, 1260, t=PEAK)  # 0.48%: a 4.8x burn
    assert (off_peak.decision, off_peak.rule) == ("inconclusive", "observing")
    assert (peak.decision, peak.rule) == ("fail", "sprt_reject")
    assert peak.statistic["p1"] == pytest.approx(0.005) and off_peak.statistic["p1"] == pytest.approx(0.006)
    assert peak.statistic["p1_fast"] == pytest.approx(0.012)


def test_the_latency_slo_uses_its_own_budget() -> None:
    # 5% of the requests slow is exactly the 95% target: not a regression
    v = judge(50, 1000, sli=LATENCY)
    assert v.statistic["p0"] == pytest.approx(0.05)
    assert v.decision == "pass"
    assert v.statistic["burn_rate"] == pytest.approx(1.0)


def test_a_verdict_is_json() -> None:
    v = judge_sli(AVAILABILITY, Counts(150, 5), Counts(1000, 1), T,
                  queries={"candidate": sli_queries(AVAILABILITY, {"version": "1.5.1"}, 60)})
    doc = json.loads(json.dumps(v.to_dict()))
    assert doc["decision"] == "fail" and doc["candidate"]["bad"] == 5
    assert doc["queries"]["candidate"]["good"].startswith("sum(increase(")


# --- thresholds -----------------------------------------------------------------------------------------


def test_thresholds_from_the_shipped_settings() -> None:
    assert (T.min_samples, T.alpha, T.beta, T.regression_burn, T.fast_abort_burn) == (40, 0.01, 0.05, 6.0, 14.4)
    assert (T.interval_s, T.min_duration_s, T.max_duration_s, T.strictness) == (5, 30, 240, 1.0)
    assert T.upper == pytest.approx(math.log(0.95 / 0.01))  # 4.55
    assert T.lower == pytest.approx(math.log(0.05 / 0.99))  # -2.99
    doc = T.to_dict()
    assert doc["sprt_upper"] == T.upper and doc["sprt_lower"] == T.lower


def test_the_peak_strictness_divides_the_burns() -> None:
    assert PEAK.regression_burn == pytest.approx(5.0)
    assert PEAK.fast_abort_burn == pytest.approx(12.0)
    assert (PEAK.alpha, PEAK.beta, PEAK.min_samples, PEAK.strictness) == (0.01, 0.05, 40, 1.2)
    assert (PEAK.min_duration_s, PEAK.max_duration_s) == (T.min_duration_s, T.max_duration_s)


def test_a_huge_strictness_still_leaves_a_regression_above_h0() -> None:
    t = Thresholds.from_settings(SETTINGS, strictness=100)
    assert t.regression_burn > 1 and t.fast_abort_burn > 1
    p0, p1 = hypotheses(0.001, None, t.regression_burn)
    assert p1 > p0


# --- one step -------------------------------------------------------------------------------------------


PASSING = judge(0, 500)
FAILING = judge(50, 100)
PENDING = judge_sli(LATENCY, Counts(20, 2), None, T)  # min_samples
CONCURRENT = {"slo": "concurrent-sessions", "decision": "not_judged", "reason": "threshold SLI"}


def test_a_failing_sli_fails_the_step_at_once() -> None:
    step = judge_step([PASSING, FAILING, PENDING], 5, T)
    assert step.decision == "fail"
    assert step.reason.startswith("availability: 50.000% bad of 100")
    assert step.slis == (PASSING, FAILING, PENDING)


def test_every_sli_passing_before_min_duration_keeps_observing() -> None:
    step = judge_step([PASSING, PASSING], 29.9, T)
    assert step.decision == "continue"
    assert step.reason == "observing (min_duration 30s)"


def test_every_sli_passing_after_min_duration_passes() -> None:
    step = judge_step([PASSING], 30, T, not_judged=[CONCURRENT])
    assert step.decision == "pass"
    assert step.reason.startswith("every SLI passed: availability: ")
    assert step.not_judged == (CONCURRENT,)


def test_a_pending_sli_keeps_the_step_observing_until_the_deadline() -> None:
    step = judge_step([PASSING, PENDING], 120, T)
    assert step.decision == "continue"
    assert step.reason == "observing (latency: min_samples)"
    step = judge_step([PASSING, PENDING], 240, T)
    assert step.decision == "timed_out"  # never promote without evidence
    assert step.reason.startswith("still no evidence at the 240s deadline: latency: 20 of 40 events needed")
    assert "availability" not in step.reason


def test_at_the_deadline_an_sli_with_enough_events_and_no_rejection_passes() -> None:
    observing = judge(1, 100)  # one stray error on low traffic: 0 < LLR < the bound
    assert (observing.decision, observing.rule) == ("inconclusive", "observing")
    assert judge_step([PASSING, observing], 239, T).decision == "continue"
    step = judge_step([PASSING, observing], 240, T)
    assert step.decision == "pass"
    assert step.reason.startswith("no regression by the 240s deadline")
    assert judge_step([observing, PENDING], 240, T).decision == "timed_out"  # PENDING has too few events


def test_without_judged_slis_a_step_can_only_time_out() -> None:
    step = judge_step([], 239, T, not_judged=[CONCURRENT])
    assert step.decision == "continue"
    step = judge_step([], 240, T, not_judged=[CONCURRENT])
    assert step.decision == "timed_out"
    assert "no SLI of the service can be judged per version" in step.reason
    assert step.to_dict()["not_judged"] == [CONCURRENT]


def test_a_step_verdict_is_json() -> None:
    doc = json.loads(json.dumps(judge_step([PASSING, PENDING], 240, T, [CONCURRENT]).to_dict()))
    assert doc["decision"] == "timed_out" and [s["slo"] for s in doc["slis"]] == ["availability", "latency"]


# --- the SLIs of the shipped SLOs and their PromQL ------------------------------------------------------


def test_the_ratio_slos_of_game_server_are_judged_and_capacity_is_not() -> None:
    judged, skipped = slis_for(load_slos().for_service("game-server"))
    assert [s.slo for s in judged] == ["availability", "latency", "error-rate", "data-save-success"]
    by_name = {s.slo: s for s in judged}
    assert by_name["availability"] == AVAILABILITY
    assert by_name["error-rate"].bad == (
        'game_action_errors_total{service="game-server",error_type=~"internal|timeout|database|dependency"}',)
    assert by_name["error-rate"].good == ()
    assert by_name["data-save-success"].budget == pytest.approx(0.0001)
    assert [(s["slo"], s["decision"]) for s in skipped] == [("concurrent-sessions", "not_judged")]
    assert "threshold SLI over the whole fleet" in skipped[0]["reason"]


def test_an_sli_spec_survives_json() -> None:
    for sli in slis_for(load_slos())[0]:
        assert SliSpec.from_dict(json.loads(json.dumps(sli.to_dict()))) == sli


def test_cohort_matchers_are_added_to_a_selector() -> None:
    assert with_matchers('game_action_requests_total{code="200",service="game-server"}', {"version": "1.5.1"}) == (
        'game_action_requests_total{code="200",service="game-server",version="1.5.1"}')
    assert with_matchers("up", {"version": "1.5.1", "instance": "gs-canary"}) == (
        'up{instance="gs-canary",version="1.5.1"}')
    assert with_matchers("up{}", {"version": "1"}) == 'up{version="1"}'
    assert with_matchers('up{job="x"}', {}) == 'up{job="x"}'
    assert with_matchers("up", {"version": 'a"b\\c'}) == 'up{version="a\\"b\\\\c"}'


@pytest.mark.parametrize("label", ["bad-label", "__name__", "1version", ""])
def test_an_invalid_cohort_label_is_refused(label: str) -> None:
    with pytest.raises(ValueError, match="not a valid label name"):
        with_matchers("up", {label: "x"})


_TERM = re.compile(r'sum\(increase\([a-z_:]+\{([a-z_]+(=|=~)"[^"]*",)*[a-z_]+(=|=~)"[^"]*"\}\[[0-9]+s\]\)\)')


def test_count_queries_are_promql_increases_over_the_span() -> None:
    assert count_query(AVAILABILITY.good, {"version": "1.5.1"}, 60) == (
        'sum(increase(game_action_requests_total{code="200",service="game-server",version="1.5.1"}[60s]))')
    two = count_query(("a_total", 'b_total{x="1"}'), {"version": "2"}, 59.2)  # type: ignore[arg-type]
    assert two == 'sum(increase(a_total{version="2"}[60s])) + sum(increase(b_total{x="1",version="2"}[60s]))'
    assert count_query(("a_total",), {"version": "2"}, 0).endswith("[1s]))")
    for sli in slis_for(load_slos())[0]:
        for query in sli_queries(sli, {"version": "1.5.1"}, 90).values():
            assert all(_TERM.fullmatch(term) for term in query.split(" + ")), query
            assert query.count("(") == query.count(")") and query.count("{") == query.count("}")


def test_sli_queries_count_the_side_the_slo_gives() -> None:
    error_rate = next(s for s in slis_for(load_slos())[0] if s.slo == "error-rate")
    assert set(sli_queries(error_rate, {"version": "1"}, 30)) == {"total", "bad"}
    assert set(sli_queries(AVAILABILITY, {"version": "1"}, 30)) == {"total", "good"}


# --- a seeded simulation of the sequential test ---------------------------------------------------------


def simulate(rng: random.Random, bad_ratio: float, max_events: int, every: int = 20) -> int | None:
    """Events seen when the candidate failed, or None. Keeps polling after a pass (the worst case for alpha)."""
    bad = total = 0
    while total < max_events:
        bad += sum(rng.random() < bad_ratio for _ in range(every))
        total += every
        if judge_sli(AVAILABILITY, Counts(total, bad), None, T).decision == "fail":
            return total
    return None


def test_healthy_candidates_are_almost_never_rolled_back() -> None:
    rng = random.Random(20260320)
    failed = [n for n in (simulate(rng, 0.0002, 2000) for _ in range(200)) if n is not None]
    assert len(failed) <= 2


def test_candidates_with_three_percent_errors_are_rolled_back_quickly() -> None:
    rng = random.Random(20260321)
    failed_at = [simulate(rng, 0.03, 400) for _ in range(200)]
    assert sum(n is not None for n in failed_at) >= 195
