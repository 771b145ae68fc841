"""
### The budget policy acts: roll back the change that spent the budget

Runs after every published error-budget policy state (the `error_budget_policy_state` asset that
`error_budget_report` updates hourly), or by hand for some services. For each service in state `rollback`
(>= 80% of a budget consumed), or `fast_burn` within 2 hours of a promotion, it looks for the suspect: the latest
promoted deploy within the look-back (6 h), and rolls it back only when the evidence points at it (the burn began
after the promotion). Once per policy episode. Per service (`include/config/policies.yaml` `enforcement`):

| mode | what happens |
|---|---|
| `act` | a `game_service_deploy` run of kind `automatic-rollback` starts at once (task `start_runs`) |
| `propose` | a `budget_policy_approval` run asks a person (Required actions in the UI, or REST); no answer in |
| | time: the default |
| `notify` | the team's channel is told what would be rolled back, nothing more |

A run triggered by hand may name `services` and a `mode` for this run only. Without a suspect in state
`rollback`, the owners are paged ("budget at 83%, no change to roll back") and the deploy freeze stays. Every
decision is recorded (`policy_action`), said in the team's channel and on the timeline of an open incident of the
service. See `docs/slo.md` ("Enforcement").
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task

from gamesre.airflow.assets import POLICY_STATE_ASSET
from gamesre.airflow.failure_notifier import TaskFailureNotifier
from gamesre.core.config_names import service_names


@dag(
    dag_id="budget_policy_enforcement",
    schedule=[POLICY_STATE_ASSET],
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    max_active_runs=1,  # one decision at a time (the store's key keeps it to one per episode anyway)
    default_args={"owner": "sre", "retries": 2, "retry_delay": timedelta(seconds=30),
                  "on_failure_callback": TaskFailureNotifier(
                      blocks="the budget policy's automatic rollbacks: a spent budget is not acted on until a run "
                             "succeeds")},
    params={"services": Param([], type="array", items={"type": "string", "enum": service_names()},
                              description="Empty: every service."),
            "mode": Param("", enum=["", "act", "propose", "notify"],
                          description="Empty: each service's mode from policies.yaml; propose: a person decides; "
                                      "notify: only tell.")},
    tags=["slo", "error-budget", "deploy"],
    doc_md=__doc__,
)
def budget_policy_enforcement():
    @task
    def decide(params=None) -> list:
        from gamesre.airflow.enforcement import evaluate

        return evaluate(list(params.get("services") or []), str(params.get("mode") or ""))

    # A retry after a start that did happen finds its run id taken and skips; a start that keeps failing is reported
    # by the failure notifier (the decision is recorded: the next publication does not start it again).
    TriggerDagRunOperator.partial(task_id="start_runs", wait_for_completion=False, skip_when_already_exists=True,
                                  fail_when_dag_is_paused=True).expand_kwargs(decide())


budget_policy_enforcement()
