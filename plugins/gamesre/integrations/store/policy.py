"""Policy in the store: SLO snapshots, the published policy state per scope and name, and its history."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from gamesre.integrations.store.database import (
    StoreDatabase,
    json_safe,
    policy_state,
    policy_state_history,
    slo_snapshot,
    with_utc,
)


class PolicyStore(StoreDatabase):
    """Snapshots of SLO reports and the policy states gates read (publishing one also appends it to the history)."""

    def save_snapshot(self, slo: str, at: datetime, window: str, state: str, payload: dict[str, Any]) -> None:
        row = {"slo": slo, "at": at, "window": window, "state": state, "payload": json_safe(payload)}
        with self.engine.begin() as conn:
            self._upsert(conn, slo_snapshot, [row], ["slo", "at", "window"], ["state", "payload"])

    def snapshots(self, slo: str, since: datetime | None = None) -> list[dict[str, Any]]:
        q = sa.select(slo_snapshot).where(slo_snapshot.c.slo == slo)
        if since is not None:
            q = q.where(slo_snapshot.c.at >= since)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(slo_snapshot.c.at)).mappings().all()
        return [with_utc(r, "at") for r in rows]

    def publish_state(
        self, scope: str, name: str, state: str, computed_at: datetime, reasons: list[Any], details: dict[str, Any]
    ) -> None:
        row = {"scope": scope, "name": name, "state": state, "computed_at": computed_at,
               "reasons": json_safe(reasons), "details": json_safe(details)}
        with self.engine.begin() as conn:
            self._upsert(conn, policy_state, [row], ["scope", "name"], ["state", "computed_at", "reasons", "details"])
            conn.execute(sa.insert(policy_state_history), [{k: row[k] for k in
                         ("scope", "name", "state", "computed_at", "reasons")}])

    def current_state(self, scope: str, name: str) -> dict[str, Any] | None:
        q = sa.select(policy_state).where(policy_state.c.scope == scope, policy_state.c.name == name)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return None if row is None else with_utc(row, "computed_at")

    def state_history(self, scope: str, name: str, since: datetime | None = None) -> list[dict[str, Any]]:
        q = sa.select(policy_state_history).where(
            policy_state_history.c.scope == scope, policy_state_history.c.name == name
        )
        if since is not None:
            q = q.where(policy_state_history.c.computed_at >= since)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(policy_state_history.c.computed_at)).mappings().all()
        return [with_utc(r, "computed_at") for r in rows]
