"""Local event scaling against a real HAProxy and real fleet processes: extra instances take traffic and go away."""
from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from demo.fleet import build_command
from demo.fleet_scaling import LocalFleetScaler, instance_alive
from demo.haproxy_config import render
from demo.procs import ManagedProcess, ProcessGroup, check_config, free_port, http_ok, port_in_use, require_binary
from demo.topology import by_name
from gamesre.integrations.haproxy import HAProxyRuntime

pytestmark = pytest.mark.integration

TOPOLOGY = (by_name("gs-stable-1"), by_name("mm-stable-1"))
EVENT = "winter-festival-test"


@dataclass
class Stack:
    players_url: str
    haproxy: HAProxyRuntime
    workdir: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stable instance per service behind a real HAProxy, on free loopback ports."""
    workdir = tmp_path_factory.mktemp("fleet-scaling")
    group = ProcessGroup()
    with group.running():
        ports = {i.name: free_port() for i in TOPOLOGY}
        for instance in TOPOLOGY:
            process = group.add(ManagedProcess(instance.name, build_command(instance, ports[instance.name], seed=1),
                                               workdir / f"{instance.name}.log").start())
            process.wait_ready(lambda p=ports[instance.name]: http_ok(f"http://127.0.0.1:{p}/ready"))
        player, stats, admin = free_port(), free_port(), free_port()
        config = workdir / "haproxy.cfg"
        config.write_text(render(ports, player_port=player, stats_port=stats, admin_port=admin, topology=TOPOLOGY))
        binary = require_binary("haproxy")
        check_config([binary, "-c", "-q", "-f", str(config)], "the test HAProxy configuration")
        haproxy = group.add(ManagedProcess("haproxy", [binary, "-f", str(config), "-db"], workdir / "haproxy.log"))
        haproxy.start().wait_ready(lambda: port_in_use(player) and port_in_use(admin))
        yield Stack(f"http://127.0.0.1:{player}", HAProxyRuntime(port=admin), workdir)


@pytest.fixture
def scaler(stack: Stack, tmp_path: Path) -> Iterator[LocalFleetScaler]:
    scaler = LocalFleetScaler(tmp_path / "event-scaling.json", stack.haproxy, log_dir=tmp_path / "logs",
                              ready_timeout=20, drain_timeout=5)
    try:
        yield scaler
    finally:  # never leave a process behind, whatever the test did
        leftovers = scaler.instances()
        with contextlib.suppress(Exception):
            scaler.scale_back(EVENT)
        for instance in leftovers:
            if instance_alive(instance.pid, instance.name) and instance.pid:
                os.killpg(instance.pid, signal.SIGKILL)


def served_by(stack: Stack, requests_count: int = 40) -> set[str]:
    names = set()
    for _ in range(requests_count):
        response = requests.post(f"{stack.players_url}/api/action/move", timeout=5)
        names.add(response.headers.get("X-Instance", "?"))
    return names


def game_servers(stack: Stack) -> dict[str, str]:
    return {row.name: row.status for row in stack.haproxy.show_servers("game-server")}


def test_scale_up_serves_traffic_rerun_is_a_no_op_and_scale_back_leaves_nothing(stack: Stack,
                                                                                 scaler: LocalFleetScaler) -> None:
    assert set(game_servers(stack)) == {"gs-stable-1"}
    up = scaler.scale_up(EVENT, "game-server", 2, prefix="gs-event")
    assert up.started == ("gs-event-1", "gs-event-2") and up.added == ("gs-event-1", "gs-event-2")
    servers = game_servers(stack)
    assert set(servers) == {"gs-stable-1", "gs-event-1", "gs-event-2"}
    assert all(status.startswith("UP") for status in servers.values())
    # The extra instances run the version the stable instance serves, and receive player traffic.
    build = requests.get(f"{up.instances[0].url}/admin/build", timeout=5).json()
    assert build == {"instance": "gs-event-1", "service": "game-server", "version": "1.4.2", "track": "stable",
                     "defects": {}}
    assert {"gs-stable-1", "gs-event-1", "gs-event-2"} <= served_by(stack)
    assert "matchmaking" not in {i.service for i in scaler.instances()}

    pids = {i.name: i.pid for i in up.instances}
    again = scaler.scale_up(EVENT, "game-server", 2, prefix="gs-event")
    assert (again.started, again.added, again.removed) == ((), (), ())
    assert "nothing to do" in again.message
    assert {i.name: i.pid for i in again.instances} == pids
    assert set(game_servers(stack)) == {"gs-stable-1", "gs-event-1", "gs-event-2"}

    back = scaler.scale_back(EVENT)
    assert sorted(back.removed) == sorted(back.stopped) == ["gs-event-1", "gs-event-2"]
    assert set(game_servers(stack)) == {"gs-stable-1"}
    assert not any(instance_alive(pid, name) for name, pid in pids.items())
    assert not scaler.state_file.exists()
    assert served_by(stack, 10) == {"gs-stable-1"}
    assert scaler.scale_back(EVENT).message == f"{EVENT}: removed nothing from HAProxy, stopped nothing"


def test_a_dead_instance_is_started_again_and_a_lower_count_removes_the_surplus(stack: Stack,
                                                                               scaler: LocalFleetScaler) -> None:
    up = scaler.scale_up(EVENT, "game-server", 2, prefix="gs-event")
    dead = up.instances[0]
    assert dead.pid is not None
    os.killpg(dead.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while instance_alive(dead.pid, dead.name) and time.monotonic() < deadline:
        time.sleep(0.1)
    healed = scaler.scale_up(EVENT, "game-server", 2, prefix="gs-event")
    assert healed.started == (dead.name,) and healed.added == (dead.name,)  # new port: re-added to HAProxy
    restarted = next(i for i in healed.instances if i.name == dead.name)
    assert restarted.pid != dead.pid and instance_alive(restarted.pid, restarted.name)
    row = stack.haproxy.server("game-server", dead.name)
    assert row.address == f"127.0.0.1:{restarted.port}" and row.status.startswith("UP")

    fewer = scaler.scale_up(EVENT, "game-server", 1, prefix="gs-event")
    assert fewer.removed == ("gs-event-2",) and [i.name for i in fewer.instances] == ["gs-event-1"]
    assert set(game_servers(stack)) == {"gs-stable-1", "gs-event-1"}
    scaler.scale_back(EVENT)
    assert set(game_servers(stack)) == {"gs-stable-1"}
    assert scaler.instances() == []
