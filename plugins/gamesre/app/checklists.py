"""The SLO checklists (daily, weekly, monthly): evaluate every item with evidence, store it, report to people.

`evaluate` fetches every input the cadence's items need once (an outside system that is down makes its
inputs Unavailable, never an exception), runs every item fail-safe (gamesre.checklists.run_checklist: an
item without its data is `error` with the reason) and stores the results. `report` renders Markdown and HTML
with charts, writes them under the report folder and posts to the SRE channel the summary (failing items first),
the HTML report as a Slack file and the charts. A Slack failure never fails the run.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from gamesre.app.ports import Clock, Notifier
from gamesre.checklists import ChecklistSpec, fetch_plan, order_for_report, run_checklist
from gamesre.checklists.periods import checklist_period
from gamesre.checklists.result import ItemResult, worst_status
from gamesre.reports.checklist_report import charts, render_html, render_markdown, slack_summary

log = logging.getLogger(__name__)

DAG_IDS = {"daily": "slo_checklist_daily", "weekly": "slo_checklist_weekly", "monthly": "slo_checklist_monthly"}


class ChecklistStore(Protocol):
    def upsert_checklist_run(self, record: dict[str, Any]) -> None: ...

    def update_checklist_run(self, run_id: str, **fields: Any) -> None: ...

    def save_checklist_results(self, run_id: str, results: Any) -> int: ...

    def checklist_runs(self, cadence: str | None = None, since: datetime | None = None,
                       ids: Any = None) -> list[dict[str, Any]]: ...

    def checklist_results(self, run_id: str) -> list[dict[str, Any]]: ...


# (the fetch plan: input name -> [start, end) epochs, the run's instant) -> input name -> data or Unavailable
FetchInputs = Callable[[Mapping[str, tuple[int, int]], int], Mapping[str, Any]]


@dataclass
class ChecklistPorts:
    store: ChecklistStore
    fetch_inputs: FetchInputs
    notifier: Notifier
    clock: Clock
    checklists: ChecklistSpec
    report_dir: Path
    report_channel_id: str  # the SRE channel (services.yaml `sre.slack.channel_id`)


def evaluate(ports: ChecklistPorts, cadence: str, run_id: str, at: datetime, run_url: str = "") -> dict[str, Any]:
    """Run the cadence's checklist for the instant `at`; the results are stored and returned as a summary."""
    items = ports.checklists.for_cadence(cadence)
    now = int(at.timestamp())
    period = checklist_period(cadence, now)
    ports.store.upsert_checklist_run({
        "id": run_id, "cadence": cadence, "period_start": datetime.fromtimestamp(period.start, UTC),
        "period_end": datetime.fromtimestamp(period.end, UTC), "at": at, "run_url": run_url})
    results = run_checklist(items, ports.fetch_inputs(fetch_plan(items, now), now), now)
    ports.store.save_checklist_results(run_id, [r.to_dict() for r in results])
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    status = worst_status(r.status for r in results)
    ports.store.update_checklist_run(run_id, status=status, counts=counts)
    for r in results:
        log.info("%s %s: %s", r.status.upper(), r.item_id, r.summary)
    return {"cadence": cadence, "period": period.label, "status": status, "counts": counts, "items": len(results)}


def report(ports: ChecklistPorts, cadence: str, run_id: str) -> dict[str, Any]:
    """Render the stored results, write the files, post them to Slack; returns where the report went."""
    runs = ports.store.checklist_runs(ids=[run_id])
    stored = ports.store.checklist_results(run_id) if runs else []
    if not stored:
        text = f":boom: The {cadence} SLO checklist did not run (run {run_id}): see its evaluate task."
        return {"delivered": ports.notifier.message(text, channel_id=ports.report_channel_id), "files": {}}
    run = runs[0]
    order = [item.id for item in ports.checklists.for_cadence(cadence)]
    fields = ("item_id", "title", "cadence", "status", "summary", "evidence", "owner")
    results = order_for_report([ItemResult.from_dict({k: r[k] for k in fields}
                                                     | {"checked_at": r["checked_at"].isoformat()})
                                for r in stored], order)
    label = str(checklist_period(cadence, int(run["at"].timestamp())).label)
    folder = ports.report_dir / "checklists"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{cadence}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', run_id)[:150]}"
    files = {"markdown": folder / f"{stem}.md", "html": folder / f"{stem}.html"}
    run_url = run["run_url"] or None
    files["markdown"].write_text(render_markdown(results, cadence=cadence, period_label=label, run_url=run_url))
    files["html"].write_text(render_html(results, cadence=cadence, period_label=label, run_url=run_url))
    channel = ports.report_channel_id
    delivered = ports.notifier.message(slack_summary(results, cadence=cadence, period_label=label), channel_id=channel)
    # the report itself as a Slack file: readable from Slack, unlike a path on the worker that wrote it
    report_uploaded = ports.notifier.file(files["html"], channel_id=channel,
                                          title=f"{cadence} SLO checklist report, {label}",
                                          comment="The full report: every item with its evidence")
    uploaded = []
    for name, png in charts(results).items():
        path = folder / f"{stem}-{name}.png"
        path.write_bytes(png)
        files[name] = path
        if ports.notifier.file(path, channel_id=channel, title=f"{cadence} SLO checklist: {name}"):
            uploaded.append(name)
    where = {"files": {k: str(v) for k, v in files.items()}, "delivered": delivered,
             "report_uploaded": report_uploaded, "charts_uploaded": uploaded}
    ports.store.update_checklist_run(run_id, report=where, finished_at=ports.clock())
    return where
