"""Incident ids (`INC-20261207-001`: the KST day it opened and a sequence within that day) and Slack channel names.

The date is the KST one because people say "yesterday evening's incident" in Seoul; an incident opened at
2026-12-06T15:00Z is INC-20261207-... The channel is `inc-<yyyymmdd>-<short-name>` (incident-response.md).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from gamesre.core.time import KST, as_utc

MAX_SEQUENCE = 999
CHANNEL_MAX = 80  # Slack's limit on a channel name
_ID = re.compile(r"^INC-(\d{4})(\d{2})(\d{2})-(\d{3})$")


@dataclass(frozen=True)
class IncidentId:
    day: date  # the KST day the incident opened
    sequence: int  # 1..999 within that day

    def __str__(self) -> str:
        return f"INC-{self.day:%Y%m%d}-{self.sequence:03d}"


def kst_day(at: datetime) -> date:
    return as_utc(at).astimezone(KST).date()


def incident_id(opened_at: datetime, sequence: int) -> str:
    """`INC-<KST yyyymmdd>-<sequence, 3 digits>`; ValueError outside 1..999 or for a naive datetime."""
    if type(sequence) is not int or not 1 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence {sequence!r}: must be a whole number from 1 to {MAX_SEQUENCE}")
    return str(IncidentId(kst_day(opened_at), sequence))


def parse_incident_id(text: str) -> IncidentId:
    """The day and sequence of an id like INC-20261207-001; ValueError naming the text otherwise."""
    match = _ID.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not an incident id like INC-20261207-001")
    year, month, day, sequence = (int(g) for g in match.groups())
    try:
        when = date(year, month, day)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an incident id: {exc}") from None
    if sequence == 0:
        raise ValueError(f"{text!r} is not an incident id: sequences start at 001")
    return IncidentId(when, sequence)


def next_sequence(opened_at: datetime, existing_ids: Iterable[str]) -> int:
    """1 + the highest sequence among the ids of opened_at's KST day (1 for the day's first incident); ValueError
    for a malformed id or when the day has used all 999."""
    day = kst_day(opened_at)
    used = [parsed.sequence for parsed in map(parse_incident_id, existing_ids) if parsed.day == day]
    sequence = max(used, default=0) + 1
    if sequence > MAX_SEQUENCE:
        raise ValueError(f"no incident id left for {day} KST: {MAX_SEQUENCE} incidents opened that day")
    return sequence


def slug(title: str) -> str:
    """Lowercase ASCII letters and digits of a title joined by '-': accents are dropped from Latin letters,
    other scripts (Korean) are dropped entirely."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    return "-".join(re.findall(r"[a-z0-9]+", ascii_text))


def channel_name(incident_id: str, title: str) -> str:
    """The incident's Slack channel: `inc-<yyyymmdd>-<slug of the title>`, at most 80 characters, cut between
    words when it can be; `inc-<yyyymmdd>-<sequence>` when the title has no ASCII letter or digit. Two incidents
    of one day with the same title get the same name: the caller tells them apart (Slack refuses a taken name)."""
    parsed = parse_incident_id(incident_id)
    prefix = f"inc-{parsed.day:%Y%m%d}-"
    words = slug(title)
    room = CHANNEL_MAX - len(prefix)
    if len(words) > room:
        cut = words[:room]
        # a whole word when the cut falls inside one (and a whole word fits)
        words = cut.rsplit("-", 1)[0] if "-" in cut and words[room] != "-" else cut
        words = words.strip("-")
    return prefix + (words or f"{parsed.sequence:03d}")
