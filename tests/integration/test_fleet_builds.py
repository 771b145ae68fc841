"""Defective builds on a real fleet process: a bad version misbehaves with no fault injected, a good one heals it.

Starts one game-server (demo/fleet.py) on a free loopback port and changes its build with PUT /admin/build,
as a deploy does; the defects come from demo/builds.yaml.
"""
from __future__ import annotations

import functools
import http.client
import json
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from demo.admin import Faults
from demo.fleet import build_command
from demo.procs import ManagedProcess, free_port, http_ok
from demo.topology import by_name

pytestmark = pytest.mark.integration

HEALTHY = "1.5.0"  # the canary's build in the default topology, not in the catalog


class Instance:
    """One fleet process's HTTP API, with a keep-alive connection per client thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._local = threading.local()

    def call(self, method: str, path: str, body: object | None = None) -> tuple[int, dict]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        payload = b"" if body is None else json.dumps(body).encode()
        conn.request(method, path, body=payload, headers={"Content-Length": str(len(payload))})
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if response.headers.get("Content-Type") == "application/json" else {}

    def actions(self, n: int, workers: int = 48) -> list[tuple[int, float, dict]]:
        """Send n game actions from `workers` threads; (status, seconds the client waited, body) each."""
        names = ("move", "attack", "chat")

        def one(i: int) -> tuple[int, float, dict]:
            start = time.perf_counter()
            status, body = self.call("POST", f"/api/action/{names[i % len(names)]}")
            return status, time.perf_counter() - start, body

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, range(n)))

    def action_requests(self) -> dict[tuple[str, str], float]:
        """game_action_requests_total summed per (version, code)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        totals: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(text):
            if family.name == "game_action_requests":
                for s in family.samples:
                    if s.name == "game_action_requests_total":
                        key = (s.labels["version"], s.labels["code"])
                        totals[key] = totals.get(key, 0.0) + s.value
        return totals

    def assert_no_injected_fault(self) -> None:
        assert self.call("GET", "/admin/faults") == (200, Faults().to_json())


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    tmp: Path = tmp_path_factory.mktemp("fleet-builds")
    port = free_port()
    process = ManagedProcess("gs-canary-1", build_command(by_name("gs-canary-1"), port, seed=11), tmp / "fleet.log")
    try:
        process.start().wait_ready(functools.partial(http_ok, f"http://127.0.0.1:{port}/ready"), timeout=30)
        yield Instance(port)
    finally:
        process.stop()


def failed(results: list[tuple[int, float, dict]]) -> int:
    return sum(status != 200 for status, _, _ in results)


def test_a_defective_build_fails_its_share_until_a_healthy_build_replaces_it(instance: Instance) -> None:
    status, build = instance.call("PUT", "/admin/build", {"version": "1.6.66"})
    assert status == 200 and build["version"] == "1.6.66"
    assert build["defects"] == {"error_rate": 0.03, "note": "3% of player requests fail (a bad release)"}
    instance.assert_no_injected_fault()
    assert instance.call("DELETE", "/admin/faults")[0] == 200  # clearing faults does not heal a build

    bad = instance.actions(1500)
    # 3% of 1500 is 45 failures, standard deviation 6.6: 1.5% and 5% are more than 3 deviations away.
    assert 0.015 <= failed(bad) / len(bad) <= 0.05
    assert {status for status, _, _ in bad} <= {200, 500, 502, 503}  # the injected error mix
    totals = instance.action_requests()
    assert {version for version, _ in totals} == {"1.6.66"}  # the old version's series are gone
    assert sum(totals.values()) == 1500
    assert sum(v for (_, code), v in totals.items() if code != "200") == failed(bad)
    instance.assert_no_injected_fault()
    assert instance.call("GET", "/admin/build")[1]["defects"]["error_rate"] == 0.03

    status, build = instance.call("PUT", "/admin/build", {"version": HEALTHY})
    assert (status, build["version"], build["defects"]) == (200, HEALTHY, {})
    good = instance.actions(600)
    assert failed(good) <= 2  # 0.02% on a good day: 0.12 expected
    assert sum(v for (version, _), v in instance.action_requests().items() if version == HEALTHY) == 600
    instance.assert_no_injected_fault()


def test_a_slow_build_makes_every_action_slower(instance: Instance) -> None:
    assert instance.call("PUT", "/admin/build", {"version": "1.6.400"})[0] == 200
    slow = [(seconds, body) for status, seconds, body in instance.actions(24, workers=12) if status == 200]
    assert len(slow) >= 22
    assert min(seconds for seconds, _ in slow) >= 0.4
    assert min(body["seconds"] for _, body in slow) >= 0.4  # as the server measured it
    instance.assert_no_injected_fault()

    assert instance.call("PUT", "/admin/build", {"version": HEALTHY})[0] == 200
    fast = [seconds for status, seconds, _ in instance.actions(24, workers=12) if status == 200]
    assert statistics.median(fast) < 0.2  # median actions take 35-60 ms


def test_the_version_on_the_command_line_brings_its_defects(tmp_path: Path) -> None:
    port = free_port()
    instance = replace(by_name("gs-canary-1"), version="1.6.503")  # never becomes ready
    process = ManagedProcess("gs-canary-1", build_command(instance, port, seed=12), tmp_path / "fleet.log")
    try:
        process.start().wait_ready(functools.partial(http_ok, f"http://127.0.0.1:{port}/healthz"), timeout=30)
        api = Instance(port)
        assert api.call("GET", "/ready")[0] == 503
        assert api.call("GET", "/admin/build")[1]["defects"] == {
            "not_ready": True, "note": "never becomes ready: /ready answers 503 (a broken readiness probe)"}
        api.assert_no_injected_fault()
        assert "runs the defective build 1.6.503" in process.log_path.read_text()
    finally:
        process.stop()
