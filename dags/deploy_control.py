"""
### Steer a running deploy: pause, resume, promote, abort

For a `game_service_deploy` run in progress. Fill in the form (**Trigger** in the UI) or send `conf` over the
REST API (`scripts/trigger_deploy.py --abort RUN_ID --reason ...` does):

| field | meaning |
|---|---|
| `run_id` | the deploy's run id |
| `action` | `pause` (the current step holds its traffic; a regression still rolls back; paused longer than |
| | deploy.yaml `analysis.max_pause`: rolled back), `resume`, `promote` (the current step passes now), |
| | `promote_full` (the rest of the stage's steps skipped: all traffic on the new version), `abort` (roll back |
| | now; while the deploy waits for a review: end it there) |
| `reason` | required: why (recorded with your user name and posted to the service's channel) |

The deploy's analysis takes the request at its next poll (every 5 s). Only that deploy is affected. A request that
cannot apply (an unknown or finished run, a dry run, a rollback, `resume` when not paused, no reason) fails this
run with the reason and changes nothing. Every request, and where it took effect, is in the deployment's record.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from gamesre.airflow.failure_notifier import TaskFailureNotifier
from gamesre.deploy.control import ACTIONS


@dag(
    dag_id="deploy_control",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    default_args={"owner": "sre", "retries": 2, "retry_delay": timedelta(seconds=5),
                  "on_failure_callback": TaskFailureNotifier(
                      blocks="this request to steer the deploy: it was not applied; read the reason in the task "
                             "log")},
    params={
        "run_id": Param("", type="string", minLength=1, maxLength=250, description="The deploy's run id."),
        "action": Param("pause", enum=list(ACTIONS), description="What to do."),
        "reason": Param("", type="string", minLength=1, maxLength=1000, description="Why (required)."),
    },
    tags=["deploy"],
    doc_md=__doc__,
)
def deploy_control():
    @task
    def request(params=None, dag_run=None) -> dict:
        from gamesre.airflow.context import requester
        from gamesre.airflow.deploy import control

        return control(params["run_id"], params["action"], requester({}, dag_run), params["reason"])

    request()


deploy_control()
