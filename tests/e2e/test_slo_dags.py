"""The SLO workflows end to end: REST-triggered runs of slo_ingest and error_budget_report in a real Airflow."""
from __future__ import annotations

from datetime import timedelta

import pytest

from gamesre.integrations.store import SREStore
from gamesre.slo.spec import load_slos

pytestmark = pytest.mark.e2e


def iso(dt) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def test_ingest_then_report_publishes_states_and_posts_to_slack(airflow, history_prometheus, slack_sink) -> None:
    end = history_prometheus.end
    run = airflow.trigger("slo_ingest", {"max_backfill_days": 1},
                          data_interval_start=iso(end - timedelta(minutes=5)), data_interval_end=iso(end),
                          logical_date=iso(end))
    finished = airflow.wait("slo_ingest", run)
    assert finished["state"] == "success", airflow.task_log("slo_ingest", run, "ingest")
    summary = airflow.xcom("slo_ingest", run, "ingest")
    assert {s["slo"] for s in summary["slos"]} == set(load_slos().names())

    store = SREStore(airflow.store_url)
    # Unpausing lets the scheduler start its latest scheduled run too, which fills the ledger's gap back to
    # the start of the history; either way the day before the triggered interval is there, minute by minute.
    day_start = int((end - timedelta(days=1)).timestamp())
    for name in load_slos().names():
        ledger = store.ledger(name, start=day_start, end=int(end.timestamp()))
        assert ledger.minutes.tolist() == list(range(day_start, int(end.timestamp()), 60)), name

    slack_sink.clear()
    report_end = end
    run = airflow.trigger("error_budget_report", {"daily_report": "always"},
                          data_interval_start=iso(report_end - timedelta(hours=1)),
                          data_interval_end=iso(report_end), logical_date=iso(report_end))
    finished = airflow.wait("error_budget_report", run)
    tis = airflow.task_instances("error_budget_report", run)
    assert finished["state"] == "success", {k: v["state"] for k, v in tis.items()}
    assert tis["post_daily_report"]["state"] == "success"

    for name in load_slos().names():
        state = store.current_state("slo", name)
        assert state is not None and state["computed_at"] == report_end
    service = store.current_state("service", "game-server")
    assert service is not None and service["state"] in {"normal", "slow_burn", "ticket", "fast_burn",
                                                         "deploy_freeze", "rollback", "no_data"}

    events = airflow.call("GET", "assets/events", params={"limit": 10}).json()["asset_events"]
    published = [e for e in events if e["uri"] == "gamesre://error-budget/policy-state"]
    assert published and set(published[-1]["extra"]["slos"]) == set(load_slos().names())

    messages = slack_sink.messages()
    texts = [m["text"] for m in messages if m["kind"] == "webhook"]
    assert any("Error-budget report" in t and "availability" in t for t in texts), texts
    files = [m for m in messages if m["kind"] == "file"]
    assert files and files[0]["files"][0]["title"] == "Error-budget burn-down"
