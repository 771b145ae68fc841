"""Maintenance windows in the store (planned work, live-ops events, game-days) and the budget exclusions they make."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from gamesre.integrations.store.database import StoreDatabase, json_safe_row, maintenance_window, utcnow, with_utc


class MaintenanceStore(StoreDatabase):
    """Window records, and the [start, end) intervals they leave out of a service's SLO budgets."""

    def upsert_window(self, window: dict[str, Any]) -> None:
        """Insert a window record, or update the fields given in `window` of an existing one (by id).

        Fields not given keep their stored values (e.g. the silence ids a previous run recorded).
        """
        now = utcnow()
        insert = {"silence_ids": [], "cancelled_at": None, "cancelled_by": None, "created_at": now,
                  "created_by": window.get("owner", "unknown"), **window, "updated_at": now}
        if "services" in insert:
            insert["services"] = sorted(insert["services"])
        update = [c for c in window if c not in ("id", "created_at", "created_by")] + ["updated_at"]
        with self.engine.begin() as conn:
            self._upsert(conn, maintenance_window, [json_safe_row(insert)], ["id"], update)

    def update_window(self, window_id: str, **fields: Any) -> None:
        """Change some fields of an existing window (status, silence ids, cancellation); KeyError if unknown."""
        self._update_record(maintenance_window, window_id, {**fields, "updated_at": utcnow()}, "maintenance window")

    def window(self, window_id: str) -> dict[str, Any] | None:
        rows = [w for w in self.windows(include_cancelled=True, ids=[window_id])]
        return rows[0] if rows else None

    def windows(self, start: datetime | None = None, end: datetime | None = None,
                *, include_cancelled: bool = False, ids: Sequence[str] | None = None,
                kinds: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Windows overlapping [start, end), oldest first."""
        q = sa.select(maintenance_window)
        if ids is not None:
            q = q.where(maintenance_window.c.id.in_(list(ids)))
        if kinds is not None:
            q = q.where(maintenance_window.c.kind.in_(list(kinds)))
        if start is not None:
            q = q.where(maintenance_window.c.end > start)
        if end is not None:
            q = q.where(maintenance_window.c.start < end)
        if not include_cancelled:
            q = q.where(maintenance_window.c.status != "cancelled")
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(maintenance_window.c.start)).mappings().all()
        return [with_utc(r, "start", "end", "created_at", "updated_at", "cancelled_at") for r in rows]

    def exclusions(self, service: str, start: datetime, end: datetime, *,
                   include_gamedays: bool = False) -> list[tuple[int, int]]:
        """[start, end) epoch intervals to leave out of a service's SLO budgets.

        Windows marked excludes_budget; with include_gamedays also the game-day windows (kind `gameday`, for
        SLOs with count_gamedays_against_budget: false).
        """
        return [(int(w["start"].timestamp()), int(w["end"].timestamp())) for w in self.windows(start, end)
                if service in w["services"] and (w["excludes_budget"] or (include_gamedays and w["kind"] == "gameday"))]
