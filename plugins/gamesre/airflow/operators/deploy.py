"""StageRolloutOperator: one deploy stage, step by step, deferred on the canary analysis between steps.

execute: prepare the new version and apply the first step, then defer on a CanaryAnalysisTrigger.
step_done (each resume): record the verdict; on fail or timed_out roll back and fail the task; otherwise
apply the next step and defer again; after the last step (and the blue-green scale-down delay, watched
like a step) promote. The worker slot is held only for those short moments, never while waiting.

Progress for clients of the REST API (scripts/trigger_deploy.py): XCom `plan` ({"stage", "steps": [labels],
"first"}) once the first step is applied, and `step-<index>` per decided step (gamesre.app.deploy.step_progress).
"""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

if TYPE_CHECKING:
    from airflow.sdk import Context


class StageRolloutOperator(BaseOperator):
    """Roll the validated request out to one stage (`stage`), or skip when the request does not include it.

    :param request: the validate task's result (the DeployRequest as a dict), templated.
    :param gates: the stage's gates task result ({"strictness", "gates"}), templated.
    """

    template_fields = ("request", "gates")
    ui_color = "#e8f4ea"

    def __init__(self, *, stage: str, request: Any, gates: Any, prometheus_conn_id: str = "prometheus_default",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self.request = request
        self.gates = gates
        self.prometheus_conn_id = prometheus_conn_id

    def _run_id(self, context: Context) -> str:
        return str(context["dag_run"].run_id)

    def execute(self, context: Context) -> Any:
        from gamesre.airflow.deps import deploy_ports
        from gamesre.app import deploy
        from gamesre.deploy.request import DeployRequest

        request = DeployRequest.from_dict(self.request)
        if self.stage not in request.stages:
            raise AirflowSkipException(f"stage {self.stage} is not in this deploy's stages {list(request.stages)}")
        ports = deploy_ports()
        if request.dry_run:
            plan = deploy.stage_plan(ports, request, self.stage)
            self.log.info("dry run: %s would go through %s", self.stage, [s.label for s in plan.steps])
            return {"stage": self.stage, "dry_run": True, "plan": plan.to_dict()}
        state = deploy.start_stage(ports, request, self.stage, self._run_id(context))
        context["ti"].xcom_push(key="plan", value={"stage": self.stage, "steps": [
            s["label"] for s in state["plan"]["steps"]], "first": int(state["step"])})
        return self._defer(context, ports, request, state)

    def _defer(self, context: Context, ports: Any, request: Any, state: dict[str, Any]) -> Any:
        from gamesre.airflow.triggers.analysis import CanaryAnalysisTrigger
        from gamesre.app import deploy
        from gamesre.deploy.plan import RolloutPlan

        plan = RolloutPlan.from_dict(state["plan"])
        index = int(state["step"])
        label = plan.steps[index].label if index < len(plan.steps) else "scale-down delay"
        spec = deploy.analysis_spec(ports, request, self.stage, index, label,
                                    ports.backend(request.service, self.stage), run_id=self._run_id(context),
                                    since=float(state["since"]),
                                    strictness=float(self.gates.get("strictness", 1.0)),
                                    min_duration_s=state.get("hold_s"), max_pause_s=state.get("max_pause_s"))
        deadline = float(spec["thresholds"]["max_duration_s"]) + float(spec["max_pause_s"])  # a pause holds it
        self.log.info("%s %s: analysing %s against %s (deadline %.0fs)", self.stage, label,
                      spec["cohorts"]["candidate"], spec["cohorts"]["baseline"], deadline)
        self.defer(trigger=CanaryAnalysisTrigger(spec, prometheus_conn_id=self.prometheus_conn_id),
                   method_name="step_done", kwargs={"state": state},
                   timeout=timedelta(seconds=deadline + 300))

    def step_done(self, context: Context, state: dict[str, Any], event: Any = None) -> Any:
        from gamesre.airflow.deps import deploy_ports
        from gamesre.app import deploy
        from gamesre.deploy.request import DeployRequest

        request = DeployRequest.from_dict(self.request)
        ports = deploy_ports()
        event = dict(event or {})
        try:
            following = deploy.step_verdict(ports, request, self.stage, self._run_id(context), state, event)
        except deploy.DeployRolledBack as exc:
            context["ti"].xcom_push(key=f"step-{state['step']}", value=deploy.step_progress(self.stage, state, event,
                                                                                           None))
            raise AirflowFailException(str(exc)) from None  # rolled back: retrying would deploy again
        context["ti"].xcom_push(key=f"step-{state['step']}", value=deploy.step_progress(self.stage, state, event,
                                                                                       following))
        if following is None:
            return {"stage": self.stage, "outcome": "promoted"}
        return self._defer(context, ports, request, following)
