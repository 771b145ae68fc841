"""TaskFailureNotifier: the failure callback of every DAG (default_args `on_failure_callback`).

When a task fails for good (after its retries), it tells the owning team in Slack which DAG and task failed, the
error, the link to the task's log and what the failure blocks, and pages the on-call when the failure lets the
error-budget policy state go stale (gamesre.app.failures). The owning team is the service's where the run is about
one service (the `service` param of a deploy, the service of a chaos `experiment`), the SRE team's otherwise.
It never raises: a notification failure is logged and the callback ends.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)


def run_service(params: Mapping[str, Any]) -> str | None:
    """The service a run is about: a deploy's `service`, a chaos experiment's target service; None otherwise."""
    if params.get("service"):
        return str(params["service"])
    if params.get("experiment"):
        from gamesre.chaos.catalog import load_catalog

        try:
            return load_catalog().experiment(str(params["experiment"])).target.service
        except (KeyError, ValueError):
            return None
    return None


def task_failure(context: Mapping[str, Any]) -> Any:
    """The TaskFailure of a failure callback's context."""
    from gamesre.reports.failure_notice import TaskFailure

    ti = context.get("ti") or context.get("task_instance")
    exc = context.get("exception")
    error = f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(exc or "unknown error")
    try:
        log_url = str(getattr(ti, "log_url", "") or "")
    except Exception:  # the URL is built from the configuration; a notice without it still goes out
        log_url = ""
    return TaskFailure(dag_id=str(getattr(ti, "dag_id", "?")), task_id=str(getattr(ti, "task_id", "?")),
                       run_id=str(getattr(ti, "run_id", "?")), error=error, log_url=log_url,
                       try_number=getattr(ti, "try_number", None), service=run_service(context.get("params") or {}))


class TaskFailureNotifier(BaseNotifier):
    """Tell the owning team about a failed task, and page when the policy state is about to go stale.

    :param blocks: what the DAG's failure holds up, in a phrase (shown in the notice)
    :param guards_policy_state: the DAG keeps the published error-budget policy state fresh (slo_ingest,
        error_budget_report): the notice says when the state goes stale, computed from the store, and the on-call
        is paged when that is under 30 minutes away or past
    """

    def __init__(self, *, blocks: str = "", guards_policy_state: bool = False):
        super().__init__()
        self.blocks = blocks
        self.guards_policy_state = guards_policy_state

    def notify(self, context: Any) -> None:
        try:
            from gamesre.airflow.deps import failure_ports
            from gamesre.app.failures import report_failure

            failure = task_failure(context)
            result = report_failure(failure_ports(), failure, blocks=self.blocks,
                                    guards_policy_state=self.guards_policy_state)
            log.info("failure of %s.%s told to %s (paged: %s)", failure.dag_id, failure.task_id,
                     result["channel_id"], result["paged"])
        except Exception as exc:  # the callback of a failed task must not fail in turn
            log.warning("failure notice not sent (%s: %s)", type(exc).__name__, exc)
