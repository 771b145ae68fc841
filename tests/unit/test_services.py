"""services.yaml validation: the contract's services with their teams, and errors naming file, service, field."""
from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from gamesre.core.contract import load_contract
from gamesre.core.services import SERVICES_PATH, Matcher, ServicesError, load_services, parse_services

SOURCE = "include/config/services.yaml"


def shipped() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(SERVICES_PATH.read_text()))


def errors(raw: dict[str, Any]) -> str:
    with pytest.raises(ServicesError) as info:
        parse_services(raw, SOURCE)
    return str(info.value)


def test_the_shipped_services_match_the_metric_contract() -> None:
    catalog = load_services()
    contract = load_contract()
    assert catalog.names == tuple(contract.services)
    for spec in catalog:
        assert spec.team == contract.services[spec.name].team
        assert spec.slack.channel == f"#{spec.name}"
        assert [str(m) for m in spec.matchers] == [f'service="{spec.name}"']
    assert catalog.get("game-server").deploy_during_maintenance is True
    assert catalog.get("matchmaking").deploy_during_maintenance is False


def test_unknown_missing_and_mismatched_services_are_refused() -> None:
    raw = shipped()
    raw["services"]["chat"] = raw["services"]["matchmaking"]
    del raw["services"]["matchmaking"]
    raw["services"]["game-server"]["team"] = "platform"
    msg = errors(raw)
    assert f"{SOURCE}: service 'chat': not a service of the metric contract (game-server, matchmaking)" in msg
    assert f"{SOURCE}: service 'matchmaking': missing" in msg
    assert f"{SOURCE}: service 'game-server': team: 'platform' differs from the metric contract's 'game-server'" in msg


def test_field_errors_name_the_service_and_the_field() -> None:
    raw = shipped()
    gs = raw["services"]["game-server"]
    gs["scaling"]["backend"] = "nomad"
    gs["slack"]["channel_id"] = "game"
    gs["alerting"]["matchers"] = ["service=game-server"]
    gs["deploy"]["image"]["tag_pattern"] = "[0-9]+"
    gs["chaos"]["extra"] = 1
    msg = errors(raw)
    prefix = f"{SOURCE}: service 'game-server': "
    assert prefix + "scaling.backend: Input should be 'local' or 'kubernetes'" in msg
    assert prefix + "slack.channel_id: String should match pattern" in msg
    assert prefix + "alerting.matchers: 'service=game-server' is not a matcher like name=\"value\"" in msg
    assert prefix + "deploy.image.tag_pattern: anchor the pattern with ^ and $" in msg
    assert prefix + "chaos.extra: unknown field" in msg


def test_kubernetes_backends_need_their_coordinates() -> None:
    raw = shipped()
    mm = raw["services"]["matchmaking"]
    mm["deploy"]["backend"] = "argo-rollouts"
    del mm["kubernetes"]["rollout"]
    assert f"{SOURCE}: service 'matchmaking': kubernetes.rollout: required because deploy.backend is argo-rollouts" \
        in errors(raw)
    raw = shipped()
    raw["services"]["matchmaking"]["scaling"]["backend"] = "kubernetes"
    del raw["services"]["matchmaking"]["kubernetes"]
    assert f"{SOURCE}: service 'matchmaking': kubernetes: required because scaling.backend is kubernetes" in errors(raw)
    raw = shipped()
    raw["services"]["matchmaking"]["scaling"]["backend"] = "kubernetes"
    assert parse_services(raw, SOURCE).get("matchmaking").kubernetes.hpa == "matchmaking"


def test_matchers_that_only_match_empty_labels_are_refused() -> None:
    raw = shipped()
    raw["services"]["game-server"]["alerting"]["matchers"] = ['service=""']
    assert "alerting.matchers: at least one matcher must not match the empty label" in errors(raw)


def test_event_instance_prefixes_are_unique() -> None:
    raw = shipped()
    raw["services"]["matchmaking"]["scaling"]["event"]["instance_prefix"] = "gs-event"
    assert "service 'matchmaking': scaling.event.instance_prefix: 'gs-event' is already used by 'game-server'" \
        in errors(raw)


@pytest.mark.parametrize(("text", "expected"), [
    ('service="game-server"', Matcher("service", "game-server")),
    ('severity!="page"', Matcher("severity", "page", is_equal=False)),
    ('slo=~"avail.*"', Matcher("slo", "avail.*", is_regex=True)),
    ('instance!~"gs-canary-.*"', Matcher("instance", "gs-canary-.*", is_regex=True, is_equal=False)),
    (r'summary="say \"hi\""', Matcher("summary", 'say "hi"')),
])
def test_matchers_round_trip(text: str, expected: Matcher) -> None:
    parsed = Matcher.parse(text)
    assert parsed == expected
    assert Matcher.parse(str(parsed)) == parsed
    assert Matcher.from_api(parsed.to_api()) == parsed


@pytest.mark.parametrize("text", ["service", "service=game-server", '1abc="x"', 'a=="x"', ""])
def test_bad_matchers_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a matcher"):
        Matcher.parse(text)


def test_image_reference_checks_the_tag() -> None:
    image = load_services().get("game-server").deploy.image
    assert image.reference("1.5.0") == "registry.example.com/game/game-server:1.5.0"
    with pytest.raises(ValueError, match="does not match"):
        image.reference("latest")


def test_synthetic_stages_need_the_local_backend() -> None:
    raw = shipped()
    raw["services"]["matchmaking"]["deploy"]["backend"] = "kubernetes"
    assert (f"{SOURCE}: service 'matchmaking': deploy.environments.dev.traffic: synthetic traffic is sent by the "
            "local backend only") in errors(raw)
    for env in raw["services"]["matchmaking"]["deploy"]["environments"].values():
        env["traffic"] = "players"
    assert parse_services(raw, SOURCE).get("matchmaking").deploy.environments["dev"].namespace == "game-dev"


def test_the_sre_channel_is_where_anything_not_about_one_service_goes() -> None:
    catalog = load_services()
    assert (catalog.sre.team, catalog.sre.slack.channel, catalog.sre.slack.channel_id) == ("sre", "#sre", "C07SRE00001")
    assert catalog.channel_id("matchmaking") == "C07MATCHMK1"
    assert catalog.channel_id(None) == catalog.channel_id("payments") == "C07SRE00001"
    raw = shipped()
    del raw["sre"]
    assert f"{SOURCE}: sre: missing (the SRE team and its Slack channel)" in errors(raw)
    raw = shipped()
    raw["sre"]["slack"]["channel_id"] = "#sre"
    assert f"{SOURCE}: sre: slack.channel_id: String should match pattern" in errors(raw)
