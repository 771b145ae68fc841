"""Ad-hoc windows from the UI: accepted with a stable id, or rejected with a reason a person can act on."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gamesre.calendar import check_adhoc_window, check_cancellation, load_calendar
from gamesre.core.time import KST

CAL = load_calendar()
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=KST)  # a Wednesday; the next Tuesday window is 2026-12-08 02:00


def ask(**overrides: object) -> object:
    request: dict[str, object] = {"services": ["matchmaking"], "start": "2026-12-02T14:00:00+09:00",
                                  "duration": "2h", "reason": "hotfix for the queue leak", "ticket": "OPS-4242",
                                  "owner": "alice", "now": NOW}
    request.update(overrides)
    return check_adhoc_window(CAL, **request)  # type: ignore[arg-type]


def test_a_valid_request_is_accepted_with_a_deterministic_id() -> None:
    decision = ask()
    assert decision.accepted, decision.reason
    window = decision.window
    assert window.id.startswith("adhoc-20261202-1400-")
    assert (window.start, window.end) == (datetime(2026, 12, 2, 5, tzinfo=UTC), datetime(2026, 12, 2, 7, tzinfo=UTC))
    assert window.kind == "adhoc" and window.excludes_budget
    assert decision.reason == f"accepted: {window.id} (2026-12-02 14:00-16:00 KST; matchmaking)"
    assert ask().window.id == window.id  # the same request -> the same id
    assert ask(ticket="OPS-4243").window.id != window.id
    # Naive start times are KST, and `end` may be given instead of a duration.
    assert ask(start="2026-12-02T14:00:00", duration=None, end="2026-12-02T16:00:00").window.id == window.id


def test_registering_twice_finds_the_registered_window() -> None:
    first = ask().window
    cal = CAL.with_windows([first])
    again = check_adhoc_window(cal, services=["matchmaking"], start="2026-12-02T14:00:00+09:00", duration="2h",
                               reason="hotfix for the queue leak", ticket="OPS-4242", owner="alice", now=NOW)
    assert again.accepted and again.already_registered and again.window == first


def test_inverted_too_long_and_past_windows_are_rejected() -> None:
    inverted = ask(duration=None, end="2026-12-02T13:00:00+09:00")
    assert not inverted.accepted
    assert "end: 2026-12-02 13:00 KST is not after the start 2026-12-02 14:00 KST" in inverted.reason
    too_long = ask(duration="9h")
    assert not too_long.accepted and "duration: 9:00:00 is longer than the 8h a maintenance window may last" \
        in too_long.reason
    assert ask(duration="8h").accepted
    past = ask(start="2026-12-02T09:00:00+09:00", duration="4h")
    assert not past.accepted and "more than 0:15:00 in the past" in past.reason
    assert ask(start="2026-12-02T09:50:00+09:00").accepted  # within the grace for filling in the form
    over = ask(start="2026-12-02T07:00:00+09:00", duration="1h")
    assert "the window would already be over" in over.reason


def test_unknown_services_and_bad_fields_are_all_reported() -> None:
    decision = ask(services=["chat", "matchmaking"], ticket="later", reason="", duration="2 hours")
    assert not decision.accepted
    assert decision.reason.startswith("rejected: services: unknown service(s) 'chat' (known: game-server, matchmaking)")
    assert "duration: '2 hours' is not a duration like 5m, 1h or 3d" in decision.reason
    assert "ticket: 'later' is not a ticket like OPS-1234" in decision.reason
    assert "reason: say what the work is" in decision.reason
    assert not ask(services=[]).accepted
    assert ask(services=["all"]).window.services == ("game-server", "matchmaking")


def test_overlap_with_maintenance_of_a_common_service_is_rejected() -> None:
    tuesday = ask(start="2026-12-08T05:00:00+09:00", duration="2h")
    assert not tuesday.accepted
    assert tuesday.reason == ("rejected: overlaps maintenance for a common service: recurring-tue-2026-12-08 "
                              "(2026-12-08 02:00-06:00 KST; game-server, matchmaking)")
    assert [w.id for w in tuesday.conflicts] == ["recurring-tue-2026-12-08"]
    assert ask(start="2026-12-08T06:00:00+09:00", duration="2h").accepted  # back to back is fine
    # The one-off window only covers game-server: matchmaking may have its own window then.
    assert ask(start="2026-12-10T01:00:00+09:00", duration="1h").accepted
    assert not ask(services=["game-server"], start="2026-12-10T03:30:00+09:00", duration="1h").accepted
    # Another ad-hoc window counts as well.
    registered = ask().window
    cal = CAL.with_windows([registered])
    clash = check_adhoc_window(cal, services=["matchmaking", "game-server"], start="2026-12-02T15:00:00+09:00",
                               duration="1h", reason="second hotfix", ticket="OPS-4300", owner="bob", now=NOW)
    assert not clash.accepted and registered.id in clash.reason
    # A cancelled window no longer conflicts.
    assert check_adhoc_window(cal.with_windows(cancelled=[registered.id]), services=["matchmaking"],
                              start="2026-12-02T15:00:00+09:00", duration="1h", reason="second hotfix",
                              ticket="OPS-4300", owner="bob", now=NOW).accepted


def test_cancellation() -> None:
    registered = ask().window
    cal = CAL.with_windows([registered])
    assert check_cancellation(cal, registered.id, now=NOW).accepted
    assert check_cancellation(cal, "recurring-tue-2026-12-08", now=NOW).accepted
    ended = check_cancellation(cal, "recurring-tue-2026-12-01", now=NOW)
    assert not ended.accepted and "has already ended" in ended.reason
    assert "no window 'nope'" in check_cancellation(cal, "nope", now=NOW).reason
    event = check_cancellation(cal, "winter-festival-2026", now=NOW)
    assert not event.accepted and "is a event, not a maintenance window" in event.reason
    in_progress = check_cancellation(cal, registered.id, now=registered.start + timedelta(minutes=30))
    assert in_progress.accepted
    done = cal.with_windows(cancelled=[registered.id])
    assert check_cancellation(done, registered.id, now=NOW).already_registered
