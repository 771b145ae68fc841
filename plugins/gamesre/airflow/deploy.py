"""The deploy DAG's tasks (StageRolloutOperator runs the rollout steps itself): parse the request, build the ports,
run the use case (gamesre.app.deploy), and turn its refusals into task failures that are not retried."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from gamesre.airflow.deps import deploy_ports
from gamesre.app import deploy
from gamesre.deploy.request import DeployRequest, InvalidDeployRequest

DAG_ID = "game_service_deploy"



def validate(conf: Mapping[str, Any] | None, run_id: str, default_requester: str) -> dict[str, Any]:
    """The validated request as a dict; an invalid one fails the run naming every bad field (recorded)."""
    try:
        return deploy.validate(deploy_ports(), conf, run_id, default_requester).to_dict()
    except InvalidDeployRequest as exc:
        raise AirflowFailException(str(exc)) from None


def check_gates(request_doc: Mapping[str, Any], stage: str, run_id: str) -> dict[str, Any]:
    """The stage's gates; a refusal fails the task (retrying would not change the facts)."""
    try:
        return deploy.check_gates(deploy_ports(), DeployRequest.from_dict(request_doc), stage, run_id)
    except deploy.DeployBlocked as exc:
        raise AirflowFailException(str(exc)) from None


def finalize(request_doc: Mapping[str, Any] | None, run_id: str) -> dict[str, Any]:
    return deploy.finalize(deploy_ports(), DeployRequest.from_dict(request_doc) if request_doc else None, run_id)


def conclude(result: Mapping[str, Any]) -> str:
    """The run fails unless the deploy was promoted (or was a dry run): CI and the UI see the outcome."""
    if not deploy.succeeded(result):
        raise AirflowFailException(f"deploy {result['outcome']}: {result['reason']}")
    return str(result["outcome"])


def control(run_id: str, action: str, actor: str, reason: str) -> dict[str, Any]:
    """A person's request to steer a deploy; a refusal fails the task naming why (nothing recorded, no retry)."""
    try:
        return deploy.request_control(deploy_ports(), run_id, action, actor, reason)
    except deploy.ControlRefused as exc:
        raise AirflowFailException(str(exc)) from None
