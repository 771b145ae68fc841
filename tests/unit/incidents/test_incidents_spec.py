"""incidents.yaml: the shipped file loads with the real services catalog, and every bad input is refused naming
the file and the field."""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gamesre.core.services import ServiceCatalog, load_services
from gamesre.incidents.spec import INCIDENTS_PATH, IncidentsConfigError, load_incidents, parse_incidents

SOURCE = "include/config/incidents.yaml"


@pytest.fixture(scope="module")
def catalog() -> ServiceCatalog:
    return load_services()


def shipped() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(INCIDENTS_PATH.read_text()))


def body(raw: dict[str, Any]) -> dict[str, Any]:
    incidents: dict[str, Any] = raw["incidents"]
    return incidents


def errors(raw: object, services: ServiceCatalog | None = None) -> list[str]:
    with pytest.raises(IncidentsConfigError) as info:
        parse_incidents(raw, SOURCE, services)
    return str(info.value).splitlines()


def test_the_shipped_incidents_config_loads_with_the_real_services(catalog: ServiceCatalog) -> None:
    spec = load_incidents(services=catalog)
    assert (spec.intake.page_severity, spec.intake.join_window_s, spec.intake.default_team) == ("page", 1800, "sre")
    assert spec.severity.default == "sev2"
    assert spec.severity.rules[0].alertname == ["EndpointsDown"]
    assert any(rule.burn_rate_at_least == 14.4 and rule.severity == "sev1" for rule in spec.severity.rules)
    assert (spec.severity.budget_rule.consumed_at_least, spec.severity.budget_rule.at_least) == (0.20, "sev1")
    assert spec.severities["sev0"].roles == ["incident_commander", "operations_lead", "communications_lead", "scribe"]
    assert [spec.severities[s].status_page_every_s for s in ("sev0", "sev1", "sev2", "sev3")] == [900, 1800, 7200, None]
    assert [spec.severities[s].postmortem_business_days for s in ("sev0", "sev1", "sev2", "sev3")] == [3, 5, None, None]
    assert [spec.severities[s].pagerduty for s in ("sev0", "sev1", "sev2", "sev3")] == [True, True, False, False]
    e = spec.escalation
    assert (e.secondary_unacknowledged_after_s, e.tertiary_unresolved_after_s, e.executive_unresolved_after_s) == (
        300, 1800, 3600)


def test_an_unknown_severity_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="sev4"):
        load_incidents().severities["sev4"]


def test_errors_of_a_loaded_file_name_that_file(tmp_path: Path) -> None:
    raw = shipped()
    body(raw)["intake"]["join_window"] = "30 minutes"
    path = tmp_path / "incidents.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(IncidentsConfigError,
                       match=rf"^{re.escape(str(path))}: incidents\.intake\.join_window: String should match"):
        load_incidents(path)


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "incidents.yaml"
    path.write_text("version: 1\nincidents: [intake\n")
    with pytest.raises(IncidentsConfigError, match=rf"^{re.escape(str(path))}: line \d+, column \d+: YAML syntax"):
        load_incidents(path)


def test_a_missing_file_is_an_incidents_config_error(tmp_path: Path) -> None:
    with pytest.raises(IncidentsConfigError, match=r"incidents\.yaml: cannot read"):
        load_incidents(tmp_path / "incidents.yaml")


def test_the_top_level_must_be_a_mapping() -> None:
    assert errors(["version", 1]) == [
        f"{SOURCE}: expected a mapping with 'version' and 'incidents' at the top level"]


def test_only_version_1_and_known_top_level_fields() -> None:
    raw = shipped()
    raw["version"] = 2
    raw["oncall"] = {}
    assert errors(raw) == [f"{SOURCE}: oncall: unknown field", f"{SOURCE}: version: must be 1, got 2"]


def test_the_incidents_section_is_required() -> None:
    assert errors({"version": 1}) == [
        f"{SOURCE}: incidents: expected a mapping with intake, severity, severities and escalation"]


def test_an_unknown_field_is_named() -> None:
    raw = shipped()
    body(raw)["intake"]["auto_resolve"] = True
    body(raw)["severity"]["rules"][1]["region"] = "kr"
    msg = errors(raw)
    assert f"{SOURCE}: incidents.intake.auto_resolve: unknown field" in msg
    assert f"{SOURCE}: incidents.severity.rules[1].region: unknown field" in msg


def test_a_missing_section_is_named() -> None:
    raw = shipped()
    del body(raw)["escalation"]
    assert errors(raw) == [f"{SOURCE}: incidents.escalation: Field required"]


def test_intake_durations_are_written_like_30s_5m_1h() -> None:
    raw = shipped()
    body(raw)["intake"]["join_window"] = "1d"
    assert errors(raw) == [
        f"{SOURCE}: incidents.intake.join_window: String should match pattern '^([1-9][0-9]*)(s|m|h)$'"]


def test_the_page_severity_is_not_empty() -> None:
    raw = shipped()
    body(raw)["intake"]["page_severity"] = ""
    assert errors(raw) == [f"{SOURCE}: incidents.intake.page_severity: String should have at least 1 character"]


def test_the_default_team_must_be_a_team_of_services_yaml(catalog: ServiceCatalog) -> None:
    raw = shipped()
    body(raw)["intake"]["default_team"] = "platform"
    assert errors(raw, catalog) == [
        f"{SOURCE}: incidents.intake.default_team: 'platform' is not a team of include/config/services.yaml "
        "(game-server, matchmaking, sre)"]
    parse_incidents(raw, SOURCE)  # without the catalog nothing says which teams exist


def test_the_default_severity_is_one_of_sev0_to_sev3() -> None:
    raw = shipped()
    body(raw)["severity"]["default"] = "sev4"
    assert errors(raw) == [
        f"{SOURCE}: incidents.severity.default: Input should be 'sev0', 'sev1', 'sev2' or 'sev3'"]


def test_a_rule_needs_a_condition() -> None:
    raw = shipped()
    body(raw)["severity"]["rules"].append({"severity": "sev1", "why": "always"})
    index = len(body(raw)["severity"]["rules"]) - 1
    assert errors(raw) == [
        f"{SOURCE}: incidents.severity.rules[{index}]: a rule needs at least one condition (alertname, labels, "
        "services, slos, burn_rate_at_least, players_affected_at_least)"]


def test_a_rule_needs_a_why_in_words() -> None:
    raw = shipped()
    del body(raw)["severity"]["rules"][0]["why"]
    body(raw)["severity"]["rules"][1]["why"] = "  "
    assert errors(raw) == [
        f"{SOURCE}: incidents.severity.rules[0].why: Field required",
        f"{SOURCE}: incidents.severity.rules[1].why: say why in words: people read it in the incident timeline"]


def test_a_rule_severity_must_be_known() -> None:
    raw = shipped()
    body(raw)["severity"]["rules"][0]["severity"] = "critical"
    assert errors(raw) == [
        f"{SOURCE}: incidents.severity.rules[0].severity: Input should be 'sev0', 'sev1', 'sev2' or 'sev3'"]


def test_a_burn_rate_threshold_is_positive() -> None:
    raw = shipped()
    body(raw)["severity"]["rules"][0]["burn_rate_at_least"] = 0
    assert errors(raw) == [f"{SOURCE}: incidents.severity.rules[0].burn_rate_at_least: Input should be greater than 0"]


@pytest.mark.parametrize(("value", "message"), [
    (0, "Input should be greater than 0"),
    (1.5, "Input should be less than or equal to 1"),
    ("25%", "Input should be a valid number"),
])
def test_players_affected_is_a_share_above_0_up_to_1(value: object, message: str) -> None:
    raw = shipped()
    body(raw)["severity"]["rules"][0]["players_affected_at_least"] = value
    assert errors(raw) == [f"{SOURCE}: incidents.severity.rules[0].players_affected_at_least: {message}"]


def test_rule_labels_are_label_names_to_strings() -> None:
    raw = shipped()
    body(raw)["severity"]["rules"][0]["labels"] = {"tier-name": "page_fast", "long_window": 1}
    msg = errors(raw)
    assert len(msg) == 2
    assert msg[0].startswith(f"{SOURCE}: incidents.severity.rules[0].labels.tier-name.[key]: String should match")
    assert msg[1] == f"{SOURCE}: incidents.severity.rules[0].labels.long_window: Input should be a valid string"


def test_rule_lists_are_not_empty_and_name_nothing_twice() -> None:
    raw = shipped()
    body(raw)["severity"]["rules"][0]["alertname"] = ["EndpointsDown", "EndpointsDown"]
    body(raw)["severity"]["rules"][1]["slos"] = []
    assert errors(raw) == [
        f"{SOURCE}: incidents.severity.rules[0].alertname: listed twice: EndpointsDown",
        f"{SOURCE}: incidents.severity.rules[1].slos: List should have at least 1 item after validation, not 0"]


def test_rule_services_must_be_in_the_catalog(catalog: ServiceCatalog) -> None:
    raw = shipped()
    body(raw)["severity"]["rules"][0]["services"] = ["game-server", "chat"]
    assert errors(raw, catalog) == [
        f"{SOURCE}: incidents.severity.rules[0].services: unknown service 'chat' (known: game-server, matchmaking)"]


def test_the_budget_rule_is_a_share_and_a_severity() -> None:
    raw = shipped()
    body(raw)["severity"]["budget_rule"] = {"consumed_at_least": 20, "at_least": "high"}
    assert errors(raw) == [
        f"{SOURCE}: incidents.severity.budget_rule.consumed_at_least: Input should be less than or equal to 1",
        f"{SOURCE}: incidents.severity.budget_rule.at_least: Input should be 'sev0', 'sev1', 'sev2' or 'sev3'"]


def test_every_severity_from_sev0_to_sev3_is_required_and_no_other() -> None:
    raw = shipped()
    del body(raw)["severities"]["sev3"]
    body(raw)["severities"]["sev4"] = body(raw)["severities"]["sev2"]
    assert errors(raw) == [f"{SOURCE}: incidents.severities.sev3: Field required",
                           f"{SOURCE}: incidents.severities.sev4: unknown field"]


def test_roles_are_known_and_always_include_the_incident_commander() -> None:
    raw = shipped()
    body(raw)["severities"]["sev1"]["roles"] = ["incident_commander", "liaison"]
    body(raw)["severities"]["sev2"]["roles"] = ["operations_lead"]
    body(raw)["severities"]["sev3"]["roles"] = ["incident_commander", "incident_commander"]
    msg = errors(raw)
    assert msg[0].startswith(f"{SOURCE}: incidents.severities.sev1.roles[1]: Input should be 'incident_commander'")
    assert msg[1:] == [
        f"{SOURCE}: incidents.severities.sev2.roles: incident_commander is always required (someone owns every "
        "incident)",
        f"{SOURCE}: incidents.severities.sev3.roles: listed twice: incident_commander"]


def test_a_severity_says_its_cadence_and_postmortem_even_when_none() -> None:
    raw = shipped()
    del body(raw)["severities"]["sev3"]["status_page_every"]
    body(raw)["severities"]["sev0"]["status_page_every"] = "quarter-hour"
    body(raw)["severities"]["sev1"]["postmortem_business_days"] = 0
    body(raw)["severities"]["sev2"]["pagerduty"] = "yes"
    msg = errors(raw)
    assert msg == [
        f"{SOURCE}: incidents.severities.sev0.status_page_every: String should match pattern "
        "'^([1-9][0-9]*)(s|m|h)$'",
        f"{SOURCE}: incidents.severities.sev1.postmortem_business_days: Input should be greater than or equal to 1",
        f"{SOURCE}: incidents.severities.sev2.pagerduty: Input should be a valid boolean",
        f"{SOURCE}: incidents.severities.sev3.status_page_every: Field required"]


@pytest.mark.parametrize(("secondary", "tertiary", "executive", "field", "than"), [
    ("30m", "30m", "1h", "tertiary_unresolved_after", "secondary_unacknowledged_after"),
    ("5m", "1h", "45m", "executive_unresolved_after", "tertiary_unresolved_after"),
])
def test_escalation_times_increase_strictly(secondary: str, tertiary: str, executive: str, field: str,
                                            than: str) -> None:
    raw = shipped()
    body(raw)["escalation"] = {"secondary_unacknowledged_after": secondary, "tertiary_unresolved_after": tertiary,
                               "executive_unresolved_after": executive}
    assert errors(raw) == [f"{SOURCE}: incidents.escalation.{field}: must be longer than {than}"]


def test_every_problem_is_reported_at_once(catalog: ServiceCatalog) -> None:
    raw = shipped()
    raw["version"] = 3
    body(raw)["intake"]["join_window"] = "soon"
    body(raw)["severities"]["sev0"]["roles"] = ["scribe"]
    body(raw)["escalation"]["executive_unresolved_after"] = "1m"
    msg = errors(raw, catalog)
    assert [line.split(": ")[1] for line in msg] == [
        "version", "incidents.intake.join_window", "incidents.severities.sev0.roles",
        "incidents.escalation.executive_unresolved_after"]
    assert all(line.startswith(f"{SOURCE}: ") for line in msg)


def test_a_status_page_component_of_an_unknown_service_is_named(catalog: ServiceCatalog) -> None:
    raw = shipped()
    body(raw)["status_page"]["components"]["billing"] = {"id": "billing", "name": "Billing"}
    assert errors(raw, catalog) == [f"{SOURCE}: incidents.status_page.components: unknown service 'billing' "
                                    f"(known: {', '.join(catalog.names)})"]


def test_a_severity_announced_on_the_status_page_needs_a_component_status() -> None:
    raw = shipped()
    del body(raw)["status_page"]["component_status"]["sev2"]
    assert any("status_page.component_status: sev2 has status_page_every but no component status" in e
               for e in errors(raw))
