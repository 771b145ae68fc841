"""
### A rollback the budget policy proposes: a person decides

Started by `budget_policy_enforcement` for a service in mode `propose`. `approve` waits for a person in the UI
(**Required actions**) or over the REST API (`PATCH .../taskInstances/approve/-1/hitlDetails` with
`{"chosen_options": ["Roll back"]}`), for at most `propose_timeout` (policies.yaml); no answer: `propose_default`.
`record` writes the answer on the policy's decision and says it in the team's channel; on "Roll back",
`rollback` starts the `game_service_deploy` run of kind `automatic-rollback` the policy prepared.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task

from gamesre.airflow.failure_notifier import TaskFailureNotifier
from gamesre.core.config_names import enforcement_timing

TIMEOUT_S, DEFAULT = enforcement_timing()
OPTIONS = ["Roll back", "Keep"]  # gamesre.app.enforcement.ROLL_BACK, KEEP


@dag(
    dag_id="budget_policy_approval",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    render_template_as_native_obj=True,  # the deploy conf reaches the trigger as an object
    default_args={"owner": "sre", "retries": 1, "retry_delay": timedelta(seconds=10),
                  "on_failure_callback": TaskFailureNotifier(
                      blocks="the rollback the budget policy proposed: it did not start; decide by hand")},
    params={"service": Param("", type="string"), "run_id": Param("", type="string"),
            "deploy_conf": Param({}, type="object"), "reason": Param("", type="string"),
            "episode_start": Param("", type="string")},
    tags=["slo", "error-budget", "deploy"],
    doc_md=__doc__,
)
def budget_policy_approval():
    approve = HITLOperator(
        task_id="approve", options=OPTIONS, defaults=["Roll back" if DEFAULT == "rollback" else "Keep"],
        response_timeout=timedelta(seconds=TIMEOUT_S), retries=0,
        subject="Roll back {{ params.service }} ({{ params.deploy_conf.rollback_of }})?",
        body="{{ params.reason }}\n\nNo answer by the deadline: " + DEFAULT + ".")

    @task.short_circuit
    def record(answer: dict, params=None) -> bool:
        from gamesre.airflow.enforcement import answered

        return answered(params, answer)

    rollback = TriggerDagRunOperator(task_id="rollback", trigger_dag_id="game_service_deploy",
                                     trigger_run_id="{{ params.run_id }}", conf="{{ params.deploy_conf }}",
                                     wait_for_completion=False, skip_when_already_exists=True,
                                     fail_when_dag_is_paused=True)
    record(approve.output) >> rollback


budget_policy_approval()
