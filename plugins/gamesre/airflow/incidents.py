"""The incident_response DAG's tasks (dags/incident_response.py): build the ports and run the use case
(gamesre.app.incidents)."""
from __future__ import annotations

from typing import Any

from gamesre.airflow.deps import incident_ports
from gamesre.app import incidents


def incident_of(params: dict[str, Any], dag_run: Any) -> str:
    """The run's incident: conf `incident_id` (the intake sets it, and names the run after it)."""
    incident_id = str(params.get("incident_id") or "").strip()
    if not incident_id:
        raise ValueError(f"run {getattr(dag_run, 'run_id', '?')}: conf incident_id is required (the intake sets it; "
                         "a person re-running an incident gives it, e.g. INC-20261207-001)")
    return incident_id


def declare(incident_id: str) -> dict[str, Any]:
    return incidents.declare(incident_ports(), incident_id)


def assemble(incident_id: str) -> dict[str, Any]:
    return incidents.assemble(incident_ports(), incident_id)


def watch(incident_id: str) -> dict[str, Any]:
    return incidents.watch(incident_ports(), incident_id)


def close(incident_id: str) -> dict[str, Any]:
    return incidents.close(incident_ports(), incident_id)


def act(params: dict[str, Any], by: str) -> dict[str, Any]:
    """A person's action from the incident_action form or REST conf; a refusal fails the task without retries."""
    from airflow.exceptions import AirflowFailException

    try:
        return incidents.act(incident_ports(), str(params.get("incident_id") or ""), str(params.get("action") or ""),
                             by, text=str(params.get("text") or ""), severity=str(params.get("severity") or ""),
                             role=str(params.get("role") or ""), person=str(params.get("person") or ""),
                             minutes=int(params.get("minutes") or 0), target=str(params.get("target") or ""))
    except incidents.IncidentActionRefused as exc:
        raise AirflowFailException(f"refused, nothing changed: {exc}") from None
