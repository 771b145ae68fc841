"""The default topology and the behaviour model agree with the metric contract."""
from __future__ import annotations

import math

import pytest

from demo import model
from demo.topology import DEFAULT_TOPOLOGY, Instance, by_name, haproxy_names, session_capacity, validate_topology
from gamesre.core.contract import load_contract


def test_default_topology_is_valid_and_complete() -> None:
    contract = load_contract()
    validate_topology(DEFAULT_TOPOLOGY, contract)
    by_service = {s: [i for i in DEFAULT_TOPOLOGY if i.service == s] for s in contract.services}
    for service, instances in by_service.items():
        tracks = {i.track: i for i in instances}
        assert set(tracks) == {"stable", "canary"}, service
        assert tracks["canary"].weight == 0 and tracks["stable"].weight == 100
        assert tracks["canary"].version != tracks["stable"].version
    assert {i.job(contract) for i in DEFAULT_TOPOLOGY} == {s.job for s in contract.services.values()}


def test_haproxy_names_come_from_the_contract_job() -> None:
    gs = by_name("gs-stable-2")
    assert haproxy_names(gs) == (load_contract().services["game-server"].job, "gs-stable-2")
    with pytest.raises(KeyError, match="no instance"):
        by_name("gs-stable-9")


def test_stable_capacity_adds_up_to_the_contract_capacity() -> None:
    contract = load_contract()
    stable = [i for i in DEFAULT_TOPOLOGY if i.service == "game-server" and i.track == "stable"]
    assert session_capacity("game-server") * len(stable) == contract.max_concurrent_sessions
    assert session_capacity("matchmaking") == 0
    assert model.PEAK_SESSIONS * 1.12 < contract.max_concurrent_sessions  # even the weekend peak fits


def test_invalid_topologies_are_refused() -> None:
    bad = (Instance("a", "game-server", "stable", "1", 100), Instance("a", "game-server", "canary", "1", 0))
    with pytest.raises(ValueError, match="unique"):
        validate_topology(bad)
    with pytest.raises(ValueError, match="track"):
        validate_topology((Instance("a", "game-server", "beta", "1", 100),))
    with pytest.raises(ValueError, match="service"):
        validate_topology((Instance("a", "chat", "stable", "1", 100),))


def test_model_matches_the_contract() -> None:
    contract = load_contract()
    model.check_against_contract(contract)
    shares = model.action_shares(contract)
    assert set(shares) == set(contract.label_values["action"])
    total = sum(shares.values()) + model.TRAFFIC_SHARE["logout"] + model.TRAFFIC_SHARE["save"] + sum(
        model.match_shares(contract).values())
    assert total == pytest.approx(1.0)


@pytest.mark.parametrize("action", list(model.ACTION_LATENCY))
def test_action_latencies_are_realistic(action: str) -> None:
    profile = model.ACTION_LATENCY[action]
    assert 0.15 <= profile.p95_s <= 0.25
    # Share slower than the 0.5 s SLO threshold on a good day: well under 1 %.
    z = (math.log(0.5) - profile.mu) / profile.sigma
    assert 0.5 * math.erfc(z / math.sqrt(2)) < 0.01
