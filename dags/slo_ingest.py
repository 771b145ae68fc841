"""
### SLO ingest

Every 5 minutes, counts the good and total events of every SLO in `include/config/slos.yaml`, per one-minute
slice, from Prometheus into the SRE store's **ledger**.

- **Exact:** counters are read at the exact minute edges of the run's data interval (the last sample at or
  before each edge), so good and total are evaluated at the same instants and a re-run writes identical rows.
- **Catch-up:** a run whose ledger is behind (first run, an outage of Airflow or Prometheus) first fills the
  gap back to the last ingested minute, at most `max_backfill_days` (35) back, with chunked raw-sample
  queries: a backfill of 35 days takes a few hundred queries, not one per slice. Re-ingesting a past range:
  `python -m gamesre ingest --start ... --end ...` or an Airflow backfill of this DAG.
- **Gaps:** a counter that missed scrapes continues from its last value before the gap (looked up as far as
  35 days back); only a series that never had a sample starts from zero. The events of a gap land in the first
  minute after it, whose row covers the gap's minutes: the ledger is the same however it is chunked.
- **Fail-safe:** an SLO whose queries fail is reported by name, with the range written and the range not
  written; the others are still written, and the next run continues each SLO where its ledger stops.
- **Manual runs:** triggered without a logical date (the UI's and the REST API's default), a run ingests the
  5 minutes up to its own time, after filling any gap behind them.

A task that fails after its retries is reported to the SRE channel (the DAG, the task, the error, the log link and
when the published policy state goes stale, which then blocks every deploy and game-day), and pages the on-call
when that is under 30 minutes away (docs/alerting.md, "Failed DAG runs").

Connections: `prometheus_default`, `sre_store`, `slack_api_default`, `pagerduty_default`. Docs: `docs/slo.md`.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from gamesre.airflow.failure_notifier import TaskFailureNotifier


@dag(
    dag_id="slo_ingest",
    # A data-interval timetable: each run covers the interval before it (plain cron strings give Airflow 3
    # runs with an empty interval).
    schedule=CronDataIntervalTimetable("*/5 * * * *", timezone="Asia/Seoul"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    default_args={"owner": "sre", "retries": 3, "retry_delay": timedelta(seconds=30),
                  "retry_exponential_backoff": True,
                  "on_failure_callback": TaskFailureNotifier(guards_policy_state=True)},
    params={"max_backfill_days": Param(35, type="integer", minimum=0, maximum=90,
                                       description="How far back a run may fill a gap in the ledger.")},
    tags=["slo", "ingest"],
    doc_md=__doc__,
)
def slo_ingest():
    @task(execution_timeout=timedelta(minutes=20))
    def ingest(data_interval_start=None, data_interval_end=None, dag_run=None, params=None) -> dict:
        from gamesre.airflow.slo import run_ingest, run_interval

        start, end = run_interval(data_interval_start, data_interval_end, dag_run, timedelta(minutes=5))
        return run_ingest(start, end, max_backfill=timedelta(days=int(params["max_backfill_days"])))

    ingest()


slo_ingest()
