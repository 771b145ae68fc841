"""Incident ids carry the KST day they opened; channel names follow Slack's rules and keep that day."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamesre.core.time import KST
from gamesre.incidents.ids import IncidentId, channel_name, incident_id, next_sequence, parse_incident_id


def test_the_id_is_the_kst_day_and_a_three_digit_sequence() -> None:
    assert incident_id(datetime(2026, 12, 7, 3, 0, tzinfo=UTC), 1) == "INC-20261207-001"
    assert incident_id(datetime(2026, 12, 7, 3, 0, tzinfo=UTC), 999) == "INC-20261207-999"


def test_the_kst_day_starts_at_15_00_utc() -> None:
    assert incident_id(datetime(2026, 12, 6, 14, 59, 59, tzinfo=UTC), 1) == "INC-20261206-001"
    assert incident_id(datetime(2026, 12, 6, 15, 0, tzinfo=UTC), 1) == "INC-20261207-001"
    assert incident_id(datetime(2026, 12, 7, 0, 0, tzinfo=KST), 1) == "INC-20261207-001"


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        incident_id(datetime(2026, 12, 7, 3, 0), 1)


@pytest.mark.parametrize("sequence", [0, 1000, -1, True])
def test_the_sequence_is_1_to_999(sequence: int) -> None:
    with pytest.raises(ValueError, match=r"must be a whole number from 1 to 999"):
        incident_id(datetime(2026, 12, 7, tzinfo=UTC), sequence)


def test_the_next_sequence_counts_within_the_kst_day() -> None:
    opened = datetime(2026, 12, 6, 15, 30, tzinfo=UTC)  # 2026-12-07 00:30 KST
    assert next_sequence(opened, []) == 1
    existing = ["INC-20261206-007", "INC-20261207-001", "INC-20261207-004", "INC-20261208-009"]
    assert next_sequence(opened, existing) == 5
    assert next_sequence(opened - timedelta(minutes=31), existing) == 8  # 23:59 KST on the 6th


def test_the_next_sequence_refuses_a_full_day_and_a_malformed_id() -> None:
    opened = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="no incident id left for 2026-12-07 KST"):
        next_sequence(opened, ["INC-20261207-999"])
    with pytest.raises(ValueError, match="'inc-20261207-001' is not an incident id"):
        next_sequence(opened, ["inc-20261207-001"])


def test_an_id_parses_to_its_day_and_sequence() -> None:
    parsed = parse_incident_id("INC-20261207-012")
    assert parsed == IncidentId(date(2026, 12, 7), 12)
    assert str(parsed) == "INC-20261207-012"


@pytest.mark.parametrize(("text", "message"), [
    ("INC-2026127-001", "is not an incident id like INC-20261207-001"),
    ("INC-20261207-1", "is not an incident id like INC-20261207-001"),
    ("INC-20261207-0001", "is not an incident id like INC-20261207-001"),
    (" INC-20261207-001", "is not an incident id like INC-20261207-001"),
    ("INC-20261307-001", "is not an incident id: month must be in 1..12"),
    ("INC-20261207-000", "is not an incident id: sequences start at 001"),
])
def test_a_malformed_id_is_refused_naming_it(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{text!r} {message}")):
        parse_incident_id(text)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)),
       st.integers(1, 999))
def test_an_id_parses_back(opened: datetime, sequence: int) -> None:
    parsed = parse_incident_id(incident_id(opened, sequence))
    assert parsed == IncidentId(opened.astimezone(KST).date(), sequence)


def test_the_channel_is_the_date_and_a_slug_of_the_title() -> None:
    assert channel_name("INC-20261207-001", "Game server down") == "inc-20261207-game-server-down"
    assert channel_name("INC-20261207-002", "  Matchmaking: p95 > 1s (Ranked_Solo)! ") == (
        "inc-20261207-matchmaking-p95-1s-ranked-solo")


def test_korean_and_other_letters_are_dropped_and_accents_kept_as_letters() -> None:
    assert channel_name("INC-20261207-001", "게임 서버 다운 game-server") == "inc-20261207-game-server"
    assert channel_name("INC-20261207-001", "Café Überlast") == "inc-20261207-cafe-uberlast"


def test_a_title_without_ascii_letters_falls_back_to_the_sequence() -> None:
    assert channel_name("INC-20261207-003", "게임 서버 다운") == "inc-20261207-003"
    assert channel_name("INC-20261207-003", "---") == "inc-20261207-003"


def test_a_long_title_is_cut_between_words_within_80_characters() -> None:
    name = channel_name("INC-20261207-001", "matchmaking " * 10)
    assert len(name) <= 80
    assert name.startswith("inc-20261207-matchmaking-")
    assert not name.endswith("-")
    assert all(part == "matchmaking" for part in name.removeprefix("inc-20261207-").split("-"))
    one_word = channel_name("INC-20261207-001", "x" * 100)
    assert one_word == "inc-20261207-" + "x" * 67


def test_the_channel_of_a_malformed_id_is_refused() -> None:
    with pytest.raises(ValueError, match="'INC-1' is not an incident id"):
        channel_name("INC-1", "down")


@given(st.text(max_size=200), st.integers(1, 999))
def test_every_channel_name_follows_slacks_rules(title: str, sequence: int) -> None:
    name = channel_name(f"INC-20261207-{sequence:03d}", title)
    assert re.fullmatch(r"[a-z0-9_-]{1,80}", name)
    assert name.startswith("inc-20261207-")
    assert not name.endswith("-")
