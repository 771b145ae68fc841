"""The load generator's pure parts: the request mix, the session planner and the simulated clock."""
from __future__ import annotations

import random
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pytest

from demo import model
from demo.curve import load_factor_at_hour
from demo.loadgen import SERVICE_KINDS, LoadGenerator, SessionPlanner, SimClock, SteadySessions, TrafficMix, parse_args
from gamesre.core.contract import load_contract


def test_mix_follows_the_model_shares_and_uses_contract_values() -> None:
    contract = load_contract()
    mix = TrafficMix(contract, random.Random(1))
    requests = [mix.next({"login": 7, "logout": 3}) for _ in range(20_000)]
    kinds = Counter(r.kind for r in requests)
    for kind, share in model.TRAFFIC_SHARE.items():
        assert kinds[kind] / len(requests) == pytest.approx(share, abs=0.015)
    actions = {r.path.rsplit("/", 1)[1] for r in requests if r.kind == "action"}
    assert actions == set(contract.label_values["action"]) - {"login"}
    matches = [parse_qs(urlsplit(r.path).query) for r in requests if r.kind == "match"]
    assert {m["mode"][0] for m in matches} == set(contract.label_values["mode"])
    assert {m["tier"][0] for m in matches} == set(contract.label_values["tier"])
    logins = [r for r in requests if r.kind == "login"]
    assert all(r.path == "/api/session/login?players=7" for r in logins)


@pytest.mark.parametrize("service", ["game-server", "matchmaking"])
def test_mix_of_one_service_sends_only_its_requests_in_the_usual_proportions(service: str) -> None:
    contract = load_contract()
    mix = TrafficMix(contract, random.Random(2), service)
    requests = [mix.next({"login": 1, "logout": 1}) for _ in range(20_000)]
    kinds = Counter(r.kind for r in requests)
    assert set(kinds) == set(SERVICE_KINDS[service])
    total_share = sum(model.TRAFFIC_SHARE[k] for k in SERVICE_KINDS[service])
    for kind in SERVICE_KINDS[service]:
        assert kinds[kind] / len(requests) == pytest.approx(model.TRAFFIC_SHARE[kind] / total_share, abs=0.015)
    if service == "game-server":
        assert not [r for r in requests if r.path.startswith("/api/match")]
        assert kinds["login"] == pytest.approx(kinds["logout"], rel=0.2)  # sessions in and out at the same rate
    else:
        assert all(r.path.startswith("/api/match?") for r in requests)


def test_services_of_the_mix_are_the_contract_services_and_cover_the_whole_mix() -> None:
    contract = load_contract()
    assert set(SERVICE_KINDS) == set(contract.services)
    assert sorted(k for kinds in SERVICE_KINDS.values() for k in kinds) == sorted(model.TRAFFIC_SHARE)
    with pytest.raises(ValueError, match="chat-server"):
        TrafficMix(contract, random.Random(1), "chat-server")


def test_steady_sessions_log_in_and_out_the_same_players_whatever_the_fleet_holds() -> None:
    steady = SteadySessions()
    steady.report("gs-canary-1", 0, at=0.0)
    assert steady.players("login", 1.0, 0.5, at=1.0) == steady.players("logout", 1.0, 0.5, at=1.0) == 1
    steady.report("gs-canary-1", 40_000, at=2.0)
    assert steady.players("login", 0.2, 0.5, at=3.0) == steady.players("logout", 0.2, 0.5, at=3.0) == 1
    assert steady.estimate(at=3.0) == 40_000  # still reported in the summary


def test_planner_fills_towards_the_target_and_drains_above_it() -> None:
    planner = SessionPlanner(peak_sessions=60_000, session_s=1800)
    # Nothing known yet: log players in quickly (the gap closes over about a minute).
    assert planner.players("login", load=1.0, requests_per_s=1.0, at=0.0) == 1000
    assert planner.players("logout", load=1.0, requests_per_s=1.0, at=0.0) == 1  # at least one player
    planner.report("gs-stable-1", 30_000, at=0.0)
    planner.report("gs-stable-2", 30_000, at=0.0)
    # At the target: only churn, the same in and out (60000 / 1800 s = 33.3 players/s).
    assert planner.players("login", 1.0, 1.0, at=1.0) == planner.players("logout", 1.0, 1.0, at=1.0) == 34
    # Above the target at night: logouts outnumber logins.
    night = load_factor_at_hour(4.0)
    assert planner.players("logout", night, 1.0, at=1.0) > 10 * planner.players("login", night, 1.0, at=1.0)
    # Reports go stale: an instance not heard from for a while no longer counts.
    assert planner.estimate(at=10.0) == 60_000 and planner.estimate(at=100.0) == 0
    assert planner.players("login", 1.0, 0.001, at=1.0) == model.MAX_PLAYERS_PER_REQUEST


def test_fixed_hour_clock_holds_the_load() -> None:
    clock = SimClock(fixed_hour=20)
    assert clock.load() == load_factor_at_hour(20) == pytest.approx(1.0)


def test_cli_validation() -> None:
    assert parse_args(["--base-url", "http://127.0.0.1:1"]).peak_rps == model.DEFAULT_PEAK_RPS
    assert parse_args(["--base-url", "http://127.0.0.1:1", "--service", "matchmaking"]).service == "matchmaking"
    for bad in (["--peak-rps", "0"], ["--fixed-hour", "24"], ["--time-scale", "-1"], ["--concurrency", "0"],
                ["--fixed-hour", "3", "--time-scale", "2"], ["--service", "chat-server"]):
        with pytest.raises(SystemExit):
            parse_args(["--base-url", "http://127.0.0.1:1", *bad])
    with pytest.raises(ValueError, match="http://"):
        LoadGenerator("ftp://x", peak_rps=1, clock=SimClock(), concurrency=1, seed=1, planner=SessionPlanner(),
                      contract=load_contract())
