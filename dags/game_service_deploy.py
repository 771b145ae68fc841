"""
### Deploy a game service build: dev → staging → prod, verified against the SLOs, promoted or rolled back

Trigger from CI with one REST call (`scripts/trigger_deploy.py`) or from the UI with this form:

| field | meaning |
|---|---|
| `kind` | `deploy` (a new build) or `rollback` (back to a version that served before, all traffic at once; |
| | `automatic-rollback`: one the budget policy started) |
| `service` | a service of `include/config/services.yaml` |
| `version` | the image tag, or the full `registry/repository:tag`; checked against the service's image |
| `rollback_of` | a rollback of this deployment (its run id) to the version it replaced; `version` may then be empty |
| `strategy` | `canary`, `blue-green` or `rolling`; empty: the service's default |
| `stages` | a subset of `dev`, `staging`, `prod` (always run in that order); empty: all |
| `canary_steps` | optional canary weights, e.g. `[10, 25, 50, 100]` (default from `include/config/deploy.yaml`) |
| `change_ticket`, `requested_by` | the change ticket (e.g. CHG-1234) and who asks (default: the trigger's user) |
| `dry_run` | validate, evaluate the gates and show the plan; change nothing |
| `force`, `force_reason` | bypass the 50% error-budget freeze only, with a reason |

`validate` runs first: a bad field fails the run naming the field, and nothing is touched. Before a stage that
needs reviews (deploy.yaml: prod needs technical, security and business), `approve_<stage>_<review>` waits for
each under **Required actions** (or the REST API), answered by the review's reviewers; a rejection ends the deploy
`rejected`, no answer within the timeout `blocked`. Then `gates_<stage>` checks the stage's gates (one deploy per
service, firing page alerts, the error-budget state, maintenance windows and the evening peak; a rollback's are
only the lock and the backend's health; a rollback needs no review).
`rollout_<stage>` applies each step of the strategy and waits,
deferred, for the canary analysis (a sequential test per SLI against the baseline); a regression, or no
evidence by the step deadline, rolls back at once. `finalize` always runs: it rolls back anything left half
done, releases the deploy lock, records the deployment in the SRE store and posts the outcome to the service's Slack
channel with the evidence. `conclude` fails the run unless the build was promoted. A task that fails after its
retries is reported to the service's channel too. People pause, resume, promote or abort a running deploy with
the `deploy_control` DAG. See `docs/deploy.md`.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from gamesre.airflow.failure_notifier import TaskFailureNotifier
from gamesre.airflow.operators.approval import DeployApprovalOperator
from gamesre.airflow.operators.deploy import StageRolloutOperator
from gamesre.core.config_names import service_names
from gamesre.deploy.approvals import REVIEWS

STAGES = ("dev", "staging", "prod")  # include/config/deploy.yaml stages (checked by tests/unit/test_dag_integrity.py)


@dag(
    dag_id="game_service_deploy",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    max_active_runs=8,  # different services deploy in parallel; the lock gate keeps one per service
    # Gates, validation and finalize are idempotent and retry; a rollout never does (a retry would deploy again).
    default_args={"owner": "sre", "retries": 1, "retry_delay": timedelta(seconds=10),
                  "on_failure_callback": TaskFailureNotifier(
                      blocks="this deploy of the service: see the run for the stage it reached and its outcome")},
    params={
        "kind": Param("deploy", enum=["deploy", "rollback", "automatic-rollback"],
                      description="deploy: a new build; rollback: back to a version that served before "
                                  "(automatic-rollback: one the budget policy started)."),
        "service": Param("game-server", enum=service_names(), description="The service to deploy."),
        "version": Param("", type="string", maxLength=300, description="Image tag, e.g. 1.5.1."),
        "rollback_of": Param("", type="string", maxLength=250,
                             description="rollback: the deployment (run id) to undo; version defaults to what it "
                                         "replaced."),
        "strategy": Param("", enum=["", "canary", "blue-green", "rolling"],
                          description="Empty: the service's default strategy."),
        "stages": Param([], type="array", items={"type": "string", "enum": list(STAGES)},
                        description="Empty: every stage."),
        "canary_steps": Param([], type="array", items={"type": "integer", "minimum": 1, "maximum": 100},
                              description="Canary weights in percent, ending at 100. Empty: deploy.yaml's."),
        "change_ticket": Param("", type="string", maxLength=128, description="Change ticket, e.g. CHG-1234."),
        "requested_by": Param("", type="string", maxLength=128, description="Who asks (default: you)."),
        "dry_run": Param(False, type="boolean", description="Validate and evaluate the gates only."),
        "force": Param(False, type="boolean", description="Bypass the 50% budget freeze (only that)."),
        "force_reason": Param("", type="string", maxLength=500, description="Why the freeze may be bypassed."),
    },
    tags=["deploy"],
    doc_md=__doc__,
)
def game_service_deploy():
    @task
    def validate(params=None, dag_run=None) -> dict:
        from gamesre.airflow.context import requester
        from gamesre.airflow.deploy import validate as validate_request

        conf = {k: v for k, v in dict(params).items() if v not in ("", [], None) or k in ("dry_run", "force")}
        return validate_request(conf, dag_run.run_id, requester({}, dag_run))

    request = validate()
    previous = request
    for stage in STAGES:
        @task(task_id=f"gates_{stage}", trigger_rule="none_failed")
        def gates(request: dict, stage: str = stage, dag_run=None) -> dict:
            from airflow.sdk.exceptions import AirflowSkipException

            from gamesre.airflow.deploy import check_gates

            if stage not in request["stages"]:
                raise AirflowSkipException(f"stage {stage} is not in this deploy's stages {request['stages']}")
            return check_gates(request, stage, dag_run.run_id)

        reviews = [DeployApprovalOperator(task_id=f"approve_{stage}_{review}", stage=stage, review=review,
                                          request=request, trigger_rule="none_failed", retries=1,
                                          retry_delay=timedelta(seconds=5))
                   for review in REVIEWS]
        gate = gates(request)
        rollout = StageRolloutOperator(task_id=f"rollout_{stage}", stage=stage, request=request, gates=gate,
                                       trigger_rule="none_failed", retries=0)
        previous >> reviews >> gate >> rollout
        previous = rollout

    @task(trigger_rule="all_done")
    def finalize(dag_run=None, ti=None) -> dict:
        from gamesre.airflow.deploy import finalize as finish

        request = ti.xcom_pull(task_ids="validate")
        return finish(request, dag_run.run_id)

    @task
    def conclude(result: dict) -> str:
        from gamesre.airflow.deploy import conclude as end

        return end(result)

    result = finalize()
    previous >> result
    conclude(result)


game_service_deploy()
