"""calendar.yaml validation: bad windows are refused, and each error names the file, the item and the field."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from gamesre.calendar import CALENDAR_PATH, CalendarError, load_calendar, parse_calendar
from gamesre.core.services import load_services

SERVICES = load_services()
SOURCE = "include/config/calendar.yaml"


def shipped() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(CALENDAR_PATH.read_text()))


def one_off(ident: str, start: str, end: str, services: Any = "all") -> dict[str, Any]:
    return {"id": ident, "start": start, "end": end, "services": services, "reason": "planned work",
            "owner": "sre", "ticket": "OPS-1"}


def errors(raw: dict[str, Any]) -> str:
    with pytest.raises(CalendarError) as info:
        parse_calendar(raw, SOURCE, SERVICES)
    return str(info.value)


def with_one_offs(*items: dict[str, Any]) -> dict[str, Any]:
    raw = shipped()
    raw["maintenance"]["one_off"] = list(items)
    return raw


def test_the_shipped_calendar_loads() -> None:
    cal = load_calendar()
    assert cal.source == SOURCE
    assert {e.id for e in cal.spec.events} == {"winter-festival-2026", "seollal-event-2027"}


def test_inverted_window_is_refused_naming_item_and_field() -> None:
    msg = errors(with_one_offs(one_off("mw-back", "2026-12-10T05:00:00+09:00", "2026-12-10T01:00:00+09:00")))
    assert msg.startswith(f"{SOURCE}: maintenance.one_off[0] 'mw-back': end: ")
    assert "not after start" in msg


def test_empty_window_is_refused() -> None:
    msg = errors(with_one_offs(one_off("mw-empty", "2026-12-10T05:00:00+09:00", "2026-12-10T05:00:00+09:00")))
    assert "maintenance.one_off[0] 'mw-empty': end:" in msg


def test_window_over_the_maximum_is_refused_and_the_maximum_is_configurable() -> None:
    long = one_off("mw-long", "2026-12-10T00:00:00+09:00", "2026-12-10T08:30:00+09:00")
    msg = errors(with_one_offs(long))
    assert f"{SOURCE}: maintenance.one_off[0] 'mw-long': end: the window lasts 8:30:00, longer than " \
           "limits.max_maintenance (8h)" in msg
    raw = with_one_offs(long)
    raw["limits"]["max_maintenance"] = "9h"
    assert parse_calendar(raw, SOURCE, SERVICES).find("mw-long") is not None
    exactly = one_off("mw-8h", "2026-12-10T00:00:00+09:00", "2026-12-10T08:00:00+09:00")
    assert parse_calendar(with_one_offs(exactly), SOURCE, SERVICES).find("mw-8h") is not None


def test_recurring_window_over_the_maximum_is_refused() -> None:
    raw = shipped()
    raw["maintenance"]["recurring"][0]["duration"] = "9h"
    assert "maintenance.recurring[0] 'recurring-tue': duration: 9h is longer than limits.max_maintenance (8h)" \
        in errors(raw)


def test_overlapping_one_offs_for_a_common_service_are_refused() -> None:
    a = one_off("mw-a", "2026-12-10T01:00:00+09:00", "2026-12-10T03:00:00+09:00", ["game-server"])
    b = one_off("mw-b", "2026-12-10T02:59:00+09:00", "2026-12-10T04:00:00+09:00", ["game-server", "matchmaking"])
    msg = errors(with_one_offs(a, b))
    assert "maintenance.one_off[1] 'mw-b': start: overlaps maintenance.one_off[0] mw-a " \
           "(2026-12-10 01:00-03:00 KST) for game-server" in msg
    # Different services may overlap, and back-to-back windows do not overlap (half-open).
    c = one_off("mw-c", "2026-12-10T02:00:00+09:00", "2026-12-10T04:00:00+09:00", ["matchmaking"])
    d = one_off("mw-d", "2026-12-10T03:00:00+09:00", "2026-12-10T04:00:00+09:00", ["game-server"])
    cal = parse_calendar(with_one_offs(a, c, d), SOURCE, SERVICES)
    assert {w.id for w in cal.maintenance_overlapping(*(cal.find("mw-a").start, cal.find("mw-d").end))} == {
        "mw-a", "mw-c", "mw-d"}


def test_one_off_overlapping_the_tuesday_window_is_refused() -> None:
    msg = errors(with_one_offs(one_off("mw-tue", "2026-12-15T05:00:00+09:00", "2026-12-15T07:00:00+09:00",
                                       ["matchmaking"])))
    assert "maintenance.one_off[0] 'mw-tue': start: overlaps the recurring window recurring-tue-2026-12-15 " \
           "(2026-12-15 02:00-06:00 KST) for matchmaking" in msg


def test_overlapping_recurrences_are_refused() -> None:
    raw = shipped()
    raw["maintenance"]["recurring"].append({**raw["maintenance"]["recurring"][0], "id": "recurring-tue-late",
                                            "start": "05:30", "duration": "1h", "services": ["game-server"]})
    msg = errors(raw)
    assert "maintenance.recurring[1] 'recurring-tue-late': start: its occurrences overlap those of " \
           "maintenance.recurring[0] 'recurring-tue'" in msg
    # Starting when the first ends is fine.
    raw["maintenance"]["recurring"][1]["start"] = "06:00"
    parse_calendar(raw, SOURCE, SERVICES)


def test_recurrences_with_disjoint_date_ranges_do_not_clash() -> None:
    raw = shipped()
    first = raw["maintenance"]["recurring"][0]
    first["until"] = "2026-12-31"
    raw["maintenance"]["recurring"].append({**first, "id": "recurring-tue-2027", "from": "2027-01-01",
                                            "until": None, "start": "03:00"})
    cal = parse_calendar(raw, SOURCE, SERVICES)
    assert cal.find("recurring-tue-2026-12-29").local_start().hour == 2
    assert cal.find("recurring-tue-2027-2027-01-05").local_start().hour == 3


def test_unknown_service_is_refused() -> None:
    msg = errors(with_one_offs(one_off("mw-chat", "2026-12-10T01:00:00+09:00", "2026-12-10T02:00:00+09:00",
                                       ["game-server", "chat"])))
    assert f"{SOURCE}: maintenance.one_off[0] 'mw-chat': services: unknown service(s) 'chat' " \
           "(known: game-server, matchmaking)" in msg


def test_unquoted_time_is_explained() -> None:
    # YAML 1.1 reads an unquoted 22:00 as the base-60 number 1320.
    raw = yaml.safe_load(CALENDAR_PATH.read_text().replace('start: "02:00"', "start: 22:00"))
    assert "maintenance.recurring[0] 'recurring-tue': start: write the time in quotes" in errors(raw)


def test_times_without_offset_are_kst() -> None:
    raw = with_one_offs(one_off("mw-naive", "2026-12-10T01:00:00", "2026-12-10T02:00:00"))
    w = parse_calendar(raw, SOURCE, SERVICES).find("mw-naive")
    assert w.start.isoformat() == "2026-12-09T16:00:00+00:00"


def test_duplicate_ids_and_dates_are_refused() -> None:
    raw = with_one_offs(one_off("winter-festival-2026", "2026-12-11T01:00:00+09:00", "2026-12-11T02:00:00+09:00"))
    raw["holidays"]["days"].append({"date": "2026-12-25", "name": "again"})
    msg = errors(raw)
    assert "events[0] 'winter-festival-2026': id: duplicate id (first used by maintenance.one_off[0]" in msg
    assert "holidays.days[8] 2026-12-25: date: listed twice" in msg


def test_overlapping_events_for_a_common_service_are_refused() -> None:
    raw = shipped()
    raw["events"][1]["start"] = "2027-01-03T10:00:00+09:00"
    msg = errors(raw)
    assert "events[1] 'seollal-event-2027': start: overlaps events[0] 'winter-festival-2026'" in msg


def test_event_scaling_for_a_service_outside_the_event_is_refused() -> None:
    raw = shipped()
    raw["events"][1]["services"] = ["matchmaking"]
    assert "events[1] 'seollal-event-2027': scale_up.services: 'game-server' not among the event's services" \
        in errors(raw)


def test_unknown_fields_and_bad_values_name_their_field() -> None:
    raw = shipped()
    raw["events"][0]["scale_up"]["services"]["game-server"]["min_replicas"] = 0
    raw["maintenance"]["one_off"][0]["tickett"] = "OPS-1"
    raw["maintenance"]["recurring"][0]["weekday"] = "TUE"
    msg = errors(raw)
    assert "events[0] 'winter-festival-2026': scale_up.services.game-server.min_replicas: Input should be " \
           "greater than or equal to 1" in msg
    assert "maintenance.one_off[0] 'mw-2026-12-db-upgrade': tickett: unknown field" in msg
    assert "maintenance.recurring[0] 'recurring-tue': weekday: Input should be 'MO'" in msg


def test_bad_timezone_and_yaml_errors(tmp_path: Path) -> None:
    raw = shipped()
    raw["timezone"] = "Mars/Olympus"
    assert errors(raw) == f"{SOURCE}: timezone: 'Mars/Olympus' is not an IANA time zone such as Asia/Seoul"
    bad = tmp_path / "calendar.yaml"
    bad.write_text("version: 1\nevents: [\n")
    with pytest.raises(CalendarError, match=r"calendar.yaml: line \d+, column \d+: YAML syntax error"):
        load_calendar(bad, SERVICES)
