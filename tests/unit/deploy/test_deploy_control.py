"""People steering a deploy (gamesre.deploy.control): what the request log means, the paused time, refusals, and
how a request changes the analysis' decision."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamesre.deploy.control import Control, control_state, paused_seconds, refusal, steer

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
RUNNING = {"id": "r1", "outcome": "running", "kind": "deploy", "dry_run": False}


def c(i: int, action: str, at_s: float, applied: str | None = None) -> Control:
    return Control(i, action, f"user{i}", f"why {i}", T0 + timedelta(seconds=at_s), applied)


def test_the_last_pause_or_resume_decides_and_abort_wins_over_promotions() -> None:
    log = [c(1, "pause", 0), c(2, "promote", 5), c(3, "abort", 6), c(4, "promote_full", 7)]
    state = control_state(log)
    assert state.paused == log[0] and state.pending == log[2]
    assert control_state([*log, c(5, "resume", 8)]).paused is None
    applied = [c(1, "promote", 0, applied="prod canary 10%"), c(2, "promote", 3)]
    assert control_state(applied).pending == applied[1]  # an applied request never applies again
    assert control_state([c(1, "promote", 0, applied="x")]).pending is None


def test_paused_time_counts_each_pause_until_its_resume_within_the_span() -> None:
    log = [c(1, "pause", 10), c(2, "resume", 40), c(3, "pause", 100)]
    assert paused_seconds(log, T0, T0 + timedelta(seconds=120)) == 30 + 20
    assert paused_seconds(log, T0 + timedelta(seconds=30), T0 + timedelta(seconds=50)) == 10  # the overlap only
    assert paused_seconds([], T0, T0 + timedelta(seconds=60)) == 0


@given(st.lists(st.tuples(st.sampled_from(["pause", "resume", "promote"]), st.integers(0, 600)), max_size=12),
       st.integers(0, 600), st.integers(0, 600))
def test_paused_time_adds_up_over_any_split_of_the_span(actions: list[tuple[str, int]], a: int, b: int) -> None:
    log = [c(i, action, at) for i, (action, at) in enumerate(actions)]
    start, end = T0, T0 + timedelta(seconds=700)
    cut = T0 + timedelta(seconds=min(a, b))
    whole = paused_seconds(log, start, end)
    assert whole == pytest.approx(paused_seconds(log, start, cut) + paused_seconds(log, cut, end))
    assert 0 <= whole <= 700


@pytest.mark.parametrize(("action", "reason", "record", "log", "message"), [
    ("skip", "x", RUNNING, [], "action: must be one of pause, resume, promote, promote_full, abort"),
    ("abort", "  ", RUNNING, [], "reason: say why"),
    ("abort", "x", None, [], "run_id: no deploy with this run id"),
    ("abort", "x", {**RUNNING, "dry_run": True}, [], "a dry run"),
    ("abort", "x", {**RUNNING, "kind": "rollback"}, [], "a rollback runs to its end"),
    ("pause", "x", {**RUNNING, "outcome": "promoted", "reason": "done"}, [], "this deploy has ended (promoted): done"),
    ("pause", "x", RUNNING, [c(1, "pause", 0)], "already paused"),
    ("resume", "x", RUNNING, [], "not paused"),
])
def test_a_request_that_cannot_apply_is_refused_naming_why(action, reason, record, log, message) -> None:
    assert message in (refusal(action, reason, record, log) or "")


def test_a_valid_request_is_taken() -> None:
    assert refusal("pause", "watching a metric", RUNNING, []) is None
    assert refusal("resume", "fine", RUNNING, [c(1, "pause", 0)]) is None


NOW = T0 + timedelta(seconds=60)


def test_abort_beats_everything_and_a_regression_beats_a_promotion() -> None:
    abort = control_state([c(1, "abort", 0)])
    assert steer("pass", "ok", abort, NOW, 3600)[:1] == ("aborted",)
    assert steer("fail", "breach", abort, NOW, 3600)[0] == "aborted"
    promote = control_state([c(1, "promote", 0)])
    assert steer("fail", "breach", promote, NOW, 3600) == ("fail", "breach", None)
    decision, reason, applied = steer("continue", "observing", promote, NOW, 3600)
    assert (decision, applied) == ("pass", promote.pending)
    assert reason == "promoted the current step by user1: why 1"


def test_a_pause_holds_a_pass_and_the_deadline_but_never_a_failure() -> None:
    paused = control_state([c(1, "pause", 0)])
    assert steer("pass", "ok", paused, NOW, 3600)[0] == "continue"
    assert steer("timed_out", "no evidence", paused, NOW, 3600)[0] == "continue"
    assert steer("fail", "breach", paused, NOW, 3600) == ("fail", "breach", None)
    decision, reason, _ = steer("continue", "observing", paused, T0 + timedelta(seconds=61), 60)
    assert decision == "timed_out" and "longer than max_pause 60s" in reason
