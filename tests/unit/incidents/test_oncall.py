"""oncall.yaml: who is on call at each level, checked by hand at the handover edges; every bad input refused
naming the file and the field; properties of the weekly rotation and of overrides (hypothesis)."""
from __future__ import annotations

import copy
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gamesre.core.services import load_services
from gamesre.core.time import KST
from gamesre.incidents.oncall import (
    LEVELS,
    ONCALL_PATH,
    WEEKDAYS,
    OncallConfigError,
    OncallSpec,
    handover_at_or_before,
    load_oncall,
    next_handover,
    parse_oncall,
    roster,
)

SOURCE = "include/config/oncall.yaml"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def kst(text: str) -> datetime:
    """A KST wall-clock time as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=KST)


def person(i: int) -> dict[str, str]:
    return {"name": f"Person {i}", "slack_user_id": f"U0000000{i:02d}"}


def document(**changes: Any) -> dict[str, Any]:
    """A small valid document: sre rotates a, b, c from Tuesday 2026-01-06; lead l, executive x."""
    body: dict[str, Any] = {
        "handover": {"weekday": "tuesday", "time": "10:00"},
        "people": {name: person(i) for i, name in enumerate(["a", "b", "c", "l", "x", "cover"])},
        "executive": "x",
        "teams": {"sre": {"lead": "l", "rotation": ["a", "b", "c"], "start": date(2026, 1, 6)}},
        "overrides": [],
        "holidays": {},
    }
    body.update(changes)
    return {"version": 1, "oncall": body}


def spec(**changes: Any) -> OncallSpec:
    return parse_oncall(document(**changes), SOURCE)


def shipped() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(ONCALL_PATH.read_text()))


def errors(raw: object, teams: list[str] | None = None) -> list[str]:
    with pytest.raises(OncallConfigError) as info:
        parse_oncall(raw, SOURCE, teams)
    return str(info.value).splitlines()


def primary(s: OncallSpec, at: datetime, team: str = "sre") -> str:
    return roster(s, team, at).level("primary").person


# --- the rotation, by hand ------------------------------------------------------------------------------


def test_the_start_handover_makes_rotation_0_primary() -> None:
    r = roster(spec(), "sre", kst("2026-01-06 10:00"))
    assert [(x.level, x.person) for x in r.levels] == [
        ("primary", "a"), ("secondary", "c"), ("tertiary", "l"), ("executive", "x")]
    assert r.at == datetime(2026, 1, 6, 1, 0, tzinfo=UTC)
    assert r.level("primary").why == "rotation week 1 of sre (since Tuesday 2026-01-06 10:00 KST): a"
    assert r.level("tertiary").why == "team lead of sre"
    assert r.level("executive").why == "executive (CTO)"


def test_tuesday_0959_is_still_last_weeks_primary_and_1000_the_new_one() -> None:
    s = spec()
    before, at = roster(s, "sre", kst("2026-01-13 09:59:59")), roster(s, "sre", kst("2026-01-13 10:00"))
    assert (before.level("primary").person, before.level("secondary").person) == ("a", "c")
    assert (at.level("primary").person, at.level("secondary").person) == ("b", "a")
    assert at.level("secondary").why == ("previous week's primary of sre (rotation week 1, "
                                         "until Tuesday 2026-01-13 10:00 KST)")


def test_the_rotation_wraps_around() -> None:
    s = spec()
    # weeks 1..5 from 2026-01-06: a, b, c, a, b
    assert [primary(s, kst("2026-01-06 10:00") + timedelta(weeks=n)) for n in range(5)] == ["a", "b", "c", "a", "b"]
    # 2026-12-01 is 47 weeks after 2026-01-06: week 48, 47 % 3 == 2
    assert roster(s, "sre", kst("2026-12-01 10:00")).level("primary").why.startswith("rotation week 48 of sre")
    assert primary(s, kst("2026-12-01 10:00")) == "c"


def test_the_handover_is_in_kst_not_utc() -> None:
    s = spec()
    # Tuesday 2026-01-13 08:00 KST is still Monday in UTC; the handover is two hours later
    monday_utc = datetime(2026, 1, 12, 23, 0, tzinfo=UTC)
    assert handover_at_or_before(s, monday_utc) == datetime(2026, 1, 6, 1, 0, tzinfo=UTC)
    assert next_handover(s, monday_utc) == datetime(2026, 1, 13, 1, 0, tzinfo=UTC)
    # at a handover: that handover, and the next one a week later
    assert handover_at_or_before(s, kst("2026-01-13 10:00")) == kst("2026-01-13 10:00")
    assert next_handover(s, kst("2026-01-13 10:00")) == kst("2026-01-20 10:00")
    assert next_handover(s, kst("2026-01-13 09:59")) == kst("2026-01-13 10:00")
    assert handover_at_or_before(s, kst("2026-01-13 10:00")).tzinfo == UTC


def test_another_handover_weekday_and_time() -> None:
    s = spec(handover={"weekday": "sunday", "time": "23:30"},
             teams={"sre": {"lead": "l", "rotation": ["a", "b"], "start": "2026-01-04"}})
    assert handover_at_or_before(s, kst("2026-01-07 12:00")) == kst("2026-01-04 23:30")
    assert primary(s, kst("2026-01-11 23:29")) == "a"
    assert primary(s, kst("2026-01-11 23:30")) == "b"


def test_before_the_start_the_rotation_is_not_in_effect() -> None:
    with pytest.raises(ValueError, match=r"'sre' starts at Tuesday 2026-01-06 10:00 KST \(oncall.teams.sre.start\)"):
        roster(spec(), "sre", kst("2026-01-06 09:59"))


def test_an_unknown_team_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"^unknown team 'platform' \(known: sre\)$"):
        roster(spec(), "platform", kst("2026-02-01 00:00"))


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        roster(spec(), "sre", datetime(2026, 2, 1))


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown level 'manager' \(levels: primary, secondary, tertiary"):
        roster(spec(), "sre", kst("2026-02-01 00:00")).level("manager")


def test_the_roster_is_json_safe() -> None:
    r = roster(spec(), "sre", kst("2026-01-13 10:00"))
    doc = json.loads(json.dumps(r.to_dict()))
    assert doc["team"] == "sre"
    assert doc["at"] == "2026-01-13T01:00:00Z"
    assert [level["level"] for level in doc["levels"]] == list(LEVELS)
    assert doc["levels"][0] == {"level": "primary", "person": "b", "name": "Person 1", "slack_user_id": "U000000001",
                                "pagerduty_user_id": None,
                                "why": "rotation week 2 of sre (since Tuesday 2026-01-13 10:00 KST): b"}


# --- overrides and holidays -----------------------------------------------------------------------------


def cover(level: str = "primary", start: str = "2026-12-24 18:00", until: str = "2026-12-26 10:00",
          who: str = "cover", team: str = "sre") -> dict[str, str]:
    return {"team": team, "level": level, "person": who, "from": start, "until": until, "reason": "covering Christmas"}


def test_an_override_applies_from_its_start_until_just_before_its_end() -> None:
    s = spec(overrides=[cover()])
    assert primary(s, kst("2026-12-24 17:59:59")) != "cover"
    assert primary(s, kst("2026-12-24 18:00")) == "cover"
    assert roster(s, "sre", kst("2026-12-24 18:00")).level("primary").why == (
        "override until Saturday 2026-12-26 10:00 KST: covering Christmas")
    assert primary(s, kst("2026-12-26 09:59:59")) == "cover"
    assert primary(s, kst("2026-12-26 10:00")) != "cover"


@pytest.mark.parametrize("level", LEVELS)
def test_an_override_replaces_its_level_only(level: str) -> None:
    s = spec(overrides=[cover(level)])
    r, usual = roster(s, "sre", kst("2026-12-25 00:00")), roster(spec(), "sre", kst("2026-12-25 00:00"))
    for other in LEVELS:
        expected = "cover" if other == level else usual.level(other).person
        assert r.level(other).person == expected


def test_the_holiday_roster_covers_the_whole_kst_day() -> None:
    s = spec(holidays={date(2027, 2, 8): {"sre": {"primary": "l", "secondary": "x"}}})
    usual = spec()
    assert roster(s, "sre", kst("2027-02-07 23:59:59")) == roster(usual, "sre", kst("2027-02-07 23:59:59"))
    for at in ("2027-02-08 00:00", "2027-02-08 23:59:59"):
        r = roster(s, "sre", kst(at))
        assert (r.level("primary").person, r.level("secondary").person) == ("l", "x")
        assert r.level("primary").why == "holiday roster of 2027-02-08"
    assert roster(s, "sre", kst("2027-02-09 00:00")) == roster(usual, "sre", kst("2027-02-09 00:00"))


def test_a_holiday_roster_may_name_one_level_only() -> None:
    s = spec(holidays={"2027-02-08": {"sre": {"secondary": "l"}}})
    at = kst("2027-02-08 12:00")
    assert roster(s, "sre", at).level("primary") == roster(spec(), "sre", at).level("primary")
    assert roster(s, "sre", at).level("secondary").person == "l"


def test_an_override_wins_over_the_holiday_roster() -> None:
    s = spec(holidays={"2026-12-25": {"sre": {"primary": "l", "secondary": "x"}}}, overrides=[cover()])
    r = roster(s, "sre", kst("2026-12-25 12:00"))
    assert (r.level("primary").person, r.level("secondary").person) == ("cover", "x")


def test_an_override_of_another_team_does_not_apply() -> None:
    teams = {"sre": {"lead": "l", "rotation": ["a", "b"], "start": "2026-01-06"},
             "matchmaking": {"lead": "x", "rotation": ["b", "c"], "start": "2026-01-06"}}
    s = spec(teams=teams, overrides=[cover(team="matchmaking")])
    assert primary(s, kst("2026-12-25 00:00"), "matchmaking") == "cover"
    assert primary(s, kst("2026-12-25 00:00"), "sre") != "cover"


# --- the shipped file -----------------------------------------------------------------------------------


def test_the_shipped_file_loads_and_covers_every_team_of_the_services_catalog() -> None:
    catalog = load_services()
    teams = {service.team for service in catalog} | {catalog.sre.team}
    s = load_oncall(teams=teams)
    assert teams <= set(s.teams)
    for team in teams:
        r = roster(s, team, next_handover(s, datetime(2026, 6, 1, tzinfo=UTC)))
        assert tuple(x.level for x in r.levels) == LEVELS
    assert s.handover.weekday == "tuesday"
    assert s.handover.time.isoformat() == "10:00:00"
    assert len(s.teams["sre"].rotation) >= 4  # nobody on call more than one week in four


def test_errors_of_a_loaded_file_name_that_file(tmp_path: Path) -> None:
    raw = shipped()
    raw["oncall"]["teams"]["sre"]["rotation"].append("bob")
    path = tmp_path / "oncall.yaml"
    path.write_text(yaml.safe_dump(raw))
    expected = rf"^{re.escape(str(path))}: oncall\.teams\.sre\.rotation\[4\]: unknown person 'bob' \(not in"
    with pytest.raises(OncallConfigError, match=expected):
        load_oncall(path)


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "oncall.yaml"
    path.write_text("version: 1\noncall: [sre\n")
    with pytest.raises(OncallConfigError, match=rf"^{re.escape(str(path))}: line \d+, column \d+: YAML syntax"):
        load_oncall(path)


def test_a_missing_file_is_an_oncall_config_error(tmp_path: Path) -> None:
    with pytest.raises(OncallConfigError, match=r"oncall\.yaml: cannot read"):
        load_oncall(tmp_path / "oncall.yaml")


# --- validation, one rule per test ----------------------------------------------------------------------


def test_the_top_level_must_be_a_mapping_with_version_1_and_oncall() -> None:
    assert errors(["version", 1]) == [f"{SOURCE}: expected a mapping at the top level"]
    assert errors({"version": 2, "oncall": None, "rotation": []}) == [
        f"{SOURCE}: rotation: unknown field", f"{SOURCE}: version: must be 1, got 2",
        f"{SOURCE}: oncall: expected a mapping of on-call settings"]


def test_an_unknown_field_is_named() -> None:
    raw = document()
    raw["oncall"]["teams"]["sre"]["backup"] = "a"
    assert errors(raw) == [f"{SOURCE}: oncall.teams.sre.backup: unknown field"]


def test_unknown_people_are_named_wherever_they_are() -> None:
    raw = document(executive="ceo", overrides=[cover(who="bob")],
                   holidays={date(2027, 2, 8): {"sre": {"primary": "carol", "secondary": "a"}}})
    raw["oncall"]["teams"]["sre"].update(lead="dave", rotation=["a", "erin", "c"])
    assert errors(raw) == [
        f"{SOURCE}: oncall.executive: unknown person 'ceo' (not in oncall.people)",
        f"{SOURCE}: oncall.teams.sre.lead: unknown person 'dave' (not in oncall.people)",
        f"{SOURCE}: oncall.teams.sre.rotation[1]: unknown person 'erin' (not in oncall.people)",
        f"{SOURCE}: oncall.overrides[0].person: unknown person 'bob' (not in oncall.people)",
        f"{SOURCE}: oncall.holidays.2027-02-08.sre.primary: unknown person 'carol' (not in oncall.people)",
    ]


def test_unknown_teams_in_overrides_and_holidays_are_named() -> None:
    raw = document(overrides=[cover(team="platform")], holidays={date(2027, 2, 8): {"dba": {"primary": "a"}}})
    assert errors(raw) == [
        f"{SOURCE}: oncall.overrides[0].team: unknown team 'platform' (known: sre)",
        f"{SOURCE}: oncall.holidays.2027-02-08.dba: unknown team 'dba' (known: sre)",
    ]


def test_a_start_off_the_handover_weekday_is_refused() -> None:
    raw = document()
    raw["oncall"]["teams"]["sre"]["start"] = date(2026, 1, 7)
    assert errors(raw) == [f"{SOURCE}: oncall.teams.sre.start: 2026-01-07 is a Wednesday; a rotation starts at a "
                           f"handover, on a Tuesday"]


@pytest.mark.parametrize("rotation", [["a"], []])
def test_a_rotation_needs_two_people(rotation: list[str]) -> None:
    raw = document()
    raw["oncall"]["teams"]["sre"]["rotation"] = rotation
    assert errors(raw) == [f"{SOURCE}: oncall.teams.sre.rotation: needs at least 2 people (the secondary is the "
                           f"previous week's primary), got {len(rotation)}"]


def test_a_person_twice_in_a_rotation_is_refused() -> None:
    raw = document()
    raw["oncall"]["teams"]["sre"]["rotation"] = ["a", "b", "a"]
    assert errors(raw) == [f"{SOURCE}: oncall.teams.sre.rotation: 'a' listed more than once; name each person once"]


def test_overlapping_overrides_of_one_team_and_level_are_refused() -> None:
    overrides = [cover(), cover(start="2026-12-26 09:59", until="2026-12-27 00:00", who="a"),
                 cover(start="2026-12-26 10:00", until="2026-12-28 00:00", level="secondary"),  # another level
                 cover(start="2026-12-26 10:00", until="2026-12-28 00:00", who="b")]  # overlaps [1] only
    assert errors(document(overrides=overrides)) == [
        f"{SOURCE}: oncall.overrides[1]: overlaps overrides[0] (team 'sre', level 'primary', from Saturday "
        f"2026-12-26 09:59 KST); which one applies would be ambiguous",
        f"{SOURCE}: oncall.overrides[3]: overlaps overrides[1] (team 'sre', level 'primary', from Saturday "
        f"2026-12-26 10:00 KST); which one applies would be ambiguous",
    ]


@pytest.mark.parametrize("order", [1, -1])
def test_back_to_back_overrides_do_not_overlap(order: int) -> None:
    s = spec(overrides=[cover(), cover(start="2026-12-26 10:00", until="2026-12-27 00:00", who="a")][::order])
    assert primary(s, kst("2026-12-26 09:59")) == "cover"
    assert primary(s, kst("2026-12-26 10:00")) == "a"


@pytest.mark.parametrize("until", ["2026-12-24 18:00", "2026-12-24 17:00"])
def test_an_override_must_end_after_it_starts(until: str) -> None:
    message = errors(document(overrides=[cover(until=until)]))
    assert message == [f"{SOURCE}: oncall.overrides[0].until: must be later than from "
                       f"(Thursday {until} KST is not after Thursday 2026-12-24 18:00 KST)"]


@pytest.mark.parametrize(("value", "why"), [
    (datetime(2026, 12, 24, 18, 0), "YAML read 2026-12-24T18:00:00 as a timestamp; write a KST local date"),
    ("2026-12-24T18:00+09:00", "expected a KST local date and time like"),
    ("2026-12-24 18:00:00", "expected a KST local date and time like"),
    ("2026-12-24", "expected a KST local date and time like"),
    ("2026-02-30 18:00", "'2026-02-30 18:00' is not a real date and time"),
    ("2026-12-24 24:00", "'2026-12-24 24:00' is not a real date and time"),
    (1766566800, "expected a KST local date and time like"),
])
def test_odd_or_naive_datetimes_are_refused(value: object, why: str) -> None:
    override = {**cover(), "from": value}
    message = errors(document(overrides=[override]))
    assert len(message) == 1
    assert message[0].startswith(f"{SOURCE}: oncall.overrides[0].from: {why}")


@pytest.mark.parametrize(("time", "why"), [
    (600, 'write the time in quotes, e.g. "10:00" (YAML read it as the number 600)'),
    ("10h", "expected a KST local time like \"10:00\", got '10h'"),
])
def test_the_handover_time_is_a_quoted_local_time(time: object, why: str) -> None:
    assert errors(document(handover={"weekday": "tuesday", "time": time})) == [
        f"{SOURCE}: oncall.handover.time: {why}"]


def test_slack_and_pagerduty_ids_follow_their_patterns() -> None:
    people = {name: person(i) for i, name in enumerate(["a", "b", "c", "l", "x"])}
    people["a"] = {**people["a"], "slack_user_id": "C07SRE00001"}
    people["b"] = {**people["b"], "pagerduty_user_id": "P12345"}
    message = errors(document(people=people))
    assert [line.split(": String should")[0] for line in message] == [
        f"{SOURCE}: oncall.people.a.slack_user_id", f"{SOURCE}: oncall.people.b.pagerduty_user_id"]


def test_a_holiday_roster_must_name_someone_and_its_date_must_be_a_date() -> None:
    message = errors(document(holidays={"2027-02-08": {"sre": {}}, "Seollal": {"sre": {"primary": "a"}}}))
    assert message == [f"{SOURCE}: oncall.holidays.2027-02-08.sre: name the primary, the secondary or both",
                       f"{SOURCE}: oncall.holidays.Seollal: expected a date like 2026-01-06, got 'Seollal'"]


def test_every_team_owning_a_service_needs_a_rotation() -> None:
    assert errors(document(), teams=["sre", "game-server"]) == [
        f"{SOURCE}: oncall.teams.game-server: missing: team 'game-server' owns a service and needs a rotation"]
    assert parse_oncall(document(), SOURCE, teams=["sre"]).teams.keys() == {"sre"}


def test_all_problems_are_listed_in_one_error() -> None:
    raw = document(overrides=[cover(team="platform", who="bob")])
    raw["oncall"]["teams"]["sre"]["start"] = "2026-01-08"
    assert len(errors(raw, teams=["matchmaking"])) == 4


# --- properties -----------------------------------------------------------------------------------------

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
instants = st.integers(min_value=0, max_value=4 * 365 * 86400).map(lambda s: EPOCH + timedelta(seconds=s))


@st.composite
def rotations(draw: st.DrawFn) -> OncallSpec:
    """A spec with one team, any handover weekday and time, 2 to 6 people, starting on some handover day."""
    weekday = draw(st.sampled_from(WEEKDAYS))
    start = date(2024, 12, 1) + timedelta(days=draw(st.integers(0, 6)))
    start += timedelta(days=(WEEKDAYS.index(weekday) - start.weekday()) % 7)
    size = draw(st.integers(2, 6))
    people = {f"p{i}": person(i) for i in range(size)} | {"l": person(90), "x": person(91), "cover": person(92)}
    return spec(handover={"weekday": weekday, "time": f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}"},
                people=people, teams={"sre": {"lead": "l", "rotation": [f"p{i}" for i in range(size)],
                                              "start": start.isoformat()}})


@SETTINGS
@given(rotations(), instants)
def test_the_roster_is_constant_between_two_handovers(s: OncallSpec, t: datetime) -> None:
    handover, following = handover_at_or_before(s, t), next_handover(s, t)
    assert handover <= t < following
    assert following - handover == timedelta(weeks=1)
    assert roster(s, "sre", t).levels == roster(s, "sre", handover).levels
    assert roster(s, "sre", following - timedelta(microseconds=1)).levels == roster(s, "sre", handover).levels


@SETTINGS
@given(rotations(), instants)
def test_the_primary_of_one_week_is_the_secondary_of_the_next(s: OncallSpec, t: datetime) -> None:
    this_week, next_week = roster(s, "sre", t), roster(s, "sre", next_handover(s, t))
    assert next_week.level("secondary").person == this_week.level("primary").person
    assert next_week.level("primary").person != this_week.level("primary").person


@SETTINGS
@given(rotations(), st.sampled_from(LEVELS), instants, st.integers(1, 30 * 24 * 60), instants)
def test_an_override_applies_exactly_within_its_period(s: OncallSpec, level: str, start: datetime, minutes: int,
                                                       t: datetime) -> None:
    start = start.replace(second=0)
    until = start + timedelta(minutes=minutes)
    fmt = "%Y-%m-%d %H:%M"
    raw = document(**{**s.model_dump(by_alias=True), "handover": {"weekday": s.handover.weekday,
                                                                    "time": s.handover.time.strftime("%H:%M")},
                      "overrides": [cover(level, start.astimezone(KST).strftime(fmt),
                                          until.astimezone(KST).strftime(fmt))]})
    covered = parse_oncall(raw, SOURCE)
    for at in (t, start, until - timedelta(microseconds=1), until, start - timedelta(microseconds=1)):
        assert (roster(covered, "sre", at).level(level).person == "cover") == (start <= at < until)
