"""
### Error-budget report

Hourly: computes every SLO from the ledger (SLI, budget consumed and remaining, raw and with maintenance
windows excluded, burn rates over 5 m to 3 d, data coverage), stores a snapshot, and **publishes the policy
state** per SLO and per service: as a row in the SRE store (read by the deploy and chaos gates, which treat a
state older than 2 hours as blocking) and as an event on the `error_budget_policy_state` asset.

Daily at 09:00 KST (or on any run triggered with `daily_report: always`) it also posts the report to
the SRE channel in Slack: the SLO table, a burn-down chart over the window, and the time ranges that consumed the
most budget.

A task that fails after its retries is reported to the SRE channel with the time the published state goes stale
(and with it every deploy and game-day blocks); under 30 minutes before that, or after, the on-call is paged
(docs/alerting.md, "Failed DAG runs").

A manual run triggered without a logical date (the UI's and the REST API's default) computes at its own time.

States, thresholds and the evening-peak strictness are defined in `include/config/policies.yaml` and
explained in `docs/slo.md`.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from gamesre.airflow.assets import POLICY_STATE_ASSET
from gamesre.airflow.failure_notifier import TaskFailureNotifier

HOUR = timedelta(hours=1)  # the schedule's interval; a manual run without a logical date ends at its own time


@dag(
    dag_id="error_budget_report",
    # A data-interval timetable: each run covers the interval before it (plain cron strings give Airflow 3
    # runs with an empty interval).
    schedule=CronDataIntervalTimetable("5 * * * *", timezone="Asia/Seoul"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "sre", "retries": 2, "retry_delay": timedelta(minutes=1),
                  "on_failure_callback": TaskFailureNotifier(guards_policy_state=True)},
    params={"daily_report": Param("auto", enum=["auto", "always", "never"],
                                  description="Post the Slack report: auto (the 09:00 KST run), always, or never.")},
    tags=["slo", "error-budget", "reports"],
    doc_md=__doc__,
)
def error_budget_report():
    @task(outlets=[POLICY_STATE_ASSET])
    def compute_and_publish(data_interval_start=None, data_interval_end=None, dag_run=None,
                            outlet_events=None) -> dict:
        from gamesre.airflow.slo import compute_states, run_interval

        result = compute_states(run_interval(data_interval_start, data_interval_end, dag_run, HOUR)[1])
        outlet_events[POLICY_STATE_ASSET].extra = {"at": result["at"], "services": result["services"],
                                                   "slos": {k: v["state"] for k, v in result["slos"].items()}}
        return result

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def is_daily_report_hour(data_interval_start=None, data_interval_end=None, dag_run=None, params=None) -> bool:
        from gamesre.airflow.slo import run_interval
        from gamesre.app.slo import is_daily_report_time

        choice = params["daily_report"]
        at = run_interval(data_interval_start, data_interval_end, dag_run, HOUR)[1]
        return choice == "always" or (choice == "auto" and is_daily_report_time(at))

    @task
    def post_daily_report(data_interval_start=None, data_interval_end=None, dag_run=None) -> dict:
        from gamesre.airflow.slo import post_report, run_interval

        return post_report(run_interval(data_interval_start, data_interval_end, dag_run, HOUR)[1])

    compute_and_publish() >> is_daily_report_hour() >> post_daily_report()


error_budget_report()
