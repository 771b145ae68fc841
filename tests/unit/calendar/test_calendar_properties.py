"""Properties of window queries over arbitrary calendars and instants (hypothesis)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gamesre.calendar import Calendar, expand, parse_calendar
from gamesre.core.services import load_services
from gamesre.core.time import KST

SERVICES = load_services()
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]

instants = st.integers(min_value=0, max_value=3 * 365 * 86400).map(lambda s: EPOCH + timedelta(seconds=s))


@st.composite
def recurrences(draw: st.DrawFn, ident: str = "weekly") -> dict[str, Any]:
    minutes = draw(st.integers(min_value=1, max_value=8 * 60))
    return {"id": ident, "weekday": draw(st.sampled_from(WEEKDAYS)),
            "start": f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}",
            "duration": f"{minutes}m", "services": draw(st.sampled_from(["all", ["game-server"], ["matchmaking"]])),
            "reason": "weekly work", "owner": "sre", "ticket": "OPS-1"}


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    recurring = draw(recurrences("weekly"))
    start = draw(instants)
    one_off = {"id": "one-off", "start": start.isoformat(),
               "end": (start + timedelta(minutes=draw(st.integers(1, 480)))).isoformat(),
               "services": ["game-server"], "reason": "planned work", "owner": "sre", "ticket": "OPS-2"}
    event_start = draw(instants)
    event = {"id": "event", "name": "Event", "start": event_start.isoformat(),
             "end": (event_start + timedelta(hours=draw(st.integers(1, 24 * 20)))).isoformat(),
             "services": ["matchmaking"]}
    raw = {"version": 1, "timezone": "Asia/Seoul", "events": [event],
           "holidays": {"days": [{"date": draw(instants).date().isoformat(), "name": "holiday"}]},
           "maintenance": {"recurring": [recurring]}}
    base = parse_calendar(raw, "property.yaml", SERVICES)
    # The one-off window joins only when it does not clash with the recurrence (the loader would refuse it).
    candidate = {**raw, "maintenance": {"recurring": [recurring], "one_off": [one_off]}}
    try:
        return parse_calendar(candidate, "property.yaml", SERVICES)
    except ValueError:
        return base


@SETTINGS
@given(calendars(), instants, st.sampled_from([None, "game-server", "matchmaking"]))
def test_covering_is_a_subset_of_overlapping_the_next_minute(cal: Calendar, t: datetime, service: str | None) -> None:
    covering = cal.windows_covering(t, service=service)
    overlapping = cal.windows_overlapping(t, t + timedelta(minutes=1), service=service)
    assert set(covering) <= set(overlapping)
    assert all(w.start <= t < w.end for w in covering)
    assert all(w.start < t + timedelta(minutes=1) and t < w.end for w in overlapping)


@SETTINGS
@given(calendars(), instants, st.integers(min_value=1, max_value=40 * 86400))
def test_overlapping_is_exactly_the_windows_sharing_an_instant(cal: Calendar, a: datetime, seconds: int) -> None:
    b = a + timedelta(seconds=seconds)
    found = cal.windows_overlapping(a, b)
    assert found == sorted(found, key=lambda w: (w.start, w.id))
    assert len({w.id for w in found}) == len(found)
    # Splitting the interval finds the same windows (every window is found from any piece it touches).
    middle = a + timedelta(seconds=seconds // 2)
    if a < middle:
        pieces = {w.id for w in cal.windows_overlapping(a, middle)} | {w.id for w in cal.windows_overlapping(middle, b)}
        assert pieces == {w.id for w in found}


@SETTINGS
@given(recurrences(), instants, st.integers(min_value=1, max_value=120 * 86400))
def test_expansion_never_yields_overlapping_occurrences(recurring: dict[str, Any], a: datetime, seconds: int) -> None:
    cal = parse_calendar({"version": 1, "timezone": "Asia/Seoul", "maintenance": {"recurring": [recurring]}},
                         "property.yaml", SERVICES)
    (spec,) = cal.spec.maintenance.recurring
    b = a + timedelta(seconds=seconds)
    occurrences = list(expand(spec, cal.tz, a, b))
    assert all(x.end <= y.start for x, y in pairwise(occurrences))
    assert all(w.overlaps(a, b) for w in occurrences)
    assert len({w.id for w in occurrences}) == len(occurrences)
    # Weekly, at the same local time, on the configured weekday, for the configured duration.
    assert all(y.start - x.start == timedelta(days=7) for x, y in pairwise(occurrences))
    assert all(w.local_start(cal.tz).strftime("%H:%M") == recurring["start"] for w in occurrences)
    assert all(WEEKDAYS[w.local_start(cal.tz).weekday()] == recurring["weekday"] for w in occurrences)
    # Nothing is missed: a window covering an instant in range is among the expansion.
    probe = a + (b - a) / 3
    for w in cal.windows_covering(probe, kinds=["recurring"]):
        assert w in occurrences


@SETTINGS
@given(instants)
def test_kst_is_always_utc_plus_nine(t: datetime) -> None:
    local = t.astimezone(KST)
    assert local.utcoffset() == timedelta(hours=9)
    assert local.replace(tzinfo=None) - t.replace(tzinfo=None) == timedelta(hours=9)
