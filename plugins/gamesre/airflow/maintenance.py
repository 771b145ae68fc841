"""The maintenance DAGs' tasks: build the ports from Airflow's connections and run the use case
(gamesre.app.maintenance). A rejected form fails its task without retries, with the reason."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from gamesre.airflow.deps import maintenance_ports
from gamesre.app import maintenance


def reconcile(now: datetime) -> dict[str, Any]:
    """Converge the store, Alertmanager and event capacity on the calendar at `now`; returns the plan."""
    return maintenance.reconcile(maintenance_ports(), now)


def apply_transition(transition: dict[str, Any]) -> dict[str, Any]:
    """Do one exact-time step of the plan (its time has come)."""
    return maintenance.apply_transition(maintenance_ports(), transition)


def validate_request(params: dict[str, Any], requested_by: str) -> dict[str, Any]:
    """Check the form without changing anything; a rejection fails the task with the reason."""
    try:
        return maintenance.validate_request(maintenance_ports(), params, requested_by)
    except maintenance.InvalidWindowRequest as exc:
        raise AirflowFailException(str(exc)) from None


def apply_request(request: dict[str, Any]) -> dict[str, Any]:
    """Register or cancel as validated (checked again: the calendar may have changed since)."""
    try:
        return maintenance.apply_request(maintenance_ports(), request)
    except maintenance.InvalidWindowRequest as exc:
        raise AirflowFailException(str(exc)) from None
