"""
### The weekly chaos game-day: a suite of experiments, one at a time, with one report

Runs every Wednesday at 14:00 KST (outside the evening peak and the Tuesday maintenance), or by hand with
the form below. `reap` recovers faults left behind by crashed runs. `plan` records the game-day and lists the
suite's experiments (`include/config/chaos/suites.yaml`); a scheduled game-day more than an hour late (e.g.
the DAG was unpaused on another day) is refused rather than run at an hour nobody planned for. `experiments`
triggers one `chaos_experiment` run per experiment, in order and one at a time, and waits for each
(deferred): every experiment goes through its own gates, steady-state checks, monitor, recovery and verdict,
so a game-day refused at peak or with a low budget injects nothing. `report` gathers the verdicts, computes
the game-day's resilience score (Σ weight × score / Σ weight), records it, writes the Markdown/HTML/JUnit
report with the score trend, and posts the summary and the HTML report to the Slack channels of the services it
touched. A task that fails after its retries is reported to the SRE channel. See `docs/chaos.md`.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task

from gamesre.airflow.failure_notifier import TaskFailureNotifier
from gamesre.core.config_names import chaos_suite_names


@dag(
    dag_id="chaos_gameday",
    schedule="0 14 * * 3",  # Wednesday 14:00 Asia/Seoul
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "sre", "retries": 1, "retry_delay": timedelta(seconds=10),
                  "on_failure_callback": TaskFailureNotifier(blocks="this game-day's report and score")},
    params={
        "suite": Param("weekly", enum=chaos_suite_names(), description="The suite of experiments to run."),
        "dry_run": Param(False, type="boolean", description="Check gates and steady states only."),
    },
    tags=["chaos"],
    doc_md=__doc__,
)
def chaos_gameday():
    @task(retries=2)
    def reap() -> dict:
        from gamesre.airflow.chaos import reap as reap_leftovers

        return reap_leftovers()

    @task
    def plan(params=None, dag_run=None) -> list:
        from airflow.sdk.exceptions import AirflowSkipException

        from gamesre.airflow.chaos import ChaosRefused, plan_gameday

        # A scheduled run's logical date is the Wednesday 14:00 it stands for (run_after may be later).
        scheduled = getattr(dag_run.run_type, "value", dag_run.run_type) == "scheduled"
        scheduled_for = (dag_run.logical_date or dag_run.run_after) if scheduled else None
        try:
            return plan_gameday(str(params["suite"]), dag_run.run_id, dry_run=bool(params["dry_run"]),
                                scheduled_for=scheduled_for)
        except ChaosRefused as exc:
            raise AirflowSkipException(str(exc)) from None

    confs = plan()
    experiments = TriggerDagRunOperator.partial(
        task_id="experiments", trigger_dag_id="chaos_experiment", wait_for_completion=True, deferrable=True,
        poke_interval=10, allowed_states=["success", "failed"], failed_states=[], max_active_tis_per_dagrun=1,
        retries=0,
    ).expand(conf=confs)

    @task(trigger_rule="all_done")
    def report(dag_run=None) -> dict:
        from gamesre.airflow.chaos import gameday_report

        return gameday_report(dag_run.run_id)

    reap() >> confs
    experiments >> report()


chaos_gameday()
