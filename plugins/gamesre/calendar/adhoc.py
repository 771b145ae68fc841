"""Checks for ad-hoc maintenance windows and cancellations asked for from the Airflow UI (the Params form).

A request is accepted, or rejected with one clear reason string listing every problem: unknown services, an
end not after the start, a window longer than `limits.max_maintenance` (8 h), a start further in the past
than `limits.adhoc_past_grace` (it would exclude budget already burnt), or an overlap with another
maintenance window of a common service. The accepted window gets a deterministic id, so registering the
same request twice (a retry, a re-run) finds the window already there instead of clashing with itself.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gamesre.calendar.occurrence import MAINTENANCE_KINDS, Occurrence, format_span
from gamesre.calendar.schedule import Calendar
from gamesre.calendar.spec import ALL_SERVICES, check_services, parse_duration_value, parse_instant
from gamesre.core.durations import format_duration
from gamesre.core.time import as_utc

_TICKET_HINT = "a ticket like OPS-1234"


@dataclass(frozen=True)
class WindowDecision:
    """Accepted (with the window to register or cancel) or rejected (with the reason for the person)."""

    accepted: bool
    reason: str
    window: Occurrence | None = None
    conflicts: tuple[Occurrence, ...] = ()
    already_registered: bool = False


def adhoc_window_id(services: tuple[str, ...], start: datetime, end: datetime, ticket: str, tz: ZoneInfo) -> str:
    """`adhoc-20261201-1400-<hash>`: the local start plus a digest of what makes the request unique."""
    local = start.astimezone(tz)
    digest = hashlib.sha256("|".join([",".join(services), start.isoformat(), end.isoformat(), ticket]).encode())
    return f"adhoc-{local:%Y%m%d-%H%M}-{digest.hexdigest()[:8]}"


def check_adhoc_window(
    calendar: Calendar,
    *,
    services: list[str] | tuple[str, ...] | str,
    start: datetime | str,
    reason: str,
    ticket: str,
    owner: str,
    now: datetime,
    duration: timedelta | str | None = None,
    end: datetime | str | None = None,
) -> WindowDecision:
    """Validate an ad-hoc window (give `duration` or `end`); times without an offset are in the calendar's zone."""
    problems: list[str] = []
    tz = calendar.tz
    names: tuple[str, ...] = ()
    try:
        everything = services in (ALL_SERVICES, [ALL_SERVICES], (ALL_SERVICES,))
        names = check_services(ALL_SERVICES if everything else services, calendar.services.names)
    except ValueError as exc:
        problems.append(f"services: {exc}")
    begin: datetime | None = None
    finish: datetime | None = None
    try:
        begin = parse_instant(start, tz)
    except ValueError as exc:
        problems.append(f"start: {exc}")
    if (duration is None) == (end is None):
        problems.append("duration: give either a duration (e.g. 2h) or an end, not both or neither")
    elif duration is not None:
        try:
            length = parse_duration_value(duration)
            finish = begin + length if begin is not None else None
        except ValueError as exc:
            problems.append(f"duration: {exc}")
    else:
        try:
            finish = parse_instant(end, tz)
        except ValueError as exc:
            problems.append(f"end: {exc}")
    if not reason or len(reason.strip()) < 5:
        problems.append("reason: say what the work is (at least 5 characters)")
    if not re.fullmatch(r"[A-Z][A-Z0-9]*-[0-9]+", ticket or ""):
        problems.append(f"ticket: {ticket!r} is not {_TICKET_HINT}")
    if not owner or not owner.strip():
        problems.append("owner: who asks for the window")

    now_utc = as_utc(now)
    limit = calendar.max_maintenance
    if begin is not None and finish is not None:
        if finish <= begin:
            problems.append(f"end: {finish.astimezone(tz):%Y-%m-%d %H:%M %Z} is not after the start "
                            f"{begin.astimezone(tz):%Y-%m-%d %H:%M %Z}")
        elif finish - begin > limit:
            longest = format_duration(int(limit.total_seconds()))
            problems.append(f"duration: {finish - begin} is longer than the {longest} a maintenance window may last")
        if finish <= now_utc:
            problems.append(f"end: the window would already be over ({format_span(begin, finish, tz)})")
        elif begin < now_utc - calendar.spec.limits.adhoc_past_grace:
            problems.append(f"start: {begin.astimezone(tz):%Y-%m-%d %H:%M %Z} is more than "
                            f"{calendar.spec.limits.adhoc_past_grace} in the past; a window cannot exclude budget "
                            "already burnt")
    if problems or begin is None or finish is None:
        return WindowDecision(False, "rejected: " + "; ".join(problems))

    window_id = adhoc_window_id(names, begin, finish, ticket, tz)
    window = Occurrence(id=window_id, kind="adhoc", start=begin, end=finish, services=names, reason=reason.strip(),
                        owner=owner.strip(), ticket=ticket, source=window_id, chaos_forbidden=True)
    existing = calendar.find(window_id)
    if existing is not None and window_id not in calendar.cancelled:
        return WindowDecision(True, f"already registered: {window.describe(tz)}", existing, already_registered=True)
    conflicts = tuple(w for w in calendar.maintenance_overlapping(begin, finish)
                      if set(w.services) & set(names) and w.id != window_id)
    if conflicts:
        listed = "; ".join(f"{w.describe(tz)}" for w in conflicts)
        return WindowDecision(False, f"rejected: overlaps maintenance for a common service: {listed}", None, conflicts)
    return WindowDecision(True, f"accepted: {window.describe(tz)}", window)


def check_cancellation(calendar: Calendar, window_id: str, *, now: datetime) -> WindowDecision:
    """A maintenance window that has not ended may be cancelled (its silences expire, its exclusion goes)."""
    window = calendar.find(window_id)
    if window is None:
        return WindowDecision(False, f"rejected: no window {window_id!r} in the calendar or the store")
    if window_id in calendar.cancelled:
        return WindowDecision(True, f"already cancelled: {window.describe(calendar.tz)}", window,
                              already_registered=True)
    if window.kind not in MAINTENANCE_KINDS:
        return WindowDecision(False, f"rejected: {window_id} is a {window.kind}, not a maintenance window; "
                                     "change include/config/calendar.yaml instead")
    if window.end <= as_utc(now):
        return WindowDecision(False, f"rejected: {window.describe(calendar.tz)} has already ended")
    return WindowDecision(True, f"cancel: {window.describe(calendar.tz)}", window)
