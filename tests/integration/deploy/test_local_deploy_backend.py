"""The local deploy backend against the real demo fleet behind a real HAProxy, with the load generator running.

Every strategy step is checked where it takes effect: the HAProxy weights (runtime API `get weight`), every
game-server instance's build (`GET /admin/build`) and the state file beside fleet.json. Player requests
through HAProxy show the canary's share of real traffic; a smoke process shows the synthetic preview.

The stack is shared by the module: every test starts from the demo topology (stables 1.4.2 at weight 100,
the canary 1.5.0 at weight 0, every server UP) and `fleet_as_found` puts it back afterwards, also when a
test fails half-way.
"""
from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

import demo.backends  # noqa: F401  (registers the demo's smoke traffic, as GAMESRE_EXTENSIONS does in Airflow)
from demo.procs import free_port
from demo.topology import DEFAULT_TOPOLOGY
from gamesre.deploy.backend import Cohorts, DeployBackendError
from gamesre.deploy.plan import build_plan
from gamesre.integrations.deploy.local import TOTAL_WEIGHT, LocalDeployBackend
from gamesre.integrations.haproxy import HAProxyRuntime
from tests.conftest import LiveStack, fleet_document

pytestmark = pytest.mark.integration

SERVICE = "game-server"
GAME = [i for i in DEFAULT_TOPOLOGY if i.service == SERVICE]
BACKEND = GAME[0].job()  # the HAProxy backend is named after the job
STABLES = ("gs-stable-1", "gs-stable-2")
CANARY = "gs-canary-1"
START_VERSIONS = {i.name: i.version for i in GAME}  # stables 1.4.2, canary 1.5.0
START_WEIGHTS = {i.name: i.weight for i in GAME}  # stables 100, canary 0
OLD = "1.4.2"
NEW = "1.5.1"  # healthy: not in demo/builds.yaml
NEVER_READY = "1.6.503"  # demo/builds.yaml: /ready answers 503
SMOKE_SECONDS = 15  # longer than the test needs, so promote() is what stops it (and must)


class RecordingHAProxy(HAProxyRuntime):
    """The real runtime API, remembering each weight the backend sets and the server's build at that moment."""

    def __init__(self, live: LiveStack) -> None:
        super().__init__("127.0.0.1", live.haproxy_admin_port)
        self.live = live
        self.changes: list[tuple[str, int, str]] = []  # (server, weight, its version when the weight was set)

    def set_weight(self, backend: str, server: str, weight: int) -> None:
        self.changes.append((server, weight, version(self.live, server)))
        super().set_weight(backend, server, weight)


# --- the fleet as it is ---------------------------------------------------------------------------------------
def version(live: LiveStack, instance: str) -> str:
    response = requests.get(f"{live.admin_url(instance)}/build", timeout=5)
    response.raise_for_status()
    return str(response.json()["version"])


def versions(live: LiveStack) -> dict[str, str]:
    return {i.name: version(live, i.name) for i in GAME}


def weights(haproxy: HAProxyRuntime) -> dict[str, int]:
    return {i.name: haproxy.get_weight(BACKEND, i.name) for i in GAME}


def canary_percent(w: dict[str, int]) -> float:
    return 100 * w[CANARY] / sum(w.values())


def action_requests(live: LiveStack, instance: str) -> float:
    """game_action_requests_total of one instance, every label summed."""
    text = requests.get(f"http://127.0.0.1:{live.fleet_ports[instance]}/metrics", timeout=5).text
    return sum(s.value for f in text_string_to_metric_families(text) if f.name == "game_action_requests"
               for s in f.samples if s.name == "game_action_requests_total")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.2)


def every_server_up(haproxy: HAProxyRuntime) -> bool:
    return all(haproxy.server(i.job(), i.name).status == "UP" for i in DEFAULT_TOPOLOGY)


def process_running(pid: int) -> bool:
    """Alive and not a zombie (the smoke process is a child of this test process until reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def players_served(live: LiveStack, n: int) -> Counter[str]:
    """Send n moves through HAProxy's player frontend (a new connection each); count the X-Instance answers."""
    def one(_: int) -> str:
        return requests.post(f"{live.players_url}/api/action/move", timeout=10).headers.get("X-Instance", "none")

    with ThreadPoolExecutor(max_workers=8) as pool:
        return Counter(pool.map(one, range(n)))


# --- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture
def haproxy(live_stack: LiveStack) -> RecordingHAProxy:
    return RecordingHAProxy(live_stack)


@pytest.fixture
def fleet_file(live_stack: LiveStack, tmp_path: Path) -> Path:
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(fleet_document(live_stack), indent=2))
    return path


@pytest.fixture
def state_file(fleet_file: Path) -> Path:
    return fleet_file.parent / f"deploy-{SERVICE}.json"


@pytest.fixture
def make_backend(live_stack: LiveStack, haproxy: RecordingHAProxy,
                 fleet_file: Path) -> Callable[..., LocalDeployBackend]:
    def make(*, fleet: dict[str, Any] | None = None, **kwargs: Any) -> LocalDeployBackend:
        return LocalDeployBackend(fleet or fleet_document(live_stack), haproxy, SERVICE, fleet_file=fleet_file,
                                  **kwargs)
    return make


@pytest.fixture(autouse=True)
def fleet_as_found(live_stack: LiveStack, fleet_file: Path, state_file: Path) -> Iterator[None]:
    """Start from the demo topology with every server UP; afterwards undo whatever the test left."""
    plain = HAProxyRuntime("127.0.0.1", live_stack.haproxy_admin_port)
    wait_for(lambda: every_server_up(plain), 15, "every server UP in HAProxy")
    assert (versions(live_stack), weights(plain)) == (START_VERSIONS, START_WEIGHTS)
    yield
    if state_file.exists():  # a test failed half-way: the backend's own rollback first
        LocalDeployBackend(fleet_document(live_stack), plain, SERVICE, fleet_file=fleet_file).rollback("cleanup")
    for name, build in START_VERSIONS.items():  # a promote, or a rollback that failed
        if version(live_stack, name) != build:
            requests.put(f"{live_stack.admin_url(name)}/build", json={"version": build}, timeout=5).raise_for_status()
    for name, weight in sorted(START_WEIGHTS.items(), key=lambda kv: -kv[1]):  # raise before lowering
        plain.set_weight(BACKEND, name, weight)
    wait_for(lambda: every_server_up(plain), 15, "every server UP in HAProxy after the test")


# --- canary ---------------------------------------------------------------------------------------------------
def test_canary_prepare_shifts_each_weight_then_promote_puts_the_new_version_everywhere(
        make_backend: Callable[..., LocalDeployBackend], live_stack: LiveStack, haproxy: RecordingHAProxy,
        state_file: Path) -> None:
    backend = make_backend()
    plan = build_plan("canary")
    backend.prepare(NEW, plan)
    assert versions(live_stack) == {**START_VERSIONS, CANARY: NEW}
    assert weights(haproxy) == START_WEIGHTS  # the canary waits at weight 0
    state = json.loads(state_file.read_text())
    assert state["version"] == NEW and state["stable_version"] == OLD and state["strategy"] == "canary"
    assert (state["initial_weights"], state["initial_versions"]) == (START_WEIGHTS, START_VERSIONS)
    assert state["weights"] == [10, 25, 50, 100]
    status = backend.status()
    assert (status.stable_version, status.candidate_version, status.candidate_weight, status.ready) == (
        OLD, NEW, 0, True)
    assert backend.cohorts() == Cohorts({"version": NEW, "track": "canary"}, {"version": OLD, "track": "stable"})

    for step, percent in enumerate(plan.weights):
        backend.shift(step)
        w = weights(haproxy)
        assert abs(canary_percent(w) - percent) <= 1, (percent, w)
        assert sum(w.values()) == TOTAL_WEIGHT
        if percent == 100:
            assert [w[s] for s in STABLES] == [0, 0]
        else:
            assert w[STABLES[0]] == w[STABLES[1]] > 0  # the stables keep their equal split of the rest
        assert versions(live_stack) == {**START_VERSIONS, CANARY: NEW}
        assert abs(backend.status().candidate_weight - percent) <= 1
    haproxy.changes.clear()
    backend.shift(len(plan.weights) - 1)  # a retried step changes nothing
    assert haproxy.changes == []

    backend.promote()
    assert versions(live_stack) == dict.fromkeys(START_VERSIONS, NEW)
    assert weights(haproxy) == START_WEIGHTS  # stables back to 100, the canary idle at 0
    assert not state_file.exists()
    status = backend.status()
    assert (status.stable_version, status.candidate_version, status.candidate_weight) == (NEW, None, 0)
    with pytest.raises(DeployBackendError, match="no deploy of game-server is prepared"):
        backend.cohorts()


def test_canary_rollback_restores_exactly_the_start_and_a_second_rollback_changes_nothing(
        make_backend: Callable[..., LocalDeployBackend], live_stack: LiveStack, haproxy: RecordingHAProxy,
        state_file: Path) -> None:
    backend = make_backend()
    backend.prepare(NEW, build_plan("canary"))
    backend.shift(0)
    w = weights(haproxy)
    assert abs(canary_percent(w) - 10) <= 1 and w[CANARY] > 0
    assert backend.status().candidate_weight == 10

    backend.rollback("regression")
    assert weights(haproxy) == START_WEIGHTS
    assert versions(live_stack) == START_VERSIONS  # the canary runs 1.5.0 again, not the stables' 1.4.2
    assert not state_file.exists()
    status = backend.status()
    assert (status.stable_version, status.candidate_version, status.candidate_weight) == (OLD, None, 0)

    # Nothing recorded: a second rollback must not touch the fleet, whatever state it is in now.
    haproxy.changes.clear()
    backend.rollback("retried")
    assert haproxy.changes == []
    assert (weights(haproxy), versions(live_stack)) == (START_WEIGHTS, START_VERSIONS)
    assert not state_file.exists()


def test_player_traffic_through_haproxy_reaches_the_canary_by_its_weight(
        make_backend: Callable[..., LocalDeployBackend], live_stack: LiveStack,
        haproxy: RecordingHAProxy) -> None:
    backend = make_backend()
    backend.prepare(NEW, build_plan("canary"))
    try:
        idle = players_served(live_stack, 60)
        assert idle[CANARY] == 0 and sum(idle[s] for s in STABLES) == 60  # weight 0: no player reaches it

        backend.shift(2)  # 50%
        p = weights(haproxy)[CANARY] / TOTAL_WEIGHT
        n = 200
        served = players_served(live_stack, n)
        assert set(served) <= {*STABLES, CANARY} and sum(served.values()) == n
        # Each request reaches the canary with probability p (round robin is, if anything, more even than
        # that). 4.5 standard deviations: a correct split fails less than once in 100,000 runs, while a
        # canary getting 25% or 75% of the requests is 7 deviations away.
        bound = 4.5 * math.sqrt(n * p * (1 - p))
        assert abs(served[CANARY] - n * p) <= bound, served
    finally:
        backend.rollback("test done")


# --- blue-green -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ending", ["rollback", "promote"])
def test_blue_green_switches_all_traffic_then_switches_back_or_promotes(
        ending: str, make_backend: Callable[..., LocalDeployBackend], live_stack: LiveStack,
        haproxy: RecordingHAProxy, state_file: Path) -> None:
    backend = make_backend()
    backend.prepare(NEW, build_plan("blue-green", scale_down_delay_s=60))
    assert versions(live_stack) == {**START_VERSIONS, CANARY: NEW}  # green: the preview
    assert weights(haproxy) == START_WEIGHTS
    assert backend.cohorts() == Cohorts({"version": NEW, "track": "canary"}, {"version": OLD, "track": "stable"})

    backend.shift(0)  # the switch
    assert weights(haproxy) == {**dict.fromkeys(STABLES, 0), CANARY: TOTAL_WEIGHT}
    assert versions(live_stack) == {**START_VERSIONS, CANARY: NEW}  # blue keeps running the old version
    assert backend.status().candidate_weight == 100

    if ending == "rollback":
        backend.rollback("post-switch regression")
        assert versions(live_stack) == START_VERSIONS
    else:
        backend.promote()
        assert versions(live_stack) == dict.fromkeys(START_VERSIONS, NEW)
    assert weights(haproxy) == START_WEIGHTS
    assert not state_file.exists()


def test_blue_green_prepare_retried_after_the_switch_keeps_players_served(
        make_backend: Callable[..., LocalDeployBackend], live_stack: LiveStack, haproxy: RecordingHAProxy) -> None:
    """A task retried after the switch prepares again: green loses its traffic, so blue must get it back."""
    backend = make_backend()
    plan = build_plan("blue-green")
    backend.prepare(NEW, plan)
    try:
        backend.shift(0)
        backend.prepare(NEW, plan)
        assert weights(haproxy) == START_WEIGHTS  # as after the first prepare: the preview, blue serving
        # Without a weight anywhere HAProxy answers every player 503; blue serving is what matters here (the
        # exact weights are checked above), so a stray answer on a busy machine is tolerated.
        served = players_served(live_stack, 20)
        assert sum(served[s] for s in STABLES) >= 18, served
        backend.shift(0)
        assert weights(haproxy) == {**dict.fromkeys(STABLES, 0), CANARY: TOTAL_WEIGHT}
    finally:
        backend.rollback("test done")
    assert (weights(haproxy), versions(live_stack)) == (START_WEIGHTS, START_VERSIONS)


# --- rolling --------------------------------------------------------------------------------------------------
def test_rolling_moves_one_stable_per_batch_drained_and_rollback_restores_both(
        make_backend: Callable[..., LocalDeployBackend], live_stack: LiveStack, haproxy: RecordingHAProxy,
        state_file: Path) -> None:
    backend = make_backend()
    backend.prepare(NEW, build_plan("rolling", rolling_batches=[50, 100]))
    assert (versions(live_stack), weights(haproxy)) == (START_VERSIONS, START_WEIGHTS)  # only recorded
    assert json.loads(state_file.read_text())["strategy"] == "rolling"
    assert backend.cohorts() == Cohorts({"version": NEW, "track": "stable"}, {"version": OLD, "track": "stable"})

    moved: list[str] = []
    for step in (0, 1):
        haproxy.changes.clear()
        backend.shift(step)
        now = versions(live_stack)
        on_new = [s for s in STABLES if now[s] == NEW]
        assert len(on_new) == step + 1 and moved == on_new[:step]  # exactly one more, the earlier one kept
        (instance,) = set(on_new) - set(moved)
        moved.append(instance)
        # drained while its build changed, then put back at its weight
        assert haproxy.changes == [(instance, 0, OLD), (instance, START_WEIGHTS[instance], NEW)]
        assert weights(haproxy) == START_WEIGHTS
        assert now[CANARY] == START_VERSIONS[CANARY]  # the canary instance plays no part
        assert backend.status().candidate_weight == 50 * (step + 1)
        haproxy.changes.clear()
        backend.shift(step)  # retried: nothing left to do
        assert haproxy.changes == []

    backend.rollback("regression")
    assert (versions(live_stack), weights(haproxy)) == (START_VERSIONS, START_WEIGHTS)
    assert not state_file.exists()


# --- a stage without players ----------------------------------------------------------------------------------
def test_synthetic_stage_previews_on_the_canary_with_smoke_traffic_and_promote_leaves_the_stables(
        make_backend: Callable[..., LocalDeployBackend], live_stack: LiveStack, haproxy: RecordingHAProxy,
        state_file: Path, fleet_file: Path) -> None:
    backend = make_backend(synthetic=True)
    backend.prepare(NEW, build_plan("canary", synthetic=True))
    assert versions(live_stack) == {**START_VERSIONS, CANARY: NEW}
    assert weights(haproxy) == START_WEIGHTS
    assert backend.cohorts().candidate == {"version": NEW, "track": "canary"}
    served_before = action_requests(live_stack, CANARY)

    assert backend.synthetic_traffic(SMOKE_SECONDS) is True
    pid = json.loads(state_file.read_text())["smoke_pid"]
    assert isinstance(pid, int) and process_running(pid)
    assert b"loadgen.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert (fleet_file.parent / "logs" / f"smoke-{SERVICE}.log").exists()
    wait_for(lambda: action_requests(live_stack, CANARY) >= served_before + 20, 15, "smoke requests on the canary")
    assert weights(haproxy)[CANARY] == 0  # straight at the instance, not through HAProxy
    assert process_running(pid)

    backend.promote()
    assert versions(live_stack) == START_VERSIONS  # stables untouched, the canary back on what it ran before
    assert weights(haproxy) == START_WEIGHTS
    assert not state_file.exists()
    wait_for(lambda: not process_running(pid), 5, "the smoke process stopped")


# --- errors ---------------------------------------------------------------------------------------------------
def test_prepare_of_a_second_version_is_refused_naming_the_recorded_one(
        make_backend: Callable[..., LocalDeployBackend], live_stack: LiveStack, state_file: Path) -> None:
    backend = make_backend()
    backend.prepare(NEW, build_plan("canary"))
    try:
        with pytest.raises(DeployBackendError, match=rf"deploy of game-server {re.escape(NEW)} is still recorded"):
            make_backend().prepare("1.5.2", build_plan("canary"))
        assert versions(live_stack)[CANARY] == NEW
        assert json.loads(state_file.read_text())["version"] == NEW
    finally:
        backend.rollback("test done")


def test_a_fleet_without_the_service_canary_is_refused(make_backend: Callable[..., LocalDeployBackend],
                                                       live_stack: LiveStack) -> None:
    fleet = fleet_document(live_stack)
    del fleet["instances"][CANARY]
    with pytest.raises(DeployBackendError, match=r"no stable and canary instance of game-server .*canary: \[\]"):
        make_backend(fleet=fleet)


def test_an_unreachable_instance_is_named_with_its_url_and_nothing_changes(
        make_backend: Callable[..., LocalDeployBackend], live_stack: LiveStack, haproxy: RecordingHAProxy,
        state_file: Path) -> None:
    fleet = fleet_document(live_stack)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    fleet["instances"][STABLES[1]]["url"] = url
    backend = make_backend(fleet=fleet)
    with pytest.raises(DeployBackendError, match=rf"{STABLES[1]} at {re.escape(url)}/admin/build is unreachable"):
        backend.prepare(NEW, build_plan("canary"))
    assert not state_file.exists()
    assert (versions(live_stack), weights(haproxy)) == (START_VERSIONS, START_WEIGHTS)
    with pytest.raises(DeployBackendError, match=re.escape(url)):
        backend.status()


def test_a_build_that_never_becomes_ready_fails_prepare_in_time_and_rollback_restores(
        make_backend: Callable[..., LocalDeployBackend], live_stack: LiveStack, haproxy: RecordingHAProxy,
        state_file: Path) -> None:
    backend = make_backend(ready_timeout=3.0)
    started = time.monotonic()
    with pytest.raises(DeployBackendError, match=rf"{CANARY} is not ready after 3s"):
        backend.prepare(NEVER_READY, build_plan("canary"))
    assert 3.0 <= time.monotonic() - started < 6.0
    assert versions(live_stack)[CANARY] == NEVER_READY
    assert weights(haproxy) == START_WEIGHTS  # no player was sent to it
    assert json.loads(state_file.read_text())["version"] == NEVER_READY  # recorded: a rollback can undo it
    status = backend.status()
    assert (status.candidate_version, status.ready) == (NEVER_READY, False)
    wait_for(lambda: haproxy.server(BACKEND, CANARY).status.startswith("DOWN"), 5, "HAProxy marks the canary DOWN")

    backend.rollback("not ready")
    assert (versions(live_stack), weights(haproxy)) == (START_VERSIONS, START_WEIGHTS)
    assert not state_file.exists()
    assert backend.status().ready is True
    wait_for(lambda: haproxy.server(BACKEND, CANARY).status == "UP", 6, "HAProxy marks the canary UP again")
