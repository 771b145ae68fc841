"""Chaos records in the SRE store (SQLite and PostgreSQL): the game-day lock, runs, game-days, incidents, and
game-day windows left out of the budgets of SLOs that ask for it."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gamesre.integrations.store import SREStore, chaos_lock

pytestmark = pytest.mark.integration


def run_row(run_id: str, **extra: object) -> dict:
    return {"id": run_id, "experiment": "gs-instance-kill", "title": "Kill one", "service": "game-server",
            "backend": "local", "environment": "prod", "fault": {"kind": "pod_delete", "params": {}, "duration_s": 45},
            "weight": 3.0, "requested_at": datetime.now(UTC), **extra}


def test_one_gameday_at_a_time_and_a_stale_lock_is_taken_over(store_url: str) -> None:
    store = SREStore(store_url)
    assert store.acquire_chaos_lock("run-a", "gs-instance-kill", stale_after_s=3600) is None
    assert store.acquire_chaos_lock("run-a", "gs-instance-kill", stale_after_s=3600) is None  # re-entrant
    holder = store.acquire_chaos_lock("run-b", "gs-cpu-hog", stale_after_s=3600)
    assert holder is not None and holder["run_id"] == "run-a" and holder["experiment"] == "gs-instance-kill"
    assert store.release_chaos_lock("run-b") is False
    with store.engine.begin() as conn:
        conn.execute(sa.update(chaos_lock).values(acquired_at=datetime.now(UTC) - timedelta(hours=2)))
    assert store.acquire_chaos_lock("run-b", "gs-cpu-hog", stale_after_s=3600) is None
    assert store.chaos_lock()["run_id"] == "run-b"
    assert store.release_chaos_lock("run-b") is True and store.chaos_lock() is None


def test_a_run_record_is_complete_and_unrecovered_runs_are_found(store_url: str) -> None:
    store = SREStore(store_url)
    store.upsert_chaos_run(run_row("r1", gameday_id="gd-1"))
    store.upsert_chaos_run(run_row("r2"))
    injected = datetime.now(UTC).replace(microsecond=0)
    store.update_chaos_run("r1", injected_at=injected, injection={"run_id": "r1", "targets": ["gs-stable-1"]},
                           probes=[{"name": "availability", "samples": [[1.0, 0.999, True]]}])
    assert [r["id"] for r in store.unrecovered_chaos_runs()] == ["r1"]
    store.update_chaos_run("r1", recovered_at=injected + timedelta(seconds=50), verdict="pass", score=100.0)
    assert store.unrecovered_chaos_runs() == []
    (row,) = store.chaos_runs(gameday_id="gd-1")
    assert row["injected_at"] == injected and row["verdict"] == "pass" and row["score"] == 100.0
    assert row["probes"][0]["samples"] == [[1.0, 0.999, True]]
    assert row["verdict"] != store.chaos_run("r2")["verdict"] == "running"
    with pytest.raises(KeyError, match="no chaos run 'nope'"):
        store.update_chaos_run("nope", verdict="pass")


def test_open_incidents_and_gamedays(store_url: str) -> None:
    store = SREStore(store_url)
    now = datetime.now(UTC)
    store.upsert_incident({"id": "INC-1", "severity": "sev2", "title": "slow saves", "opened_at": now})
    store.upsert_incident({"id": "INC-0", "severity": "sev3", "title": "old", "opened_at": now - timedelta(days=1),
                           "status": "resolved", "resolved_at": now})
    assert [i["id"] for i in store.open_incidents()] == ["INC-1"]
    store.upsert_gameday({"id": "gd-1", "suite": "weekly", "experiments": ["a", "b"], "started_at": now})
    store.update_gameday("gd-1", verdict="pass", score=92.5, finished_at=now)
    (gameday,) = store.gamedays(ids=["gd-1"])
    assert gameday["suite"] == "weekly" and gameday["score"] == 92.5 and gameday["experiments"] == ["a", "b"]


def test_gameday_windows_are_excluded_only_for_slos_that_ask(store_url: str) -> None:
    store = SREStore(store_url)
    start = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    store.upsert_window({"id": "gameday:r1", "kind": "gameday", "start": start, "end": start + timedelta(minutes=3),
                         "services": ["game-server"], "reason": "chaos", "owner": "sre", "ticket": "",
                         "status": "completed", "excludes_budget": False})
    span = (start - timedelta(hours=1), start + timedelta(hours=1))
    assert store.exclusions("game-server", *span) == []
    assert store.exclusions("game-server", *span, include_gamedays=True) == [
        (int(start.timestamp()), int(start.timestamp()) + 180)]
    assert store.exclusions("matchmaking", *span, include_gamedays=True) == []
