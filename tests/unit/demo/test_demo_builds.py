"""Defective demo builds: the catalog (demo/builds.yaml) and how a fleet instance takes on its version's defects."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from demo.admin import Build, Faults
from demo.builds import BuildCatalog, BuildCatalogError, effective_faults, load_catalog, parse_catalog
from demo.fleet import FleetApp
from demo.topology import DEFAULT_TOPOLOGY
from gamesre.core.contract import Contract, load_contract


@pytest.fixture
def contract() -> Contract:
    return load_contract()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "builds.yaml"
    path.write_text(text)
    return path


def test_the_demo_catalog_lists_defective_builds_and_the_topology_runs_healthy_ones(contract: Contract) -> None:
    catalog = load_catalog(contract.services)
    assert catalog.defects("game-server", "1.6.66") == Faults(error_rate=0.03)
    assert catalog.defects("game-server", "1.6.400") == Faults(latency_ms=400.0)
    assert catalog.defects("game-server", "1.6.503") == Faults(not_ready=True)
    assert catalog.defects("matchmaking", "2.6.66") == Faults(error_rate=0.05)
    bad_release = catalog.lookup("game-server", "1.6.66")
    assert bad_release is not None
    assert bad_release.to_json() == {"error_rate": 0.03, "note": "3% of player requests fail (a bad release)"}
    assert catalog.defects("matchmaking", "1.6.66") == Faults()  # a version is defective for its service only
    for instance in DEFAULT_TOPOLOGY:
        assert catalog.lookup(instance.service, instance.version) is None, f"{instance.name} starts defective"


def test_a_good_file_with_every_kind_of_field(tmp_path: Path, contract: Contract) -> None:
    path = write(tmp_path, """
version: 1
builds:
  game-server:
    "9.0.1": {memory_mb: 64, cpu_load: 0.5, db_fail_rate: 0.1, note: " leaks memory "}
    "9.0.2": {crash: true, db_latency_ms: 300, note: "crashes"}
  matchmaking: {}
""")
    catalog = load_catalog(contract.services, path)
    leak = catalog.lookup("game-server", "9.0.1")
    assert leak is not None and leak.note == "leaks memory"
    assert leak.defects == Faults(memory_mb=64, cpu_load=0.5, db_fail_rate=0.1)
    assert leak.to_json() == {"cpu_load": 0.5, "memory_mb": 64, "db_fail_rate": 0.1, "note": "leaks memory"}
    assert catalog.defects("game-server", "9.0.2") == Faults(crash=True, db_latency_ms=300.0)
    assert len(catalog.builds) == 2


@pytest.mark.parametrize(("entry", "field", "reason"), [
    ('{error_rate: 2, note: "x"}', "error_rate", "2 is outside 0..1"),
    ('{latency_ms: true, note: "x"}', "latency_ms", "expected a number, got bool"),
    ('{memory_mb: 1.5, note: "x"}', "memory_mb", "expected a whole number of MB"),
    ('{reboot: true, note: "x"}', "reboot", "unknown field"),
    ("{error_rate: 0.1}", "note", "required"),
])
def test_a_bad_field_names_the_file_service_version_and_field(tmp_path: Path, contract: Contract, entry: str,
                                                              field: str, reason: str) -> None:
    path = write(tmp_path, f'version: 1\nbuilds:\n  game-server:\n    "1.6.66": {entry}\n')
    with pytest.raises(BuildCatalogError) as caught:
        load_catalog(contract.services, path)
    message = str(caught.value)
    assert message.startswith(f'{path}: builds.game-server."1.6.66".{field}: ')
    assert reason in message


def test_an_unknown_service_is_refused(tmp_path: Path, contract: Contract) -> None:
    path = write(tmp_path, 'version: 1\nbuilds:\n  chat-server:\n    "1.0.0": {error_rate: 0.1, note: "x"}\n')
    with pytest.raises(BuildCatalogError, match=r"builds\.chat-server: unknown service \(the metric contract has: "
                                                r"game-server, matchmaking\)"):
        load_catalog(contract.services, path)


@pytest.mark.parametrize(("text", "match"), [
    ("version: 1\nbuilds:\n  game-server:\n    1.6: {error_rate: 0.1, note: x}\n", "must be a quoted string"),
    ('version: 1\nbuilds:\n  game-server:\n    "1 6": {error_rate: 0.1, note: x}\n', "expected a version string"),
    ('version: 1\nbuilds:\n  game-server:\n    "1.6.0": {error_rate: 0, note: x}\n', "no defect given"),
    ('version: 2\nbuilds: {}\n', r"version: expected 1, got 2"),
    ('version: 1\nbuild: {}\n', "unknown key"),
])
def test_other_malformed_catalogs(contract: Contract, text: str, match: str) -> None:
    with pytest.raises(BuildCatalogError, match=match):
        parse_catalog(yaml.safe_load(text), contract.services, "x.yaml")


def test_an_unreadable_catalog_names_the_file(tmp_path: Path, contract: Contract) -> None:
    with pytest.raises(BuildCatalogError, match="cannot read the build catalog"):
        load_catalog(contract.services, tmp_path / "missing.yaml")


def test_effective_faults_take_the_worse_of_each_field() -> None:
    injected = Faults(error_rate=0.01, latency_ms=900.0, memory_mb=8)
    defects = Faults(error_rate=0.03, latency_ms=400.0, not_ready=True, cpu_load=0.2)
    assert effective_faults(injected, defects) == Faults(error_rate=0.03, latency_ms=900.0, not_ready=True,
                                                         cpu_load=0.2, memory_mb=8)
    assert effective_faults(Faults(), Faults()) == Faults()


# --- a fleet instance (in-process) ---------------------------------------------------------------------------
@pytest.fixture
def catalog(tmp_path: Path, contract: Contract) -> BuildCatalog:
    return load_catalog(contract.services, write(tmp_path, """
version: 1
builds:
  game-server:
    "1.6.66": {error_rate: 0.03, note: "fails 3%"}
    "1.6.503": {not_ready: true, note: "never ready"}
    "1.6.512": {memory_mb: 4, note: "leaks memory"}
    "1.6.999": {crash: true, note: "crashes"}
"""))


@pytest.fixture
def game(contract: Contract, catalog: BuildCatalog) -> Iterator[FleetApp]:
    app = FleetApp("gs-test-1", "game-server", Build("1.5.0", "canary"), contract=contract, seed=1, capacity=1000,
                   catalog=catalog)
    yield app
    app.close()


def fault_metrics(app: FleetApp) -> dict[str, float]:
    return {f: app.metrics.value("game_fault_active", (f,)) for f in app.contract.label_values["fault"]}


def test_a_build_change_brings_its_defects_which_are_not_injected_faults(game: FleetApp) -> None:
    assert (game.defects, game.effective) == (Faults(), Faults())
    assert game.describe_build()["defects"] == {}
    game.update_build({"version": "1.6.66"})
    assert game.defects == game.effective == Faults(error_rate=0.03)
    assert game.faults == Faults() and set(fault_metrics(game).values()) == {0}
    assert game.describe_build() == {"instance": "gs-test-1", "service": "game-server", "version": "1.6.66",
                                     "track": "canary", "defects": {"error_rate": 0.03, "note": "fails 3%"}}
    game.update_faults({"error_rate": 0.01, "latency_ms": 50})
    assert game.effective == Faults(error_rate=0.03, latency_ms=50.0)  # the larger value per field
    game.update_faults({"error_rate": 0.5})
    assert game.effective.error_rate == 0.5
    game.clear_faults()  # clears what was injected, not the build
    assert game.faults == Faults() and game.effective == Faults(error_rate=0.03)
    game.update_build({"track": "stable"})  # same version: same defects
    assert game.effective == Faults(error_rate=0.03)
    game.update_build({"version": "1.5.1"})
    assert game.defects == game.effective == Faults()


def test_a_build_that_never_gets_ready(game: FleetApp) -> None:
    game.update_build({"version": "1.6.503"})
    assert not game.ready and game.alive
    assert game.metrics.value("game_instance_ready") == 0
    assert fault_metrics(game)["not_ready"] == 0  # not an injected fault
    game.update_build({"version": "1.5.1"})
    assert game.ready and game.metrics.value("game_instance_ready") == 1


def test_resource_defects_are_held_alongside_injected_ones(game: FleetApp) -> None:
    game.update_build({"version": "1.6.512"})
    assert game.resources.memory.mb == 4
    game.update_faults({"memory_mb": 8})
    assert game.resources.memory.mb == 8
    game.clear_faults()
    assert game.resources.memory.mb == 4 and fault_metrics(game)["memory"] == 0
    game.update_build({"version": "1.5.1"})
    assert game.resources.memory.mb == 0


def test_a_crashing_build_drops_sessions_and_is_not_alive(game: FleetApp) -> None:
    assert game.game is not None
    game.game.login(50, game.effective)
    game.update_build({"version": "1.6.999"})
    assert game.game.sessions == 0 and not game.alive and not game.ready
    assert game.game.action("move", game.effective)[0] == 503
    assert game.faults == Faults()


def test_the_starting_version_applies_its_defects(contract: Contract, catalog: BuildCatalog) -> None:
    app = FleetApp("gs-test-2", "game-server", Build("1.6.503", "canary"), contract=contract, seed=1,
                   capacity=1000, catalog=catalog)
    try:
        assert app.defects == Faults(not_ready=True) and not app.ready
        assert app.metrics.value("game_instance_ready") == 0
    finally:
        app.close()


def test_the_fleet_reads_the_demo_catalog_by_default(contract: Contract) -> None:
    app = FleetApp("mm-test-1", "matchmaking", Build("2.6.66", "canary"), contract=contract, seed=1)
    try:
        assert app.effective == Faults(error_rate=0.05)
    finally:
        app.close()
