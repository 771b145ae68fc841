"""The SLO items: daily and weekly attainment, the budget burn since yesterday, the monthly target review."""
from __future__ import annotations

import pandas as pd
import pytest

from gamesre.checklists.analytics import Attainment, as_ledger, attainment, next_target, recommend_target
from gamesre.checklists.periods import months_before
from gamesre.checklists.runner import run_item
from gamesre.checklists.spec import ChecklistSpec
from gamesre.slo.budget import compute_snapshot
from gamesre.slo.spec import Policy, SloCatalog
from tests.unit.checklists.conftest import AT, AT_EPOCH, flat_ledger, with_bad

DAY_START = AT_EPOCH - 86_400 - 10 * 3600  # Sunday 1 March 00:00 KST
H = 3600


def healthy(slos: SloCatalog, start: int, end: int) -> dict[str, pd.DataFrame]:
    return {s.name: flat_ledger(start, end, 1.0 if s.budgeting_method == "timeslices" else 1000.0) for s in slos}


def test_the_daily_attainment_item_per_team(checklists: ChecklistSpec, slos: SloCatalog) -> None:
    ledgers = healthy(slos, DAY_START - 86_400, AT_EPOCH)
    ledgers["availability"] = with_bad(ledgers["availability"], DAY_START + 20 * H, DAY_START + 21 * H, 950.0)
    ledgers["error-rate"] = ledgers["error-rate"].iloc[: 60 * 12]  # no data for yesterday
    item = checklists.get("daily-availability-game-server")
    r = run_item(item, {"slos": slos, "ledgers": ledgers, "exclusions": {}}, AT)
    expected = attainment(slos["availability"], ledgers["availability"], DAY_START, DAY_START + 86_400)
    assert expected.sli == pytest.approx(1 - 3000 / 1_440_000)  # checked by hand: 60 minutes x 50 bad of 1000
    assert r.status == "fail"
    assert r.summary == ("availability 99.792% below its 99.900% target (burn 2.08x); error-rate: no SLI (no minute "
                         "slice with at least 20 event(s) in the period (no_data: skip))")
    rows = {row["slo"]: row for row in r.evidence["slos"]}
    assert set(rows) == {"availability", "latency", "error-rate", "concurrent-sessions", "data-save-success"}
    assert rows["availability"]["sli"] == pytest.approx(expected.sli) and rows["availability"]["owner"] == "game-server"
    assert rows["error-rate"]["status"] == "warn" and rows["latency"]["status"] == "pass"
    # the same hour inside a maintenance window is excluded from the adjusted SLI
    window = {"game-server": [(DAY_START + 20 * H, DAY_START + 21 * H)]}
    r = run_item(item, {"slos": slos, "ledgers": {**ledgers, "error-rate": healthy(slos, DAY_START, AT_EPOCH)[
        "error-rate"]}, "exclusions": window}, AT)
    assert r.status == "pass" and r.summary.startswith("every SLO met its target over 2026-03-01 KST: availability "
                                                       "100.000% (target 99.900%)")
    matchmaking = run_item(checklists.get("daily-availability-matchmaking"),
                           {"slos": slos, "ledgers": ledgers, "exclusions": {}}, AT)
    assert [row["slo"] for row in matchmaking.evidence["slos"]] == ["matchmaking-success"]
    assert matchmaking.owner == "matchmaking"


def test_low_coverage_is_a_warn_even_when_the_target_is_met(checklists: ChecklistSpec, slos: SloCatalog) -> None:
    ledgers = healthy(slos, DAY_START, DAY_START + 86_400)
    ledgers["matchmaking-success"] = ledgers["matchmaking-success"].iloc[::2]  # every other minute
    r = run_item(checklists.get("daily-availability-matchmaking"),
                 {"slos": slos, "ledgers": ledgers, "exclusions": {}}, AT)
    assert r.status == "warn"
    assert r.summary == "matchmaking-success 100.000% met 95.000% but with data for only 50.0% of the minutes"


def history(slos: SloCatalog, now_state: dict[str, str], day_ago: dict[str, str], last: int = AT_EPOCH - 600
            ) -> pd.DataFrame:
    rows = [{"scope": "slo", "name": s.name, "state": day_ago.get(s.name, "normal"), "computed_at": t}
            for t in range(AT_EPOCH - 3 * 86_400, AT_EPOCH - 86_400 + 1, H) for s in slos]
    rows += [{"scope": "slo", "name": s.name, "state": now_state.get(s.name, "normal"), "computed_at": t}
             for t in range(AT_EPOCH - 86_400 + H, last + 1, H) for s in slos]
    return pd.DataFrame(rows)


def test_the_budget_burn_item_compares_now_with_a_day_ago(checklists: ChecklistSpec, slos: SloCatalog,
                                                          policy: Policy) -> None:
    ledgers = healthy(slos, AT_EPOCH - 40 * 86_400, AT_EPOCH)
    ledgers["latency"] = with_bad(ledgers["latency"], AT_EPOCH - 5 * H, AT_EPOCH - 4 * H, 0.0)  # 60,000 slow
    item = checklists.get("daily-budget-burn")
    inputs = {"slos": slos, "ledgers": ledgers, "exclusions": {}, "policy": policy,
              "policy_history": history(slos, {"latency": "slow_burn"}, {})}
    r = run_item(item, inputs, AT)
    latency = next(row for row in r.evidence["slos"] if row["slo"] == "latency")
    now = compute_snapshot(slos["latency"], as_ledger(ledgers["latency"]), AT)
    assert latency["budget_consumed"] == pytest.approx(now.budget_consumed_adjusted)
    assert latency["budget_consumed"] == pytest.approx(60_000 / (0.05 * 1000 * 43_200))  # 2.8% of 30 days' budget
    assert latency["budget_consumed_day_ago"] == 0 and latency["state_day_ago"] == "normal"
    assert (latency["state"], latency["status"]) == ("slow_burn", "warn")
    assert r.status == "warn" and r.summary == ("latency: normal -> slow_burn, 2.8% of the budget spent in the last "
                                                "24 h")
    inputs["policy_history"] = history(slos, {"availability": "deploy_freeze"}, {"availability": "deploy_freeze"})
    r = run_item(item, inputs, AT)
    assert r.status == "fail" and r.summary.startswith("availability: deploy_freeze (0.0% of the budget spent)")
    inputs["policy_history"] = history(slos, {}, {}, last=AT_EPOCH - 3 * H)  # the hourly report stopped
    r = run_item(item, inputs, AT)
    assert r.status == "fail" and "availability: the published state is stale" in r.summary
    inputs["policy_history"] = history(slos, {}, {})
    calm = run_item(item, {**inputs, "ledgers": healthy(slos, AT_EPOCH - 40 * 86_400, AT_EPOCH)}, AT)
    assert calm.status == "pass"
    assert calm.evidence["thresholds"] == {"warn_daily_consumption": 0.1, "stale_after": "2h",
                                           "blocking_states": ["deploy_freeze", "fast_burn", "no_data", "rollback"]}


def month(sli: float | None, consumed: float | None, coverage: float = 1.0) -> Attainment:
    return Attainment(slo="x", service="s", target=0.999, start=0, end=60, unit="events", sli=sli, sli_raw=sli,
                      good=0, bad=0, events=1, budget=1, budget_consumed=consumed, elapsed_minutes=1,
                      covered_minutes=1, excluded_minutes=0, coverage=coverage)


def test_target_recommendations() -> None:
    far_above = [month(0.99995, 0.05), month(0.9999, 0.1), month(0.99992, 0.08)]
    review = recommend_target("x", 0.999, far_above)
    assert (review.recommendation, review.suggested_target, review.confident) == ("tighten", 0.9995, True)
    assert "every month would have met 99.950%" in review.reason
    only_just = [month(0.99976, 0.24), month(0.9999, 0.1), month(0.9999, 0.1)]
    assert recommend_target("x", 0.999, only_just).suggested_target == 0.9995
    review = recommend_target("x", 0.999, [month(0.998, 2.0), month(0.9995, 0.5), month(0.997, 3.0)])
    assert (review.recommendation, review.suggested_target, review.exhausted_months) == ("loosen", 0.995, 2)
    review = recommend_target("x", 0.999, [month(0.9995, 0.5), month(0.9992, 0.8), month(0.998, 1.5)])
    assert (review.recommendation, review.confident) == ("keep", True)
    review = recommend_target("x", 0.999, [month(None, None), month(0.9999, 0.1, coverage=0.5), month(0.9999, 0.1)])
    assert (review.recommendation, review.confident, review.judged_months) == ("keep", False, 1)
    assert review.reason == "only 1 of 3 months had data for at least 90% of their minutes; 3 are needed to judge"
    assert next_target(0.999, "up") == 0.9995 and next_target(0.9, "down") is None
    assert next_target(0.997, "up") == 0.999 and next_target(0.99999, "up") is None
    top = recommend_target("x", 0.99999, [month(1.0, 0.0)] * 3)
    assert top.suggested_target is None and "top of the ladder" in top.reason


def test_the_monthly_target_review_on_three_months_of_ledger(checklists: ChecklistSpec, slos: SloCatalog) -> None:
    months = months_before(AT, 3)
    start, end = months[0].start, months[-1].end
    ledgers = healthy(slos, start, end)
    # matchmaking (95%): ten days at 20% failures in each month spend 0.2 x 10 / 31 / 0.05 = 1.3 of a month's budget
    for m in months:
        ledgers["matchmaking-success"] = with_bad(ledgers["matchmaking-success"], m.start, m.start + 10 * 86_400, 800.0)
    r = run_item(checklists.get("monthly-slo-target-review"), {"slos": slos, "ledgers": ledgers, "exclusions": {}},
                 AT)
    reviews = {row["slo"]: row for row in r.evidence["reviews"]}
    mm = reviews["matchmaking-success"]
    consumed = [x["budget_consumed"] for x in mm["months"]]
    assert consumed == pytest.approx([0.2 * 10 / 31 / 0.05, 0.2 * 10 / 31 / 0.05, 0.2 * 10 / 28 / 0.05])
    assert (mm["recommendation"], mm["suggested_target"], mm["exhausted_months"]) == ("loosen", 0.9, 3)
    assert (reviews["availability"]["recommendation"], reviews["availability"]["suggested_target"]) == (
        "tighten", 0.9995)
    assert mm["month_labels"] == ["2025-12 KST", "2026-01 KST", "2026-02 KST"]
    assert r.status == "warn" and "matchmaking-success: loosen to 90.000%" in r.summary
