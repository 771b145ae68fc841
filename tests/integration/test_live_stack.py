"""The demo stack for real: the fleet's metrics reach Prometheus, and faults show up in PromQL within 15 s."""
from __future__ import annotations

import time

import pytest
import requests

from gamesre.core.contract import load_contract
from gamesre.integrations.prometheus import PrometheusClient

pytestmark = pytest.mark.integration


def wait_for(fn, timeout: float, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    return fn()


def test_every_contract_metric_of_every_instance_reaches_prometheus(live_stack) -> None:
    prom = PrometheusClient(live_stack.prometheus_url)
    contract = load_contract()

    def present() -> set[str]:
        result = prom.query('count by (__name__) ({job=~"game-server|matchmaking"})', time.time())
        return {r["metric"]["__name__"] for r in result}

    expected = {s for m in contract.metrics.values() for s in m.series_names()}
    assert wait_for(lambda: expected <= present(), timeout=60), expected - present()
    instances = {"gs-stable-1", "gs-stable-2", "gs-canary-1", "mm-stable-1", "mm-canary-1"}

    def healthy() -> bool:
        up = prom.query('up{job=~"game-server|matchmaking|haproxy"}', time.time())
        return instances <= {r["metric"]["instance"] for r in up} and all(r["value"][1] == "1" for r in up)

    assert wait_for(healthy, timeout=30)
    # its exporter too (scraped on its own schedule: `healthy` passes before HAProxy's first scrape lands)
    assert wait_for(lambda: prom.query('haproxy_process_start_time_seconds{job="haproxy"}', time.time()), timeout=30)


def test_player_traffic_flows_through_haproxy_to_the_stable_instances(live_stack) -> None:
    prom = PrometheusClient(live_stack.prometheus_url)

    def rates() -> dict[str, float]:
        result = prom.query('sum by (instance) (rate(game_action_requests_total[30s]))', time.time())
        return {r["metric"]["instance"]: float(r["value"][1]) for r in result}

    got = wait_for(lambda: (r := rates()) and r.get("gs-stable-1", 0) > 0 and r.get("gs-stable-2", 0) > 0 and r,
                   timeout=60)
    assert got and got["gs-stable-1"] > 0 and got["gs-stable-2"] > 0
    assert got.get("gs-canary-1", 0) == 0  # the canary's HAProxy weight is 0 until a deploy shifts traffic


def test_a_fault_set_through_the_admin_api_shows_in_promql_within_15_seconds(live_stack) -> None:
    prom = PrometheusClient(live_stack.prometheus_url)
    admin = live_stack.admin_url("gs-stable-2")
    query = 'game_fault_active{instance="gs-stable-2",fault="latency"}'
    assert wait_for(lambda: prom.scalar(query, time.time()) == 0.0, timeout=30)
    try:
        started = time.monotonic()
        requests.put(f"{admin}/faults", json={"latency_ms": 400}, timeout=5).raise_for_status()
        seen = wait_for(lambda: prom.scalar(query, time.time()) == 1.0, timeout=15, interval=0.25)
        elapsed = time.monotonic() - started
        assert seen, "the latency fault was not visible in PromQL within 15 s"
        assert elapsed <= 15
    finally:
        requests.delete(f"{admin}/faults", timeout=5).raise_for_status()


def test_a_bad_admin_call_is_refused_with_the_reason_and_changes_nothing(live_stack) -> None:
    admin = live_stack.admin_url("gs-stable-1")
    before = requests.get(f"{admin}/faults", timeout=5).json()
    resp = requests.put(f"{admin}/faults", json={"error_rate": 0.5, "latency_ms": -3}, timeout=5)
    assert resp.status_code == 400 and "latency_ms" in resp.json()["error"]
    assert requests.get(f"{admin}/faults", timeout=5).json() == before
