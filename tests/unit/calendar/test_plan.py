"""The maintenance_windows DAG's plan at hand-picked instants of the shipped calendar."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gamesre.calendar import load_calendar
from gamesre.calendar.plan import Transition, plan_reconcile, status_at

KST = ZoneInfo("Asia/Seoul")


def kst(*args: int) -> datetime:
    return datetime(*args, tzinfo=KST)


def test_before_tuesday_maintenance_the_silence_is_prepared_and_the_start_is_a_deferred_step() -> None:
    plan = plan_reconcile(load_calendar(), kst(2026, 12, 1, 1, 50))
    assert [w.id for w in plan.silence] == ["recurring-tue-2026-12-01"]
    assert plan.transitions == (Transition(kst(2026, 12, 1, 2, 0), "window_start", "recurring-tue-2026-12-01"),)
    record = {w.id: w for w in plan.record}
    assert status_at(record["recurring-tue-2026-12-01"], plan.now) == "scheduled"
    assert "recurring-tue-2026-11-24" in record  # last week's window stays recorded for the budgets


def test_at_the_end_of_the_window_only_the_end_step_is_left_then_nothing() -> None:
    cal = load_calendar()
    plan = plan_reconcile(cal, kst(2026, 12, 1, 5, 50))
    assert [t.kind for t in plan.transitions] == ["window_end"]
    assert [w.id for w in plan.silence] == ["recurring-tue-2026-12-01"]
    after = plan_reconcile(cal, kst(2026, 12, 1, 6, 0))  # half-open: at 06:00 it is over
    assert after.silence == () and after.transitions == ()
    assert status_at(next(w for w in after.record if w.id == "recurring-tue-2026-12-01"), after.now) == "completed"


def test_event_scaling_is_deferred_to_its_lead_time_then_reconciled() -> None:
    cal = load_calendar()
    event = "winter-festival-2026"  # starts 2026-12-19 10:00 KST, scaled up 1 h before
    soon = plan_reconcile(cal, kst(2026, 12, 19, 8, 50))
    assert Transition(kst(2026, 12, 19, 9, 0), "scale_up", event) in soon.transitions
    assert soon.scale_up == ()
    during = plan_reconcile(cal, kst(2026, 12, 19, 9, 30))
    assert [e.id for e in during.scale_up] == [event]
    over = plan_reconcile(cal, kst(2027, 1, 4, 10, 30) + timedelta(minutes=5))  # end + 30 min delay passed
    assert [e.id for e in over.scale_down] == [event] and over.scale_up == ()


def test_a_cancelled_window_is_neither_silenced_nor_recorded_and_its_silences_expire() -> None:
    cal = load_calendar().with_windows(cancelled=["recurring-tue-2026-12-01"])
    plan = plan_reconcile(cal, kst(2026, 12, 1, 1, 50))
    assert plan.silence == () and plan.transitions == ()
    assert "recurring-tue-2026-12-01" not in {w.id for w in plan.record}
    assert plan.expire == ("recurring-tue-2026-12-01",)


def test_airflow_instants_pendulum_datetimes_plan_like_plain_ones() -> None:
    import pendulum

    cal = load_calendar()
    airflow_now = pendulum.datetime(2026, 12, 1, 1, 50, tz="Asia/Seoul")  # what data_interval_end is
    assert plan_reconcile(cal, airflow_now).summary() == plan_reconcile(cal, kst(2026, 12, 1, 1, 50)).summary()
