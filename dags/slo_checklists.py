"""
### SLO checklists: daily (09:00 KST), weekly (Monday 10:00 KST) and monthly (1st, 10:00 KST)

Three DAGs from one file, one per cadence of `include/config/checklists.yaml` (the items are data: add one
there, no DAG change). `evaluate` fetches every input the items need once (Prometheus, Alertmanager, the SRE
store, the configuration, git), runs each item with its evidence (pass, warn, fail, manual, or error when its
data is unavailable, with the reason) and stores the results. `report` always runs: Markdown and HTML with
charts under the report folder, and in the SRE Slack channel a summary (failing items first), the HTML report as a
file and the charts. A task that fails after its retries is reported there too. See `docs/checklists.md`.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from gamesre.airflow.failure_notifier import TaskFailureNotifier
from gamesre.core.config_names import checklist_schedules

SCHEDULES = checklist_schedules()


def checklist_dag(cadence: str):
    @dag(
        dag_id=f"slo_checklist_{cadence}",
        schedule=SCHEDULES[cadence],
        start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
        catchup=False,
        max_active_runs=1,
        default_args={"owner": "sre", "retries": 1, "retry_delay": timedelta(minutes=1),
                      "on_failure_callback": TaskFailureNotifier(
                          blocks=f"this {cadence} checklist's results or report; the next run checks again")},
        tags=["checklist"],
        doc_md=__doc__,
    )
    def checklist():
        @task
        def evaluate(dag_run=None) -> dict:
            from gamesre.airflow.checklists import evaluate as run
            from gamesre.airflow.links import run_url

            return run(cadence, dag_run.run_id, dag_run.run_after, run_url(dag_run.dag_id, dag_run.run_id))

        @task(trigger_rule="all_done")
        def report(dag_run=None) -> dict:
            from gamesre.airflow.checklists import report as deliver

            return deliver(cadence, dag_run.run_id)

        evaluate() >> report()

    return checklist()


for _cadence in ("daily", "weekly", "monthly"):
    checklist_dag(_cadence)
