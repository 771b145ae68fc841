"""Deploy requests against the shipped services.yaml and deploy.yaml: defaults, normalising, every bad field named."""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from gamesre.core.services import SERVICES_PATH, load_services, parse_services
from gamesre.deploy.config import load_deploy_config
from gamesre.deploy.request import DeployRequest, InvalidDeployRequest, parse_request, parse_version

SERVICES = load_services()
CONFIG = load_deploy_config()
IMAGE = "registry.example.com/game/game-server"
PATTERN = r"^[0-9]+\.[0-9]+\.[0-9]+$"


def conf(**overrides: Any) -> dict[str, Any]:
    base = {"service": "game-server", "version": "1.5.1", "change_ticket": "CHG-1234", "requested_by": "alice"}
    return {**base, **overrides}


def problems(raw: object, **kwargs: Any) -> dict[str, str]:
    with pytest.raises(InvalidDeployRequest) as info:
        parse_request(raw, SERVICES, CONFIG, **kwargs)  # type: ignore[arg-type]
    found = dict(info.value.problems)
    assert len(found) == len(info.value.problems), "a field is reported twice"
    for field, reason in info.value.problems:
        assert f"{field}: {reason}" in str(info.value)
    return found


def test_a_tag_alone_gets_the_defaults() -> None:
    req = parse_request(conf(), SERVICES, CONFIG)
    assert req == DeployRequest(
        service="game-server", version="1.5.1", image=f"{IMAGE}:1.5.1",
        strategy="canary",  # services.yaml deploy.strategy
        stages=("dev", "staging", "prod"),  # every stage of the service, in deploy.yaml's order
        canary_steps=(10, 25, 50, 100),  # deploy.yaml strategies.canary.steps
        change_ticket="CHG-1234", requested_by="alice", dry_run=False, force=False, force_reason="")


def test_a_full_image_reference_of_the_allowed_image_is_accepted() -> None:
    req = parse_request(conf(version=f"{IMAGE}:1.5.1"), SERVICES, CONFIG)
    assert (req.version, req.image) == ("1.5.1", f"{IMAGE}:1.5.1")


def test_a_full_request_is_taken_as_given() -> None:
    req = parse_request(conf(service="matchmaking", version=" 2.0.10 ", strategy="canary", stages=["prod"],
                             canary_steps=[1, 5, 100], dry_run=True, force=True,
                             force_reason="hotfix for the queue stall INC-77"),
                        SERVICES, CONFIG)
    assert req.service == "matchmaking"
    assert req.image == "registry.example.com/game/matchmaking:2.0.10"
    assert (req.stages, req.canary_steps, req.dry_run, req.force) == (("prod",), (1, 5, 100), True, True)
    assert req.force_reason == "hotfix for the queue stall INC-77"


def test_the_strategy_of_the_request_overrides_the_service_default() -> None:
    req = parse_request(conf(strategy="blue-green"), SERVICES, CONFIG)
    assert req.strategy == "blue-green"


def test_stages_are_put_in_deploy_yaml_order() -> None:
    req = parse_request(conf(stages=["prod", "dev"]), SERVICES, CONFIG)
    assert req.stages == ("dev", "prod")


def test_empty_stages_and_canary_steps_mean_the_defaults() -> None:
    req = parse_request(conf(stages=[], canary_steps=[], dry_run=None, force=None), SERVICES, CONFIG)
    assert req.stages == ("dev", "staging", "prod")
    assert req.canary_steps == (10, 25, 50, 100)
    assert (req.dry_run, req.force) == (False, False)


def test_requested_by_falls_back_to_the_caller() -> None:
    raw = conf()
    del raw["requested_by"]
    assert parse_request(raw, SERVICES, CONFIG, default_requester="airflow-user").requested_by == "airflow-user"
    assert problems(raw) == {"requested_by": "required (who asks for this deploy)"}


def test_a_stage_the_service_has_no_environment_for_is_refused() -> None:
    raw = copy.deepcopy(yaml.safe_load(SERVICES_PATH.read_text()))
    del raw["services"]["matchmaking"]["deploy"]["environments"]["dev"]
    services = parse_services(raw)
    assert parse_request(conf(service="matchmaking"), services, CONFIG).stages == ("staging", "prod")
    with pytest.raises(InvalidDeployRequest) as info:
        parse_request(conf(service="matchmaking", stages=["dev", "prod"]), services, CONFIG)
    assert info.value.problems == [
        ("stages", "matchmaking has no environment for dev (services.yaml deploy.environments)")]


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"service": "chat"}, "service", "unknown service 'chat' (known: game-server, matchmaking)"),
        ({"service": None}, "service", "required"),
        ({"service": 7}, "service", "expected a string, got int"),
        ({"version": "registry.example.com/game/matchmaking:1.5.1"}, "version",
         "image 'registry.example.com/game/matchmaking' is not the service's allowed image "
         f"'{IMAGE}'"),
        ({"version": "docker.io/library/game-server:1.5.1"}, "version",
         "image 'docker.io/library/game-server' is not the service's allowed image "
         f"'{IMAGE}'"),
        ({"version": "v1.5.1"}, "version", f"tag 'v1.5.1' does not match the service's tag pattern {PATTERN!r}"),
        ({"version": "latest"}, "version", f"tag 'latest' does not match the service's tag pattern {PATTERN!r}"),
        ({"version": f"{IMAGE}@sha256:{'a' * 64}"}, "version",
         f"'{IMAGE}@sha256:{'a' * 64}': give a tag, not a digest ({IMAGE}:<tag>)"),
        ({"version": f"{IMAGE}:1.5.1/x"}, "version",
         f"'{IMAGE}:1.5.1/x' is not an image reference like {IMAGE}:<tag>"),
        ({"version": ""}, "version", "required"),
        ({"strategy": "recreate"}, "strategy", "'recreate' is not one of canary, blue-green, rolling"),
        ({"stages": ["qa", "prod"]}, "stages", "unknown stage(s) 'qa' (known: dev, staging, prod)"),
        ({"stages": ["prod", "dev", "prod"]}, "stages", "listed more than once: prod"),
        ({"stages": "prod"}, "stages", "expected a list of stage names, got 'prod'"),
        ({"stages": ["prod", 1]}, "stages", "expected a list of stage names, got ['prod', 1]"),
        ({"canary_steps": [10, 50]}, "canary_steps", "the last step must be 100, got 50"),
        ({"canary_steps": "10,100"}, "canary_steps", "expected a list of percentages, got '10,100'"),
        ({"strategy": "rolling", "canary_steps": [10, 100]}, "canary_steps",
         "only for the canary strategy, not rolling"),
        ({"change_ticket": "1234"}, "change_ticket",
         "'1234' is not a ticket id like CHG-1234 (or an incident id like INC-20261207-001)"),
        ({"change_ticket": "CHG 1234"}, "change_ticket",
         "'CHG 1234' is not a ticket id like CHG-1234 (or an incident id like INC-20261207-001)"),
        ({"change_ticket": "INC-2026127-01"}, "change_ticket",
         "'INC-2026127-01' is not a ticket id like CHG-1234 (or an incident id like INC-20261207-001)"),
        ({"change_ticket": None}, "change_ticket", "required"),
        ({"force": True}, "force_reason",
         "required with force: say why the budget freeze may be bypassed (at least 10 characters)"),
        ({"force": True, "force_reason": "because"}, "force_reason",
         "required with force: say why the budget freeze may be bypassed (at least 10 characters)"),
        ({"force_reason": "the freeze is wrong today"}, "force_reason",
         "given without force: set force to true or drop the reason"),
        ({"dry_run": "yes"}, "dry_run", "expected true or false, got 'yes'"),
        ({"dry_run": 1}, "dry_run", "expected true or false, got 1"),
        ({"force": "true"}, "force", "expected true or false, got 'true'"),
        ({"requested_by": "x" * 501}, "requested_by", "longer than 500 characters"),  # not also "required"
        ({"force": True, "force_reason": "x" * 501}, "force_reason", "longer than 500 characters"),
    ],
)
def test_a_bad_field_is_named_with_the_reason(overrides: dict[str, Any], field: str, reason: str) -> None:
    assert problems(conf(**overrides)) == {field: reason}


def test_the_blue_green_default_of_a_service_refuses_canary_steps() -> None:
    raw = copy.deepcopy(yaml.safe_load(SERVICES_PATH.read_text()))
    raw["services"]["game-server"]["deploy"]["strategy"] = "blue-green"
    services = parse_services(raw)
    with pytest.raises(InvalidDeployRequest) as info:
        parse_request(conf(canary_steps=[50, 100]), services, CONFIG)
    assert info.value.problems == [("canary_steps", "only for the canary strategy, not blue-green")]


@pytest.mark.parametrize("field", ["service", "version", "change_ticket"])
def test_a_blank_required_field_is_missing(field: str) -> None:
    assert problems(conf(**{field: "   "})) == {field: "required"}


def test_an_unknown_conf_key_is_named_with_the_known_ones() -> None:
    found = problems(conf(tag="1.5.1", env="prod"))
    assert list(found) == ["env, tag"]
    assert found["env, tag"].startswith("unknown field (known: kind, service, version, rollback_of, strategy, stages, ")


@pytest.mark.parametrize(("raw", "kind"), [(None, "NoneType"), (["game-server"], "list"), ("game-server", "str")])
def test_a_conf_that_is_not_an_object_is_refused(raw: object, kind: str) -> None:
    assert problems(raw) == {"conf": f"expected a JSON object, got {kind}"}


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidDeployRequest) as info:
        parse_request({"service": "game-server", "version": "v2", "strategy": "yolo", "stages": ["qa"],
                       "change_ticket": "urgent", "dry_run": "no", "force_reason": "trust me on this one",
                       "colour": "blue"}, SERVICES, CONFIG)
    fields = [field for field, _ in info.value.problems]
    assert fields == ["colour", "version", "strategy", "stages", "change_ticket", "requested_by", "dry_run",
                      "force_reason"]
    message = str(info.value)
    assert message.startswith("invalid deploy request: colour: unknown field")
    assert "; version: tag 'v2' does not match" in message
    assert "; force_reason: given without force" in message


def test_an_unknown_service_skips_the_checks_that_need_it_but_still_reports_the_rest() -> None:
    found = problems(conf(service="chat", version="whatever", change_ticket="nope"))
    assert set(found) == {"service", "change_ticket"}  # the version cannot be judged without the service


def test_a_request_survives_a_json_round_trip() -> None:
    req = parse_request(conf(stages=["staging", "prod"], canary_steps=[20, 100], force=True,
                             force_reason="fixes the crash of 1.5.0 (INC-42)"), SERVICES, CONFIG)
    doc = json.loads(json.dumps(req.to_dict()))
    assert doc["stages"] == ["staging", "prod"] and doc["canary_steps"] == [20, 100]
    assert DeployRequest.from_dict(doc) == req


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1.5.1", ("1.5.1", "reg.example/game/gs:1.5.1")),
     ("reg.example/game/gs:1.5.1", ("1.5.1", "reg.example/game/gs:1.5.1"))],
)
def test_parse_version(raw: str, expected: tuple[str, str]) -> None:
    assert parse_version(raw, "reg.example/game", "gs", PATTERN) == expected


def test_parse_version_with_a_registry_port() -> None:
    assert parse_version("localhost:5000/gs:2.0.0", "localhost:5000", "gs", PATTERN) == (
        "2.0.0", "localhost:5000/gs:2.0.0")
    with pytest.raises(ValueError, match="is not an image reference like localhost:5000/gs:<tag>"):
        parse_version("localhost:5000/gs", "localhost:5000", "gs", PATTERN)


# --- rollbacks ------------------------------------------------------------------------------------------------

HISTORY = [
    {"id": "deploy-1", "service": "game-server", "version": "1.5.1", "previous_version": "1.5.0",
     "outcome": "promoted", "dry_run": False},
    {"id": "deploy-2", "service": "game-server", "version": "1.6.66", "previous_version": "1.5.1",
     "outcome": "promoted", "dry_run": False},
    {"id": "deploy-3", "service": "game-server", "version": "1.7.0", "previous_version": "1.6.66",
     "outcome": "rolled_back", "dry_run": False},
]


def rollback(**overrides: Any) -> dict[str, Any]:
    base = {"kind": "rollback", "service": "game-server", "rollback_of": "deploy-2",
            "change_ticket": "INC-20261207-001", "requested_by": "incident:kim"}
    return {**base, **overrides}


def test_a_rollback_of_a_deployment_goes_back_to_what_it_replaced_at_once_in_prod() -> None:
    req = parse_request(rollback(), SERVICES, CONFIG, history=HISTORY)
    assert (req.kind, req.is_rollback, req.version, req.rollback_of) == ("rollback", True, "1.5.1", "deploy-2")
    assert req.stages == ("prod",) and req.canary_steps == (100,) and req.strategy == "rolling"
    assert parse_request(rollback(strategy="blue-green"), SERVICES, CONFIG, history=HISTORY).strategy == "blue-green"
    assert DeployRequest.from_dict(req.to_dict()) == req


def test_a_rollback_to_a_version_that_served_before_needs_no_deployment() -> None:
    req = parse_request(rollback(rollback_of="", version="1.5.0"), SERVICES, CONFIG, history=HISTORY)
    assert (req.version, req.rollback_of) == ("1.5.0", "")


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"rollback_of": "deploy-9"}, "rollback_of", "no deployment 'deploy-9' of game-server is recorded"),
    ({"rollback_of": "deploy-3"}, "rollback_of", "deployment 'deploy-3' (1.7.0) was not promoted over a known "
                                                 "version (outcome rolled_back): nothing to undo"),
    ({"version": "1.5.0"}, "version", "'1.5.0' is not the version deployment 'deploy-2' replaced ('1.5.1'); give "
                                      "that one, or leave version empty"),
    ({"rollback_of": "", "version": "1.4.0"}, "version", "'1.4.0' never served the service (known good: 1.5.0, "
                                                         "1.5.1, 1.6.66); a rollback goes back to one of those"),
    ({"rollback_of": ""}, "version", "required"),
    ({"canary_steps": [50, 100]}, "canary_steps", "not for a rollback: it moves all traffic at once"),
    ({"force": True, "force_reason": "the budget is gone anyway"}, "force",
     "not for a rollback: its gates are the deploy lock and the backend's health, the budget never blocks it"),
    ({"kind": "redeploy"}, "kind", "'redeploy' is not one of deploy, rollback, automatic-rollback"),
])
def test_a_rollback_that_is_not_clear_is_refused_naming_the_field(changes: dict[str, Any], field: str,
                                                                   reason: str) -> None:
    assert problems(rollback(**changes), history=HISTORY)[field] == reason


def test_rollback_of_belongs_to_rollbacks_only() -> None:
    assert problems(conf(rollback_of="deploy-2"), history=HISTORY) == {"rollback_of": "only for kind rollback"}


def test_a_rollback_carries_its_cause_and_only_a_rollback_does() -> None:
    cause = {"policy": {"state": "rollback", "evidence": {"availability": {"burn_after": 19.5}}}}
    req = parse_request(rollback(kind="automatic-rollback", cause=cause), SERVICES, CONFIG, history=HISTORY)
    assert req.is_rollback and req.cause == cause and DeployRequest.from_dict(req.to_dict()) == req
    assert problems(conf(cause=cause)) == {"cause": "only for a rollback"}
    assert problems(rollback(cause="because"), history=HISTORY) == {
        "cause": "expected a JSON object of at most 20000 characters"}
