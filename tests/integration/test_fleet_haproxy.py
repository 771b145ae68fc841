"""The demo fleet behind a real HAProxy: routing, weights, readiness, faults, dynamic servers and the load generator.

Starts every instance of the default topology (demo/fleet.py) and haproxy on free loopback ports in a temp
folder; everything is stopped at the end of the module, also when a test fails.
"""
from __future__ import annotations

import functools
import http.client
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from demo.fleet import build_command
from demo.haproxy_config import check, render
from demo.procs import ManagedProcess, ProcessGroup, free_port, http_ok
from demo.topology import DEFAULT_TOPOLOGY, Instance, haproxy_names
from gamesre.integrations.haproxy import HAProxyError, HAProxyRuntime

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    tmp: Path
    ports: dict[str, int]
    player_port: int
    stats_port: int
    runtime: HAProxyRuntime
    group: ProcessGroup


def request(port: int, method: str, path: str, body: object | None = None,
            timeout: float = 10.0) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = b"" if body is None else json.dumps(body).encode()
        conn.request(method, path, body=payload, headers={"Content-Length": str(len(payload))})
        response = conn.getresponse()
        return response.status, response.headers, response.read()  # headers: case-insensitive
    finally:
        conn.close()


def counter(port: int, family: str, **labels: str) -> float:
    """Sum of a family's samples on one fleet instance whose labels match."""
    _, _, body = request(port, "GET", "/metrics")
    total = 0.0
    for fam in text_string_to_metric_families(body.decode()):
        if fam.name == family:
            total += sum(s.value for s in fam.samples
                         if s.name in (family, f"{family}_total") and all(s.labels.get(k) == v
                                                                            for k, v in labels.items()))
    return total


def moves(stack: Stack, name: str) -> float:
    return counter(stack.ports[name], "game_action_requests", action="move")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def server_status(stack: Stack, instance: Instance) -> str:
    backend, server = haproxy_names(instance)
    return stack.runtime.server(backend, server).status


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (make debs)")
    tmp = tmp_path_factory.mktemp("fleet-haproxy")
    group = ProcessGroup()
    try:
        ports = {i.name: free_port() for i in DEFAULT_TOPOLOGY}
        for n, instance in enumerate(DEFAULT_TOPOLOGY):
            group.add(ManagedProcess(instance.name, build_command(instance, ports[instance.name], seed=100 + n),
                                     tmp / f"{instance.name}.log").start())
        for process, instance in zip(group.processes, DEFAULT_TOPOLOGY, strict=True):
            port = ports[instance.name]
            process.wait_ready(functools.partial(http_ok, f"http://127.0.0.1:{port}/ready"), timeout=30)
        player, stats, admin = free_port(), free_port(), free_port()
        config = tmp / "haproxy.cfg"
        config.write_text(render(ports, player_port=player, stats_port=stats, admin_port=admin,
                                 admin_socket=tmp / "haproxy.sock"))
        check(config)
        haproxy = group.add(ManagedProcess("haproxy", ["haproxy", "-db", "-f", str(config)], tmp / "haproxy.log"))
        haproxy.start().wait_ready(lambda: http_ok(f"http://127.0.0.1:{stats}/metrics"), timeout=15)
        built = Stack(tmp, ports, player, stats, HAProxyRuntime("127.0.0.1", admin, timeout=3), group)
        wait_for(lambda: all(server_status(built, i) == "UP" for i in DEFAULT_TOPOLOGY), 15, "all servers UP")
        yield built
    finally:
        group.stop_all()


def test_player_traffic_reaches_the_stable_instances_only(stack: Stack) -> None:
    before = {name: moves(stack, name) for name in ("gs-stable-1", "gs-stable-2", "gs-canary-1")}
    for _ in range(40):
        assert request(stack.player_port, "POST", "/api/action/move")[0] == 200
    after = {name: moves(stack, name) for name in before}
    delta = {name: after[name] - before[name] for name in before}
    assert delta["gs-stable-1"] + delta["gs-stable-2"] == 40
    assert delta["gs-stable-1"] >= 10 and delta["gs-stable-2"] >= 10
    assert delta["gs-canary-1"] == 0

    for tier in ("bronze", "gold", "diamond"):
        status, headers, _ = request(stack.player_port, "POST", f"/api/match?mode=casual&tier={tier}")
        assert status == 200 and headers.get("X-Instance") == "mm-stable-1"
    queued = counter(stack.ports["mm-stable-1"], "matchmaking_queue_size")
    resolved = counter(stack.ports["mm-stable-1"], "matchmaking_requests")
    assert queued + resolved == 3
    assert counter(stack.ports["mm-canary-1"], "matchmaking_queue_size") == 0


def test_players_cannot_reach_admin_or_metrics(stack: Stack) -> None:
    assert request(stack.player_port, "PUT", "/admin/faults", {"crash": True})[0] == 403
    assert request(stack.player_port, "GET", "/metrics")[0] == 403


def test_weight_shifts_traffic_to_the_canary(stack: Stack) -> None:
    canary = "gs-canary-1"
    stack.runtime.set_weight("game-server", canary, 100)
    try:
        assert stack.runtime.get_weight("game-server", canary) == 100
        before = moves(stack, canary)
        for _ in range(60):
            assert request(stack.player_port, "POST", "/api/action/move")[0] == 200
        share = (moves(stack, canary) - before) / 60
        assert 0.2 <= share <= 0.45  # one of three equal weights
    finally:
        stack.runtime.set_weight("game-server", canary, 0)
    before = moves(stack, canary)
    for _ in range(20):
        request(stack.player_port, "POST", "/api/action/move")
    assert moves(stack, canary) == before


class Players:
    """Sends requests through HAProxy from a thread and records who answered and how."""

    def __init__(self, port: int, path: str = "/api/action/move", players: int = 1) -> None:
        self.port, self.path = port, path
        self.results: list[tuple[float, int, str | None]] = []  # (time, status or -1, X-Instance)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(players)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, headers, _ = request(self.port, "POST", self.path)
                self.results.append((time.monotonic(), status, headers.get("X-Instance")))
            except OSError:
                self.results.append((time.monotonic(), -1, None))
            time.sleep(0.01)

    def __enter__(self) -> Players:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def proxy_failures(self) -> list[tuple[float, int, str | None]]:
        """Failures players saw that no game instance produced (refused, or HAProxy's own 5xx)."""
        return [r for r in self.results if r[1] == -1 or r[2] is None]


def test_not_ready_instance_is_routed_around_without_player_failures(stack: Stack) -> None:
    gs2 = next(i for i in DEFAULT_TOPOLOGY if i.name == "gs-stable-2")
    port = stack.ports[gs2.name]
    with Players(stack.player_port) as players:
        time.sleep(0.5)
        assert request(port, "PUT", "/admin/faults", {"not_ready": True})[0] == 200
        took = wait_for(lambda: server_status(stack, gs2).startswith("DOWN"), 6, "gs-stable-2 DOWN in HAProxy")
        assert took < 5
        down_at = time.monotonic()
        time.sleep(0.6)  # let requests already in flight on gs-stable-2 finish
        served_when_down = moves(stack, gs2.name)
        time.sleep(1.5)
        assert moves(stack, gs2.name) == served_when_down  # nothing new reached it
        assert request(port, "DELETE", "/admin/faults")[0] == 200
        wait_for(lambda: server_status(stack, gs2) == "UP", 6, "gs-stable-2 back UP")
    assert players.proxy_failures() == []
    after_down = [r for r in players.results if down_at + 0.6 < r[0] < down_at + 2.1]
    assert after_down and all(r[2] != gs2.name for r in after_down)
    answered = [r for r in players.results if r[2] is not None]
    assert sum(r[1] == 200 for r in answered) >= 0.99 * len(answered)


def test_a_killed_instance_fails_no_player(stack: Stack) -> None:
    """The `killed` fault (chaos pod_delete on the local backend) closes player connections unanswered, like a
    deleted pod; HAProxy retries those requests on another server until its health check takes it out."""
    gs1 = next(i for i in DEFAULT_TOPOLOGY if i.name == "gs-stable-1")
    port = stack.ports[gs1.name]
    with Players(stack.player_port) as players:
        time.sleep(0.5)
        assert request(port, "PUT", "/admin/faults", {"killed": True})[0] == 200
        wait_for(lambda: server_status(stack, gs1).startswith("DOWN"), 6, "gs-stable-1 DOWN in HAProxy")
        time.sleep(0.5)
        assert request(port, "DELETE", "/admin/faults")[0] == 200
        wait_for(lambda: server_status(stack, gs1) == "UP", 6, "gs-stable-1 back UP")
    assert len(players.results) > 20
    assert players.proxy_failures() == []
    answered = [r for r in players.results if r[2] is not None]
    assert sum(r[1] == 200 for r in answered) >= 0.99 * len(answered)


def test_bad_admin_call_gets_400_with_the_reason_and_changes_nothing(stack: Stack) -> None:
    port = stack.ports["gs-stable-1"]
    status, _, body = request(port, "PUT", "/admin/faults", {"not_ready": True, "error_rate": 2})
    assert status == 400
    assert json.loads(body) == {"error": "error_rate: 2 is outside 0..1"}
    status, _, body = request(port, "PUT", "/admin/faults", {"reboot": True})
    assert (status, json.loads(body)["error"].split(":")[0]) == (400, "reboot")
    _, _, body = request(port, "GET", "/admin/faults")
    assert json.loads(body)["not_ready"] is False and json.loads(body)["error_rate"] == 0
    assert counter(port, "game_fault_active") == 0


def test_haproxy_exports_prometheus_metrics(stack: Stack) -> None:
    status, _, body = request(stack.stats_port, "GET", "/metrics")
    text = body.decode()
    assert status == 200
    assert 'haproxy_backend_http_requests_total{proxy="game-server"}' in text
    assert 'haproxy_server_weight{proxy="game-server",server="gs-canary-1"} 0' in text


def test_dynamic_server_takes_traffic_and_a_killed_one_fails_no_player(stack: Stack) -> None:
    extra = Instance("gs-extra-1", "game-server", "stable", "1.4.2", 100)
    port = free_port()
    process = stack.group.add(ManagedProcess(extra.name, build_command(extra, port, seed=9),
                                             stack.tmp / "gs-extra-1.log").start())
    process.wait_ready(lambda: http_ok(f"http://127.0.0.1:{port}/ready"), timeout=30)
    stack.runtime.add_server("game-server", extra.name, "127.0.0.1", port, weight=100)
    try:
        wait_for(lambda: stack.runtime.server("game-server", extra.name).status == "UP", 6, "the new server UP")
        for _ in range(30):
            assert request(stack.player_port, "POST", "/api/action/move")[0] == 200
        assert counter(port, "game_action_requests", action="move") > 0
        with Players(stack.player_port, players=4) as players:  # requests are in flight when it dies
            time.sleep(1.0)
            process.signal_group(signal.SIGKILL)
            wait_for(lambda: stack.runtime.server("game-server", extra.name).status.startswith("DOWN"), 6,
                     "the killed server DOWN")
            time.sleep(0.5)
        assert len(players.results) > 40
        assert players.proxy_failures() == []
    finally:
        stack.runtime.del_server("game-server", extra.name)
    assert extra.name not in [s.name for s in stack.runtime.show_servers("game-server")]
    with pytest.raises(HAProxyError, match="No such server"):
        stack.runtime.set_weight("game-server", extra.name, 1)


def loadgen_command(stack: Stack, *args: str) -> list[str]:
    return [sys.executable, str(REPO / "demo" / "loadgen.py"), "--base-url", f"http://127.0.0.1:{stack.player_port}",
            "--seed", "5", *args]


def test_loadgen_drives_actions_sessions_and_matchmaking(stack: Stack) -> None:
    sessions_before = sum(counter(stack.ports[n], "game_sessions_active") for n in ("gs-stable-1", "gs-stable-2"))
    result = subprocess.run(loadgen_command(stack, "--duration", "5", "--fixed-hour", "20", "--peak-rps", "25"),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["final"] is True
    assert summary["sent"] >= 60  # ~25 requests/s for 5 s
    assert summary["ok"] >= 0.97 * summary["sent"]
    assert set(summary["by_kind"]) >= {"action", "match", "save"}
    sessions = sum(counter(stack.ports[n], "game_sessions_active") for n in ("gs-stable-1", "gs-stable-2"))
    assert sessions > sessions_before + 1000  # scaled logins: each carries many players


def test_loadgen_stops_cleanly_on_sigterm(stack: Stack) -> None:
    process = subprocess.Popen(loadgen_command(stack, "--fixed-hour", "4"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.0)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["final"] is True
