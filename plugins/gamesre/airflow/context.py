"""What a task reads from Airflow's context about the people in the loop."""
from __future__ import annotations

from typing import Any


def requester(params: dict[str, Any], dag_run: Any) -> str:
    """Who asked: the form's requested_by, else the user who triggered the run, else 'unknown'."""
    return str(params.get("requested_by") or getattr(dag_run, "triggering_user_name", None) or "unknown")
