"""Airflow glue of the SLO workflows: ingest an interval, compute and publish the policy state, report.

Task bodies in dags/ call these with explicit instants; these build the hooks and delegate to the domain
(gamesre.slo, gamesre.reports). Nothing here is imported at DAG parse time.
"""
from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from gamesre.airflow.hooks.prometheus import PrometheusHook
from gamesre.airflow.hooks.store import SREStoreHook

log = logging.getLogger(__name__)

SETTLE_SECONDS = 10  # let the scrape at the interval's end reach Prometheus before counting it


def run_ingest(start: datetime, end: datetime, *, max_backfill: timedelta = timedelta(days=35),
               chunk_seconds: int = 6 * 3600) -> dict[str, Any]:
    """Ingest every SLO for the data interval [start, end), filling any gap behind it first.

    The log says, per SLO, which range was written; when an SLO fails, also which range was not and why. The
    next run starts each SLO where its ledger stops, so a partial ingest is completed, not repeated.
    """
    from gamesre.slo.ingest import IngestError, align_down, catch_up_start, ingest_all
    from gamesre.slo.spec import load_slos

    catalog = load_slos()
    store = SREStoreHook().get_conn()
    s, e = align_down(start.timestamp()), align_down(end.timestamp())
    wait = e + SETTLE_SECONDS - time.time()
    if wait > 0:
        time.sleep(min(wait, SETTLE_SECONDS))
    starts = {}
    for slo in catalog:
        extent = store.ledger_extent(slo.name)
        starts[slo.name] = catch_up_start(extent[1] if extent else None, s, e, int(max_backfill.total_seconds()))
    try:
        results = ingest_all(catalog, PrometheusHook().get_conn(), store, s, e, chunk=chunk_seconds, starts=starts)
    except IngestError as exc:
        for r in exc.results:
            log.info("SLO %s", r.describe())
        for r in exc.failed:
            log.error("SLO %s", r.describe())
        log.error("The next run continues each SLO above from the end of what was written.")
        raise
    for r in results:
        log.info("SLO %s", r.describe())
    return {"start": s, "end": e, "slos": [r.to_dict() for r in results]}


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
    from gamesre.slo.evaluation import evaluate_slos
    from gamesre.slo.policy import service_states, snapshot_record
    from gamesre.slo.spec import load_policies, load_slos

    store = SREStoreHook().get_conn()
    at = at.astimezone(UTC)
    evaluated = evaluate_slos(load_slos(), load_policies(), store, at)
    records = {}
    for ev in evaluated:
        record = snapshot_record(ev.snapshot, ev.state)
        store.save_snapshot(ev.slo.name, at.replace(second=0, microsecond=0), ev.snapshot.window, ev.state.state,
                            record)
        store.publish_state("slo", ev.slo.name, ev.state.state, at, [r.to_dict() for r in ev.state.reasons], record)
        records[ev.slo.name] = record
    services = service_states(ev.state for ev in evaluated)
    for name, service in services.items():
        store.publish_state("service", name, service.state, at, [r.to_dict() for r in service.reasons],
                            service.to_dict())
    return {
        "at": at.isoformat(),
        "slos": {name: {"state": r["state"], "budget_remaining": r.get("budget_remaining"),
                        "budget_remaining_adjusted": r.get("budget_remaining_adjusted")}
                 for name, r in records.items()},
        "services": {name: s.state for name, s in services.items()},
    }


DAILY_REPORT_HOUR_KST = 9


def is_daily_report_time(at: datetime) -> bool:
    """True for the hourly run that falls in 09:00-09:59 Asia/Seoul."""
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo("Asia/Seoul")).hour == DAILY_REPORT_HOUR_KST


def _report_channel() -> str:
    import os

    return os.environ.get("GAMESRE_REPORT_CHANNEL", "C0SREREPORTS")


def post_report(at: datetime) -> dict[str, Any]:
    """Build the daily error-budget report from the ledger and post it (text, then the chart) to Slack."""
    import tempfile
    from pathlib import Path

    from gamesre.airflow.notify import post_file, post_message
    from gamesre.reports.budget_report import (
        burn_down_chart,
        burn_down_series,
        report_text,
        slo_table,
        top_burn_ranges,
    )
    from gamesre.slo.evaluation import evaluate_slos
    from gamesre.slo.policy import service_states
    from gamesre.slo.spec import load_policies, load_slos

    store = SREStoreHook().get_conn()
    at = at.astimezone(UTC)
    evaluated = evaluate_slos(load_slos(), load_policies(), store, at)
    rows = [(ev.snapshot, ev.state.state) for ev in evaluated]
    ranges = [r for ev in evaluated for r in top_burn_ranges(ev.slo, ev.ledger, ev.snapshot)]
    series = {ev.slo.name: burn_down_series(ev.slo, ev.ledger, at, ev.exclusions) for ev in evaluated}
    states = [ev.state for ev in evaluated]
    top = sorted(ranges, key=lambda r: r.budget_share, reverse=True)[:5]
    text = report_text(at, slo_table(rows), top, {n: s.state for n, s in service_states(states).items()})
    sent = post_message(text)
    with tempfile.TemporaryDirectory() as tmp:
        chart = burn_down_chart(series, Path(tmp) / "error-budget-burn-down.png",
                                f"Error budget remaining, window ending {at:%Y-%m-%d %H:%M} UTC")
        chart_sent = post_file(chart, channel_id=_report_channel(), title="Error-budget burn-down",
                               comment="Budget remaining per SLO (solid: maintenance excluded, dotted: raw)")
    return {"message_sent": sent, "chart_sent": chart_sent, "slos": len(rows),
            "top_ranges": [r.describe() for r in top]}
