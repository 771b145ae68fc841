"""The budget policy's DAGs (dags/budget_policy_enforcement.py, dags/budget_policy_approval.py): build the ports and
run the use case (gamesre.app.enforcement)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gamesre.airflow.deps import enforcement_ports
from gamesre.app import enforcement


def evaluate(services: list[str] | None, mode: str = "") -> list[dict[str, Any]]:
    """The runs to start (TriggerDagRunOperator kwargs), one per service whose episode is decided now; `mode`
    (act, propose, notify) overrides policies.yaml's for this run."""
    return enforcement.evaluate(enforcement_ports(), services or None, mode or None)  # type: ignore[arg-type]


def answered(params: Mapping[str, Any], answer: Mapping[str, Any] | None) -> bool:
    """The proposal's answer (the approval task's result) recorded and said; True: the rollback starts."""
    answer = answer or {}
    return enforcement.answered(enforcement_ports(), str(params["service"]), str(params["episode_start"]),
                                str(params["run_id"]), list(answer.get("chosen_options") or []),
                                answer.get("responded_by_user"))
