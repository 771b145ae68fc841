"""A chaos experiment request (Params form, REST conf, suite entry): validation, targets and overlaps."""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from gamesre.chaos.catalog import ChaosCatalog, load_catalog
from gamesre.chaos.faults import FaultSpec
from gamesre.chaos.request import (
    ExperimentRun,
    InvalidChaosRequest,
    build_run,
    overlaps,
    parse_target,
    pick_targets,
)

BACKENDS = {"game-server": "local", "matchmaking": "local"}
FLEET = ["gs-1", "gs-2", "gs-3", "gs-4"]


@pytest.fixture(scope="module")
def catalog() -> ChaosCatalog:
    loaded = load_catalog()
    policy = loaded.policy
    # what the cases below are written for
    assert (policy.blast_radius_cap.max_count, policy.blast_radius_cap.max_percent) == (2, 50)
    assert (policy.max_duration, policy.environment, policy.production_enabled) == ("15m", "prod", True)
    return loaded


def build(conf: dict[str, Any], catalog: ChaosCatalog, run_id: str = "manual__2026-11-25T05:00:00") -> ExperimentRun:
    return build_run(conf, catalog, run_id=run_id, requested_by="alice", backends=BACKENDS)


def problems(conf: dict[str, Any], catalog: ChaosCatalog) -> list[str]:
    with pytest.raises(InvalidChaosRequest) as caught:
        build(conf, catalog)
    assert str(caught.value) == "invalid chaos experiment request: " + "; ".join(caught.value.problems)
    return caught.value.problems


# --- build_run ------------------------------------------------------------------------------------------------


def test_defaults_come_from_the_experiment_and_the_policy(catalog: ChaosCatalog) -> None:
    run = build({"experiment": "gs-latency"}, catalog)

    assert run == ExperimentRun(
        run_id="manual__2026-11-25T05:00:00", experiment="gs-latency", title="Slow network to one game server",
        service="game-server", backend="local", environment="prod",
        fault=FaultSpec("network_latency", {"latency_ms": 600.0}, 120.0), selector={"track": "stable"},
        blast_radius=1, duration_s=120, recovery_time_s=120, budget_floor=0.5, weight=2.0, probe_interval_s=5,
        dry_run=False, requested_by="alice", gameday_id=None, target_override=None)


def test_an_experiment_budget_floor_overrides_the_policy(catalog: ChaosCatalog) -> None:
    run = build({"experiment": "gs-db-failure", "environment": "staging"}, catalog)

    assert (run.budget_floor, run.environment) == (0.6, "staging")


def test_the_request_overrides_duration_radius_target_and_who(catalog: ChaosCatalog) -> None:
    run = build({"experiment": "gs-latency", "duration": "30s", "blast_radius": "50%", "target": "gs-2",
                 "environment": "staging", "dry_run": True, "requested_by": "bob", "gameday_id": "gd-7"}, catalog)

    assert (run.duration_s, run.fault.duration_s) == (30, 30.0)
    assert run.blast_radius == "50%"
    assert run.selector == {"instance": "gs-2"}
    assert run.target_override == "gs-2"
    assert (run.environment, run.dry_run, run.requested_by, run.gameday_id) == ("staging", True, "bob", "gd-7")


@pytest.mark.parametrize(("duration", "seconds"), [(90, 90), ("2m", 120), ("15m", 900), (None, 120), ("", 120)])
def test_duration_in_seconds_or_text(catalog: ChaosCatalog, duration: object, seconds: int) -> None:
    assert build({"experiment": "gs-latency", "duration": duration}, catalog).duration_s == seconds


def test_a_radius_given_as_digits_is_a_count(catalog: ChaosCatalog) -> None:
    assert build({"experiment": "gs-latency", "blast_radius": " 2 "}, catalog).blast_radius == 2


def test_the_run_survives_json(catalog: ChaosCatalog) -> None:
    run = dataclasses.replace(build({"experiment": "gs-cpu-hog", "target": "track=canary"}, catalog),
                              targets=("gs-3",))

    assert ExperimentRun.from_dict(json.loads(json.dumps(run.to_dict()))) == run


@pytest.mark.parametrize(("conf", "expected"), [
    ({"experiment": "gs-meteor"}, "experiment: unknown experiment 'gs-meteor' (known: gs-cpu-hog, "),
    ({}, "experiment: unknown experiment None"),
    ({"experiment": "gs-latency", "duration": "soon"}, "duration: 'soon' is not a duration like 30s, 4m or 1h"),
    ({"experiment": "gs-latency", "duration": 5}, "duration: 5 is shorter than 10s"),
    ({"experiment": "gs-latency", "duration": "16m"}, "duration: 16m is longer than the policy's max_duration 15m"),
    ({"experiment": "gs-latency", "duration": 3600}, "duration: 3600 is longer than the policy's max_duration 15m"),
    ({"experiment": "gs-latency", "blast_radius": 3}, "blast_radius: blast radius 3 is over the policy cap of 2"),
    ({"experiment": "gs-latency", "blast_radius": "80%"}, "blast_radius: blast radius 80% is over the policy cap "
                                                          "of 50%"),
    ({"experiment": "gs-latency", "blast_radius": "lots"}, "blast_radius: expected a count like 1 or a share"),
    ({"experiment": "gs-latency", "target": "GS 1!"}, "target: 'GS 1!' is neither an instance/pod name nor a "
                                                      "selector like track=stable"),
    ({"experiment": "gs-latency", "target": "track=stable,zone"}, "target: 'zone' is not key=value"),
    ({"experiment": "gs-latency", "target": 7}, "target: expected text, got int"),
    ({"experiment": "gs-latency", "environment": "dev"}, "environment: gs-latency does not allow the dev "
                                                         "environment (allowed: staging, prod)"),
    ({"experiment": "gs-latency", "environment": "qa"}, "environment: expected dev, staging or prod, got 'qa'"),
    ({"experiment": "gs-latency", "dry_run": "yes"}, "dry_run: expected true or false, got 'yes'"),
    ({"experiment": "gs-latency", "requested_by": "x" * 129}, "requested_by: expected text of at most 128"),
    ({"experiment": "gs-latency", "gameday_id": 7}, "gameday_id: expected text"),
    ({"experiment": "gs-latency", "colour": "red"}, "colour: unknown field (known: experiment, target, duration, "),
])
def test_an_invalid_field_is_named(catalog: ChaosCatalog, conf: dict[str, Any], expected: str) -> None:
    found = problems(conf, catalog)

    assert len(found) == 1, found
    assert found[0].startswith(expected), found


def test_every_invalid_field_is_reported_at_once(catalog: ChaosCatalog) -> None:
    found = problems({"experiment": "gs-latency", "colour": "red", "duration": "20m", "blast_radius": "80%",
                      "target": "GS 1!", "environment": "dev", "dry_run": "yes"}, catalog)

    assert [p.split(":")[0] for p in found] == ["colour", "duration", "blast_radius", "target", "environment",
                                                "dry_run"]


def test_an_unknown_field_is_reported_with_an_unknown_experiment(catalog: ChaosCatalog) -> None:
    found = problems({"experiment": "gs-meteor", "colour": "red"}, catalog)

    assert [p.split(":")[0] for p in found] == ["colour", "experiment"]


def test_prod_is_refused_when_production_chaos_is_not_enabled(catalog: ChaosCatalog) -> None:
    disabled = dataclasses.replace(catalog, policy=catalog.policy.model_copy(update={"production_enabled": False}))

    assert build({"experiment": "gs-latency", "environment": "prod"}, catalog).environment == "prod"
    assert problems({"experiment": "gs-latency", "environment": "prod"}, disabled) == [
        "environment: production chaos is not enabled (include/config/chaos policy production_enabled: false)"]
    # the policy's own environment (prod) is the default, so the default is refused too
    assert problems({"experiment": "gs-latency"}, disabled)[0].startswith("environment: production chaos")
    assert build({"experiment": "gs-latency", "environment": "staging"}, disabled).environment == "staging"


def test_a_service_missing_from_services_yaml_is_refused(catalog: ChaosCatalog) -> None:
    with pytest.raises(InvalidChaosRequest, match=r"its target service 'matchmaking' is not in services\.yaml"):
        build_run({"experiment": "mm-network-loss"}, catalog, run_id="r", requested_by="alice",
                  backends={"game-server": "local"})


# --- targets ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "selector"), [
    ("gs-1", {"instance": "gs-1"}),
    ("  game-server-7d9f-abcde ", {"instance": "game-server-7d9f-abcde"}),
    ("track=canary", {"track": "canary"}),
    ("track=stable, app.kubernetes.io/zone=a", {"track": "stable", "app.kubernetes.io/zone": "a"}),
    ("track=", {"track": ""}),
])
def test_parse_target(text: str, selector: dict[str, str]) -> None:
    assert parse_target(text) == (selector, None)


@pytest.mark.parametrize("text", ["GS-1", "gs 1", "-gs", "=stable", "track=stable,", "track=a b"])
def test_parse_target_refuses_what_is_neither_a_name_nor_a_selector(text: str) -> None:
    selector, why = parse_target(text)

    assert selector is None
    assert why


def test_picked_targets_are_reproducible_from_the_run_id(catalog: ChaosCatalog) -> None:
    run = build({"experiment": "gs-latency"}, catalog, run_id="scheduled__2026-11-25T05:00:00")

    first = pick_targets(run, FLEET, catalog)

    assert len(first) == 1
    assert first[0] in FLEET
    assert pick_targets(run, list(reversed(FLEET)), catalog) == first  # the candidates' order does not matter
    picks = {tuple(pick_targets(dataclasses.replace(run, run_id=f"manual__{i}"), FLEET, catalog)) for i in range(40)}
    assert len(picks) > 1  # yet random across runs


def test_a_share_picks_that_many_distinct_targets(catalog: ChaosCatalog) -> None:
    run = build({"experiment": "gs-latency", "blast_radius": "50%"}, catalog)

    picked = pick_targets(run, FLEET, catalog)

    assert len(picked) == len(set(picked)) == 2
    assert set(picked) <= set(FLEET)
    assert picked == sorted(picked)


def test_no_matching_target_is_an_error_naming_the_selector(catalog: ChaosCatalog) -> None:
    run = build({"experiment": "gs-latency", "target": "track=canary"}, catalog)

    with pytest.raises(InvalidChaosRequest) as caught:
        pick_targets(run, [], catalog)

    assert caught.value.problems == ["target: no game-server instance or pod matches {'track': 'canary'} "
                                     "(unknown target)"]


@pytest.mark.parametrize(("radius", "candidates", "why"), [
    (1, ["gs-1"], "hits 1 of 1 targets (100%), over the policy cap of 50%"),
    (2, ["gs-1", "gs-2", "gs-3"], "hits 2 of 3 targets (67%), over the policy cap of 50%"),
    ("50%", ["gs-1", "gs-2", "gs-3"], "hits 2 of 3 targets (67%)"),
    ("50%", [f"gs-{i}" for i in range(10)], "hits 5 targets, over the policy cap of 2"),
])
def test_a_resolved_radius_over_the_cap_is_refused(catalog: ChaosCatalog, radius: int | str,
                                                   candidates: list[str], why: str) -> None:
    run = build({"experiment": "gs-latency", "blast_radius": radius}, catalog)

    with pytest.raises(InvalidChaosRequest) as caught:
        pick_targets(run, candidates, catalog)

    assert caught.value.problems[0].startswith(f"blast_radius: blast radius {radius} ")
    assert why in caught.value.problems[0]


# --- overlaps ---------------------------------------------------------------------------------------------------


def injection(run_id: str, service: str, targets: list[str], kind: str = "cpu_hog") -> dict[str, Any]:
    return {"run_id": run_id, "service": service, "targets": targets, "experiment": f"gs-{kind}",
            "fault": {"kind": kind, "params": {}, "duration_s": 60.0}}


def test_overlaps_names_the_shared_targets_of_other_runs() -> None:
    active = [injection("manual__other", "game-server", ["gs-2", "gs-3"], "network_latency"),
              injection("manual__third", "game-server", ["gs-4"])]

    assert overlaps(["gs-1", "gs-2", "gs-3"], "game-server", active, "manual__mine") == [
        "gs-2, gs-3 already has network_latency injected by gs-network_latency (run manual__other)"]


def test_overlaps_ignore_the_same_run_and_other_services() -> None:
    active = [injection("manual__mine", "game-server", ["gs-1"]),  # a retry of this run sees its own fault
              injection("manual__other", "matchmaking", ["gs-1"])]  # same name, other service

    assert overlaps(["gs-1"], "game-server", active, "manual__mine") == []
