"""The local chaos backend against the real demo fleet behind a real HAProxy, with the load generator running.

Every fault is checked where it takes effect: the instance's injected faults (`GET /admin/faults`), its
`/ready`, HAProxy's view of the server (runtime API), player requests through HAProxy and straight at the
instance, and the state file under `chaos/` beside fleet.json.

The stack is shared by the module: every test starts with no fault injected anywhere and every server UP,
and `fleet_as_found` puts that back afterwards, also when a test fails half-way.
"""
from __future__ import annotations

import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from demo.admin import Faults
from demo.procs import free_port
from demo.topology import DEFAULT_TOPOLOGY
from gamesre.chaos.faults import ChaosBackendError, FaultSpec, Injection
from gamesre.integrations.chaos.local import LocalChaosBackend, state_file_name
from gamesre.integrations.haproxy import HAProxyRuntime
from tests.conftest import LiveStack, fleet_document

pytestmark = pytest.mark.integration

SERVICE = "game-server"
GAME = [i for i in DEFAULT_TOPOLOGY if i.service == SERVICE]
BACKEND = GAME[0].job()  # the HAProxy backend is named after the job
STABLES = ("gs-stable-1", "gs-stable-2")
CANARY = "gs-canary-1"
START_VERSIONS = {i.name: i.version for i in DEFAULT_TOPOLOGY}
NEVER_READY = "1.6.503"  # demo/builds.yaml: /ready answers 503 whatever is injected
CLEAR = Faults().to_json()  # no fault injected


# --- the fleet as it is ---------------------------------------------------------------------------------------
def faults(live: LiveStack, instance: str) -> dict[str, Any]:
    response = requests.get(f"{live.admin_url(instance)}/faults", timeout=5)
    response.raise_for_status()
    return dict(response.json())


def put_faults(live: LiveStack, instance: str, **values: Any) -> None:
    requests.put(f"{live.admin_url(instance)}/faults", json=values, timeout=5).raise_for_status()


def ready_status(live: LiveStack, instance: str) -> int:
    return requests.get(f"http://127.0.0.1:{live.fleet_ports[instance]}/ready", timeout=5).status_code


def status(haproxy: HAProxyRuntime, instance: str) -> str:
    return haproxy.server(BACKEND, instance).status


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.2)


def players_served(live: LiveStack, n: int) -> Counter[str]:
    """Send n moves through HAProxy's player frontend; count the X-Instance answers ("none": HAProxy's own)."""
    def one(_: int) -> str:
        return requests.post(f"{live.players_url}/api/action/move", timeout=10).headers.get("X-Instance", "none")

    with ThreadPoolExecutor(max_workers=6) as pool:
        return Counter(pool.map(one, range(n)))


def move_seconds(live: LiveStack, instance: str, n: int = 3) -> float:
    """Median duration of n moves sent straight to one instance."""
    durations = []
    for _ in range(n):
        started = time.monotonic()
        requests.post(f"http://127.0.0.1:{live.fleet_ports[instance]}/api/action/move", timeout=10)
        durations.append(time.monotonic() - started)
    return statistics.median(durations)


def without_observed(injection: Injection) -> Injection:
    return Injection.from_dict({**injection.to_dict(),
                                "handles": {k: v for k, v in injection.handles.items() if k != "observed"}})


# --- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture
def haproxy(live_stack: LiveStack) -> HAProxyRuntime:
    return HAProxyRuntime("127.0.0.1", live_stack.haproxy_admin_port)


@pytest.fixture
def fleet_file(live_stack: LiveStack, tmp_path: Path) -> Path:
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(fleet_document(live_stack), indent=2))
    return path


@pytest.fixture
def chaos_dir(fleet_file: Path) -> Path:
    return fleet_file.parent / "chaos"


@pytest.fixture
def make_backend(live_stack: LiveStack, haproxy: HAProxyRuntime,
                 fleet_file: Path) -> Callable[..., LocalChaosBackend]:
    def make(*, fleet: dict[str, Any] | None = None, service: str = SERVICE, **kwargs: Any) -> LocalChaosBackend:
        return LocalChaosBackend(fleet or fleet_document(live_stack), haproxy, service, fleet_file=fleet_file,
                                 **kwargs)
    return make


def every_server_up(haproxy: HAProxyRuntime) -> bool:
    return all(haproxy.server(i.job(), i.name).status == "UP" for i in DEFAULT_TOPOLOGY)


@pytest.fixture(autouse=True)
def fleet_as_found(live_stack: LiveStack, haproxy: HAProxyRuntime) -> Iterator[None]:
    """Start with no fault anywhere and every server UP; afterwards undo whatever the test left."""
    wait_for(lambda: every_server_up(haproxy), 15, "every server UP in HAProxy")
    assert {i.name: faults(live_stack, i.name) for i in DEFAULT_TOPOLOGY} == {i.name: CLEAR for i in DEFAULT_TOPOLOGY}
    yield
    for instance in DEFAULT_TOPOLOGY:
        requests.delete(f"{live_stack.admin_url(instance.name)}/faults", timeout=5).raise_for_status()
        requests.put(f"{live_stack.admin_url(instance.name)}/build", json={"version": instance.version},
                     timeout=5).raise_for_status()
        haproxy.set_server_state(instance.job(), instance.name, "ready")
    wait_for(lambda: every_server_up(haproxy), 15, "every server UP in HAProxy after the test")


# --- targets and validation -----------------------------------------------------------------------------------
def test_targets_select_by_track_and_instance_and_an_unknown_key_is_named(
        make_backend: Callable[..., LocalChaosBackend]) -> None:
    backend = make_backend()
    assert backend.targets({}) == [CANARY, *STABLES]
    assert backend.targets({"track": "stable"}) == list(STABLES)
    assert backend.targets({"track": "canary"}) == [CANARY]  # the idle canary (weight 0) counts too
    assert backend.targets({"track": "stable", "instance": "gs-stable-2"}) == ["gs-stable-2"]
    assert backend.targets({"track": "canary", "instance": "gs-stable-2"}) == []
    assert backend.targets({"instance": "mm-stable-1"}) == []  # another service's instance
    assert make_backend(service="matchmaking").targets({}) == ["mm-canary-1", "mm-stable-1"]
    with pytest.raises(ChaosBackendError, match=r"unknown selector key\(s\) pod, zone for game-server "
                                                r"\(known: instance, track\)"):
        backend.targets({"track": "stable", "zone": "a", "pod": "x"})


def test_a_bad_fault_or_target_is_refused_and_leaves_no_trace(
        make_backend: Callable[..., LocalChaosBackend], live_stack: LiveStack, chaos_dir: Path) -> None:
    backend = make_backend()
    with pytest.raises(ChaosBackendError, match="memory_hog fault needs the parameter memory_mb"):
        backend.inject("run-bad", "hog", FaultSpec("memory_hog"), ["gs-stable-1"])
    with pytest.raises(ChaosBackendError, match=r"loss_percent=150 is outside 0\.\.100"):
        backend.inject("run-bad", "loss", FaultSpec("network_loss", {"loss_percent": 150}), ["gs-stable-1"])
    with pytest.raises(ChaosBackendError, match="unknown fault kind 'meteor'"):
        backend.inject("run-bad", "boom", FaultSpec("meteor"), ["gs-stable-1"])
    with pytest.raises(ChaosBackendError, match=r"targets among the game-server instances .*got \['mm-stable-1'\]"):
        backend.inject("run-bad", "slow", FaultSpec("db_latency", {"db_latency_ms": 50}), ["mm-stable-1"])
    # The fleet's own limit (512 MB of disk): refused by the first target, so nothing changed and no state is kept.
    with pytest.raises(ChaosBackendError, match=r"PUT .*/admin/faults \(gs-stable-1\) answered 400: .*disk_fill_mb"):
        backend.inject("run-bad", "fill", FaultSpec("disk_fill", {"disk_fill_mb": 4096}), list(STABLES))
    assert list(chaos_dir.glob("*.json")) == []
    assert faults(live_stack, "gs-stable-1") == faults(live_stack, "gs-stable-2") == CLEAR
    assert backend.injected() == []


# --- the faults -----------------------------------------------------------------------------------------------
def test_pod_delete_takes_the_instance_out_of_haproxy_and_recovery_brings_it_back_up(
        make_backend: Callable[..., LocalChaosBackend], live_stack: LiveStack, haproxy: HAProxyRuntime,
        chaos_dir: Path) -> None:
    backend = make_backend()
    injection = backend.inject("run-pod", "kill-one", FaultSpec("pod_delete", duration_s=30), ["gs-stable-1"])
    assert (injection.backend, injection.service, injection.targets) == ("local", SERVICE, ("gs-stable-1",))
    assert injection.handles == {"previous": {"gs-stable-1": {"killed": False}}}
    state = chaos_dir / state_file_name("run-pod")
    assert json.loads(state.read_text()) == injection.to_dict()
    assert faults(live_stack, "gs-stable-1") == {**CLEAR, "killed": True}
    assert ready_status(live_stack, "gs-stable-1") == 503
    wait_for(lambda: status(haproxy, "gs-stable-1").startswith("DOWN"), 6, "HAProxy marks gs-stable-1 DOWN")
    assert players_served(live_stack, 30) == Counter({"gs-stable-2": 30})  # routed around, nobody gets a 503

    recovery = backend.recover(injection)
    assert recovery.recovered, recovery
    assert recovery.remaining == ()
    # Confirmed means confirmed: HAProxy already has the server back (two good checks), no waiting here.
    assert status(haproxy, "gs-stable-1") == "UP"
    assert ready_status(live_stack, "gs-stable-1") == 200
    assert faults(live_stack, "gs-stable-1") == CLEAR
    assert not state.exists()


def test_latency_shows_in_the_faults_and_the_timing_and_recovery_keeps_what_was_there_before(
        make_backend: Callable[..., LocalChaosBackend], live_stack: LiveStack) -> None:
    put_faults(live_stack, "gs-stable-1", latency_ms=20, db_latency_ms=30)  # someone else's, before the experiment
    backend = make_backend()
    fault = FaultSpec("network_latency", {"latency_ms": 400, "jitter_ms": 50})
    injection = backend.inject("run-latency", "slow-network", fault, ["gs-stable-1"])
    assert injection.handles == {"previous": {"gs-stable-1": {"latency_ms": 20.0}}}
    assert faults(live_stack, "gs-stable-1") == {**CLEAR, "latency_ms": 400.0, "db_latency_ms": 30.0}
    assert move_seconds(live_stack, "gs-stable-1") >= 0.42
    assert move_seconds(live_stack, "gs-stable-2") < 0.3  # only the target is slow

    recovery = backend.recover(injection)
    assert recovery.recovered, recovery
    assert faults(live_stack, "gs-stable-1") == {**CLEAR, "latency_ms": 20.0, "db_latency_ms": 30.0}
    assert move_seconds(live_stack, "gs-stable-1") < 0.3


def test_partition_puts_the_server_in_maintenance_and_recovery_restores_its_state(
        make_backend: Callable[..., LocalChaosBackend], live_stack: LiveStack, haproxy: HAProxyRuntime,
        chaos_dir: Path) -> None:
    backend = make_backend()
    injection = backend.inject("run-partition", "cut-off", FaultSpec("network_partition"), ["gs-stable-2"])
    assert injection.handles == {
        "previous": {"gs-stable-2": {"not_ready": False}},
        "haproxy": {"gs-stable-2": {"backend": BACKEND, "state": "ready", "weight": 100}},
    }
    assert status(haproxy, "gs-stable-2").startswith("MAINT")  # at once: no health check involved
    assert faults(live_stack, "gs-stable-2") == {**CLEAR, "not_ready": True}
    assert players_served(live_stack, 20) == Counter({"gs-stable-1": 20})

    backend.abort(injection)  # taken back at once, not yet confirmed: the state file stays
    assert not status(haproxy, "gs-stable-2").startswith("MAINT")
    assert faults(live_stack, "gs-stable-2") == CLEAR
    assert (chaos_dir / state_file_name("run-partition")).exists()

    recovery = backend.recover(injection)
    assert recovery.recovered, recovery
    assert status(haproxy, "gs-stable-2") == "UP"
    assert haproxy.get_weight(BACKEND, "gs-stable-2") == 100
    assert not (chaos_dir / state_file_name("run-partition")).exists()


# --- idempotency and the reaper's view ------------------------------------------------------------------------
def test_inject_retried_with_the_same_run_id_reapplies_and_returns_the_same_injection(
        make_backend: Callable[..., LocalChaosBackend], live_stack: LiveStack, chaos_dir: Path) -> None:
    backend = make_backend()
    fault = FaultSpec("db_failure", duration_s=30)
    first = backend.inject("run-retry", "db-down", fault, list(STABLES))
    assert first.handles == {"previous": {n: {"db_fail_rate": 0.0} for n in STABLES}}
    assert [faults(live_stack, n)["db_fail_rate"] for n in STABLES] == [1.0, 1.0]
    # As if the first try had died before reaching gs-stable-2: the retry must apply it there.
    requests.delete(f"{live_stack.admin_url('gs-stable-2')}/faults", timeout=5).raise_for_status()

    again = make_backend().inject("run-retry", "db-down", fault, list(reversed(STABLES)))
    assert again == first  # the values from before the first try, not the fault's own
    assert [faults(live_stack, n)["db_fail_rate"] for n in STABLES] == [1.0, 1.0]
    assert [p.name for p in chaos_dir.iterdir()] == [state_file_name("run-retry")]

    with pytest.raises(ChaosBackendError, match=r"run run-retry already injected db_failure \(db-down\)"):
        backend.inject("run-retry", "db-down", FaultSpec("db_latency", {"db_latency_ms": 100}), list(STABLES))
    # Another run may not take the same field of the same instance: its "previous" value would be this fault.
    with pytest.raises(ChaosBackendError, match=r"run run-retry \(db-down\) still holds gs-stable-1\.db_fail_rate"):
        backend.inject("run-other", "db-down", FaultSpec("db_failure", {"db_fail_rate": 0.5}), ["gs-stable-1"])

    assert backend.recover(again).recovered
    assert [faults(live_stack, n) for n in STABLES] == [CLEAR, CLEAR]
    assert list(chaos_dir.iterdir()) == []


def test_injected_finds_what_a_crashed_run_left_and_recover_cleans_it_up(
        make_backend: Callable[..., LocalChaosBackend], live_stack: LiveStack) -> None:
    crashed = make_backend()
    disk = crashed.inject("scheduled__2026-05-01T11:00:00+00:00", "fill-disk",
                          FaultSpec("disk_fill", {"disk_fill_mb": 8}), [CANARY])
    slow_db = make_backend(service="matchmaking").inject(
        "run-mm", "slow-db", FaultSpec("db_latency", {"db_latency_ms": 150}), ["mm-stable-1"])
    del crashed  # the worker died: only the state files are left

    reaper = make_backend()
    (found,) = reaper.injected(SERVICE)
    assert found.handles["observed"] == {CANARY: {"disk_fill_mb": 8}}  # still injected, as the fleet shows
    assert without_observed(found) == disk
    assert sorted(i.run_id for i in reaper.injected()) == sorted([disk.run_id, slow_db.run_id])  # every service

    # Taken back by hand, not by recover(): still listed, since no recovery confirmed it.
    requests.delete(f"{live_stack.admin_url('mm-stable-1')}/faults", timeout=5).raise_for_status()
    mm_reaper = make_backend(service="matchmaking")
    (left,) = mm_reaper.injected("matchmaking")
    assert left.handles["observed"] == {"mm-stable-1": {"db_latency_ms": 0.0}}

    assert reaper.recover(found).recovered
    assert mm_reaper.recover(left).recovered
    assert reaper.injected() == []
    assert faults(live_stack, CANARY) == faults(live_stack, "mm-stable-1") == CLEAR


# --- recovery that cannot be done or confirmed ----------------------------------------------------------------
def test_recover_with_an_unreachable_instance_names_it_takes_back_the_rest_and_keeps_the_state(
        make_backend: Callable[..., LocalChaosBackend], live_stack: LiveStack, chaos_dir: Path) -> None:
    backend = make_backend()
    injection = backend.inject("run-unreachable", "slow", FaultSpec("network_latency", {"latency_ms": 300}),
                               list(STABLES))
    fleet = fleet_document(live_stack)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    fleet["instances"]["gs-stable-2"]["url"] = url
    with pytest.raises(ChaosBackendError, match=rf"gs-stable-2 at {re.escape(url)}/admin/faults is unreachable"):
        make_backend(fleet=fleet).recover(injection)
    assert faults(live_stack, "gs-stable-1")["latency_ms"] == 0.0  # the reachable one is taken back anyway
    assert faults(live_stack, "gs-stable-2")["latency_ms"] == 300.0
    assert (chaos_dir / state_file_name("run-unreachable")).exists()

    assert backend.recover(injection).recovered  # the Airflow layer's retry, with the instance back
    assert [faults(live_stack, n) for n in STABLES] == [CLEAR, CLEAR]
    assert not (chaos_dir / state_file_name("run-unreachable")).exists()


def test_recovery_that_is_not_confirmed_says_what_remains_and_keeps_the_state_for_the_reaper(
        make_backend: Callable[..., LocalChaosBackend], live_stack: LiveStack, haproxy: HAProxyRuntime,
        chaos_dir: Path) -> None:
    backend = make_backend(recover_timeout=2.0)
    injection = backend.inject("run-stuck", "kill-canary", FaultSpec("pod_delete"), [CANARY])
    # A build whose readiness probe is broken: the fault is gone, but the instance never comes back.
    requests.put(f"{live_stack.admin_url(CANARY)}/build", json={"version": NEVER_READY}, timeout=5).raise_for_status()
    started = time.monotonic()
    recovery = backend.recover(injection)
    assert 2.0 <= time.monotonic() - started < 5.0
    assert not recovery.recovered
    assert recovery.remaining[0] == f"{CANARY}: /ready answers 503"
    assert re.fullmatch(rf"{CANARY}: HAProxy {BACKEND}/{CANARY} is DOWN.*", recovery.remaining[1]), recovery
    assert "not confirmed within 2s" in recovery.detail
    assert faults(live_stack, CANARY) == CLEAR
    assert (chaos_dir / state_file_name("run-stuck")).exists()
    assert [i.run_id for i in backend.injected()] == ["run-stuck"]

    requests.put(f"{live_stack.admin_url(CANARY)}/build", json={"version": START_VERSIONS[CANARY]},
                 timeout=5).raise_for_status()
    recovery = make_backend().recover(injection)
    assert recovery.recovered, recovery
    assert status(haproxy, CANARY) == "UP"
    assert not (chaos_dir / state_file_name("run-stuck")).exists()
