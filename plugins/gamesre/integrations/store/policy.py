"""Policy in the store: SLO snapshots, the published policy state per scope and name, and its history."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from gamesre.integrations.store.database import (
    StoreDatabase,
    json_safe,
    policy_action,
    policy_state,
    policy_state_history,
    slo_snapshot,
    with_utc,
)


class PolicyStore(StoreDatabase):
    """Snapshots of SLO reports and the policy states gates read (publishing one also appends it to the history);
    what the budget policy decided, once per service and episode."""

    def record_policy_action(self, record: dict[str, Any]) -> bool:
        """Record the policy's decision for (service, episode_start); False when that episode was decided already
        (by this run or a concurrent one: the primary key decides), and nothing is changed then."""
        row = {"deployment_id": None, "details": {}, **record}
        row["details"] = json_safe(row["details"])
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(policy_action).values(**row))
        except sa.exc.IntegrityError:
            return False
        return True

    def update_policy_action(self, service: str, episode_start: datetime, *, answer: dict[str, Any],
                             **fields: Any) -> None:
        """Change a recorded decision (a proposal answered): `fields` are columns, `answer` joins its details;
        KeyError if there is none."""
        key = (policy_action.c.service == service) & (policy_action.c.episode_start == episode_start)
        with self.engine.begin() as conn:
            details = conn.execute(sa.select(policy_action.c.details).where(key)).scalar_one_or_none()
            if details is None:
                raise KeyError(f"no budget-policy decision for {service} at {episode_start.isoformat()}")
            conn.execute(sa.update(policy_action).where(key).values(
                **fields, details=json_safe({**details, "answer": answer})))

    def policy_actions(self, service: str | None = None, since: datetime | None = None) -> list[dict[str, Any]]:
        """The policy's decisions, oldest episode first; `since` filters on the episode's start."""
        q = sa.select(policy_action)
        if service is not None:
            q = q.where(policy_action.c.service == service)
        if since is not None:
            q = q.where(policy_action.c.episode_start >= since)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(policy_action.c.episode_start)).mappings().all()
        return [with_utc(r, "episode_start", "decided_at") for r in rows]

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
