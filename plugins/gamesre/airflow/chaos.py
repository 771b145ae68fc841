"""Airflow adapter of the chaos game-days: what the DAGs' tasks, the ChaosMonitorSensor and the recover task's
failure callback call.

Each function builds the ports from Airflow's hooks and connections (gamesre.airflow.deps.chaos_ports) and calls
one step of the workflow (gamesre.app.chaos), adding what only Airflow knows: the run's URL in the UI, the DAG
ids, the task context, and AirflowFailException for a verdict that fails the run. The DAGs map the workflow's
ChaosRefused / SteadyStateBroken to skips.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gamesre.airflow.deps import chaos_ports
from gamesre.airflow.links import run_url
from gamesre.app import chaos as flow
from gamesre.app.chaos import ChaosRefused as ChaosRefused
from gamesre.app.chaos import RecoveryFailed as RecoveryFailed
from gamesre.app.chaos import SteadyStateBroken as SteadyStateBroken
from gamesre.chaos.outcome import fails_the_run

log = logging.getLogger(__name__)

EXPERIMENT_DAG_ID = "chaos_experiment"
GAMEDAY_DAG_ID = "chaos_gameday"


def validate(conf: Mapping[str, Any] | None, run_id: str, default_requester: str, *,
             dag_id: str = EXPERIMENT_DAG_ID) -> dict[str, Any]:
    """The validated run as a dict; InvalidChaosRequest (recorded) naming every problem otherwise."""
    return flow.validate(chaos_ports(), conf, run_id, default_requester, run_url=run_url(dag_id, run_id))


def check_gates(run_doc: Mapping[str, Any], run_id: str) -> list[dict[str, Any]]:
    return flow.check_gates(chaos_ports(), run_doc, run_id)


def steady_state_before(run_doc: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    return flow.steady_state_before(chaos_ports(), run_doc, run_id)


def inject(run_doc: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    return flow.inject(chaos_ports(), run_doc, run_id)


def monitor_spec(run_doc: Mapping[str, Any], before: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    return flow.monitor_spec(chaos_ports(), run_doc, before, run_id)


def recovery_spec(run_doc: Mapping[str, Any], before: Mapping[str, Any], run_id: str) -> dict[str, Any] | None:
    return flow.recovery_spec(chaos_ports(), run_doc, before, run_id)


def monitor_done(run_doc: Mapping[str, Any], run_id: str, event: Mapping[str, Any]) -> dict[str, Any]:
    return flow.monitor_done(chaos_ports(), run_doc, run_id, event)


def recover(run_id: str) -> dict[str, Any]:
    return flow.recover(chaos_ports(), run_id)


def page_unrecovered(context: Mapping[str, Any]) -> None:
    """on_failure_callback of recover (after its retries): page the on-call with what is still injected."""
    try:
        flow.page_unrecovered(chaos_ports(), str(context["dag_run"].run_id), context.get("exception"))
    except Exception as exc:  # a callback never raises
        log.warning("could not page about the failed recovery: %s", exc)


def steady_after_done(run_id: str, event: Mapping[str, Any]) -> dict[str, Any]:
    return flow.steady_after_done(chaos_ports(), run_id, event)


def finalize(run_id: str, *, error: str | None = None) -> dict[str, Any]:
    return flow.finalize(chaos_ports(), run_id, error=error)


def conclude(result: Mapping[str, Any]) -> str:
    """Fail the run when its verdict fails it (gamesre.chaos.outcome.fails_the_run); else say the verdict."""
    from airflow.sdk.exceptions import AirflowFailException

    text = f"{result.get('verdict')}: {result.get('reason')}"
    if fails_the_run(result.get("verdict")):
        raise AirflowFailException(text)
    return text


def reap(current_run_id: str | None = None) -> dict[str, Any]:
    return flow.reap(chaos_ports(), current_run_id)


def plan_gameday(suite_name: str, run_id: str, *, dry_run: bool = False,
                 scheduled_for: datetime | None = None) -> list[dict[str, Any]]:
    """The game-day's experiment confs; ChaosRefused when a scheduled game-day is too late to run."""
    return flow.plan_gameday(chaos_ports(), suite_name, run_id, run_url=run_url(GAMEDAY_DAG_ID, run_id),
                             requested_by=f"{GAMEDAY_DAG_ID}:{suite_name}", dry_run=dry_run,
                             scheduled_for=scheduled_for)


def gameday_report(run_id: str) -> dict[str, Any]:
    return flow.gameday_report(chaos_ports(), run_id, run_url=run_url(GAMEDAY_DAG_ID, run_id))
