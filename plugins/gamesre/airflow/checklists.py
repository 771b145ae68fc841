"""Airflow glue of the SLO checklists (dags/slo_checklists.py): fetch, evaluate, store, report.

`evaluate` fetches every input the cadence's items need once (gamesre.integrations.checklist_sources: an
outside system that is down makes its inputs Unavailable, never an exception), runs every item fail-safe
(gamesre.checklists.run_checklist: an item without its data is `error` with the reason) and stores the
results. `report` renders Markdown and HTML with charts, writes them under the report folder and posts the
summary and the charts to Slack, failing items first. A Slack failure never fails the run.
"""
from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gamesre.airflow.hooks.store import SREStoreHook
from gamesre.airflow.notify import post_file, post_message

log = logging.getLogger(__name__)

DAG_IDS = {"daily": "slo_checklist_daily", "weekly": "slo_checklist_weekly", "monthly": "slo_checklist_monthly"}
REPORT_CHANNEL = "#sre"
REPORT_CHANNEL_ID = "C07SRE00001"


def _clients() -> tuple[Any, Any, dict[str, str]]:
    """(Prometheus client or None, Alertmanager client or None, {system: why it is missing})."""
    from gamesre.airflow.hooks.alertmanager import AlertmanagerHook
    from gamesre.airflow.hooks.prometheus import PrometheusHook

    missing: dict[str, str] = {}
    prometheus = alertmanager = None
    try:
        prometheus = PrometheusHook().get_conn()
    except Exception as exc:  # no connection: its inputs are Unavailable with this reason
        missing["prometheus"] = f"{type(exc).__name__}: {exc}"
    try:
        alertmanager = AlertmanagerHook().get_conn()
    except Exception as exc:
        missing["alertmanager"] = f"{type(exc).__name__}: {exc}"
    return prometheus, alertmanager, missing


def evaluate(cadence: str, run_id: str, at: datetime, run_url: str = "") -> dict[str, Any]:
    """Run the cadence's checklist for the instant `at`; the results are stored and returned as dicts."""
    from gamesre.checklists import fetch_plan, load_checklists, run_checklist
    from gamesre.checklists.periods import checklist_period
    from gamesre.checklists.result import worst_status
    from gamesre.integrations.checklist_sources import fetch_inputs

    spec = load_checklists()
    items = spec.for_cadence(cadence)
    now = int(at.timestamp())
    period = checklist_period(cadence, now)
    store = SREStoreHook().get_conn()
    store.upsert_checklist_run({
        "id": run_id, "cadence": cadence, "period_start": datetime.fromtimestamp(period.start, UTC),
        "period_end": datetime.fromtimestamp(period.end, UTC), "at": at, "run_url": run_url})
    prometheus, alertmanager, missing = _clients()
    for system, why in missing.items():
        log.warning("%s unavailable for this checklist: %s", system, why)
    inputs = fetch_inputs(fetch_plan(items, now), now, prometheus=prometheus, alertmanager=alertmanager,
                          store=store)
    results = run_checklist(items, inputs, now)
    docs = [r.to_dict() for r in results]
    store.save_checklist_results(run_id, docs)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    status = worst_status(r.status for r in results)
    store.update_checklist_run(run_id, status=status, counts=counts)
    for r in results:
        log.info("%s %s: %s", r.status.upper(), r.item_id, r.summary)
    return {"cadence": cadence, "period": period.label, "status": status, "counts": counts, "items": len(docs)}


def report_dir() -> Path:
    root = os.environ.get("GAMESRE_REPORT_DIR") or os.path.join(os.environ.get("AIRFLOW_HOME", "."), "reports")
    return Path(root) / "checklists"


def report(cadence: str, run_id: str) -> dict[str, Any]:
    """Render the stored results, write the files, post to Slack; returns where the report went."""
    import re

    from gamesre.checklists import load_checklists, order_for_report
    from gamesre.checklists.periods import checklist_period
    from gamesre.checklists.result import ItemResult
    from gamesre.reports.checklist_report import charts, render_html, render_markdown, slack_summary

    store = SREStoreHook().get_conn()
    runs = store.checklist_runs(ids=[run_id])
    stored = store.checklist_results(run_id) if runs else []
    if not stored:
        text = f":boom: The {cadence} SLO checklist did not run (run {run_id}): see its evaluate task."
        delivered = post_message(text, channel=REPORT_CHANNEL)
        return {"delivered": delivered, "files": {}}
    run = runs[0]
    order = [item.id for item in load_checklists().for_cadence(cadence)]
    results = order_for_report([ItemResult.from_dict({k: r[k] for k in ("item_id", "title", "cadence", "status",
                                                                          "summary", "evidence", "owner")}
                                                     | {"checked_at": r["checked_at"].isoformat()})
                                for r in stored], order)
    label = checklist_period(cadence, int(run["at"].timestamp())).label
    folder = report_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{cadence}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', run_id)[:150]}"
    files = {"markdown": folder / f"{stem}.md", "html": folder / f"{stem}.html"}
    files["markdown"].write_text(render_markdown(results, cadence=cadence, period_label=str(label),
                                                 run_url=run["run_url"] or None))
    files["html"].write_text(render_html(results, cadence=cadence, period_label=str(label),
                                         run_url=run["run_url"] or None))
    delivered = post_message(slack_summary(results, cadence=cadence, period_label=str(label),
                                           report_url=str(files["html"])), channel=REPORT_CHANNEL)
    uploaded = []
    for name, png in charts(results).items():
        path = folder / f"{stem}-{name}.png"
        path.write_bytes(png)
        files[name] = path
        if post_file(path, channel_id=REPORT_CHANNEL_ID, title=f"{cadence} SLO checklist: {name}"):
            uploaded.append(name)
    where = {"files": {k: str(v) for k, v in files.items()}, "delivered": delivered, "charts_uploaded": uploaded}
    store.update_checklist_run(run_id, report=where, finished_at=datetime.now(UTC))
    return where
