"""SLO checklists in the store: one record per checklist run (daily, weekly, monthly) and its item results."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from gamesre.integrations.store.database import (
    StoreDatabase,
    checklist_result,
    checklist_run,
    json_safe,
    parse_time,
    with_utc,
)


class ChecklistStore(StoreDatabase):
    """Checklist runs and the result of every item, with its evidence."""

    def upsert_checklist_run(self, record: dict[str, Any]) -> None:
        """Insert a whole checklist run record, or replace the fields it gives of the one with its id."""
        defaults: dict[str, Any] = {"status": "running", "counts": {}, "report": {}, "run_url": "", "finished_at": None}
        self._upsert_record(checklist_run, record, defaults)

    def update_checklist_run(self, run_id: str, **fields: Any) -> None:
        self._update_record(checklist_run, run_id, fields, "checklist run")

    def save_checklist_results(self, run_id: str, results: Iterable[dict[str, Any]]) -> int:
        """Store item results (ItemResult.to_dict() shapes) of a run; a re-run of the run replaces them."""
        rows = [{"run_id": run_id, **{k: r[k] for k in ("item_id", "title", "cadence", "status", "summary",
                                                         "evidence", "owner")},
                 "evidence": json_safe(r["evidence"]), "checked_at": parse_time(r["checked_at"])} for r in results]
        with self.engine.begin() as conn:
            self._upsert(conn, checklist_result, rows, ["run_id", "item_id"],
                         ["title", "cadence", "status", "summary", "evidence", "owner", "checked_at"])
        return len(rows)

    def checklist_runs(self, cadence: str | None = None, since: datetime | None = None,
                       ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        q = sa.select(checklist_run)
        if cadence is not None:
            q = q.where(checklist_run.c.cadence == cadence)
        if since is not None:
            q = q.where(checklist_run.c.at >= since)
        if ids is not None:
            q = q.where(checklist_run.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(checklist_run.c.at)).mappings().all()
        return [with_utc(r, "period_start", "period_end", "at", "finished_at") for r in rows]

    def checklist_results(self, run_id: str) -> list[dict[str, Any]]:
        q = sa.select(checklist_result).where(checklist_result.c.run_id == run_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(checklist_result.c.item_id)).mappings().all()
        return [with_utc(r, "checked_at") for r in rows]
