"""The operations calendar: maintenance windows, holidays and live-ops events (include/config/calendar.yaml).

Pure: the only I/O is reading the YAML. Load it with `load_calendar()` and ask the `Calendar`:
`windows_covering(t)`, `windows_overlapping(a, b)`, `is_maintenance(t, service)`, `is_event_period(t, service)`,
`chaos_allowed(t, service)`, `deploy_allowed(t, service)`, `strict_slo(t, service)`. Ad-hoc windows and
cancellations from the UI are checked with `check_adhoc_window` and `check_cancellation`.
"""
from __future__ import annotations

from gamesre.calendar.adhoc import WindowDecision, adhoc_window_id, check_adhoc_window, check_cancellation
from gamesre.calendar.load import CALENDAR_PATH, CalendarError, load_calendar, parse_calendar
from gamesre.calendar.occurrence import (
    KINDS,
    MAINTENANCE_KINDS,
    Occurrence,
    ServiceScaling,
    format_span,
    occurrence_from_store_row,
)
from gamesre.calendar.recurrence import expand
from gamesre.calendar.schedule import Calendar, Verdict
from gamesre.calendar.spec import CalendarSpec
from gamesre.core.time import as_utc

__all__ = [
    "CALENDAR_PATH",
    "KINDS",
    "MAINTENANCE_KINDS",
    "Calendar",
    "CalendarError",
    "CalendarSpec",
    "Occurrence",
    "ServiceScaling",
    "Verdict",
    "WindowDecision",
    "adhoc_window_id",
    "as_utc",
    "check_adhoc_window",
    "check_cancellation",
    "expand",
    "format_span",
    "load_calendar",
    "occurrence_from_store_row",
    "parse_calendar",
]
