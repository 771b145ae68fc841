"""Loading and validating include/config/calendar.yaml; every error names the file, the item and the field.

Three layers: YAML syntax, the models (shapes, types, inverted windows, unknown services), then rules across
items: unique ids, maintenance windows at most `limits.max_maintenance` long, events at most
`limits.max_event`, no two maintenance windows of a common service overlapping (one-off against one-off,
against every occurrence of a recurrence, and recurrence against recurrence), no two events of a common
service overlapping (their scaling would fight).
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from gamesre.calendar.occurrence import Occurrence, format_span
from gamesre.calendar.recurrence import WEEK, expand
from gamesre.calendar.schedule import Calendar, one_off_occurrence
from gamesre.calendar.spec import CalendarSpec, RecurringWindow, validation_context
from gamesre.core.config import SpecError, display_path, read_yaml
from gamesre.core.durations import format_duration
from gamesre.core.paths import CONFIG_DIR
from gamesre.core.services import ServiceCatalog, error_location, format_loc, load_services

CALENDAR_PATH = CONFIG_DIR / "calendar.yaml"


class CalendarError(SpecError):
    """An invalid calendar; the message names the file, the item and the field."""


def _item_label(raw: Any, loc: tuple[int | str, ...]) -> tuple[str, tuple[int | str, ...]]:
    """(item label, remaining field path) for a pydantic error location within calendar.yaml."""
    def pick(*keys: int | str) -> Any:
        node = raw
        for key in keys:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    if len(loc) >= 3 and loc[0] == "maintenance" and loc[1] in ("recurring", "one_off") and isinstance(loc[2], int):
        item = pick(*loc[:3])
        ident = item.get("id") if isinstance(item, dict) else None
        return f"maintenance.{loc[1]}[{loc[2]}]" + (f" {ident!r}" if ident else ""), loc[3:]
    if len(loc) >= 2 and loc[0] == "events" and isinstance(loc[1], int):
        item = pick(*loc[:2])
        ident = item.get("id") if isinstance(item, dict) else None
        return f"events[{loc[1]}]" + (f" {ident!r}" if ident else ""), loc[2:]
    if len(loc) >= 3 and loc[0] == "holidays" and loc[1] == "days" and isinstance(loc[2], int):
        item = pick(*loc[:3])
        day = item.get("date") if isinstance(item, dict) else None
        return f"holidays.days[{loc[2]}]" + (f" {day}" if day else ""), loc[3:]
    return "", loc


def _model_errors(exc: ValidationError, raw: Any, source: str) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        loc, message = error_location(err)
        item, rest = _item_label(raw, loc)
        if item:
            lines.append(f"{source}: {item}: {format_loc(rest, '(item)')}: {message}")
        else:
            lines.append(f"{source}: {format_loc(rest)}: {message}")
    return lines


def _maintenance_label(w: Occurrence, tz: ZoneInfo) -> str:
    return f"{w.id} ({format_span(w.start, w.end, tz)})"


def _recurrence_pairs_overlap(a: RecurringWindow, b: RecurringWindow, tz: ZoneInfo) -> Occurrence | None:
    """A clash of two weekly recurrences: both repeat every week, so two weeks of their common range decide."""
    if not set(a.services) & set(b.services):
        return None
    starts = [d for d in (a.from_, b.from_) if d is not None]
    ends = [d for d in (a.until, b.until) if d is not None]
    first = max(starts) if starts else None
    last = min(ends) if ends else None
    if first is not None and last is not None and last < first:
        return None
    anchor = first or date(2026, 1, 5)
    lo = datetime.combine(anchor, datetime.min.time(), tzinfo=tz) - timedelta(days=1)
    hi = lo + 2 * WEEK + timedelta(days=2)
    if last is not None:
        hi = min(hi, datetime.combine(last, datetime.min.time(), tzinfo=tz) + timedelta(days=2))
    occurrences_b = list(expand(b, tz, lo, hi))
    for x in expand(a, tz, lo, hi):
        for y in occurrences_b:
            if x.overlaps(y.start, y.end):
                return y
    return None


def cross_item_problems(spec: CalendarSpec, source: str) -> Iterator[str]:
    """Rules across items: unique ids, limits, no overlapping maintenance or events for a common service."""
    tz = spec.tz
    limit = spec.limits.max_maintenance
    recurring = spec.maintenance.recurring
    one_offs = spec.maintenance.one_off
    seen: dict[str, str] = {}
    labelled = ([(f"maintenance.recurring[{i}] {r.id!r}", r.id) for i, r in enumerate(recurring)]
                + [(f"maintenance.one_off[{i}] {w.id!r}", w.id) for i, w in enumerate(one_offs)]
                + [(f"events[{i}] {e.id!r}", e.id) for i, e in enumerate(spec.events)])
    for label, ident in labelled:
        if ident in seen:
            yield f"{source}: {label}: id: duplicate id (first used by {seen[ident]})"
        else:
            seen[ident] = label
    days: dict[Any, int] = {}
    for i, day in enumerate(spec.holidays.days):
        if day.date in days:
            yield f"{source}: holidays.days[{i}] {day.date}: date: listed twice (first as item #{days[day.date]})"
        days.setdefault(day.date, i)

    for i, r in enumerate(recurring):
        if r.duration > limit:
            length = format_duration(int(r.duration.total_seconds()))
            yield (f"{source}: maintenance.recurring[{i}] {r.id!r}: duration: {length} is longer than "
                   f"limits.max_maintenance ({format_duration(int(limit.total_seconds()))})")
    for i, w in enumerate(one_offs):
        if w.end - w.start > limit:
            yield (f"{source}: maintenance.one_off[{i}] {w.id!r}: end: the window lasts {w.end - w.start}, longer "
                   f"than limits.max_maintenance ({format_duration(int(limit.total_seconds()))})")
    for i, e in enumerate(spec.events):
        if e.end - e.start > spec.limits.max_event:
            yield (f"{source}: events[{i}] {e.id!r}: end: the event lasts {e.end - e.start}, longer than "
                   f"limits.max_event ({format_duration(int(spec.limits.max_event.total_seconds()))})")

    # Overlapping maintenance for a common service: one-off vs one-off, one-off vs recurrence, recurrence pairs.
    occurrences = [one_off_occurrence(w) for w in one_offs]
    for (i, a), (j, b) in combinations(enumerate(occurrences), 2):
        common = sorted(set(a.services) & set(b.services))
        if common and a.overlaps(b.start, b.end):
            yield (f"{source}: maintenance.one_off[{j}] {b.id!r}: start: overlaps maintenance.one_off[{i}] "
                   f"{_maintenance_label(a, tz)} for {', '.join(common)}")
    for j, window in enumerate(occurrences):
        for r in recurring:
            for occurrence in expand(r, tz, window.start, window.end):
                common = sorted(set(window.services) & set(occurrence.services))
                if common:
                    yield (f"{source}: maintenance.one_off[{j}] {window.id!r}: start: overlaps the recurring window "
                           f"{_maintenance_label(occurrence, tz)} for {', '.join(common)}")
                    break
    for (i, first), (j, second) in combinations(enumerate(recurring), 2):
        clash = _recurrence_pairs_overlap(second, first, tz)
        if clash is not None:
            yield (f"{source}: maintenance.recurring[{j}] {second.id!r}: start: its occurrences overlap those of "
                   f"maintenance.recurring[{i}] {first.id!r} (e.g. {_maintenance_label(clash, tz)}) for "
                   f"{', '.join(sorted(set(first.services) & set(second.services)))}")
    for (i, earlier), (j, later) in combinations(enumerate(spec.events), 2):
        common = sorted(set(earlier.services) & set(later.services))
        if common and earlier.start < later.end and later.start < earlier.end:
            yield (f"{source}: events[{j}] {later.id!r}: start: overlaps events[{i}] {earlier.id!r} "
                   f"({format_span(earlier.start, earlier.end, tz)}) for {', '.join(common)}; one event at a time "
                   "per service")


def parse_calendar(raw: object, source: str = "calendar.yaml", services: ServiceCatalog | None = None) -> Calendar:
    """Validate a parsed calendar.yaml document; every problem is collected into one CalendarError."""
    services = services if services is not None else load_services()
    if not isinstance(raw, dict):
        raise CalendarError(f"{source}: expected a mapping with version, timezone, maintenance, holidays, events")
    zone = raw.get("timezone")
    try:
        tz = ZoneInfo(zone) if isinstance(zone, str) else None
    except (ZoneInfoNotFoundError, ValueError):
        tz = None
    if tz is None:
        raise CalendarError(f"{source}: timezone: {zone!r} is not an IANA time zone such as Asia/Seoul")
    try:
        spec = CalendarSpec.model_validate(raw, context=validation_context(tz, services.names))
    except ValidationError as exc:
        raise CalendarError("\n".join(_model_errors(exc, raw, source))) from None
    problems = list(cross_item_problems(spec, source))
    if problems:
        raise CalendarError("\n".join(problems))
    return Calendar(spec, services, source)


def load_calendar(path: Path | str = CALENDAR_PATH, services: ServiceCatalog | None = None) -> Calendar:
    """Read and validate calendar.yaml (services from services.yaml unless given)."""
    source = display_path(path)
    try:
        raw = read_yaml(path, source)
    except SpecError as exc:
        raise CalendarError(str(exc)) from exc
    return parse_calendar(raw, source, services)
