"""The escalation schedule: the runbook's timings checked by hand, and properties over any acknowledgement."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gamesre.incidents.escalation import cancelled_steps, due_steps, next_escalation, next_update_at
from gamesre.incidents.spec import load_incidents

SETTINGS = load_incidents().escalation  # 5 min unacknowledged, 30 min and 1 h unresolved
OPENED = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)


def levels(steps: tuple) -> list[str]:
    return [s.level for s in steps]


def test_the_runbook_timings() -> None:
    at = OPENED.__add__
    assert levels(due_steps(OPENED, None, False, at(timedelta(minutes=4, seconds=59)), SETTINGS, ())) == []
    assert levels(due_steps(OPENED, None, False, at(timedelta(minutes=5)), SETTINGS, ())) == ["secondary"]
    assert levels(due_steps(OPENED, None, False, at(timedelta(minutes=30)), SETTINGS, ["secondary"])) == ["tertiary"]
    assert levels(due_steps(OPENED, None, False, at(timedelta(hours=1)), SETTINGS, ["secondary", "tertiary"])) == [
        "executive"]
    step = due_steps(OPENED, None, False, at(timedelta(hours=1)), SETTINGS, ["secondary", "tertiary"])[0]
    assert step.why == "unresolved 1 h after it opened"


def test_an_acknowledgement_in_time_cancels_only_the_first_step() -> None:
    acked = OPENED + timedelta(minutes=3)
    assert levels(cancelled_steps(OPENED, acked, SETTINGS)) == ["secondary"]
    assert levels(due_steps(OPENED, acked, False, OPENED + timedelta(minutes=31), SETTINGS, ())) == ["tertiary"]
    late = OPENED + timedelta(minutes=7)  # after the secondary was due: it stands
    assert levels(due_steps(OPENED, late, False, OPENED + timedelta(minutes=8), SETTINGS, ())) == ["secondary"]


def test_a_late_watch_takes_every_missed_step_once_and_a_resolved_incident_none() -> None:
    two_hours = OPENED + timedelta(hours=2)
    assert levels(due_steps(OPENED, None, False, two_hours, SETTINGS, ())) == ["secondary", "tertiary", "executive"]
    assert due_steps(OPENED, None, True, two_hours, SETTINGS, ()) == ()
    assert next_escalation(OPENED, None, True, OPENED, SETTINGS, ()) is None
    step = next_escalation(OPENED, None, False, OPENED + timedelta(minutes=6), SETTINGS, ["secondary"])
    assert step is not None and (step.level, step.due_at) == ("tertiary", OPENED + timedelta(minutes=30))


def test_status_page_cadence() -> None:
    assert next_update_at(OPENED, 900) == OPENED + timedelta(minutes=15)
    assert next_update_at(OPENED, None) is None


@given(st.integers(0, 7200), st.one_of(st.none(), st.integers(0, 7200)), st.lists(st.integers(0, 7200), max_size=6))
def test_each_level_is_brought_in_at_most_once_and_never_before_it_is_due(end_s: int, ack_s: int | None,
                                                                          polls: list[int]) -> None:
    """However often the watch comes round (any poll times), each level is escalated once, at or after its due
    time, and the secondary only when the acknowledgement came after it was due (or never)."""
    acked = None if ack_s is None else OPENED + timedelta(seconds=ack_s)
    done: list[str] = []
    taken_at: dict[str, datetime] = {}
    for poll in sorted({*polls, end_s}):
        now = OPENED + timedelta(seconds=poll)
        for step in due_steps(OPENED, acked if acked and acked <= now else None, False, now, SETTINGS, done):
            assert step.level not in done and step.due_at <= now
            done.append(step.level)
            taken_at[step.level] = now
    if "secondary" in taken_at and acked is not None:
        assert acked > OPENED + timedelta(minutes=5) or taken_at["secondary"] < acked
    assert len(done) == len(set(done))
