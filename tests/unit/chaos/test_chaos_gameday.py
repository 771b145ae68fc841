"""A game-day: a scheduled one more than an hour late does not run, the experiments it requests, and its verdict
from its experiments' verdicts."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gamesre.chaos.catalog import Suite
from gamesre.chaos.gameday import experiment_confs, gameday_outcome, gameday_verdict, late_refusal

DUE = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # Wednesday 14:00 KST


@pytest.mark.parametrize("late", [timedelta(0), timedelta(minutes=59), timedelta(hours=1)])
def test_a_scheduled_gameday_up_to_an_hour_late_runs(late: timedelta) -> None:
    assert late_refusal(DUE, DUE + late) is None


def test_a_scheduled_gameday_more_than_an_hour_late_is_refused_saying_when_it_was_due() -> None:
    reason = late_refusal(DUE, DUE + timedelta(hours=1, minutes=30))
    assert reason == ("refused: this scheduled game-day was due at 2026-11-25 14:00 KST and is 1.5 h late; a late "
                      "game-day does not run (trigger one by hand to run it now)")


def test_a_gameday_triggered_by_hand_is_never_late() -> None:
    assert late_refusal(None, DUE + timedelta(days=30)) is None


def test_one_request_per_experiment_in_the_suites_order() -> None:
    suite = Suite(experiments=["gs-partition", "gs-instance-kill"])
    assert experiment_confs(suite, "gd-1", dry_run=True, requested_by="chaos_gameday:weekly") == [
        {"experiment": "gs-partition", "gameday_id": "gd-1", "dry_run": True, "requested_by": "chaos_gameday:weekly"},
        {"experiment": "gs-instance-kill", "gameday_id": "gd-1", "dry_run": True,
         "requested_by": "chaos_gameday:weekly"}]


def runs(*verdicts: str) -> list[dict[str, Any]]:
    return [{"experiment": f"e{i}", "verdict": v, "reason": f"why {i}"} for i, v in enumerate(verdicts)]


@pytest.mark.parametrize(("verdicts", "expected"), [
    ((), ("error", "no experiment ran")),
    (("pass", "error"), ("error", "an experiment ended in error (see its report)")),
    (("pass", "running"), ("error", "an experiment ended in error (see its report)")),
    (("invalid", "fail"), ("error", "an experiment ended in error (see its report)")),  # error before fail
    (("pass", "fail", "aborted"), ("fail", "hypotheses broken: e1 fail, e2 aborted")),
    (("refused", "refused"), ("refused", "every experiment was refused by the safety gates: why 0")),
    (("pass", "dry_run"), ("pass", "every experiment passed")),
    (("pass", "refused", "skipped"), ("pass", "the experiments that ran passed; others were refused or skipped")),
])
def test_the_gameday_verdict_from_its_experiments(verdicts: tuple[str, ...], expected: tuple[str, str]) -> None:
    assert gameday_verdict(runs(*verdicts)) == expected


def test_a_gameday_refused_before_any_experiment_keeps_its_refusal() -> None:
    refused = {"verdict": "refused", "reason": "refused: too late"}
    assert gameday_outcome(refused, []) == ("refused", "refused: too late")
    assert gameday_outcome(refused, runs("pass")) == ("pass", "every experiment passed")
    assert gameday_outcome(None, []) == ("error", "no experiment ran")
