"""include/config/oncall.yaml: who is on call for a team at an instant, at four levels.

Primary rotates weekly through a team's rotation, handed over at `handover` (Tuesday 10:00 KST, after the
weekly maintenance window); secondary is the previous week's primary (include/runbooks/oncall-escalation.md);
tertiary is the team lead; executive is the CTO. Per level, an override (someone covering a level of a team
for a while) comes before the holiday roster (named people for a whole KST day), which comes before the
rotation, the lead and the executive.

Pure: reads one YAML file. Every error raises OncallConfigError naming the file and the field, e.g.
`include/config/oncall.yaml: oncall.teams.sre.rotation[2]: unknown person 'bob' (not in oncall.people)`.
"""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, field_validator, model_validator

from gamesre.core.config import SpecError, display_path, header_problems, read_yaml
from gamesre.core.paths import CONFIG_DIR
from gamesre.core.services import validation_problems
from gamesre.core.time import KST, LocalDate, LocalTime, as_utc

ONCALL_PATH = CONFIG_DIR / "oncall.yaml"

LEVELS = ("primary", "secondary", "tertiary", "executive")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")  # date.weekday() order
Level = Literal["primary", "secondary", "tertiary", "executive"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

_SLUG = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
_LOCAL_DATETIME = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2}) ([0-9]{2}:[0-9]{2})$")
_EXAMPLE_DATETIME = '"2026-12-24 18:00"'


class OncallConfigError(SpecError):
    """An invalid oncall.yaml; the message names the file and the field."""


# --- KST wall-clock values ------------------------------------------------------------------------------


def _local_datetime(value: object) -> datetime:
    """A KST wall-clock time written "2026-12-24 18:00", as an aware UTC datetime.

    One spelling only: an offset, seconds or an unquoted YAML timestamp would each leave a reader unsure
    which clock the file means.
    """
    if isinstance(value, datetime | date):
        raise ValueError(f"YAML read {value.isoformat()} as a timestamp; write a KST local date and time in "
                         f"quotes, like {_EXAMPLE_DATETIME}")
    match = _LOCAL_DATETIME.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a KST local date and time like {_EXAMPLE_DATETIME} (no offset, no seconds), "
                         f"got {value!r}")
    try:
        local = datetime.fromisoformat(f"{match[1]}T{match[2]}")
    except ValueError:
        raise ValueError(f"{value!r} is not a real date and time") from None
    return local.replace(tzinfo=KST).astimezone(UTC)


LocalDateTime = Annotated[datetime, PlainValidator(_local_datetime)]
PersonId = Annotated[str, Field(pattern=_SLUG, max_length=40)]
TeamName = Annotated[str, Field(pattern=_SLUG, max_length=40)]


def kst_text(at: datetime) -> str:
    """An instant as people read it here: `Tuesday 2026-01-06 10:00` (KST; weekday in English, whatever the
    locale)."""
    local = as_utc(at).astimezone(KST)
    return f"{WEEKDAYS[local.weekday()].capitalize()} {local:%Y-%m-%d %H:%M}"


# --- the models -----------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Handover(_Model):
    """When the weekly rotation hands over, in KST."""

    weekday: Weekday
    time: LocalTime


class Person(_Model):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    slack_user_id: Annotated[str, Field(pattern=r"^U[A-Z0-9]{8,}$")]
    pagerduty_user_id: Annotated[str, Field(pattern=r"^P[A-Z0-9]{6}$")] | None = None


class Team(_Model):
    """A team's weekly rotation: rotation[0] is primary from the handover on `start`, rotation[1] a week later."""

    lead: PersonId
    rotation: list[PersonId]
    start: LocalDate

    @field_validator("rotation")
    @classmethod
    def _rotation(cls, rotation: list[str]) -> list[str]:
        if len(rotation) < 2:
            raise ValueError(f"needs at least 2 people (the secondary is the previous week's primary), "
                             f"got {len(rotation)}")
        twice = sorted({person for person in rotation if rotation.count(person) > 1})
        if twice:
            raise ValueError(f"{', '.join(map(repr, twice))} listed more than once; name each person once")
        return rotation


class Override(_Model):
    """Someone covering one level of one team over [from, until), KST wall-clock times."""

    team: TeamName
    level: Level
    person: PersonId
    from_: LocalDateTime = Field(alias="from")
    until: LocalDateTime
    reason: Annotated[str, Field(min_length=5, max_length=500)]

    @model_validator(mode="after")
    def _order(self) -> Override:
        if self.from_ >= self.until:
            raise ValueError(f"until: must be later than from ({kst_text(self.until)} KST is not after "
                             f"{kst_text(self.from_)} KST)")
        return self

    def covers(self, at: datetime) -> bool:
        return self.from_ <= at < self.until


class HolidayRoster(_Model):
    """Who replaces the rotation's primary and secondary of a team for a whole KST day."""

    primary: PersonId | None = None
    secondary: PersonId | None = None

    @model_validator(mode="after")
    def _someone(self) -> HolidayRoster:
        if self.primary is None and self.secondary is None:
            raise ValueError("name the primary, the secondary or both")
        return self


class OncallSpec(_Model):
    """The validated `oncall` block of oncall.yaml."""

    handover: Handover
    people: dict[PersonId, Person] = Field(min_length=1)
    executive: PersonId
    teams: dict[TeamName, Team] = Field(min_length=1)
    overrides: list[Override] = Field(default_factory=list)
    holidays: dict[LocalDate, dict[TeamName, HolidayRoster]] = Field(default_factory=dict)

    def team(self, name: str) -> Team:
        """The team's rotation; ValueError naming the known teams otherwise."""
        try:
            return self.teams[name]
        except KeyError:
            raise ValueError(f"unknown team {name!r} (known: {', '.join(sorted(self.teams))})") from None


# --- who is on call -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Responder:
    """One level of a roster: who, how to reach them, and why it is them."""

    level: str
    person: str
    name: str
    slack_user_id: str
    pagerduty_user_id: str | None
    why: str


@dataclass(frozen=True)
class Roster:
    """A team's four on-call levels at one instant (UTC), in LEVELS order."""

    team: str
    at: datetime
    levels: tuple[Responder, ...]

    def level(self, name: str) -> Responder:
        for responder in self.levels:
            if responder.level == name:
                return responder
        raise ValueError(f"unknown level {name!r} (levels: {', '.join(LEVELS)})")

    def to_dict(self) -> dict[str, Any]:
        return {"team": self.team, "at": self.at.isoformat().replace("+00:00", "Z"),
                "levels": [{"level": r.level, "person": r.person, "name": r.name, "slack_user_id": r.slack_user_id,
                            "pagerduty_user_id": r.pagerduty_user_id, "why": r.why} for r in self.levels]}


def _handover_on(spec: OncallSpec, day: date) -> datetime:
    """The handover instant (UTC) on a KST date, through the zone's rules rather than a fixed +09:00."""
    return datetime.combine(day, spec.handover.time, tzinfo=KST).astimezone(UTC)


def handover_at_or_before(spec: OncallSpec, at: datetime) -> datetime:
    """The latest weekly handover at or before `at` (aware), as an aware UTC datetime."""
    at = as_utc(at)
    local = at.astimezone(KST)
    day = local.date() - timedelta(days=(local.weekday() - WEEKDAYS.index(spec.handover.weekday)) % 7)
    if _handover_on(spec, day) > at:
        day -= timedelta(days=7)
    return _handover_on(spec, day)


def next_handover(spec: OncallSpec, at: datetime) -> datetime:
    """The first weekly handover strictly after `at` (aware), as an aware UTC datetime."""
    last = handover_at_or_before(spec, at)
    return _handover_on(spec, last.astimezone(KST).date() + timedelta(days=7))


def roster(spec: OncallSpec, team: str, at: datetime) -> Roster:
    """Who is on call for `team` at `at` (aware): per level, an override, else the holiday roster of the KST
    day, else the rotation (primary, secondary), the team lead (tertiary) and the executive.

    ValueError for an unknown team, a naive `at`, or an instant before the team's rotation starts.
    """
    at = as_utc(at)
    settings = spec.team(team)
    first = _handover_on(spec, settings.start)
    if at < first:
        raise ValueError(f"the on-call rotation of {team!r} starts at {kst_text(first)} KST "
                         f"(oncall.teams.{team}.start); {kst_text(at)} KST is before it")
    handover = handover_at_or_before(spec, at)
    week = (handover.astimezone(KST).date() - settings.start).days // 7  # 0 in the first week
    rotation = settings.rotation
    primary = rotation[week % len(rotation)]
    previous = rotation[(week - 1) % len(rotation)]
    if week == 0:
        previous_why = (f"last of the rotation of {team}, standing in for the previous week's primary (the "
                        f"rotation began {kst_text(first)} KST)")
    else:
        previous_why = f"previous week's primary of {team} (rotation week {week}, until {kst_text(handover)} KST)"
    chosen: dict[str, tuple[str, str]] = {
        "primary": (primary, f"rotation week {week + 1} of {team} (since {kst_text(handover)} KST): {primary}"),
        "secondary": (previous, previous_why),
        "tertiary": (settings.lead, f"team lead of {team}"),
        "executive": (spec.executive, "executive (CTO)"),
    }
    day = at.astimezone(KST).date()
    holiday = spec.holidays.get(day, {}).get(team)
    if holiday is not None:
        for level, person in (("primary", holiday.primary), ("secondary", holiday.secondary)):
            if person is not None:
                chosen[level] = (person, f"holiday roster of {day.isoformat()}")
    for override in spec.overrides:  # overlaps are refused on load: at most one per level covers `at`
        if override.team == team and override.covers(at):
            chosen[override.level] = (override.person,
                                      f"override until {kst_text(override.until)} KST: {override.reason}")
    levels = []
    for level in LEVELS:
        person, why = chosen[level]
        who = spec.people[person]
        levels.append(Responder(level, person, who.name, who.slack_user_id, who.pagerduty_user_id, why))
    return Roster(team, at, tuple(levels))


# --- loading --------------------------------------------------------------------------------------------


def _reference_problems(spec: OncallSpec, teams: Collection[str] | None) -> list[tuple[str, str]]:
    """(field path, message) for what pydantic cannot see alone: names of people and teams, start weekdays,
    overlapping overrides, the teams of the services catalog."""
    problems: list[tuple[str, str]] = []
    known_teams = ", ".join(sorted(spec.teams))

    def person(path: str, name: str | None) -> None:
        if name is not None and name not in spec.people:
            problems.append((path, f"unknown person {name!r} (not in oncall.people)"))

    def team(path: str, name: str) -> bool:
        if name not in spec.teams:
            problems.append((path, f"unknown team {name!r} (known: {known_teams})"))
            return False
        return True

    person("oncall.executive", spec.executive)
    for name, settings in spec.teams.items():
        person(f"oncall.teams.{name}.lead", settings.lead)
        for i, member in enumerate(settings.rotation):
            person(f"oncall.teams.{name}.rotation[{i}]", member)
        if WEEKDAYS[settings.start.weekday()] != spec.handover.weekday:
            problems.append((f"oncall.teams.{name}.start",
                             f"{settings.start.isoformat()} is a {WEEKDAYS[settings.start.weekday()].capitalize()}; "
                             f"a rotation starts at a handover, on a {spec.handover.weekday.capitalize()}"))
    for i, override in enumerate(spec.overrides):
        team(f"oncall.overrides[{i}].team", override.team)
        person(f"oncall.overrides[{i}].person", override.person)
    for (i, a), (j, b) in combinations(enumerate(spec.overrides), 2):
        if a.team == b.team and a.level == b.level and a.from_ < b.until and b.from_ < a.until:
            problems.append((f"oncall.overrides[{j}]",
                             f"overlaps overrides[{i}] (team {a.team!r}, level {a.level!r}, from "
                             f"{kst_text(max(a.from_, b.from_))} KST); which one applies would be ambiguous"))
    for day, rosters in spec.holidays.items():
        for name, holiday in rosters.items():
            path = f"oncall.holidays.{day.isoformat()}.{name}"
            if team(path, name):
                person(f"{path}.primary", holiday.primary)
                person(f"{path}.secondary", holiday.secondary)
    for name in sorted(set(teams or ()) - set(spec.teams)):
        problems.append((f"oncall.teams.{name}", f"missing: team {name!r} owns a service and needs a rotation"))
    return problems


def _dates_as_text(body: dict[str, Any]) -> dict[str, Any]:
    """The holiday dates as ISO text, so that an error's field path reads `holidays.2027-02-08.sre`."""
    holidays = body.get("holidays")
    if not isinstance(holidays, dict):
        return body
    keys = {k: k.isoformat() if isinstance(k, date) and not isinstance(k, datetime) else k for k in holidays}
    return {**body, "holidays": {keys[k]: v for k, v in holidays.items()}}


def parse_oncall(raw: object, source: str = "oncall.yaml", teams: Collection[str] | None = None) -> OncallSpec:
    """Validate an oncall.yaml document; `teams` (those owning a service, and the SRE team) must each have a
    rotation. Every problem is listed in one OncallConfigError."""
    if not isinstance(raw, dict):
        raise OncallConfigError(f"{source}: expected a mapping at the top level")
    lines = header_problems(raw, source, "oncall")
    body = raw.get("oncall")
    if not isinstance(body, dict):
        raise OncallConfigError("\n".join([*lines, f"{source}: oncall: expected a mapping of on-call settings"]))
    try:
        spec = OncallSpec.model_validate(_dates_as_text(body))
    except ValidationError as exc:
        lines += [f"{source}: oncall.{path.removesuffix('.[key]')}: {msg}" for path, msg in validation_problems(exc)]
        raise OncallConfigError("\n".join(lines)) from None
    lines += [f"{source}: {path}: {msg}" for path, msg in _reference_problems(spec, teams)]
    if lines:
        raise OncallConfigError("\n".join(lines))
    return spec


def load_oncall(path: Path | str = ONCALL_PATH, teams: Collection[str] | None = None) -> OncallSpec:
    """Read and validate oncall.yaml."""
    source = display_path(path)
    try:
        raw = read_yaml(path, source)
    except SpecError as exc:
        raise OncallConfigError(str(exc)) from exc
    return parse_oncall(raw, source, teams)
