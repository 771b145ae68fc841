"""The fault backends by kind: gamesre.integrations.backends registers the product's `local` and `kubernetes`
kinds, and each factory builds its backend from the service's settings with only the client its kind needs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client

import gamesre.integrations.backends  # noqa: F401  (the registrations under test)
from gamesre.chaos.faults import FAULT_BACKENDS, ChaosBackendError
from gamesre.core.registry import UnknownBackend
from gamesre.core.services import ChaosSettings, KubernetesCoordinates, ServiceSpec, load_services
from gamesre.integrations.chaos.kubernetes import KubernetesChaosBackend
from gamesre.integrations.chaos.local import LocalChaosBackend
from gamesre.integrations.haproxy import HAProxyRuntime


class OnlyAsked:
    """Connections that count what a factory asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def haproxy(self) -> HAProxyRuntime:
        self.asked.append("haproxy")
        return HAProxyRuntime("127.0.0.1", 9)

    def kubernetes(self) -> client.ApiClient:
        self.asked.append("kubernetes")
        return client.ApiClient()


@pytest.fixture(scope="module")
def game_server() -> ServiceSpec:
    return load_services().get("game-server")


def test_the_products_kinds_are_registered() -> None:
    assert {"local", "kubernetes"} <= set(FAULT_BACKENDS.kinds())


def test_an_unknown_kind_names_the_known_ones(monkeypatch: pytest.MonkeyPatch, game_server: ServiceSpec) -> None:
    monkeypatch.delenv("GAMESRE_EXTENSIONS", raising=False)
    with pytest.raises(UnknownBackend, match=r"no chaos backend of kind 'litmus-cloud' .*known: kubernetes, local"):
        FAULT_BACKENDS.create("litmus-cloud", game_server, OnlyAsked())


def test_the_local_backend_is_the_services_instances_in_the_demo_fleet(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, game_server: ServiceSpec) -> None:
    fleet = {"instances": {"gs-stable-1": {"service": "game-server", "track": "stable", "url": "http://127.0.0.1:1"},
                           "mm-stable-1": {"service": "matchmaking", "track": "stable", "url": "http://127.0.0.1:2"}}}
    (tmp_path / "fleet.json").write_text(json.dumps(fleet))
    monkeypatch.setenv("GAMESRE_DEMO_FLEET", str(tmp_path / "fleet.json"))
    connections = OnlyAsked()
    backend = FAULT_BACKENDS.create("local", game_server, connections)
    assert isinstance(backend, LocalChaosBackend) and connections.asked == ["haproxy"]
    assert backend.targets({"track": "stable"}) == ["gs-stable-1"]


def test_the_local_backend_without_a_demo_fleet_says_so(monkeypatch: pytest.MonkeyPatch,
                                                        game_server: ServiceSpec) -> None:
    monkeypatch.delenv("GAMESRE_DEMO_FLEET", raising=False)
    with pytest.raises(ChaosBackendError, match="GAMESRE_DEMO_FLEET"):
        FAULT_BACKENDS.create("local", game_server, OnlyAsked())


def test_the_kubernetes_backend_targets_the_deployments_pods_with_the_services_engine(
        game_server: ServiceSpec) -> None:
    spec = game_server.model_copy(update={
        "kubernetes": KubernetesCoordinates(namespace="games", deployment="game-server-v2"),
        "chaos": ChaosSettings(backend="kubernetes", engine="chaos-mesh", database_hosts=["db.games.svc"])})
    connections = OnlyAsked()
    backend = FAULT_BACKENDS.create("kubernetes", spec, connections)
    assert isinstance(backend, KubernetesChaosBackend) and connections.asked == ["kubernetes"]
    assert (backend.namespace, backend.service, backend.engine) == ("games", "game-server", "chaos-mesh")
    assert backend.selector_labels == {"app": "game-server-v2"} and backend.database_hosts == ("db.games.svc",)
