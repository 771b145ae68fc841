"""The SLO workflows end to end: REST-triggered runs of slo_ingest and error_budget_report in a real Airflow."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from gamesre.core.services import load_services
from gamesre.core.time import KST
from gamesre.integrations.prometheus import PrometheusClient
from gamesre.integrations.store import SREStore, slo_ledger, slo_ledger_day
from gamesre.observability.alertmanager import demo_routing_key
from gamesre.slo.ingest import ingest_all
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
    sre = load_services().sre.slack.channel_id  # the report and its chart in the SRE channel, by id
    texts = [m["text"] for m in messages if (m["kind"], m["channel"]) == ("chat.postMessage", sre)]
    assert any("Error-budget report" in t and "availability" in t for t in texts), texts
    files = [m for m in messages if (m["kind"], m["channel"]) == ("file", sre)]
    assert files and files[0]["files"][0]["title"] == "Error-budget burn-down"


def run_after(run: dict) -> datetime:
    return datetime.fromisoformat(run["run_after"].replace("Z", "+00:00")).astimezone(UTC)


def test_manual_runs_without_a_logical_date_use_their_own_time(airflow) -> None:
    """The README's example: POST /api/v2/dags/<dag>/dagRuns with {"logical_date": null}."""
    run = airflow.trigger("slo_ingest", {"max_backfill_days": 1})  # logical_date null, no data interval
    finished = airflow.wait("slo_ingest", run)
    assert finished["state"] == "success", airflow.task_log("slo_ingest", run, "ingest")
    summary = airflow.xcom("slo_ingest", run, "ingest")
    end = int(run_after(finished).timestamp()) // 60 * 60
    assert (summary["start"], summary["end"]) == (end - 300, end)
    assert {s["slo"] for s in summary["slos"]} == set(load_slos().names())

    report = airflow.trigger("error_budget_report", {"daily_report": "never"})
    finished = airflow.wait("error_budget_report", report)
    tis = airflow.task_instances("error_budget_report", report)
    assert finished["state"] == "success", airflow.task_log("error_budget_report", report, "compute_and_publish")
    published = airflow.xcom("error_budget_report", report, "compute_and_publish")
    assert datetime.fromisoformat(published["at"]) == run_after(finished)
    assert tis["post_daily_report"]["state"] == "skipped"


def wait_until(condition, timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(every)


def test_prometheus_stopped_mid_ingest_the_log_says_what_was_written_and_the_retry_completes_it(
        airflow, history_prometheus, tmp_path) -> None:
    store = SREStore(airflow.store_url)

    def busy() -> bool:
        runs = airflow.call("GET", "dags/slo_ingest/dagRuns", params={"state": ["queued", "running"]}).json()
        return bool(runs["dag_runs"])

    wait_until(lambda: not busy(), 300, "no slo_ingest run in progress", every=2)
    with store.engine.begin() as conn:  # an empty ledger: this run backfills 3 days of every SLO
        conn.execute(sa.delete(slo_ledger))
        conn.execute(sa.delete(slo_ledger_day))
    run = airflow.trigger("slo_ingest", {"max_backfill_days": 3})
    wait_until(lambda: store.ledger_extent("availability") is not None, 300, "the first rows written")
    with history_prometheus.down():
        wait_until(lambda: airflow.task_instances("slo_ingest", run)["ingest"]["state"] in ("up_for_retry", "failed"),
                   300, "the first try failed", every=1)
    finished = airflow.wait("slo_ingest", run, timeout=600)
    assert finished["state"] == "success", airflow.task_log("slo_ingest", run, "ingest", try_number=2)

    first_try = airflow.task_log("slo_ingest", run, "ingest", try_number=1)
    assert "NOT written" in first_try and "Prometheus" in first_try, first_try
    assert "The next run continues each SLO above from the end of what was written." in first_try
    for name in load_slos().names():  # every SLO is accounted for: written in full, in part, or not at all
        assert f"SLO {name}: " in first_try, (name, first_try)

    end = airflow.xcom("slo_ingest", run, "ingest")["end"]
    start = end - 3 * 86400
    reference = SREStore(f"sqlite:///{tmp_path / 'reference.db'}")
    ingest_all(load_slos(), PrometheusClient(history_prometheus.url), reference, start, end)
    for name in load_slos().names():
        got, want = store.ledger(name, start, end), reference.ledger(name)
        assert len(want) > 2 * 1440, name  # the history (ending 1-2 h before the run) covers most of the span
        for field in ("minutes", "good", "total", "span"):
            assert getattr(got, field).tolist() == getattr(want, field).tolist(), (name, field)


def test_a_failed_ingest_tells_the_sre_channel_when_the_state_goes_stale_and_pages(
        airflow, history_prometheus, slack_sink) -> None:
    """With Prometheus down slo_ingest fails after its retries (about 4-7 minutes of retry delays): the SRE channel
    hears which task failed, why, where its log is and when the published state goes stale; the state was published
    100 minutes ago, so it goes stale in under 30 minutes and the on-call is paged."""
    store = SREStore(airflow.store_url)

    def busy() -> bool:
        runs = airflow.call("GET", "dags/slo_ingest/dagRuns", params={"state": ["queued", "running"]}).json()
        return bool(runs["dag_runs"])

    # no hourly report may publish a fresh state meanwhile; the services' state was published 100 minutes ago
    airflow.call("PATCH", "dags/error_budget_report", json={"is_paused": True}).raise_for_status()
    try:
        wait_until(lambda: not busy(), 300, "no slo_ingest run in progress", every=2)
        published = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=100)
        for name in load_services().names:
            store.publish_state("service", name, "normal", published, [], {})
        slack_sink.clear()
        with history_prometheus.down():
            run = airflow.trigger("slo_ingest", {"max_backfill_days": 1})
            finished = airflow.wait("slo_ingest", run, timeout=900)
    finally:
        airflow.call("PATCH", "dags/error_budget_report", json={"is_paused": False}).raise_for_status()
    assert finished["state"] == "failed", airflow.task_instances("slo_ingest", run)

    (notice,) = [m for m in slack_sink.messages(load_services().sre.slack.channel_id)
                 if "*slo_ingest* failed" in m["text"] and run in m["text"]]
    assert notice["kind"] == "chat.postMessage"
    text = notice["text"]
    assert text.startswith(f":rotating_light: *slo_ingest* failed: task `ingest` of run `{run}`, try 4"), text
    assert "• *Error:* `IngestError: " in text and "Prometheus" in text, text
    assert f"/dags/slo_ingest/runs/{quote(run)}/tasks/ingest?try_number=4|ingest log>" in text, text
    stale = published + timedelta(hours=2)
    assert (f"goes stale at {stale.astimezone(KST):%H:%M} KST (published {published.astimezone(KST):%H:%M} + 2h, "
            "include/config/policies.yaml state.stale_after), and then blocks every deploy and game-day") in text
    assert "• *Paged:* the on-call, through PagerDuty (dedup key gamesre/slo_ingest/policy-state-stale)" in text

    events = [e for e in slack_sink.events() if e["dedup_key"] == "gamesre/slo_ingest/policy-state-stale"]
    assert events and all(e["routing_key"] == demo_routing_key("primary") for e in events)
    assert any(e["custom_details"]["run_id"] == run and e["event_action"] == "trigger" for e in events)
