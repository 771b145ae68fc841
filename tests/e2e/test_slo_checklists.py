"""The SLO checklists end to end: slo_checklist_daily in a real Airflow against the backfilled Prometheus, and
the same run with Prometheus down: the items that need it are `error` with the reason and the report is still
delivered. (Each item's evidence is checked numerically in tests/integration/checklists/.)"""
from __future__ import annotations

from pathlib import Path

import pytest

from gamesre.checklists import default_registry, load_checklists
from gamesre.core.services import load_services
from gamesre.integrations.store import SREStore

pytestmark = pytest.mark.e2e

DAG = "slo_checklist_daily"
PROMETHEUS_INPUTS = {"series_freshness", "scrape_targets", "sample_timestamps", "alert_samples", "alert_rules"}


def run_daily(airflow) -> tuple[str, dict, list[dict], dict]:
    run_id = airflow.trigger(DAG)
    run = airflow.wait(DAG, run_id, timeout=300)
    store = SREStore(airflow.store_url)
    (record,) = store.checklist_runs(ids=[run_id])
    return run_id, run, store.checklist_results(run_id), record


def test_the_daily_checklist_stores_every_item_and_reports_failing_first(airflow, slack_sink) -> None:
    slack_sink.clear()
    run_id, run, results, record = run_daily(airflow)
    tis = airflow.task_instances(DAG, run_id)
    assert run["state"] == "success", {k: v["state"] for k, v in tis.items()}
    daily = load_checklists().for_cadence("daily")
    assert {r["item_id"] for r in results} == {i.id for i in daily}
    assert all(r["status"] in {"pass", "warn", "fail", "manual", "error"} and r["summary"] for r in results)
    assert sum(record["counts"].values()) == len(daily) and record["finished_at"] is not None
    files = record["report"]["files"]
    markdown = Path(files["markdown"]).read_text()
    assert "Daily SLO checklist" in markdown and Path(files["html"]).read_text().count("<img") >= 1
    sre = load_services().sre.slack.channel_id
    texts = [m["text"] for m in slack_sink.messages() if (m["kind"], m["channel"]) == ("chat.postMessage", sre)]
    assert any("Daily SLO checklist" in t for t in texts), texts
    assert all(files["html"] not in t for t in texts)  # no path on the worker: the report is a Slack file
    uploaded = [f["title"] for m in slack_sink.messages() if (m["kind"], m["channel"]) == ("file", sre)
                for f in m["files"]]
    assert any(t.startswith("daily SLO checklist report") for t in uploaded) and len(uploaded) >= 2, uploaded


def test_with_prometheus_down_its_items_are_errors_and_the_report_is_still_delivered(
        airflow, history_prometheus, slack_sink) -> None:
    registry = default_registry()
    needs_prometheus = {i.id for i in load_checklists().for_cadence("daily")
                        if PROMETHEUS_INPUTS & set(registry.get(i.check).inputs)}
    assert needs_prometheus, "some daily item reads Prometheus"
    slack_sink.clear()
    with history_prometheus.down():
        _run_id, run, results, record = run_daily(airflow)
    assert run["state"] == "success"
    by_id = {r["item_id"]: r for r in results}
    for item_id in needs_prometheus:
        assert by_id[item_id]["status"] == "error", by_id[item_id]
        assert "Prometheus" in by_id[item_id]["summary"], by_id[item_id]["summary"]
    others = [r for r in results if r["item_id"] not in needs_prometheus]
    assert others and not any("Prometheus" in r["summary"] for r in others if r["status"] == "error")
    texts = [m["text"] for m in slack_sink.messages() if m["kind"] == "chat.postMessage"]
    assert any("Daily SLO checklist" in t and "error" in t for t in texts), texts
    assert record["report"]["delivered"] is True
