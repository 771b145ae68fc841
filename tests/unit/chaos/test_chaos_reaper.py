"""Which faults the reaper recovers: those crashed runs left behind, seen by a backend or remembered by the store,
never the running game-day's (the fresh lock's holder) nor the asking run's own."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gamesre.chaos.reaper import left_behind, lock_in_use
from tests.fakes.chaos_backend import injection

NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)


def test_a_fresh_lock_is_in_use_and_a_stale_one_is_not() -> None:
    holder = {"run_id": "r1", "experiment": "gs-latency", "acquired_at": NOW - timedelta(minutes=59)}
    assert lock_in_use(holder, NOW, stale_after_s=3600) == "r1"
    assert lock_in_use({**holder, "acquired_at": NOW - timedelta(minutes=61)}, NOW, stale_after_s=3600) is None
    assert lock_in_use(None, NOW, stale_after_s=3600) is None


def test_what_the_backends_show_is_left_behind_except_the_spared_runs() -> None:
    shown = {"game-server": [injection("crashed"), injection("running"), injection("me")], "matchmaking": []}
    found = left_behind(shown, [], spared=("running", "me"))
    assert {s: [i.run_id for i in found[s]] for s in found} == {"game-server": ["crashed"]}


def test_the_store_adds_what_no_backend_shows_once_per_run() -> None:
    shown = {"game-server": [injection("crashed")]}
    unrecovered = [{"id": "crashed", "injection": injection("crashed").to_dict()},
                   {"id": "unseen", "injection": injection("unseen").to_dict()},
                   {"id": "no-injection", "injection": None},
                   {"id": "running", "injection": injection("running").to_dict()}]
    found = left_behind(shown, unrecovered, spared=("running", None))
    assert [i.run_id for i in found["game-server"]] == ["crashed", "unseen"]


def test_nothing_left_behind_is_nothing_to_do() -> None:
    assert left_behind({"game-server": []}, [], spared=(None, None)) == {}
