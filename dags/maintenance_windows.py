"""
### Maintenance windows

Every 15 minutes, converges the outside world on `include/config/calendar.yaml` plus the windows registered
from the UI (`maintenance_window_request`):

- **Silences:** each maintenance window starting within the hour (or running) gets one Alertmanager silence per
  affected service, created ahead (pending until the start) and ending exactly at the window's end. The comment
  carries `[gamesre-window:<id>]`, so a retry or a re-run reuses it instead of duplicating it. Cancelled
  windows' silences are expired.
- **SLO exclusions:** windows are recorded in the SRE store, so error budgets leave them out (reports show the
  raw and the adjusted figures).
- **Event periods:** live-ops events scale their services up before they start and back after they end (an
  HPA's `minReplicas` on Kubernetes; extra fleet instances behind HAProxy in the demo).
- **Always the present:** each run converges on the calendar as it stands when the run executes, so a late
  run, a retry or a re-run of an old run does the right thing now, never what was right at its schedule.
- **Exact times:** a start, end or scaling step that falls before the next run is waited for by a deferred
  task (no worker slot held) and done at its exact time, with a notice in the affected services' Slack channels.

If Alertmanager is down, the tasks retry, then fail with the reason; the SRE channel gets the failure notice (the
task, the error, the log link and what it holds up).
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, task

from gamesre.airflow.failure_notifier import TaskFailureNotifier
from gamesre.airflow.operators.maintenance import WindowTransitionOperator

FAILED = TaskFailureNotifier(blocks="the maintenance silences, SLO exclusions and event scaling are not brought up to "
                                    "date until a run succeeds (every 15 minutes)")


@dag(
    dag_id="maintenance_windows",
    schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="Asia/Seoul"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "sre", "retries": 3, "retry_delay": timedelta(seconds=20),
                  "retry_exponential_backoff": True, "on_failure_callback": FAILED},
    tags=["maintenance"],
    doc_md=__doc__,
)
def maintenance_windows():
    @task
    def reconcile() -> dict:
        """Converge on the calendar as it stands now (a late or re-run run converges on the present too)."""
        from datetime import UTC, datetime

        from gamesre.airflow.maintenance import reconcile

        return reconcile(datetime.now(UTC))

    @task(retries=0)
    def exact_time_steps(plan: dict) -> list[dict]:
        """The transitions due before the next run, one mapped, deferred task each."""
        return plan["transitions"]

    WindowTransitionOperator.partial(task_id="transition").expand(transition=exact_time_steps(reconcile()))


maintenance_windows()
