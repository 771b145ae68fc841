"""Chaos in the store: experiment runs (refused, dry and skipped ones too), game-days, and the one game-day lock."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from gamesre.integrations.store.database import StoreDatabase, chaos_gameday, chaos_lock, chaos_run, utcnow, with_utc


class ChaosStore(StoreDatabase):
    """Chaos run and game-day records, and the lock that keeps one game-day at a time."""

    def acquire_chaos_lock(self, run_id: str, experiment: str, *, stale_after_s: float) -> dict[str, Any] | None:
        """Take the one game-day lock for the run; the holder's row when another run has it (see the deploy lock)."""
        row = {"name": "gameday", "run_id": run_id, "experiment": experiment, "acquired_at": utcnow()}
        return self._take_lock(chaos_lock, chaos_lock.c.name == "gameday", row, stale_after_s)

    def release_chaos_lock(self, run_id: str) -> bool:
        return self._release_lock(chaos_lock, chaos_lock.c.name == "gameday", run_id)

    def chaos_lock(self) -> dict[str, Any] | None:
        return self._lock_holder(chaos_lock, chaos_lock.c.name == "gameday")

    def upsert_chaos_run(self, record: dict[str, Any]) -> None:
        """Insert a whole chaos run record, or replace the fields it gives of the one with its id."""
        defaults: dict[str, Any] = {
            "gameday_id": None, "targets": [], "blast_radius": {}, "dry_run": False, "requested_by": "",
            "verdict": "running", "reason": "", "score": None, "weight": 1.0, "gates": [], "steady_before": None,
            "steady_after": None, "probes": [], "abort": None, "injection": None, "recovery": None,
            "injected_at": None, "aborted_at": None, "recovered_at": None, "finished_at": None, "run_url": ""}
        self._upsert_record(chaos_run, record, defaults)

    def update_chaos_run(self, run_id: str, **fields: Any) -> None:
        self._update_record(chaos_run, run_id, fields, "chaos run")

    def chaos_runs(self, *, ids: Sequence[str] | None = None, gameday_id: str | None = None,
                   experiment: str | None = None, since: datetime | None = None,
                   verdicts: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Chaos run records, oldest request first."""
        q = sa.select(chaos_run)
        if ids is not None:
            q = q.where(chaos_run.c.id.in_(list(ids)))
        if gameday_id is not None:
            q = q.where(chaos_run.c.gameday_id == gameday_id)
        if experiment is not None:
            q = q.where(chaos_run.c.experiment == experiment)
        if since is not None:
            q = q.where(chaos_run.c.requested_at >= since)
        if verdicts is not None:
            q = q.where(chaos_run.c.verdict.in_(list(verdicts)))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(chaos_run.c.requested_at, chaos_run.c.id)).mappings().all()
        return [with_utc(r, "requested_at", "injected_at", "aborted_at", "recovered_at", "finished_at") for r in rows]

    def chaos_run(self, run_id: str) -> dict[str, Any] | None:
        rows = self.chaos_runs(ids=[run_id])
        return rows[0] if rows else None

    def unrecovered_chaos_runs(self) -> list[dict[str, Any]]:
        """Runs that injected a fault whose recovery is not confirmed (the reaper's and the gates' view)."""
        q = sa.select(chaos_run.c.id).where(chaos_run.c.injected_at.is_not(None), chaos_run.c.recovered_at.is_(None))
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(q)]
        return self.chaos_runs(ids=ids) if ids else []

    def upsert_gameday(self, record: dict[str, Any]) -> None:
        defaults: dict[str, Any] = {"verdict": "running", "score": None, "reason": "", "finished_at": None,
                                    "run_url": "", "experiments": []}
        self._upsert_record(chaos_gameday, record, defaults)

    def update_gameday(self, gameday_id: str, **fields: Any) -> None:
        self._update_record(chaos_gameday, gameday_id, fields, "game-day")

    def gamedays(self, since: datetime | None = None, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        q = sa.select(chaos_gameday)
        if since is not None:
            q = q.where(chaos_gameday.c.started_at >= since)
        if ids is not None:
            q = q.where(chaos_gameday.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(chaos_gameday.c.started_at)).mappings().all()
        return [with_utc(r, "started_at", "finished_at") for r in rows]
