"""DeployApprovalOperator: one review (technical, security or business) before a deploy stage, asked of people.

A human-in-the-loop task (Airflow's HITLOperator): it appears under **Required actions** in the UI and is
answered there or over the REST API (`PATCH /api/v2/dags/game_service_deploy/dagRuns/{run}/taskInstances/
approve_<stage>_<review>/-1/hitlDetails` with `{"chosen_options": ["Approve"], "params_input": {"reason": ...}}`)
by a user the review's reviewers name (deploy.yaml `approvals.reviewers`; Airflow refuses anyone else with 403).
The task is skipped when the stage does not need the review (gamesre.app.deploy.approval_ask). A rejection, the
timeout (blocked) or the deploy ending meanwhile (another rejection, an abort) fail it; the deploy's other tasks
then never change the stage.

Answered within seconds of the task deferring, Airflow 3.3 can fail the task although the answer was taken: the
scheduler queues the resumed task before it has processed the exit of the process that deferred, and takes that
exit for the new try's ("state changed externally"). The task then retries (retries=1) and asks again, saying so
in the service's channel; a person never answers that fast, an automated reviewer must wait a few seconds.
"""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from gamesre.deploy.approvals import APPROVE, OPTIONS

if TYPE_CHECKING:
    from airflow.sdk import Context


def resolve_reviewers(users: tuple[str, ...], roles: tuple[str, ...]) -> list[dict[str, str]]:
    """The Airflow users who may answer: the users named, and the simple auth manager's users of the roles named
    (from `[core] simple_auth_manager_users`). Roles with another auth manager cannot be listed: an error says so."""
    from airflow.configuration import conf

    ids = list(users)
    if roles:
        manager = conf.get("core", "auth_manager", fallback="")
        if manager and "simple" not in manager.lower():
            raise AirflowFailException(f"deploy.yaml approvals.reviewers names roles {list(roles)}, which only the "
                                       f"simple auth manager can list (this Airflow uses {manager}): name users")
        for entry in conf.get("core", "simple_auth_manager_users", fallback="").split(","):
            name, _, role = entry.strip().partition(":")
            if name and role.strip().lower() in {r.lower() for r in roles} and name not in ids:
                ids.append(name)
    if not ids:
        raise AirflowFailException(f"nobody may give this review: no user has the roles {list(roles)}")
    return [{"id": i, "name": i} for i in ids]


class DeployApprovalOperator(HITLOperator):
    """Ask `review` before `stage` for the validated `request` (templated: the validate task's result)."""

    template_fields = ("subject", "body", "request")
    ui_color = "#fdf3d8"

    def __init__(self, *, stage: str, review: str, request: Any, **kwargs: Any) -> None:
        kwargs.pop("params", None)  # the DAG's form: not this review's (its own form is the reason below)
        super().__init__(subject=f"{review} review before {stage}", options=list(OPTIONS),
                         params={"reason": Param("", type="string", maxLength=1000,
                                                 description="Why (required to reject; recorded and posted).")},
                         **kwargs)
        self.stage = stage
        self.review = review
        self.request = request

    def execute(self, context: Context) -> Any:
        from airflow.sdk.execution_time.hitl import upsert_hitl_detail

        from gamesre.airflow.deps import deploy_ports
        from gamesre.airflow.triggers.approval import DeployApprovalTrigger
        from gamesre.app import deploy
        from gamesre.deploy.request import DeployRequest

        request = DeployRequest.from_dict(self.request)
        run_id = str(context["dag_run"].run_id)
        try:
            ask = deploy.approval_ask(deploy_ports(), request, self.stage, self.review, run_id,
                                      attempt=int(context["task_instance"].try_number))
        except (ValueError, deploy.DeployBlocked, deploy.DeployRejected) as exc:  # nobody may give it, gates
            # that block now, or the deploy already ended
            raise AirflowFailException(str(exc)) from None
        if ask is None:
            raise AirflowSkipException(f"the {self.review} review is not needed before {self.stage} for this deploy")
        self.subject, self.body = ask.subject, ask.body
        self.assigned_users = resolve_reviewers(ask.users, ask.roles)  # type: ignore[assignment]
        ti_id = context["task_instance"].id
        upsert_hitl_detail(ti_id=ti_id, options=self.options, subject=self.subject, body=self.body,
                           defaults=None, multiple=False, params=self.serialized_params,
                           assigned_users=self.assigned_users)
        from airflow.sdk.timezone import utcnow

        self.log.info("waiting for the %s review before %s from %s", self.review, self.stage,
                      [u["id"] for u in self.assigned_users or []])
        self.defer(trigger=DeployApprovalTrigger(ti_id=ti_id, options=self.options, params=self.serialized_params,
                                                 defaults=None, multiple=False,
                                                 timeout_datetime=utcnow() + timedelta(seconds=ask.timeout_s),
                                                 deployment_id=run_id),
                   method_name="execute_complete")

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from gamesre.airflow.deps import deploy_ports
        from gamesre.app import deploy
        from gamesre.deploy.request import DeployRequest

        request = DeployRequest.from_dict(self.request)
        run_id = str(context["dag_run"].run_id)
        ports = deploy_ports()
        try:
            if "ended" in event or "error" in event:
                deploy.approval_unanswered(ports, request, self.stage, self.review, run_id,
                                           timed_out=event.get("error_type") == "timeout")
            chosen = list(event.get("chosen_options") or [])
            user = event.get("responded_by_user") or {}
            reason = str((event.get("params_input") or {}).get("reason") or "").strip()
            return deploy.approval_answered(ports, request, self.stage, self.review, run_id,
                                            approved=chosen == [APPROVE], user=str(user.get("id") or "?"),
                                            reason=reason)
        except (deploy.DeployRejected, deploy.DeployBlocked) as exc:
            raise AirflowFailException(str(exc)) from None
