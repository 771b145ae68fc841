"""The chaos catalog (include/config/chaos/*.yaml): the shipped files load, bad ones are named precisely.

Bad documents are the shipped ones, read with yaml.safe_load and changed in memory. They go through JSON once
so that the YAML anchors (shared probes and abort rules) become separate objects: changing one experiment
must not change the others that used the same anchor.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesre.chaos.catalog import (
    CHAOS_DIR,
    BlastRadiusCap,
    ChaosConfigError,
    load_catalog,
    parse_blast_radius,
    parse_catalog,
    radius_within_cap,
    resolve_blast_radius,
)
from gamesre.chaos.faults import FAULT_KINDS
from gamesre.core.config import display_path
from gamesre.core.services import load_services
from gamesre.slo.spec import load_slos

GAME_SERVER = "include/config/chaos/game-server.yaml"
MATCHMAKING = "include/config/chaos/matchmaking.yaml"
POLICY = "include/config/chaos/policy.yaml"
SUITES = "include/config/chaos/suites.yaml"

Documents = dict[str, Any]


def shipped_documents() -> Documents:
    return {display_path(path): json.loads(json.dumps(yaml.safe_load(path.read_text())))
            for path in sorted(CHAOS_DIR.glob("*.yaml"))}


def parse(documents: Documents) -> Any:
    return parse_catalog(documents, services=set(load_services().names),
                         slos={s.name: s.service for s in load_slos()})


def experiment(documents: Documents, source: str, experiment_id: str) -> dict[str, Any]:
    (found,) = [e for e in documents[source]["experiments"] if e["id"] == experiment_id]
    return found


def config_error(documents: Documents) -> list[str]:
    """The lines of the one ChaosConfigError the documents raise."""
    with pytest.raises(ChaosConfigError) as caught:
        parse(documents)
    return str(caught.value).splitlines()


# --- the shipped catalog ----------------------------------------------------------------------------------------


def test_the_shipped_catalog_loads_and_uses_every_fault_kind() -> None:
    catalog = load_catalog()

    assert {e.fault.kind for e in catalog.experiments.values()} == set(FAULT_KINDS)
    assert catalog.sources["gs-instance-kill"] == GAME_SERVER
    assert catalog.sources["mm-network-loss"] == MATCHMAKING
    # what parse_catalog makes of the same documents, the way these tests feed it
    assert set(parse(shipped_documents()).experiments) == set(catalog.experiments)


def test_the_weekly_suite_exists_and_lists_known_experiments_once() -> None:
    catalog = load_catalog()

    weekly = catalog.suite("weekly").experiments
    assert weekly
    assert len(set(weekly)) == len(weekly)
    assert all(e in catalog.experiments for e in weekly)
    with pytest.raises(KeyError, match="unknown game-day suite 'monthly'"):
        catalog.suite("monthly")


def test_the_shipped_policy_caps_the_blast_radius_and_names_the_kill_switch() -> None:
    policy = load_catalog().policy

    assert 1 <= policy.blast_radius_cap.max_count
    assert 1 <= policy.blast_radius_cap.max_percent <= 100
    assert policy.kill_switch_variable == "gamesre_chaos_kill_switch"
    assert policy.probe_interval_s > 0


# --- bad documents ------------------------------------------------------------------------------------------


def set_radius(value: object) -> Callable[[Documents], None]:
    def change(docs: Documents) -> None:
        experiment(docs, GAME_SERVER, "gs-cpu-hog")["blast_radius"] = value
    return change


def drop_required_param(docs: Documents) -> None:
    experiment(docs, GAME_SERVER, "gs-latency")["fault"]["params"] = {}


def add_unknown_param(docs: Documents) -> None:
    experiment(docs, GAME_SERVER, "gs-cpu-hog")["fault"]["params"]["memory_mb"] = 64


def param_out_of_range(docs: Documents) -> None:
    experiment(docs, GAME_SERVER, "gs-memory-hog")["fault"]["params"]["memory_mb"] = 4096


def duplicate_id_across_files(docs: Documents) -> None:
    copy = json.loads(json.dumps(experiment(docs, GAME_SERVER, "gs-instance-kill")))
    docs[MATCHMAKING]["experiments"].append(copy)


def unknown_experiment_in_suite(docs: Documents) -> None:
    docs[SUITES]["suites"]["weekly"]["experiments"].append("gs-meteor-strike")


def experiment_twice_in_suite(docs: Documents) -> None:
    docs[SUITES]["suites"]["weekly"]["experiments"].append("gs-instance-kill")


def burn_slo_of_another_service(docs: Documents) -> None:
    experiment(docs, MATCHMAKING, "mm-network-loss")["abort"]["burn_slos"] = ["availability"]


def unknown_target_service(docs: Documents) -> None:
    experiment(docs, GAME_SERVER, "gs-partition")["target"]["service"] = "chat"


def range_without_bounds(docs: Documents) -> None:
    experiment(docs, GAME_SERVER, "gs-packet-loss")["steady_state"]["probes"][0]["tolerance"] = {"type": "range"}


def baseline_without_max_change(docs: Documents) -> None:
    del experiment(docs, GAME_SERVER, "gs-cpu-hog")["steady_state"]["probes"][1]["tolerance"]["max_change"]


def baseline_without_worse(docs: Documents) -> None:
    del experiment(docs, GAME_SERVER, "gs-cpu-hog")["steady_state"]["probes"][1]["tolerance"]["worse"]


def wrong_version(docs: Documents) -> None:
    docs[MATCHMAKING]["version"] = 2


def wrong_kind(docs: Documents) -> None:
    docs[SUITES]["kind"] = "suite"


BAD_DOCUMENTS: dict[str, tuple[Callable[[Documents], None], str]] = {
    "blast radius count over the cap": (
        set_radius(3),
        f"{GAME_SERVER}: gs-cpu-hog: blast_radius: blast radius 3 is over the policy cap of 2 targets"),
    "blast radius share over the cap": (
        set_radius("80%"),
        f"{GAME_SERVER}: gs-cpu-hog: blast_radius: blast radius 80% is over the policy cap of 50%"),
    "blast radius that is neither": (
        set_radius("half"),
        f"{GAME_SERVER}: experiments[4] (gs-cpu-hog): blast_radius: expected a count like 1 or a share like 50%"),
    "missing required fault param": (
        drop_required_param,
        f"{GAME_SERVER}: experiments[1] (gs-latency): fault.params: network_latency needs latency_ms"),
    "unknown fault param": (
        add_unknown_param,
        f"{GAME_SERVER}: experiments[4] (gs-cpu-hog): fault.params.memory_mb: not a parameter of cpu_hog "
        "(known: cpu_load, cpu_cores)"),
    "fault param out of range": (
        param_out_of_range,
        f"{GAME_SERVER}: experiments[5] (gs-memory-hog): fault.params.memory_mb: 4096 is outside 1..1024"),
    "duplicate experiment id across files": (
        duplicate_id_across_files,
        f"{MATCHMAKING}: experiments[2] (gs-instance-kill): id: gs-instance-kill is already defined in "
        f"{GAME_SERVER}"),
    "unknown experiment in a suite": (
        unknown_experiment_in_suite,
        f"{SUITES}: suites.weekly.experiments: unknown experiment 'gs-meteor-strike'"),
    "experiment listed twice in a suite": (
        experiment_twice_in_suite,
        f"{SUITES}: suites.weekly.experiments: listed twice: gs-instance-kill"),
    "burn_slos of another service": (
        burn_slo_of_another_service,
        f"{MATCHMAKING}: mm-network-loss: abort.burn_slos: 'availability' is not an SLO of matchmaking"),
    "unknown target service": (
        unknown_target_service,
        f"{GAME_SERVER}: gs-partition: target.service: unknown service 'chat' (known: game-server, matchmaking)"),
    "range tolerance without bounds": (
        range_without_bounds,
        f"{GAME_SERVER}: experiments[2] (gs-packet-loss): steady_state.probes[0].tolerance: a range tolerance "
        "needs min, max or both"),
    "baseline tolerance without max_change": (
        baseline_without_max_change,
        f"{GAME_SERVER}: experiments[4] (gs-cpu-hog): steady_state.probes[1].tolerance: a baseline tolerance "
        "needs worse (higher | lower) and max_change"),
    "baseline tolerance without worse": (
        baseline_without_worse,
        f"{GAME_SERVER}: experiments[4] (gs-cpu-hog): steady_state.probes[1].tolerance: a baseline tolerance "
        "needs worse (higher | lower) and max_change"),
    "wrong version": (wrong_version, f"{MATCHMAKING}: version: must be 1, got 2"),
    "wrong kind": (wrong_kind, f"{SUITES}: kind: expected policy, experiments or suites, got 'suite'"),
}


@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
def test_a_bad_document_is_one_error_naming_file_experiment_and_field(case: str) -> None:
    change, expected = BAD_DOCUMENTS[case]
    docs = shipped_documents()
    change(docs)

    lines = config_error(docs)

    assert any(line.startswith(expected) for line in lines), "\n".join(lines)


def test_an_invalid_experiment_is_reported_once_and_not_again_as_unknown_in_its_suite() -> None:
    docs = shipped_documents()
    baseline_without_max_change(docs)  # gs-cpu-hog is in the weekly suite

    lines = config_error(docs)

    assert len(lines) == 1, "\n".join(lines)
    assert lines[0].startswith(f"{GAME_SERVER}: experiments[4] (gs-cpu-hog): steady_state.probes[1].tolerance")


def test_a_yaml_anchor_change_stays_in_one_experiment() -> None:
    docs = shipped_documents()
    range_without_bounds(docs)  # the availability probe is an anchor shared by most game-server experiments

    lines = config_error(docs)

    assert [line for line in lines if "tolerance" in line] == [
        f"{GAME_SERVER}: experiments[2] (gs-packet-loss): steady_state.probes[0].tolerance: a range tolerance "
        "needs min, max or both"]


def test_two_policy_files_are_refused_naming_both() -> None:
    docs = shipped_documents()
    docs["include/config/chaos/policy-copy.yaml"] = json.loads(json.dumps(docs[POLICY]))

    lines = config_error(docs)

    assert lines == ["chaos catalog: exactly one file of kind policy is needed (found: "
                     f"include/config/chaos/policy-copy.yaml, {POLICY})"]


def test_no_policy_file_is_refused() -> None:
    docs = shipped_documents()
    del docs[POLICY]

    assert config_error(docs) == ["chaos catalog: exactly one file of kind policy is needed (found: none)"]


def test_problems_of_every_file_come_in_one_error() -> None:
    docs = shipped_documents()
    set_radius("80%")(docs)
    burn_slo_of_another_service(docs)
    experiment_twice_in_suite(docs)

    lines = config_error(docs)

    assert len(lines) == 3, "\n".join(lines)
    assert {line.split(":")[0] for line in lines} == {GAME_SERVER, MATCHMAKING, SUITES}


def test_an_experiment_longer_than_the_policy_max_duration_is_refused() -> None:
    docs = shipped_documents()
    experiment(docs, GAME_SERVER, "gs-partition")["duration"] = "1h"

    assert config_error(docs) == [f"{GAME_SERVER}: gs-partition: duration: 1h is longer than the policy's "
                                  "max_duration 15m"]


# --- the blast radius -----------------------------------------------------------------------------------------

RADII = st.one_of(st.integers(1, 1000), st.integers(1, 100).map(lambda p: f"{p}%"))
CAPS = st.builds(BlastRadiusCap, max_count=st.integers(1, 1000), max_percent=st.integers(1, 100))


@pytest.mark.parametrize("value", [0, 1001, "0%", "101%", "50", "50 %", True, None, 1.5])
def test_parse_blast_radius_refuses_what_is_not_a_count_or_a_share(value: object) -> None:
    with pytest.raises(ValueError, match=r"count|share"):
        parse_blast_radius(value)


@settings(max_examples=300, deadline=None)
@given(value=RADII, available=st.integers(1, 5000))
def test_the_resolved_count_is_between_one_and_available(value: int | str, available: int) -> None:
    hits = resolve_blast_radius(value, available)

    assert 1 <= hits <= available
    kind, n = parse_blast_radius(value)
    if kind == "count":
        assert hits == min(n, available)
    else:
        assert hits <= math.ceil(available * n / 100)
        assert Fraction(hits - 1, available) < Fraction(n, 100)  # rounds up, never more than one target over


def test_no_matching_target_resolves_to_none() -> None:
    assert resolve_blast_radius(1, 0) == 0
    assert resolve_blast_radius("100%", 0) == 0


@settings(max_examples=300, deadline=None)
@given(value=RADII, cap=CAPS, available=st.integers(1, 5000))
def test_with_available_the_cap_refuses_exactly_an_over_share_or_over_count(
        value: int | str, cap: BlastRadiusCap, available: int) -> None:
    kind, n = parse_blast_radius(value)
    hits = resolve_blast_radius(value, available)
    asked_too_much = n > (cap.max_count if kind == "count" else cap.max_percent)
    hits_too_much = Fraction(hits, available) > Fraction(cap.max_percent, 100) or hits > cap.max_count

    why = radius_within_cap(value, cap, available)

    assert (why is not None) == (asked_too_much or hits_too_much), why
    if why is not None and not asked_too_much:
        assert f"hits {hits}" in why


@settings(max_examples=200, deadline=None)
@given(value=RADII, cap=CAPS)
def test_without_available_only_the_requested_radius_is_checked(value: int | str, cap: BlastRadiusCap) -> None:
    kind, n = parse_blast_radius(value)

    why = radius_within_cap(value, cap)

    assert (why is not None) == (n > (cap.max_count if kind == "count" else cap.max_percent))


@pytest.mark.parametrize(("value", "available", "refused"), [
    (1, 1, "hits 1 of 1 targets (100%), over the policy cap of 50%"),
    (1, 2, None),
    (2, 4, None),
    (2, 3, "hits 2 of 3 targets (67%), over the policy cap of 50%"),
    ("50%", 4, None),
    ("50%", 3, "hits 2 of 3 targets (67%)"),  # a share rounds up
    ("50%", 10, "hits 5 targets, over the policy cap of 2"),
    (3, 100, "blast radius 3 is over the policy cap of 2 targets"),
])
def test_a_cap_of_2_targets_and_50_percent_by_example(value: int | str, available: int, refused: str | None) -> None:
    why = radius_within_cap(value, BlastRadiusCap(max_count=2, max_percent=50), available)

    if refused is None:
        assert why is None
    else:
        assert why is not None
        assert refused in why
