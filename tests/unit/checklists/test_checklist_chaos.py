"""Chaos game-day items: leftovers, failed runs, score trend and failed hypotheses."""
from __future__ import annotations

import pandas as pd
import pytest

from gamesre.checklists.analytics import failed_hypotheses, leftover_faults, score_trend
from gamesre.checklists.runner import run_item
from gamesre.checklists.spec import ChecklistSpec
from tests.unit.checklists.conftest import AT, AT_EPOCH

WEEK = 7 * 86_400
LAST_WEEK = AT_EPOCH - WEEK - 10 * 3600  # Monday 23 February 00:00 KST


def runs(*rows: tuple[str, int, str, float | None]) -> pd.DataFrame:
    """(run_id, started_at, verdict, score) per run; a running run has no finished_at."""
    return pd.DataFrame([{"run_id": r, "experiment": f"exp-{r}", "service": "game-server", "started_at": t,
                          "finished_at": None if v == "running" else t + 900, "verdict": v, "score": s}
                         for r, t, v, s in rows])


def probes(*rows: tuple[str, str, bool]) -> pd.DataFrame:
    return pd.DataFrame([{"run_id": r, "experiment": f"exp-{r}", "probe": p, "passed": ok} for r, p, ok in rows],
                        columns=["run_id", "experiment", "probe", "passed"])


NO_FAULTS = pd.DataFrame(columns=["service", "target", "fault", "injected_at", "run_id"])


def test_the_score_trend_is_a_least_squares_slope_per_week() -> None:
    history = runs(("a", 0, "pass", 90.0), ("b", WEEK, "pass", 80.0), ("c", 2 * WEEK, "fail", 70.0),
                   ("d", 3 * WEEK, "error", None))
    trend = score_trend(history, 0, 4 * WEEK)
    assert trend == {"runs": 3, "mean": 80.0, "first": 90.0, "last": 70.0, "slope_per_week": pytest.approx(-10.0)}
    assert score_trend(history, 0, WEEK)["slope_per_week"] is None
    assert score_trend(history, 5 * WEEK, 6 * WEEK)["mean"] is None


def test_failed_hypotheses_and_leftovers() -> None:
    history = runs(("a", 0, "fail", 50.0), ("b", 100, "fail", 60.0), ("c", 10 * WEEK, "fail", 10.0),
                   ("d", 200, "running", None))
    failed = failed_hypotheses(probes(("a", "availability", False), ("b", "availability", False),
                                      ("a", "latency", True), ("c", "latency", False)), history, 0, WEEK)
    assert failed.to_dict("records") == [{"experiment": "exp-a", "probe": "availability", "failures": 1, "runs": ["a"]},
                                         {"experiment": "exp-b", "probe": "availability", "failures": 1, "runs": ["b"]}]
    faults = pd.DataFrame({"service": ["game-server"] * 3, "target": ["gs-1", "gs-2", "gs-3"],
                           "fault": ["latency", "cpu", "db_fail"], "injected_at": [100, 200, 300],
                           "run_id": ["a", "d", "ghost"]})
    assert leftover_faults(faults, history)["run_id"].tolist() == ["a", "ghost"]


def test_the_daily_chaos_item_fails_on_a_fault_left_behind(checklists: ChecklistSpec) -> None:
    item = checklists.get("daily-chaos-status")
    history = runs(("r1", AT_EPOCH - 2 * 86_400, "pass", 95.0), ("r2", AT_EPOCH - 86_400, "aborted", 40.0))
    left = pd.DataFrame({"service": ["game-server"], "target": ["gs-stable-2"], "fault": ["latency"],
                         "injected_at": [AT_EPOCH - 86_400 + 60], "run_id": ["r2"]})
    r = run_item(item, {"chaos_runs": history, "chaos_active_faults": left}, AT)
    assert r.status == "fail"
    assert r.summary == ("1 fault(s) still injected with no game-day running: latency on game-server/gs-stable-2 "
                         "since 23h 59m")
    assert [x["run_id"] for x in r.evidence["last_runs"]] == ["r2", "r1"]
    r = run_item(item, {"chaos_runs": history, "chaos_active_faults": NO_FAULTS}, AT)
    assert (r.status, r.summary) == ("warn", "1 of 2 game-day run(s) in the last 7d ended exp-r2 aborted")
    r = run_item(item, {"chaos_runs": history.iloc[:1], "chaos_active_faults": NO_FAULTS}, AT)
    assert r.status == "pass"


def test_the_weekly_and_monthly_chaos_items(checklists: ChecklistSpec) -> None:
    earlier = [(f"e{k}", LAST_WEEK - k * WEEK, "pass", 90.0) for k in range(1, 5)]
    history = runs(*earlier, ("w1", LAST_WEEK + 2 * 86_400, "fail", 70.0))
    checks = probes(("w1", "availability", False), ("w1", "latency", True))
    weekly = run_item(checklists.get("weekly-chaos-results"), {"chaos_runs": history, "chaos_probes": checks}, AT)
    assert weekly.status == "warn"
    assert weekly.summary == ("1 failed hypothesis probe(s): exp-w1/availability; resilience score 70.0, down 20.0 "
                              "points from 90.0")
    assert weekly.evidence["score_before"]["runs"] == 4 and weekly.evidence["verdicts"] == {"fail": 1}
    calm = runs(*earlier, ("w1", LAST_WEEK + 2 * 86_400, "pass", 88.0))
    weekly = run_item(checklists.get("weekly-chaos-results"),
                      {"chaos_runs": calm, "chaos_probes": probes(("w1", "availability", True))}, AT)
    assert weekly.status == "pass" and weekly.summary.startswith("1 game-day run(s), every hypothesis held, score 88.0")
    none = run_item(checklists.get("weekly-chaos-results"), {"chaos_runs": runs(*earlier), "chaos_probes": checks}, AT)
    assert (none.status, none.summary) == ("warn", "no game-day ran in 2026-W09 KST")

    monthly = run_item(checklists.get("monthly-resilience-inputs"), {"chaos_runs": history, "chaos_probes": checks}, AT)
    assert monthly.status == "warn" and monthly.evidence["failures_by_experiment"] == {"exp-w1": 1}
    assert monthly.summary == ("1 hypothesis probe(s) failed in 2026-02 KST, to plan fixes for: "
                               "exp-w1/availability (1x)")
