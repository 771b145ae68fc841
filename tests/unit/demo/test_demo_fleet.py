"""One fleet process in-process (no HTTP): exposed series match the contract, faults apply all-or-nothing."""
from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from demo import model
from demo.admin import AdminValidationError, Build, Faults
from demo.fleet import FleetApp, build_command
from demo.gameplay import plan_request
from demo.topology import DEFAULT_TOPOLOGY
from gamesre.core.contract import Contract, load_contract


@pytest.fixture
def contract() -> Contract:
    return load_contract()


@pytest.fixture
def game(contract: Contract) -> Iterator[FleetApp]:
    app = FleetApp("gs-test-1", "game-server", Build("1.4.2", "stable"), contract=contract, seed=1, capacity=1000)
    yield app
    app.close()


@pytest.fixture
def matchmaking(contract: Contract) -> Iterator[FleetApp]:
    app = FleetApp("mm-test-1", "matchmaking", Build("2.3.1", "stable"), contract=contract, seed=2)
    yield app
    app.close()


def families(app: FleetApp) -> dict[str, list]:
    text = generate_latest(app.registry).decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def family(name: str, contract: Contract) -> str:
    return name.removesuffix("_total") if contract.metric(name).type == "counter" else name


@pytest.mark.parametrize("service", ["game-server", "matchmaking"])
def test_exposes_exactly_the_contract_metrics_with_target_labels(contract: Contract, service: str) -> None:
    app = FleetApp("x-1", service, Build("9.9.9", "canary"), contract=contract, seed=0)
    try:
        exposed = families(app)
    finally:
        app.close()
    game_families = {n for n in exposed if not n.startswith("process_")}
    assert game_families == {family(m.name, contract) for m in contract.metrics_for(service)}
    assert {"process_cpu_seconds", "process_resident_memory_bytes"} <= set(exposed)
    for m in contract.metrics_for(service):
        samples = exposed[family(m.name, contract)]
        assert not [s for s in samples if s.name.endswith("_created")], "no series outside the contract"
        combos = 1
        for label in m.labels:
            combos *= len(contract.label_values[label])
        per_combo = len(m.buckets) + 3 if m.type == "histogram" else 1
        assert len(samples) == combos * per_combo
        for s in samples:
            assert {k: s.labels[k] for k in contract.target_labels} == {"service": service, "version": "9.9.9",
                                                                        "track": "canary"}
            expected = set(contract.target_labels) | set(m.labels) | ({"le"} if s.name.endswith("_bucket") else set())
            assert set(s.labels) == expected


def test_actions_are_counted_with_code_and_duration(game: FleetApp) -> None:
    assert game.game is not None
    for _ in range(5):
        assert game.game.action("move", Faults())[0] == 200
    game.update_faults({"error_rate": 1.0})
    statuses = {game.game.action("chat", game.faults)[0] for _ in range(6)}
    assert statuses <= {500, 502, 503} and statuses
    m = game.metrics
    assert m.value("game_action_requests_total", ("move", "200")) == 5
    failed = sum(m.value("game_action_requests_total", ("chat", c)) for c in ("500", "502", "503", "504"))
    errors = sum(m.value("game_action_errors_total", ("chat", e)) for e in model.ERROR_CODE)
    assert failed == errors == 6
    move = [s for s in families(game)["game_action_duration_seconds"]
            if s.labels["action"] == "move" and s.name.endswith("_count")]
    assert move[0].value == 5


def test_logins_are_admitted_up_to_capacity(game: FleetApp) -> None:
    assert game.game is not None
    assert game.game.login(800, Faults())[0] == 200
    status, body = game.game.login(300, Faults())
    assert (status, body["admission"], body["error"]) == (503, "rejected", "overload")
    assert game.game.logout(100, Faults())[1]["sessions"] == 700
    assert game.metrics.value("game_session_admissions_total", ("accepted",)) == 800
    assert game.metrics.value("game_session_admissions_total", ("rejected",)) == 300
    assert game.metrics.value("game_sessions_active") == 700
    assert game.metrics.value("game_sessions_capacity") == 1000


def test_database_faults_fail_saves_and_logins_but_not_moves(game: FleetApp) -> None:
    assert game.game is not None
    game.update_faults({"db_fail_rate": 1.0})
    assert game.game.save(game.faults)[0] == 500
    assert game.game.login(5, game.faults)[1]["error"] == "database"
    assert game.game.action("move", game.faults)[0] == 200
    assert game.metrics.value("game_data_save_total", ("failure",)) == 1


def test_a_bad_field_applies_nothing(game: FleetApp) -> None:
    with pytest.raises(AdminValidationError, match="disk_fill_mb"):
        game.update_faults({"memory_mb": 16, "error_rate": 0.5, "disk_fill_mb": 4096})
    assert game.faults == Faults()
    assert game.resources.memory.mb == 0
    assert game.metrics.value("game_fault_active", ("memory",)) == 0


def test_resource_faults_are_real_and_cleared(game: FleetApp) -> None:
    game.update_faults({"memory_mb": 8, "disk_fill_mb": 2, "cpu_load": 0.1})
    path = game.resources.disk.path
    assert path is not None and path.stat().st_size == 2 * 1024 * 1024
    assert game.resources.memory.mb == 8 and game.resources.cpu.load == 0.1
    assert game.metrics.value("game_fault_active", ("disk",)) == 1
    game.update_faults({"disk_fill_mb": 1})
    assert path.stat().st_size == 1024 * 1024
    game.clear_faults()
    assert not path.parent.exists()
    assert game.resources.memory.mb == 0 and game.resources.cpu.load == 0
    assert all(game.metrics.value("game_fault_active", (f,)) == 0 for f in game.contract.label_values["fault"])


def test_readiness_and_crash(game: FleetApp) -> None:
    assert game.game is not None
    game.game.login(50, Faults())
    game.update_faults({"not_ready": True})
    assert not game.ready and game.metrics.value("game_instance_ready") == 0
    assert game.game.action("move", game.faults)[0] == 200  # not ready still serves what reaches it
    game.update_faults({"not_ready": False, "crash": True})
    assert game.game.sessions == 0
    assert game.game.action("move", game.faults)[0] == 503
    game.clear_faults()
    assert game.ready and game.metrics.value("game_instance_ready") == 1


def test_a_killed_instance_drops_its_players_and_is_neither_ready_nor_alive(game: FleetApp) -> None:
    assert game.game is not None
    game.game.login(50, Faults())
    game.update_faults({"killed": True})
    assert game.game.sessions == 0
    assert not game.ready and not game.alive
    assert game.metrics.value("game_fault_active", ("not_ready",)) == 1
    game.update_faults({"killed": False})
    assert game.ready and game.alive


def test_build_change_starts_new_series(game: FleetApp) -> None:
    assert game.game is not None
    game.game.action("move", Faults())
    game.game.login(10, Faults())
    game.update_build({"version": "1.5.0", "track": "canary"})
    samples = families(game)
    info = samples["game_build_info"][0]
    assert (info.labels["version"], info.labels["track"]) == ("1.5.0", "canary")
    assert game.metrics.value("game_action_requests_total", ("move", "200")) == 0  # a new process's counters
    assert game.metrics.value("game_sessions_active") == 10  # gauges carry over
    assert all(s.labels["version"] == "1.5.0" for f in samples.values() for s in f if "version" in s.labels)


def test_matchmaking_queue_is_real_state(matchmaking: FleetApp) -> None:
    mm = matchmaking.matchmaker
    assert mm is not None
    for _ in range(3):
        assert mm.enqueue("ranked", "diamond", Faults())[0] == 200
    assert matchmaking.metrics.value("matchmaking_queue_size", ("ranked", "diamond")) == 3
    assert mm.fail_all() == 3
    assert matchmaking.metrics.value("matchmaking_queue_size", ("ranked", "diamond")) == 0
    assert matchmaking.metrics.value("matchmaking_requests_total", ("ranked", "diamond", "failure")) == 3
    assert mm.validate("ranked", "wood") is not None and mm.validate("ranked", "gold") is None


def test_plan_request_under_faults() -> None:
    rng = random.Random(3)
    profile = model.ACTION_LATENCY["attack"]
    assert plan_request(profile, Faults(crash=True), rng, uses_db=False, timeout_s=5).code == "503"
    slow = plan_request(profile, Faults(latency_ms=6000), rng, uses_db=False, timeout_s=5)
    assert (slow.latency_s, slow.code, slow.error_type) == (5, "504", "timeout")
    base = [plan_request(profile, Faults(), rng, uses_db=False, timeout_s=5) for _ in range(2000)]
    latencies = sorted(p.latency_s for p in base)
    assert 0.12 < latencies[int(0.95 * len(latencies))] < 0.3  # p95 of an action in the 150-250 ms range
    assert sum(p.error_type is not None for p in base) < 10
    db_only = [plan_request(profile, Faults(db_fail_rate=1.0), rng, uses_db=False, timeout_s=5) for _ in range(50)]
    assert all(p.error_type is None or p.error_type != "database" for p in db_only)


def test_build_command_starts_the_script_with_the_instance_labels() -> None:
    instance = DEFAULT_TOPOLOGY[2]
    cmd = build_command(instance, 18003, seed=4)
    assert cmd[1].endswith("demo/fleet.py")
    args = dict(zip(cmd[2::2], cmd[3::2], strict=True))
    assert args == {"--name": "gs-canary-1", "--service": "game-server", "--version": instance.version,
                    "--track": "canary", "--port": "18003", "--host": "127.0.0.1", "--seed": "4"}
