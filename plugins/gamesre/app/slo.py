"""The SLO workflows: ingest Prometheus into the ledger, compute and publish the policy state, report to people.

`ingest` fills each SLO from where its ledger stops (catch-up) up to the interval's end and says, per SLO,
which range was written (and which was not, and why). `compute_states` evaluates every SLO from the ledger,
stores the snapshot and publishes the per-SLO and per-service states the gates read. `post_report` is the
daily Slack report: the SLO table, the ranges that burned the most, and the burn-down chart.
"""
from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from gamesre.app.ports import Clock, Notifier
from gamesre.core.time import KST
from gamesre.reports.budget_report import burn_down_chart, burn_down_series, report_text, top_burn_ranges
from gamesre.slo.evaluation import LedgerStore, evaluate_slos
from gamesre.slo.ingest import IngestError, LedgerSink, PrometheusSource, align_down, catch_up_start, ingest_all
from gamesre.slo.policy import service_states, snapshot_record
from gamesre.slo.spec import Policy, SloCatalog

log = logging.getLogger(__name__)

SETTLE_SECONDS = 10  # let the scrape at the interval's end reach Prometheus before counting it
DAILY_REPORT_HOUR_KST = 9


class SloStore(LedgerSink, LedgerStore, Protocol):
    def ledger_extent(self, slo: str) -> tuple[int, int] | None: ...

    def save_snapshot(self, slo: str, at: datetime, window: str, state: str, payload: dict[str, Any]) -> None: ...

    def publish_state(self, scope: str, name: str, state: str, computed_at: datetime, reasons: list[dict[str, Any]],
                      details: dict[str, Any]) -> None: ...

    def incidents(self, since: datetime | None = None) -> list[dict[str, Any]]: ...


@dataclass
class SloPorts:
    store: SloStore
    prometheus: Callable[[], PrometheusSource]  # opened only by the ingest
    notifier: Notifier
    clock: Clock
    slos: SloCatalog
    policy: Policy
    report_channel_id: str  # where the daily report and its chart go: the SRE channel's Slack id
    sleep: Callable[[float], None] = field(default=time.sleep)


def ingest(ports: SloPorts, start: datetime, end: datetime, *, max_backfill: timedelta = timedelta(days=35),
           chunk_seconds: int = 6 * 3600) -> dict[str, Any]:
    """Ingest every SLO for the data interval [start, end), filling any gap behind it first.

    The log says, per SLO, which range was written; when an SLO fails, also which range was not and why, and
    IngestError is raised. The next run starts each SLO where its ledger stops, so a partial ingest is
    completed, not repeated.
    """
    s, e = align_down(start.timestamp()), align_down(end.timestamp())
    wait = e + SETTLE_SECONDS - ports.clock().timestamp()
    if wait > 0:
        ports.sleep(min(wait, SETTLE_SECONDS))
    starts = {}
    for slo in ports.slos:
        extent = ports.store.ledger_extent(slo.name)
        starts[slo.name] = catch_up_start(extent[1] if extent else None, s, e, int(max_backfill.total_seconds()))
    try:
        results = ingest_all(ports.slos, ports.prometheus(), ports.store, s, e, chunk=chunk_seconds, starts=starts)
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


def compute_states(ports: SloPorts, at: datetime) -> dict[str, Any]:
    """Compute every SLO's snapshot at `at`, store it, and publish the per-SLO and per-service states."""
    at = at.astimezone(UTC)
    evaluated = evaluate_slos(ports.slos, ports.policy, ports.store, at)
    records = {}
    for ev in evaluated:
        record = snapshot_record(ev.snapshot, ev.state)
        ports.store.save_snapshot(ev.slo.name, at.replace(second=0, microsecond=0), ev.snapshot.window,
                                  ev.state.state, record)
        ports.store.publish_state("slo", ev.slo.name, ev.state.state, at, [r.to_dict() for r in ev.state.reasons],
                                  record)
        records[ev.slo.name] = record
    services = service_states(ev.state for ev in evaluated)
    for name, service in services.items():
        ports.store.publish_state("service", name, service.state, at, [r.to_dict() for r in service.reasons],
                                  service.to_dict())
    return {
        "at": at.isoformat(),
        "slos": {name: {"state": r["state"], "budget_remaining": r.get("budget_remaining"),
                        "budget_remaining_adjusted": r.get("budget_remaining_adjusted")}
                 for name, r in records.items()},
        "services": {name: s.state for name, s in services.items()},
    }


def is_daily_report_time(at: datetime) -> bool:
    """True for the hourly run that falls in 09:00-09:59 Asia/Seoul."""
    return at.astimezone(KST).hour == DAILY_REPORT_HOUR_KST


def post_report(ports: SloPorts, at: datetime) -> dict[str, Any]:
    """Build the daily error-budget report from the ledger and post it (text, then the chart) to Slack."""
    at = at.astimezone(UTC)
    evaluated = evaluate_slos(ports.slos, ports.policy, ports.store, at)
    rows = [(ev.snapshot, ev.state.state) for ev in evaluated]
    ranges = [r for ev in evaluated for r in top_burn_ranges(ev.slo, ev.ledger, ev.snapshot)]
    series = {ev.slo.name: burn_down_series(ev.slo, ev.ledger, at, ev.exclusions) for ev in evaluated}
    top = sorted(ranges, key=lambda r: r.budget_share, reverse=True)[:5]
    states = {n: s.state for n, s in service_states(ev.state for ev in evaluated).items()}
    window_start = min((datetime.fromisoformat(ev.snapshot.window_start) for ev in evaluated), default=at)
    incidents = ports.store.incidents(since=window_start)
    sent = ports.notifier.message(report_text(at, rows, top, states, incidents), channel_id=ports.report_channel_id)
    with tempfile.TemporaryDirectory() as tmp:
        chart = burn_down_chart(series, Path(tmp) / "error-budget-burn-down.png",
                                f"Error budget remaining, window ending {at:%Y-%m-%d %H:%M} UTC")
        chart_sent = ports.notifier.file(chart, channel_id=ports.report_channel_id, title="Error-budget burn-down",
                                         comment="Budget remaining per SLO (solid: maintenance excluded, dotted: raw)")
    return {"message_sent": sent, "chart_sent": chart_sent, "slos": len(rows),
            "top_ranges": [r.describe() for r in top], "incidents": [i["id"] for i in incidents]}
