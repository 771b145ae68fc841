"""Deploy outcomes, stuck runs and the DORA metrics, checked by hand on a small month of deploys."""
from __future__ import annotations

import pandas as pd
import pytest

from gamesre.checklists.analytics import deploy_outcomes, deployment_frame, dora_metrics, stuck_deploys
from gamesre.checklists.runner import run_item
from gamesre.checklists.spec import ChecklistSpec
from tests.unit.checklists.conftest import AT, AT_EPOCH, deployments

FEB = int(pd.Timestamp("2026-01-31T15:00:00Z").timestamp())  # 1 February 00:00 KST
MAR = FEB + 28 * 86_400
H = 3600


def february() -> pd.DataFrame:
    return deployments([
        # promoted: lead times 1 h, 2 h, 3 h
        {"service": "game-server", "outcome": "promoted", "requested_at": FEB + H, "started_at": FEB + H + 60,
         "finished_at": FEB + 2 * H},
        {"service": "game-server", "outcome": "promoted", "requested_at": FEB + 86_400, "started_at": FEB + 86_400,
         "finished_at": FEB + 86_400 + 2 * H},
        {"service": "matchmaking", "outcome": "promoted", "requested_at": FEB + 2 * 86_400,
         "started_at": FEB + 2 * 86_400, "finished_at": FEB + 2 * 86_400 + 3 * H},
        # rolled back 10 minutes after it started; timed out and rolled back after 30 minutes
        {"service": "game-server", "outcome": "rolled_back", "requested_at": FEB + 3 * 86_400,
         "started_at": FEB + 3 * 86_400 + 60, "finished_at": FEB + 3 * 86_400 + 900,
         "rolled_back_at": FEB + 3 * 86_400 + 660},
        {"service": "matchmaking", "outcome": "timed_out", "requested_at": FEB + 4 * 86_400,
         "started_at": FEB + 4 * 86_400, "finished_at": FEB + 4 * 86_400 + 2000,
         "rolled_back_at": FEB + 4 * 86_400 + 1800},
        # changed nothing: not counted
        {"service": "game-server", "outcome": "blocked", "requested_at": FEB + 5 * 86_400,
         "finished_at": FEB + 5 * 86_400 + 5},
        {"service": "game-server", "outcome": "dry_run", "dry_run": True, "requested_at": FEB + 5 * 86_400,
         "finished_at": FEB + 5 * 86_400 + 5},
        # staging only: not a production deploy
        {"service": "matchmaking", "outcome": "promoted", "stages": ["dev", "staging"],
         "requested_at": FEB + 6 * 86_400, "started_at": FEB + 6 * 86_400, "finished_at": FEB + 6 * 86_400 + 60},
        # January and March: outside the period
        {"service": "game-server", "outcome": "rolled_back", "requested_at": FEB - 86_400,
         "started_at": FEB - 86_400, "finished_at": FEB - 86_000, "rolled_back_at": FEB - 86_100},
        {"service": "game-server", "outcome": "running", "requested_at": AT_EPOCH - 3 * H,
         "started_at": AT_EPOCH - 3 * H},
    ])


def test_dora_metrics_of_a_month() -> None:
    m = dora_metrics(february(), FEB, MAR)
    assert m.deploys == 3 and m.deploys_per_week == pytest.approx(3 / 4)
    assert m.lead_time_median == 2 * H and m.lead_time_p90 == pytest.approx(2.8 * H)
    assert (m.finished, m.failures, m.change_failure_rate) == (5, 2, pytest.approx(0.4))
    assert (m.restores, m.time_to_restore_median, m.time_to_restore_max) == (2, pytest.approx(1200), 1800)
    assert m.to_dict()["start"] == "2026-01-31T15:00:00Z"
    every_stage = dora_metrics(february(), FEB, MAR, production_stage=None)
    assert every_stage.deploys == 4 and every_stage.lead_time_median == pytest.approx(1.5 * H)
    failed_too = dora_metrics(february(), FEB, MAR, failure_outcomes=("rolled_back",))
    assert failed_too.change_failure_rate == pytest.approx(0.2)


def test_outcomes_per_service_and_stuck_runs() -> None:
    outcomes = deploy_outcomes(february(), FEB, MAR)
    assert outcomes.loc["all", ["finished", "promoted", "rolled_back", "timed_out", "rollbacks"]].tolist() == [
        6, 4, 1, 1, 2]
    assert outcomes.loc["all", "success_rate"] == pytest.approx(4 / 6)
    assert outcomes.loc["game-server", "finished"] == 3 and outcomes.loc["matchmaking", "finished"] == 3
    stuck = stuck_deploys(february(), AT, 2 * H)
    assert stuck["id"].tolist() == ["run-9"] and stuck["age"].tolist() == [3 * H]
    assert stuck_deploys(february(), AT, 4 * H).empty


def test_dry_runs_are_left_out_and_times_read_as_utc() -> None:
    frame = deployment_frame(deployments([
        {"service": "a", "outcome": "promoted", "requested_at": pd.Timestamp("2026-02-01T00:00:00+09:00"),
         "stages": '["prod"]'},
        {"service": "a", "outcome": "running", "dry_run": True, "requested_at": 0}]))
    assert len(frame) == 1 and frame["requested_at"].iloc[0] == FEB and frame["stages"].iloc[0] == ["prod"]


def test_the_deploy_items(checklists: ChecklistSpec) -> None:
    records = february()
    daily = run_item(checklists.get("daily-deploy-status"), {"deployments": records}, AT)
    assert daily.status == "fail" and daily.summary == "1 deploy run(s) stuck in running: game-server 1.0.0 for 3h 00m"
    assert daily.evidence["stuck"][0]["requested_at"] == "2026-03-01T22:00:00Z"
    calm = run_item(checklists.get("daily-deploy-status"), {"deployments": records.iloc[:-1]}, AT)
    assert (calm.status, calm.summary) == ("pass", "0 deploy(s) in the last 24h, none failed, none stuck")

    monthly = run_item(checklists.get("monthly-dora"), {"deployments": records}, AT)
    assert monthly.status == "warn"
    assert monthly.summary == ("3 production deploy(s) (0.8/week), lead time median 2h 00m, change failure rate "
                               "40.0% (2/5), time to restore median 20m: change failure rate above 15%")
    assert monthly.evidence["services"]["matchmaking"]["change_failure_rate"] == pytest.approx(0.5)
    assert monthly.evidence["overall"]["lead_time_p90"] == pytest.approx(2.8 * H)

    week = records.assign(**{c: records[c] + (AT_EPOCH - 7 * 86_400 - 10 * H - FEB) for c in (
        "requested_at", "started_at", "finished_at", "rolled_back_at")})  # the same deploys, last week
    weekly = run_item(checklists.get("weekly-deploy-success"), {"deployments": week.iloc[:8]}, AT)
    assert weekly.status == "warn"
    assert weekly.summary == "4 of 6 deploy(s) promoted (66.7%), 2 rollback(s): success rate 66.7% below 90%"
    assert weekly.evidence["services"]["all"]["rollbacks"] == 2
