"""include/config/incidents.yaml: intake of pages, severity rules, what each severity asks for, escalation times.

Pure: reads one YAML file. Every error raises IncidentsConfigError naming the file and the field path, all
problems in one error, e.g. `include/config/incidents.yaml: incidents.severity.rules[1].burn_rate_at_least:
Input should be greater than 0`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gamesre.core.config import SpecError, display_path, header_problems, read_yaml
from gamesre.core.durations import Duration, parse_seconds
from gamesre.core.paths import CONFIG_DIR
from gamesre.core.services import ServiceCatalog, validation_problems

INCIDENTS_PATH = CONFIG_DIR / "incidents.yaml"

Severity = Literal["sev0", "sev1", "sev2", "sev3"]  # sev0 is the highest
Role = Literal["incident_commander", "operations_lead", "communications_lead", "scribe"]

_SLUG = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
_LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
_CONDITIONS = ("alertname", "labels", "services", "slos", "burn_rate_at_least", "players_affected_at_least")


class IncidentsConfigError(SpecError):
    """An invalid incidents.yaml; the message names the file and the field path."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _distinct(items: list[str]) -> list[str]:
    twice = sorted({item for item in items if items.count(item) > 1})
    if twice:
        raise ValueError(f"listed twice: {', '.join(twice)}")
    return items


class IntakeSettings(_Model):
    """What an Alertmanager notification does: which severity pages, when a second group joins, who owns strays."""

    page_severity: Annotated[str, Field(min_length=1, max_length=63)]
    join_window: Duration
    default_team: Annotated[str, Field(pattern=_SLUG)]

    @property
    def join_window_s(self) -> int:
        return parse_seconds(self.join_window)


class SeverityRule(_Model):
    """One rule: `severity` when every condition given holds; `why` is what people read in the timeline."""

    severity: Severity
    why: Annotated[str, Field(min_length=1, max_length=200)]
    alertname: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] | None = None
    labels: Annotated[dict[Annotated[str, Field(pattern=_LABEL_NAME)], str], Field(min_length=1)] | None = None
    services: Annotated[list[Annotated[str, Field(pattern=_SLUG)]], Field(min_length=1)] | None = None
    slos: Annotated[list[Annotated[str, Field(pattern=_SLUG)]], Field(min_length=1)] | None = None
    burn_rate_at_least: Annotated[float, Field(gt=0, le=10_000)] | None = None
    players_affected_at_least: Annotated[float, Field(gt=0, le=1)] | None = None

    @field_validator("alertname", "services", "slos")
    @classmethod
    def _no_repeats(cls, items: list[str] | None) -> list[str] | None:
        return None if items is None else _distinct(items)

    @field_validator("why")
    @classmethod
    def _said(cls, why: str) -> str:
        if not why.strip():
            raise ValueError("say why in words: people read it in the incident timeline")
        return why

    @model_validator(mode="after")
    def _has_a_condition(self) -> SeverityRule:
        if all(getattr(self, name) is None for name in _CONDITIONS):
            raise ValueError(f"a rule needs at least one condition ({', '.join(_CONDITIONS)})")
        return self


class BudgetRule(_Model):
    """An incident that consumed at least this share of an SLO's budget is at least this severity."""

    consumed_at_least: Annotated[float, Field(gt=0, le=1)]
    at_least: Severity


class SeverityRules(_Model):
    default: Severity
    rules: list[SeverityRule] = Field(default_factory=list)
    budget_rule: BudgetRule


class SeverityLevel(_Model):
    """What one severity asks of people: roles, paging, the status page cadence and the postmortem deadline."""

    roles: Annotated[list[Role], Field(min_length=1)]
    pagerduty: bool
    status_page_every: Duration | None
    postmortem_business_days: Annotated[int, Field(ge=1, le=30)] | None

    @field_validator("roles")
    @classmethod
    def _commander(cls, roles: list[str]) -> list[str]:
        _distinct(roles)
        if "incident_commander" not in roles:
            raise ValueError("incident_commander is always required (someone owns every incident)")
        return roles

    @property
    def status_page_every_s(self) -> int | None:
        return None if self.status_page_every is None else parse_seconds(self.status_page_every)


class SeverityLevels(_Model):
    sev0: SeverityLevel
    sev1: SeverityLevel
    sev2: SeverityLevel
    sev3: SeverityLevel

    def __getitem__(self, severity: str) -> SeverityLevel:
        if severity not in ("sev0", "sev1", "sev2", "sev3"):
            raise KeyError(f"unknown severity {severity!r} (sev0, sev1, sev2, sev3)")
        level: SeverityLevel = getattr(self, severity)
        return level


class EscalationSettings(_Model):
    """When an incident nobody handles escalates, counted from its opening."""

    secondary_unacknowledged_after: Duration
    tertiary_unresolved_after: Duration
    executive_unresolved_after: Duration

    @model_validator(mode="after")
    def _increasing(self) -> EscalationSettings:
        if self.tertiary_unresolved_after_s <= self.secondary_unacknowledged_after_s:
            raise ValueError("tertiary_unresolved_after: must be longer than secondary_unacknowledged_after")
        if self.executive_unresolved_after_s <= self.tertiary_unresolved_after_s:
            raise ValueError("executive_unresolved_after: must be longer than tertiary_unresolved_after")
        return self

    @property
    def secondary_unacknowledged_after_s(self) -> int:
        return parse_seconds(self.secondary_unacknowledged_after)

    @property
    def tertiary_unresolved_after_s(self) -> int:
        return parse_seconds(self.tertiary_unresolved_after)

    @property
    def executive_unresolved_after_s(self) -> int:
        return parse_seconds(self.executive_unresolved_after)


class StatusPageComponent(_Model):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]  # the component's id on the status page
    name: Annotated[str, Field(min_length=1, max_length=100)]  # what players read


class StatusPageText(_Model):
    """One message in both languages players read; {components} and {next_update} are filled in."""

    ko: Annotated[str, Field(min_length=1, max_length=1000)]
    en: Annotated[str, Field(min_length=1, max_length=1000)]


class StatusPageTemplates(_Model):
    investigating: StatusPageText
    update: StatusPageText
    resolved: StatusPageText


ComponentStatus = Literal["degraded_performance", "partial_outage", "major_outage"]


class StatusPageSettings(_Model):
    """What players see of an incident: the component of each service, its status per severity, the messages."""

    components: Annotated[dict[Annotated[str, Field(pattern=_SLUG)], StatusPageComponent], Field(min_length=1)]
    component_status: dict[Severity, ComponentStatus]
    templates: StatusPageTemplates


class IncidentsSpec(_Model):
    intake: IntakeSettings
    severity: SeverityRules
    severities: SeverityLevels
    escalation: EscalationSettings
    status_page: StatusPageSettings

    @model_validator(mode="after")
    def _every_announced_severity_has_a_status(self) -> IncidentsSpec:
        for severity in ("sev0", "sev1", "sev2", "sev3"):
            if self.severities[severity].status_page_every is not None and \
                    severity not in self.status_page.component_status:
                raise ValueError(f"status_page.component_status: {severity} has status_page_every but no component "
                                 "status")
        return self


def catalog_problems(spec: IncidentsSpec, services: ServiceCatalog) -> list[tuple[str, str]]:
    """(field path, message) for the names that services.yaml does not know: rule services, the default team."""
    problems = []
    for index, rule in enumerate(spec.severity.rules):
        unknown = services.unknown(rule.services or [])
        if unknown:
            problems.append((f"severity.rules[{index}].services",
                             f"unknown service {', '.join(map(repr, unknown))} (known: {', '.join(services.names)})"))
    unknown = services.unknown(list(spec.status_page.components))
    if unknown:
        problems.append(("status_page.components",
                         f"unknown service {', '.join(map(repr, unknown))} (known: {', '.join(services.names)})"))
    teams = sorted({services.sre.team, *(s.team for s in services)})
    if spec.intake.default_team not in teams:
        problems.append(("intake.default_team",
                         f"{spec.intake.default_team!r} is not a team of {services.source} ({', '.join(teams)})"))
    return problems


def parse_incidents(raw: object, source: str = "incidents.yaml",
                    services: ServiceCatalog | None = None) -> IncidentsSpec:
    """Validate a parsed incidents.yaml document (and its names against services.yaml, when given)."""
    if not isinstance(raw, dict):
        raise IncidentsConfigError(f"{source}: expected a mapping with 'version' and 'incidents' at the top level")
    lines = header_problems(raw, source, "incidents")
    body = raw.get("incidents")
    if not isinstance(body, dict):
        raise IncidentsConfigError("\n".join(
            [*lines, f"{source}: incidents: expected a mapping with intake, severity, severities and escalation"]))
    try:
        spec = IncidentsSpec.model_validate(body)
    except ValidationError as exc:
        lines += [f"{source}: incidents.{path}: {msg}" for path, msg in validation_problems(exc)]
        raise IncidentsConfigError("\n".join(lines)) from None
    if services is not None:
        lines += [f"{source}: incidents.{path}: {msg}" for path, msg in catalog_problems(spec, services)]
    if lines:
        raise IncidentsConfigError("\n".join(lines))
    return spec


def load_incidents(path: Path | str = INCIDENTS_PATH, services: ServiceCatalog | None = None) -> IncidentsSpec:
    """Read and validate incidents.yaml; with `services`, the rules' services and the default team are checked."""
    source = display_path(path)
    try:
        raw = read_yaml(path, source)
    except SpecError as exc:
        raise IncidentsConfigError(str(exc)) from exc
    return parse_incidents(raw, source, services)
