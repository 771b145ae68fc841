"""Which windows cover an instant or an interval: half-open bounds, KST vs UTC, midnight, month and year edges."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gamesre.calendar import Calendar, load_calendar, parse_calendar
from gamesre.core.services import load_services
from gamesre.core.time import KST
from gamesre.slo.windows import kst_month_bounds, window_bounds

SERVICES = load_services()


def kst(*args: int) -> datetime:
    return datetime(*args, tzinfo=KST)


def build(**sections: Any) -> Calendar:
    raw: dict[str, Any] = {"version": 1, "timezone": "Asia/Seoul", **sections}
    return parse_calendar(raw, "test-calendar.yaml", SERVICES)


def one_off(ident: str, start: str, end: str, services: Any = "all") -> dict[str, Any]:
    return {"id": ident, "start": start, "end": end, "services": services, "reason": "planned work",
            "owner": "sre", "ticket": "OPS-1"}


def weekly(ident: str, weekday: str, start: str, duration: str, **extra: Any) -> dict[str, Any]:
    return {"id": ident, "weekday": weekday, "start": start, "duration": duration, "services": "all",
            "reason": "weekly work", "owner": "sre", "ticket": "OPS-2", **extra}


TUESDAY = build(maintenance={"recurring": [weekly("recurring-tue", "TU", "02:00", "4h")]})


def test_tuesday_window_in_kst_is_monday_evening_in_utc() -> None:
    # 2026-12-01 is a Tuesday; 02:00-06:00 KST (UTC+9, no DST) is Monday 17:00-21:00 UTC.
    (w,) = TUESDAY.windows_covering(kst(2026, 12, 1, 3, 0))
    assert w.id == "recurring-tue-2026-12-01"
    assert (w.start, w.end) == (datetime(2026, 11, 30, 17, tzinfo=UTC), datetime(2026, 11, 30, 21, tzinfo=UTC))
    assert w.describe() == "recurring-tue-2026-12-01 (2026-12-01 02:00-06:00 KST; game-server, matchmaking)"


def test_no_daylight_saving_shift_over_a_whole_year() -> None:
    found = TUESDAY.windows_overlapping(kst(2026, 1, 1), kst(2027, 1, 1))
    assert len(found) == 52
    assert {(w.start.astimezone(UTC).strftime("%a %H:%M"), w.duration) for w in found} == {
        ("Mon 17:00", timedelta(hours=4))}


def test_covering_is_half_open() -> None:
    start, end = kst(2026, 12, 1, 2, 0), kst(2026, 12, 1, 6, 0)
    assert [w.id for w in TUESDAY.windows_covering(start)] == ["recurring-tue-2026-12-01"]
    assert TUESDAY.windows_covering(end - timedelta(microseconds=1))
    assert TUESDAY.windows_covering(end) == []
    assert TUESDAY.windows_covering(start - timedelta(seconds=1)) == []
    # The same instants as epoch seconds.
    assert TUESDAY.is_maintenance(int(start.timestamp()), "game-server")
    assert not TUESDAY.is_maintenance(int(end.timestamp()), "game-server")


def test_interval_touching_a_window_does_not_overlap_it() -> None:
    start, end = kst(2026, 12, 1, 2, 0), kst(2026, 12, 1, 6, 0)
    assert TUESDAY.windows_overlapping(start - timedelta(hours=1), start) == []
    assert TUESDAY.windows_overlapping(end, end + timedelta(hours=1)) == []
    assert len(TUESDAY.windows_overlapping(end - timedelta(minutes=1), end + timedelta(hours=1))) == 1
    assert TUESDAY.windows_overlapping(start, start) == []  # an empty interval overlaps nothing


def test_window_crossing_midnight_kst() -> None:
    cal = build(maintenance={"recurring": [weekly("late-sun", "SU", "22:00", "4h")],
                             "one_off": [one_off("mw-night", "2026-12-09T23:30:00+09:00",
                                                 "2026-12-10T01:30:00+09:00")]})
    # 2026-12-06 is a Sunday: 22:00 KST Sunday to 02:00 KST Monday.
    monday_1am = kst(2026, 12, 7, 1, 0)
    (w,) = cal.windows_covering(monday_1am)
    assert w.id == "late-sun-2026-12-06"  # named after the local date it starts on
    assert w.local_end().date().isoformat() == "2026-12-07"
    # A Monday-only interval still finds the window that started on Sunday.
    assert [x.id for x in cal.windows_overlapping(kst(2026, 12, 7, 0, 0), kst(2026, 12, 8, 0, 0))] == [
        "late-sun-2026-12-06"]
    assert [x.id for x in cal.windows_covering(kst(2026, 12, 10, 0, 15))] == ["mw-night"]
    assert cal.windows_covering(kst(2026, 12, 10, 1, 30)) == []
    assert cal.find("mw-night").describe() == (
        "mw-night (2026-12-09 23:30 - 2026-12-10 01:30 KST; game-server, matchmaking)")


def test_window_ending_exactly_on_a_kst_month_edge() -> None:
    cal = build(maintenance={"one_off": [one_off("mw-eom", "2026-11-30T20:00:00+09:00", "2026-12-01T00:00:00+09:00")]})
    december = kst_month_bounds(int(kst(2026, 12, 15).timestamp()))
    november = kst_month_bounds(int(kst(2026, 11, 15).timestamp()))
    assert cal.windows_overlapping(*december) == []
    assert [w.id for w in cal.windows_overlapping(*november)] == ["mw-eom"]
    # 00:00 KST on 1 December is 15:00 UTC on 30 November: the month edge is in KST, not UTC.
    assert december[0] == int(datetime(2026, 11, 30, 15, tzinfo=UTC).timestamp())
    assert not cal.is_maintenance(december[0], "game-server")
    assert cal.is_maintenance(december[0] - 1, "game-server")


def test_window_on_a_rolling_window_edge() -> None:
    at = kst(2026, 12, 31, 12, 0)
    bounds = window_bounds("rolling-30d", at)
    edge = datetime.fromtimestamp(bounds.start, UTC)
    before = one_off("mw-before", (edge - timedelta(hours=2)).isoformat(), edge.isoformat())
    after = one_off("mw-after", edge.isoformat(), (edge + timedelta(hours=2)).isoformat(), ["matchmaking"])
    cal = build(maintenance={"one_off": [before, after]})
    # [start, now) of the rolling window: a window ending at its start is outside, one starting there inside.
    assert [w.id for w in cal.windows_overlapping(bounds.start, bounds.now)] == ["mw-after"]
    now = datetime.fromtimestamp(bounds.now, UTC)
    late = build(maintenance={"one_off": [one_off("mw-late", now.isoformat(), (now + timedelta(hours=1)).isoformat())]})
    assert late.windows_overlapping(bounds.start, bounds.now) == []


def test_recurrence_expansion_across_month_and_year_boundaries() -> None:
    found = TUESDAY.windows_overlapping(kst(2026, 12, 20), kst(2027, 1, 20))
    assert [w.id for w in found] == ["recurring-tue-2026-12-22", "recurring-tue-2026-12-29",
                                     "recurring-tue-2027-01-05", "recurring-tue-2027-01-12",
                                     "recurring-tue-2027-01-19"]
    assert all(w.local_start().strftime("%a %H:%M") == "Tue 02:00" for w in found)
    assert all(w.duration == timedelta(hours=4) for w in found)
    # Stable ids: the same occurrence is found again by its id and from another query range.
    assert TUESDAY.find("recurring-tue-2027-01-05") == found[2]
    assert TUESDAY.windows_covering(kst(2027, 1, 5, 5, 59))[0] == found[2]
    assert TUESDAY.find("recurring-tue-2027-01-06") is None  # a Wednesday


def test_recurrence_respects_from_and_until() -> None:
    cal = build(maintenance={"recurring": [weekly("tue", "TU", "02:00", "4h", **{"from": "2026-12-08",
                                                                                  "until": "2026-12-22"})]})
    assert [w.id for w in cal.windows_overlapping(kst(2026, 11, 1), kst(2027, 2, 1))] == [
        "tue-2026-12-08", "tue-2026-12-15", "tue-2026-12-22"]


def test_services_and_kinds_filter() -> None:
    cal = build(maintenance={"recurring": [weekly("tue", "TU", "02:00", "4h")],
                             "one_off": [one_off("mw-gs", "2026-12-03T02:00:00+09:00", "2026-12-03T03:00:00+09:00",
                                                 ["game-server"])]})
    span = (kst(2026, 11, 30), kst(2026, 12, 7))
    assert [w.id for w in cal.windows_overlapping(*span, service="matchmaking")] == ["tue-2026-12-01"]
    assert [w.id for w in cal.windows_overlapping(*span, kinds=["one-off"])] == ["mw-gs"]
    assert cal.is_maintenance(kst(2026, 12, 3, 2, 30), "game-server")
    assert not cal.is_maintenance(kst(2026, 12, 3, 2, 30), "matchmaking")
    with pytest.raises(KeyError, match="unknown service 'chat'"):
        cal.is_maintenance(kst(2026, 12, 3, 2, 30), "chat")


def test_a_naive_datetime_is_refused_as_a_query() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        TUESDAY.windows_covering(datetime(2026, 12, 1, 3, 0))


def test_events_and_holidays_tighten() -> None:
    cal = build(
        maintenance={"recurring": [weekly("tue", "TU", "02:00", "4h")]},
        holidays={"policy": {"chaos_forbidden": True, "strict_slo": True},
                  "days": [{"date": "2026-12-25", "name": "Christmas"}]},
        events=[{"id": "festival", "name": "Festival", "start": "2026-12-10T10:00:00+09:00",
                 "end": "2026-12-12T10:00:00+09:00", "services": ["game-server"], "chaos_forbidden": True,
                 "strict_slo": True,
                 "scale_up": {"lead_time": "2h", "scale_down_delay": "30m",
                              "services": {"game-server": {"min_replicas": 20}}}}],
    )
    during = kst(2026, 12, 11, 12, 0)
    assert cal.is_event_period(during, "game-server")
    assert not cal.is_event_period(during, "matchmaking")
    verdict = cal.chaos_allowed(during, "game-server")
    assert not verdict.allowed and "live-ops event festival" in verdict.reason
    assert cal.chaos_allowed(during, "matchmaking").allowed
    assert cal.strict_slo(during, "game-server").allowed
    assert not cal.strict_slo(during, "matchmaking").allowed
    # Holidays are whole KST days for every service.
    assert cal.is_holiday(kst(2026, 12, 25, 0, 0)) and not cal.is_holiday(kst(2026, 12, 26, 0, 0))
    xmas = cal.chaos_allowed(kst(2026, 12, 25, 23, 59), "matchmaking")
    assert not xmas.allowed and "holiday holiday-2026-12-25" in xmas.reason
    # An experiment may not run into a window, even when it starts outside one.
    assert cal.chaos_allowed(kst(2026, 12, 8, 1, 0), "matchmaking").allowed
    into = cal.chaos_allowed(kst(2026, 12, 8, 1, 0), "matchmaking", duration=timedelta(hours=1, minutes=1))
    assert not into.allowed and "tue-2026-12-08" in into.reason
    # Scaling: services.yaml defaults with the event's overrides, lead time before and delay after.
    (event,) = cal.events_overlapping(kst(2026, 12, 1), kst(2026, 12, 31))
    (scaling,) = event.scaling
    assert (scaling.service, scaling.min_replicas) == ("game-server", 20)
    assert scaling.extra_instances == SERVICES.get("game-server").scaling.event.extra_instances
    assert cal.events_scaled_at(kst(2026, 12, 10, 8, 0)) == [event]
    assert cal.events_scaled_at(kst(2026, 12, 10, 7, 59)) == []
    assert cal.events_scaled_at(kst(2026, 12, 12, 10, 29)) == [event]
    assert cal.events_scaled_at(kst(2026, 12, 12, 10, 30)) == []


def test_deploys_in_maintenance_follow_services_yaml() -> None:
    inside = kst(2026, 12, 1, 3, 0)
    for service in SERVICES.names:
        allowed = SERVICES.get(service).maintenance.deploy_during_maintenance
        assert TUESDAY.deploy_allowed_in_maintenance(service) is allowed
        verdict = TUESDAY.deploy_allowed(inside, service)
        assert verdict.allowed is allowed
        assert "recurring-tue-2026-12-01" in verdict.reason
        assert TUESDAY.deploy_allowed(kst(2026, 12, 1, 6, 0), service).allowed


def test_store_rows_add_adhoc_windows_and_cancellations() -> None:
    adhoc = {"id": "adhoc-20261203-1400-abcd1234", "kind": "adhoc", "start": kst(2026, 12, 3, 14, 0),
             "end": kst(2026, 12, 3, 15, 0), "services": ["matchmaking"], "reason": "hotfix", "owner": "alice",
             "ticket": "OPS-9", "status": "scheduled"}
    skipped = {"id": "recurring-tue-2026-12-01", "kind": "recurring", "status": "cancelled"}
    cal = TUESDAY.with_store_rows([adhoc, skipped])
    assert cal.is_maintenance(kst(2026, 12, 3, 14, 30), "matchmaking")
    assert not cal.is_maintenance(kst(2026, 12, 1, 3, 0), "matchmaking")  # this Tuesday was cancelled
    assert cal.is_maintenance(kst(2026, 12, 8, 3, 0), "matchmaking")  # the next one was not
    row = cal.find(adhoc["id"]).to_store_row()
    assert row["excludes_budget"] and row["kind"] == "adhoc" and row["services"] == ["matchmaking"]


def test_the_shipped_calendar_has_the_tuesday_window() -> None:
    cal = load_calendar()
    assert str(cal.tz) == "Asia/Seoul"
    tuesday = cal.windows_covering(kst(2026, 12, 15, 2, 0), kinds=["recurring"])
    assert [w.id for w in tuesday] == ["recurring-tue-2026-12-15"]
    assert set(tuesday[0].services) == set(SERVICES.names)
    assert cal.max_maintenance == timedelta(hours=8)
