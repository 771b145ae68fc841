"""Maintenance windows end to end: the Params DAG and the 15-minute reconciler, with a real Alertmanager."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from gamesre.calendar import load_calendar
from gamesre.core.services import load_services
from gamesre.integrations.alertmanager import AlertmanagerClient
from gamesre.integrations.store import SREStore

pytestmark = pytest.mark.e2e

KST_OFFSET = timedelta(hours=9)
SERVICES = load_services()


def kst_iso(dt: datetime) -> str:
    return (dt.astimezone(UTC) + KST_OFFSET).replace(tzinfo=None).isoformat(timespec="seconds") + "+09:00"


def planned_maintenance(a: datetime, b: datetime, service: str) -> list:
    """The calendar's maintenance windows of `service` touching [a, b) (include/config/calendar.yaml)."""
    return load_calendar(services=load_services()).maintenance_overlapping(a, b, service=service)


def clear_start(days: int, service: str = "matchmaking", minutes: int = 90) -> datetime:
    """A whole hour `days` from now whose next `minutes` no planned maintenance window touches for `service`.

    A request overlapping a planned window is rejected (that is tested on purpose below), so the requests that
    must succeed move 6 hours later while they would meet one: the weekly Tuesday 02:00-06:00 KST window is 4 days
    from now every Thursday evening UTC. The tests' base days differ, so the moved hours cannot meet each other.
    """
    start = (datetime.now(UTC) + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    while planned_maintenance(start - timedelta(minutes=30), start + timedelta(minutes=minutes), service):
        start += timedelta(hours=6)
    return start


def request(**overrides):
    conf = {"action": "register", "services": ["matchmaking"], "duration_minutes": 60,
            "reason": "Queue store failover drill", "ticket": "OPS-4242", "requested_by": "e2e"}
    conf.update(overrides)
    return conf


def live_silences(am: AlertmanagerClient, window_id: str):
    return am.silences(window_id=window_id, states=("active", "pending"))


def test_register_is_idempotent_then_cancel_expires_the_silences(airflow, slack_sink) -> None:
    am = AlertmanagerClient(airflow.alertmanager.url)
    start = clear_start(2)
    conf = request(start=kst_iso(start))
    first = airflow.trigger("maintenance_window_request", conf)
    assert airflow.wait("maintenance_window_request", first)["state"] == "success"
    window_id = airflow.xcom("maintenance_window_request", first, "apply")["window_id"]
    again = airflow.trigger("maintenance_window_request", conf)  # a re-run of the same request
    assert airflow.wait("maintenance_window_request", again)["state"] == "success"

    silences = live_silences(am, window_id)
    assert len(silences) == 1, silences  # one service, one silence, no duplicate
    s = silences[0]
    assert s.state == "pending" and s.ends_at == start + timedelta(hours=1)
    assert [str(m) for m in s.matchers] == ['service="matchmaking"']
    window = SREStore(airflow.store_url).window(window_id)
    assert window is not None and window["excludes_budget"] and window["silence_ids"] == [s.id]
    # in matchmaking's channel, by its id through the Web API; nowhere else (game-server is not affected)
    registered = [m for m in slack_sink.messages() if window_id in m["text"] and "registered" in m["text"]]
    assert registered and {(m["kind"], m["channel"]) for m in registered} == {
        ("chat.postMessage", SERVICES.get("matchmaking").slack.channel_id)}

    cancel = airflow.trigger("maintenance_window_request", {"action": "cancel", "window_id": window_id,
                                                            "requested_by": "e2e"})
    assert airflow.wait("maintenance_window_request", cancel)["state"] == "success"
    assert live_silences(am, window_id) == []
    assert SREStore(airflow.store_url).window(window_id)["status"] == "cancelled"


@pytest.mark.parametrize("overrides, reason", [
    ({"start": "2026-13-40T99:00:00+09:00"}, "start"),
    ({"start": "2025-01-07T03:00:00+09:00"}, "already be over"),
    ({"reason": ""}, "reason"),
])
def test_invalid_requests_fail_validation_and_change_nothing(airflow, overrides, reason) -> None:
    before = SREStore(airflow.store_url).windows(include_cancelled=True)
    start = clear_start(3)
    run = airflow.trigger("maintenance_window_request", {**request(start=kst_iso(start)), **overrides})
    assert airflow.wait("maintenance_window_request", run)["state"] == "failed"
    tis = airflow.task_instances("maintenance_window_request", run)
    assert tis["validate"]["state"] == "failed" and tis["apply"]["state"] == "upstream_failed"
    assert tis["validate"]["try_number"] == 1  # a bad form is not retried
    assert reason in airflow.task_log("maintenance_window_request", run, "validate")
    assert SREStore(airflow.store_url).windows(include_cancelled=True) == before


def test_overlapping_window_is_rejected_with_the_conflict(airflow) -> None:
    start = clear_start(4)
    ok = airflow.trigger("maintenance_window_request", request(start=kst_iso(start), ticket="OPS-1"))
    assert airflow.wait("maintenance_window_request", ok)["state"] == "success"
    clash = airflow.trigger("maintenance_window_request",
                            request(start=kst_iso(start + timedelta(minutes=30)), ticket="OPS-2"))
    assert airflow.wait("maintenance_window_request", clash)["state"] == "failed"
    assert "overlap" in airflow.task_log("maintenance_window_request", clash, "validate")


@pytest.mark.parametrize("overrides, field", [({"duration_minutes": 9 * 60}, "duration_minutes"),
                                              ({"services": ["game-server", "lobby"]}, "services")])
def test_the_form_itself_refuses_out_of_range_values(airflow, overrides, field) -> None:
    airflow.wait_for_dag("maintenance_window_request")
    conf = {**request(start=kst_iso(datetime.now(UTC))), **overrides}
    resp = airflow.call("POST", "dags/maintenance_window_request/dagRuns", json={"logical_date": None, "conf": conf})
    assert resp.status_code == 400 and field in resp.text


def test_reconciler_waits_deferred_for_the_exact_end_then_expires_and_completes(airflow, slack_sink) -> None:
    am = AlertmanagerClient(airflow.alertmanager.url)
    now = datetime.now(UTC).replace(microsecond=0)
    if planned_maintenance(now - timedelta(minutes=30), now + timedelta(minutes=10), "game-server"):
        pytest.skip("a planned maintenance window of game-server is on now: an ad-hoc one would overlap it")
    reg = airflow.trigger("maintenance_window_request",
                          request(start=kst_iso(now), duration_minutes=3, services=["game-server"], ticket="OPS-7"))
    assert airflow.wait("maintenance_window_request", reg)["state"] == "success"
    window_id = airflow.xcom("maintenance_window_request", reg, "apply")["window_id"]
    assert [s.state for s in live_silences(am, window_id)] == ["active"]

    end = now + timedelta(minutes=3)  # room for a slow scheduler to plan and defer before the end
    # Unpausing also lets the scheduler start the latest scheduled run (max_active_runs=1 queues ours behind
    # it); whichever run reconciles first plans the window's end and waits for it, deferred.
    run = airflow.trigger("maintenance_windows", data_interval_start=(now - timedelta(minutes=15)).isoformat(),
                          data_interval_end=now.isoformat(), logical_date=now.isoformat())
    deadline = time.monotonic() + 150
    deferred: list = []
    while time.monotonic() < deadline and not deferred:
        runs = airflow.call("GET", "dags/maintenance_windows/dagRuns").json()["dag_runs"]
        for r in runs:
            tis = airflow.call("GET", f"dags/maintenance_windows/dagRuns/{r['dag_run_id']}/taskInstances").json()
            deferred += [(r["dag_run_id"], t["map_index"]) for t in tis["task_instances"]
                         if t["task_id"] == "transition" and t["state"] == "deferred"]
        time.sleep(1)
    if not deferred:
        dump = []
        for r in airflow.call("GET", "dags/maintenance_windows/dagRuns").json()["dag_runs"]:
            tis = airflow.call("GET", f"dags/maintenance_windows/dagRuns/{r['dag_run_id']}/taskInstances").json()
            dump.append((r["dag_run_id"], r["state"], r["data_interval_end"],
                         [(t["task_id"], t["map_index"], t["state"]) for t in tis["task_instances"]]))
            if any(t["task_id"] == "reconcile" and t["state"] for t in tis["task_instances"]):
                dump.append(airflow.task_log("maintenance_windows", r["dag_run_id"], "reconcile")[-2500:])
        raise AssertionError(f"no transition task was deferred until the window's end: {dump}")
    assert datetime.now(UTC) < end  # it was waiting before the end came
    for run_id in {r for r, _ in deferred} | {run}:
        assert airflow.wait("maintenance_windows", run_id, timeout=300)["state"] == "success"
    assert datetime.now(UTC) >= end
    assert live_silences(am, window_id) == []
    assert SREStore(airflow.store_url).window(window_id)["status"] == "completed"
    ended = [m for m in slack_sink.messages() if "Maintenance ended" in m["text"] and window_id in m["text"]]
    assert ended and {m["channel"] for m in ended} == {SERVICES.get("game-server").slack.channel_id}


def test_alertmanager_down_retries_then_fails_with_a_slack_notice(airflow, slack_sink) -> None:
    store = SREStore(airflow.store_url)
    start = clear_start(5)
    airflow.alertmanager.stop()
    try:
        run = airflow.trigger("maintenance_window_request", request(start=kst_iso(start), ticket="OPS-5555"))
        assert airflow.wait("maintenance_window_request", run, timeout=300)["state"] == "failed"
    finally:
        airflow.alertmanager.start()
    tis = airflow.task_instances("maintenance_window_request", run)
    assert tis["validate"]["state"] == "success", airflow.task_log("maintenance_window_request", run, "validate")
    apply = tis["apply"]
    assert apply["state"] == "failed" and apply["try_number"] == 3  # two retries, then it gives up
    assert "unreachable" in airflow.task_log("maintenance_window_request", run, "apply", 3)
    (notice,) = [m for m in slack_sink.messages() if "*maintenance_window_request* failed: task `apply`" in m["text"]
                 and run in m["text"]]
    assert notice["channel"] == SERVICES.sre.slack.channel_id and "unreachable" in notice["text"]
    assert f"/dags/maintenance_window_request/runs/{quote(run)}/tasks/apply?try_number=3|apply log>" in notice["text"]
    assert "its window is neither registered nor cancelled" in notice["text"]
    # the window is recorded (a retry or the reconciler finishes the silences); no silence without an end exists
    am = AlertmanagerClient(airflow.alertmanager.url)
    assert all(s.ends_at is not None for s in am.silences())
    window = [w for w in store.windows(include_cancelled=True) if w["ticket"] == "OPS-5555"]
    assert len(window) == 1 and window[0]["silence_ids"] == []
