"""The SLO DAGs' tasks (slo_ingest, error_budget_report): the run's interval from Airflow's context, the ports from
its connections, the use case in gamesre.app.slo."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gamesre.airflow.deps import slo_ports
from gamesre.app import slo


def run_ingest(start: datetime, end: datetime, *, max_backfill: timedelta = timedelta(days=35),
               chunk_seconds: int = 6 * 3600) -> dict[str, Any]:
    """Ingest every SLO for the data interval [start, end), filling any gap behind it first."""
    return slo.ingest(slo_ports(), start, end, max_backfill=max_backfill, chunk_seconds=chunk_seconds)


def run_interval(data_interval_start: datetime | None, data_interval_end: datetime | None, dag_run: Any,
                 length: timedelta) -> tuple[datetime, datetime]:
    """A run's data interval. A manual run without a logical date (the REST API's and the UI's default) has
    none: it ends at the run's own time (`run_after`) and lasts `length`, the schedule's interval."""
    if data_interval_end is None:
        end = dag_run.run_after
        return end - length, end
    return (data_interval_start if data_interval_start is not None else data_interval_end - length), data_interval_end


def compute_states(at: datetime) -> dict[str, Any]:
    """Compute every SLO's snapshot at `at`, store it, and publish the per-SLO and per-service states."""
    return slo.compute_states(slo_ports(), at)


def post_report(at: datetime) -> dict[str, Any]:
    """The daily error-budget report to Slack."""
    return slo.post_report(slo_ports(), at)
