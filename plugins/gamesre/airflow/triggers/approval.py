"""DeployApprovalTrigger: Airflow's HITLTrigger for a deploy's review, which also ends when the deploy does.

Waits for the reviewer's answer in the Required Actions (or over the REST API) like HITLTrigger, and also reads
the deploy's record and control log from the SRE store at every poll: when another review rejected the deploy,
or a person aborted it (deploy_control), it fires {"ended": why} so that the review stops waiting at once.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.standard.triggers.hitl import HITLTrigger
from airflow.sdk.timezone import utcnow
from airflow.triggers.base import TriggerEvent

from gamesre.deploy.control import Control, control_state

CLASSPATH = "gamesre.airflow.triggers.approval.DeployApprovalTrigger"


class DeployApprovalTrigger(HITLTrigger):
    def __init__(self, *, deployment_id: str, sre_store_conn_id: str = "sre_store", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deployment_id = deployment_id
        self.sre_store_conn_id = sre_store_conn_id
        self._store: Any = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        return CLASSPATH, {**kwargs, "deployment_id": self.deployment_id, "sre_store_conn_id": self.sre_store_conn_id}

    async def _ended(self) -> str | None:
        """Why the review is no longer asked (the deploy ended, or an abort waits), or None."""
        from airflow.sdk import BaseHook

        from gamesre.airflow.hooks.store import store_url
        from gamesre.integrations.store import SREStore

        try:
            if self._store is None:
                url = store_url(await BaseHook.aget_connection(self.sre_store_conn_id))
                self._store = await asyncio.to_thread(SREStore, url)
            record = await asyncio.to_thread(self._store.deployment, self.deployment_id)
            rows = await asyncio.to_thread(self._store.deploy_controls, self.deployment_id)
        except Exception as exc:  # the answer still counts; the store is read again at the next poll
            self.log.warning("cannot read the deploy from the SRE store: %s", exc)
            return None
        if record is not None and record.get("outcome") != "running":
            return f"the deploy ended {record.get('outcome')}"
        pending = control_state(Control.from_row(r) for r in rows).pending
        if pending is not None and pending.action == "abort":
            return pending.describe()
        return None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            if self.timeout_datetime and self.timeout_datetime < utcnow():
                yield await self._handle_timeout()
                return
            event = await self._handle_response()
            if event:
                yield event
                return
            why = await self._ended()
            if why:
                yield TriggerEvent({"ended": why})
                return
            await asyncio.sleep(self.poke_interval)
