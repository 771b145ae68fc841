"""The Airflow adapter of the chaos game-days (gamesre.airflow.chaos): what it adds to the workflow's steps. The
recover task's failure callback pages from the task context and never raises; `conclude` fails the run on the
verdicts that fail it; a game-day's experiments are requested by `chaos_gameday:<suite>` with the run's UI link.

The adapter takes its ports from gamesre.airflow.deps.chaos_ports; here they are the in-memory ones.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from gamesre.airflow import chaos as glue
from gamesre.chaos.faults import Recovery
from tests.fakes.chaos_ports import ChaosRig


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ChaosRig:
    rig = ChaosRig(tmp_path / "reports")
    monkeypatch.setattr(glue, "chaos_ports", lambda: rig.ports)
    return rig


class DagRun:
    run_id = "r1"


def test_a_recovery_that_keeps_failing_pages_the_oncall_from_the_task_context(rig: ChaosRig) -> None:
    rig.injected()
    rig.backend.outcomes = [Recovery(False, ("gs-stable-1: killed=true",), "the fleet still reports the fault")] * 3
    with pytest.raises(glue.RecoveryFailed, match=r"gs-stable-1: killed=true"):
        glue.recover("r1")
    assert rig.store.chaos_lock()["run_id"] == "r1"  # never released while the fault may be injected
    glue.page_unrecovered({"dag_run": DagRun(), "exception": "RecoveryFailed"})
    (message,) = rig.notifier.messages
    assert message["channel_id"] == "C07SREONCL1" and "gs-stable-1: killed=true" in message["text"]
    assert "FAILED" in message["text"] and rig.store.chaos_run("r1")["verdict"] == "error"


def test_the_failure_callback_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ports() -> None:
        raise RuntimeError("the sre_store connection is not defined")

    monkeypatch.setattr(glue, "chaos_ports", no_ports)
    glue.page_unrecovered({"dag_run": DagRun(), "exception": "RecoveryFailed"})


@pytest.mark.parametrize("verdict", ["fail", "aborted", "error", "invalid"])
def test_conclude_fails_the_run_when_the_hypothesis_or_the_machinery_broke(verdict: str) -> None:
    with pytest.raises(AirflowFailException, match=f"^{verdict}: why$"):
        glue.conclude({"verdict": verdict, "reason": "why"})


@pytest.mark.parametrize("verdict", ["pass", "dry_run", "refused", "skipped"])
def test_conclude_says_the_verdict_of_a_run_that_decided(verdict: str) -> None:
    assert glue.conclude({"verdict": verdict, "reason": "why"}) == f"{verdict}: why"


def test_a_gamedays_experiments_are_requested_by_the_gameday_with_its_link(rig: ChaosRig) -> None:
    confs = glue.plan_gameday("smoke", "gd-1", dry_run=True)
    assert confs == [{"experiment": "gs-instance-kill", "gameday_id": "gd-1", "dry_run": True,
                      "requested_by": "chaos_gameday:smoke"}]
    (gameday,) = rig.store.gamedays(ids=["gd-1"])
    assert gameday["run_url"].endswith("/dags/chaos_gameday/runs/gd-1")
