"""Deploys in the store: one record per deploy run, the verdict of every analysis step, and the per-service lock."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from gamesre.integrations.store.database import (
    StoreDatabase,
    deploy_control,
    deploy_lock,
    deploy_verdict,
    deployment,
    json_safe,
    utcnow,
    with_utc,
)


class DeployStore(StoreDatabase):
    """Deployment records (the source of DORA metrics and incident timelines), verdicts, one deploy per service."""

    def acquire_deploy_lock(self, service: str, run_id: str, version: str, *,
                            stale_after_s: float) -> dict[str, Any] | None:
        """Take the service's deploy lock for the run; the other holder's row when someone else has it.

        Taking it is one INSERT, so two runs racing cannot both win. A lock older than `stale_after_s` (its
        run crashed without releasing it) is taken over.
        """
        row = {"service": service, "run_id": run_id, "version": version, "acquired_at": utcnow()}
        return self._take_lock(deploy_lock, deploy_lock.c.service == service, row, stale_after_s)

    def release_deploy_lock(self, service: str, run_id: str) -> bool:
        """Release the lock if this run holds it; True when it did."""
        return self._release_lock(deploy_lock, deploy_lock.c.service == service, run_id)

    def deploy_lock(self, service: str) -> dict[str, Any] | None:
        return self._lock_holder(deploy_lock, deploy_lock.c.service == service)

    def upsert_deployment(self, record: dict[str, Any]) -> None:
        """Insert a whole deployment record, or replace the fields it gives of the one with its id."""
        defaults: dict[str, Any] = {"previous_version": None, "stage_log": [], "started_at": None, "finished_at": None,
                                    "rolled_back_at": None, "reason": "", "force_reason": "", "run_url": "",
                                    "kind": "deploy", "rollback_of": None, "cause": None}
        self._upsert_record(deployment, record, defaults)

    def update_deployment(self, deployment_id: str, **fields: Any) -> None:
        """Change some fields of an existing deployment record; KeyError if there is none."""
        self._update_record(deployment, deployment_id, fields, "deployment")

    def deployment(self, deployment_id: str) -> dict[str, Any] | None:
        rows = self.deployments(ids=[deployment_id])
        return rows[0] if rows else None

    def deployments(self, service: str | None = None, since: datetime | None = None,
                    ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Deployment records, oldest request first."""
        q = sa.select(deployment)
        if service is not None:
            q = q.where(deployment.c.service == service)
        if since is not None:
            q = q.where(deployment.c.requested_at >= since)
        if ids is not None:
            q = q.where(deployment.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(deployment.c.requested_at)).mappings().all()
        return [with_utc(r, "requested_at", "started_at", "finished_at", "rolled_back_at") for r in rows]

    def record_verdict(self, deployment_id: str, stage: str, step: int, step_label: str, decision: str,
                       reason: str, evidence: dict[str, Any], decided_at: datetime | None = None) -> None:
        """Store the verdict of one analysis step (a re-run of the step replaces it)."""
        row = {"deployment_id": deployment_id, "stage": stage, "step": step, "step_label": step_label,
               "decision": decision, "reason": reason, "decided_at": decided_at or utcnow(),
               "evidence": json_safe(evidence)}
        with self.engine.begin() as conn:
            self._upsert(conn, deploy_verdict, [row], ["deployment_id", "stage", "step"],
                         ["step_label", "decision", "reason", "decided_at", "evidence"])

    def verdicts(self, deployment_id: str) -> list[dict[str, Any]]:
        q = sa.select(deploy_verdict).where(deploy_verdict.c.deployment_id == deployment_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(deploy_verdict.c.decided_at, deploy_verdict.c.id)).mappings().all()
        return [with_utc(r, "decided_at") for r in rows]

    def add_deploy_control(self, deployment_id: str, action: str, actor: str, reason: str,
                           requested_at: datetime | None = None, applied: str | None = None) -> int:
        """Record a person's request to steer a deploy, or a reviewer's answer (applied at once); returns its id."""
        at = requested_at or utcnow()
        row = {"deployment_id": deployment_id, "action": action, "actor": actor[:128], "reason": reason,
               "requested_at": at, "applied": applied, "applied_at": at if applied else None}
        with self.engine.begin() as conn:
            key = conn.execute(sa.insert(deploy_control).values(**row)).inserted_primary_key
            assert key is not None
            return int(key[0])

    def deploy_controls(self, deployment_id: str) -> list[dict[str, Any]]:
        """The deploy's control requests, oldest first."""
        q = sa.select(deploy_control).where(deploy_control.c.deployment_id == deployment_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(deploy_control.c.requested_at, deploy_control.c.id)).mappings().all()
        return [with_utc(r, "requested_at", "applied_at") for r in rows]

    def mark_deploy_control(self, control_id: int, applied: str, applied_at: datetime | None = None) -> bool:
        """Say where a request took effect (or why it never did); False when it was already marked."""
        q = (sa.update(deploy_control).where(deploy_control.c.id == control_id, deploy_control.c.applied.is_(None))
             .values(applied=applied, applied_at=applied_at or utcnow()))
        with self.engine.begin() as conn:
            return bool(conn.execute(q).rowcount)
