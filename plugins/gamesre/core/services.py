"""Per-service operating settings (include/config/services.yaml): owners, Slack, alert matchers and backends.

The file also names the SRE team's own Slack channel (`sre`): where reports and failures that are not about one
service go.

Pure: reads one YAML file and the metric contract, no network. Every error raises ServicesError naming the
file, the service and the field, e.g. `include/config/services.yaml: service 'game-server': scaling.backend:
Input should be 'local' or 'kubernetes'`. The services must be exactly the metric contract's, with its teams.

Sections are per concern so the deploy, chaos and calendar work each extend their own:
`slack`, `alerting`, `maintenance`, `kubernetes`, `deploy`, `chaos`, `scaling`.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gamesre.core.config import SpecError, display_path, header_problems, read_yaml
from gamesre.core.contract import Contract, load_contract
from gamesre.core.paths import CONFIG_DIR

SERVICES_PATH = CONFIG_DIR / "services.yaml"

Backend = Literal["local", "kubernetes"]
DeployBackend = Literal["local", "kubernetes", "argo-rollouts"]

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_SLUG = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"


class ServicesError(SpecError):
    """An invalid services.yaml; the message names the file, the service and the field."""


# --- Alertmanager matchers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Matcher:
    """One Alertmanager label matcher, as written in PromQL style (`service="game-server"`)."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Parse `name="v"`, `name!="v"`, `name=~"re"` or `name!~"re"`; ValueError says what is wrong.

        Regular expressions are not checked here: Alertmanager (Go RE2) is the authority and rejects bad ones.
        """
        match = _MATCHER.match(text)
        if match is None:
            raise ValueError(f'{text!r} is not a matcher like name="value", name!="value", name=~"regex" '
                             'or name!~"regex"')
        name, op, raw = match.groups()
        value = re.sub(r"\\(.)", r"\1", raw)
        return cls(name, value, is_regex=op in ("=~", "!~"), is_equal=op in ("=", "=~"))

    @classmethod
    def from_api(cls, doc: Mapping[str, Any]) -> Matcher:
        """A matcher from Alertmanager's API v2 JSON (isEqual defaults to true, as in older versions)."""
        return cls(str(doc["name"]), str(doc["value"]), bool(doc.get("isRegex", False)), bool(doc.get("isEqual", True)))

    @property
    def operator(self) -> str:
        return {(True, False): "=", (False, False): "!=", (True, True): "=~", (False, True): "!~"}[
            (self.is_equal, self.is_regex)]

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.operator}"{escaped}"'

    def to_api(self) -> dict[str, Any]:
        """The matcher as Alertmanager's API v2 expects it in a silence."""
        return {"name": self.name, "value": self.value, "isRegex": self.is_regex, "isEqual": self.is_equal}


def parse_matchers(items: list[str] | tuple[str, ...]) -> tuple[Matcher, ...]:
    return tuple(Matcher.parse(item) for item in items)


# --- the models -----------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SlackSettings(_Model):
    """Where people who own the service read about it."""

    channel: Annotated[str, Field(pattern=r"^#[a-z0-9][a-z0-9_-]{0,79}$")]
    channel_id: Annotated[str, Field(pattern=r"^[CG][A-Z0-9]{8,}$")]


class TeamSettings(_Model):
    """A team that owns no service of its own (the SRE team) and where it reads about its work."""

    team: Annotated[str, Field(pattern=_SLUG)]
    slack: SlackSettings


class AlertingSettings(_Model):
    """The alerts that belong to the service: silenced in its maintenance windows, read by its gates."""

    matchers: Annotated[list[str], Field(min_length=1)]

    @field_validator("matchers")
    @classmethod
    def _parse(cls, items: list[str]) -> list[str]:
        parsed = [Matcher.parse(item) for item in items]  # ValueError names the bad matcher
        if not any(not (m.is_equal and not m.is_regex and m.value == "") for m in parsed):
            raise ValueError("at least one matcher must not match the empty label (Alertmanager would refuse it)")
        return items

    def parsed(self) -> tuple[Matcher, ...]:
        return parse_matchers(self.matchers)


class MaintenanceSettings(_Model):
    deploy_during_maintenance: bool


class KubernetesCoordinates(_Model):
    """Where the service lives in a cluster; which names are needed depends on the backends chosen."""

    namespace: Annotated[str, Field(pattern=_DNS_LABEL, max_length=63)]
    deployment: Annotated[str, Field(pattern=_DNS_LABEL, max_length=253)] | None = None
    rollout: Annotated[str, Field(pattern=_DNS_LABEL, max_length=253)] | None = None
    hpa: Annotated[str, Field(pattern=_DNS_LABEL, max_length=253)] | None = None
    service: Annotated[str, Field(pattern=_DNS_LABEL, max_length=63)] | None = None


class ImageSettings(_Model):
    registry: Annotated[str, Field(pattern=r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$")]
    repository: Annotated[str, Field(pattern=r"^[a-z0-9._-]+(/[a-z0-9._-]+)*$")]
    tag_pattern: str

    @field_validator("tag_pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if not (pattern.startswith("^") and pattern.endswith("$")):
            raise ValueError("anchor the pattern with ^ and $ so a tag matches it whole")
        return pattern

    @property
    def repo(self) -> str:
        """registry/repository, the image reference without its tag."""
        return f"{self.registry}/{self.repository}"

    def reference(self, tag: str) -> str:
        """The full image reference for a tag; ValueError when the tag does not match tag_pattern."""
        if not re.fullmatch(self.tag_pattern, tag):
            raise ValueError(f"image tag {tag!r} does not match {self.tag_pattern!r}")
        return f"{self.registry}/{self.repository}:{tag}"


class DeployEnvironment(_Model):
    """Where one stage (dev, staging, prod) of a deploy runs and what traffic verifies it there.

    `traffic: players` judges the new version on the environment's own traffic; `synthetic` means no player
    reaches it, so the backend sends smoke traffic to the new version and the stage is one preview step.
    `namespace` (Kubernetes backends) overrides kubernetes.namespace for this stage.
    """

    traffic: Literal["players", "synthetic"] = "players"
    namespace: Annotated[str, Field(pattern=_DNS_LABEL, max_length=63)] | None = None
    # the reviews this service's deploys need before this stage (technical, security, business); unset:
    # include/config/deploy.yaml's for the stage; [] none
    approvals: list[Literal["technical", "security", "business"]] | None = None


class DeploySettings(_Model):
    backend: DeployBackend
    strategy: Literal["canary", "rolling", "blue-green"]
    image: ImageSettings
    # stage name -> environment; the stages a deploy may go through (include/config/deploy.yaml orders them)
    environments: Annotated[dict[Annotated[str, Field(pattern=_SLUG, max_length=20)], DeployEnvironment],
                            Field(min_length=1)]


class ChaosSettings(_Model):
    backend: Backend
    # kubernetes only: the chaos operator installed in the cluster, and the database endpoints the db_failure
    # and db_latency faults cut off or slow down (host names or IPs the pods call).
    engine: Literal["litmus", "chaos-mesh"] = "litmus"
    database_hosts: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9.:-]{1,253}$")]] = Field(default_factory=list)


class EventScaling(_Model):
    """Capacity while a live-ops event runs; a calendar event may override these per service."""

    min_replicas: Annotated[int, Field(ge=1, le=1000)]
    extra_instances: Annotated[int, Field(ge=0, le=10)]
    instance_prefix: Annotated[str, Field(pattern=_SLUG, max_length=40)]


class ScalingSettings(_Model):
    backend: Backend
    event: EventScaling


class ServiceSpec(_Model):
    name: Annotated[str, Field(pattern=_SLUG)]
    team: Annotated[str, Field(pattern=_SLUG)]
    slack: SlackSettings
    alerting: AlertingSettings
    maintenance: MaintenanceSettings
    kubernetes: KubernetesCoordinates | None = None
    deploy: DeploySettings
    chaos: ChaosSettings
    scaling: ScalingSettings

    @model_validator(mode="after")
    def _kubernetes_names(self) -> ServiceSpec:
        needs = []
        if self.deploy.backend == "kubernetes":
            needs.append(("deployment", "deploy.backend is kubernetes"))
        if self.deploy.backend == "argo-rollouts":
            needs.append(("rollout", "deploy.backend is argo-rollouts"))
        if self.scaling.backend == "kubernetes":
            needs.append(("hpa", "scaling.backend is kubernetes"))
        if self.chaos.backend == "kubernetes":
            needs.append(("deployment", "chaos.backend is kubernetes (faults target the Deployment's pods)"))
        for field, why in needs:
            if self.kubernetes is None:
                raise ValueError(f"kubernetes: required because {why}")
            if getattr(self.kubernetes, field) is None:
                raise ValueError(f"kubernetes.{field}: required because {why}")
        if self.deploy.backend != "local":
            for stage, env in self.deploy.environments.items():
                if env.traffic == "synthetic":
                    raise ValueError(f"deploy.environments.{stage}.traffic: synthetic traffic is sent by the local "
                                     f"backend only; the {self.deploy.backend} backend judges the environment's own "
                                     "traffic (players)")
        return self

    @property
    def matchers(self) -> tuple[Matcher, ...]:
        return self.alerting.parsed()

    @property
    def deploy_during_maintenance(self) -> bool:
        return self.maintenance.deploy_during_maintenance


@dataclass(frozen=True)
class ServiceCatalog:
    """The validated services, in file order, and the SRE team's channel."""

    services: dict[str, ServiceSpec]
    sre: TeamSettings
    source: str = "services.yaml"

    def __iter__(self) -> Iterator[ServiceSpec]:
        return iter(self.services.values())

    def __contains__(self, name: object) -> bool:
        return name in self.services

    def __len__(self) -> int:
        return len(self.services)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.services)

    def get(self, name: str) -> ServiceSpec:
        """The service; KeyError naming the known services otherwise."""
        try:
            return self.services[name]
        except KeyError:
            raise KeyError(f"unknown service {name!r} (known: {', '.join(self.services)})") from None

    def unknown(self, names: list[str] | tuple[str, ...] | set[str]) -> list[str]:
        """The names that are not services of the catalog, sorted."""
        return sorted(set(names) - set(self.services))

    def channel_id(self, service: str | None) -> str:
        """The Slack channel id of a service's team; the SRE channel's for anything else (None, unknown)."""
        spec = self.services.get(service or "")
        return spec.slack.channel_id if spec is not None else self.sre.slack.channel_id


# --- loading --------------------------------------------------------------------------------------------

_FIELD_PREFIX = re.compile(r"^([a-z_.]+): (.+)$", re.S)


def format_loc(loc: tuple[int | str, ...], empty: str = "(top level)") -> str:
    """A pydantic error location as a field path: `scaling.event.min_replicas`, `matchers[0]`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or empty


def error_location(err: Mapping[str, Any]) -> tuple[tuple[int | str, ...], str]:
    """(location, message) of one pydantic error; a cross-field rule names its field as `field.path: message`."""
    message = str(err["msg"]).removeprefix("Value error, ")
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        message = "unknown field"
    named = _FIELD_PREFIX.match(message) if err["type"] == "value_error" else None
    if named:
        loc, message = (*loc, *named.group(1).split(".")), named.group(2)
    return loc, message


def validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(field path, message) per pydantic error."""
    return [(format_loc(loc), message) for loc, message in map(error_location, exc.errors(include_url=False))]


def parse_services(raw: object, source: str = "services.yaml", contract: Contract | None = None) -> ServiceCatalog:
    """Validate a parsed services.yaml document against the metric contract; all problems in one error."""
    contract = contract if contract is not None else load_contract()
    if not isinstance(raw, dict):
        raise ServicesError(f"{source}: expected a mapping with 'version' and 'services' at the top level")
    lines = header_problems({k: v for k, v in raw.items() if k != "sre"}, source, "services")
    sre: TeamSettings | None = None
    if "sre" not in raw:
        lines.append(f"{source}: sre: missing (the SRE team and its Slack channel)")
    else:
        try:
            sre = TeamSettings.model_validate(raw["sre"])
        except ValidationError as exc:
            lines += [f"{source}: sre: {path}: {msg}" for path, msg in validation_problems(exc)]
    items = raw.get("services")
    if not isinstance(items, dict) or not items:
        raise ServicesError("\n".join([*lines, f"{source}: services: expected a mapping of service name to settings"]))
    services: dict[str, ServiceSpec] = {}
    for name, item in items.items():
        label = f"service {name!r}"
        if not isinstance(item, dict):
            lines.append(f"{source}: {label}: expected a mapping of settings")
            continue
        if name not in contract.services:
            lines.append(f"{source}: {label}: not a service of the metric contract ({', '.join(contract.services)})")
            continue
        try:
            spec = ServiceSpec.model_validate({"name": name, **item})
        except ValidationError as exc:
            lines += [f"{source}: {label}: {path}: {msg}" for path, msg in validation_problems(exc)]
            continue
        if spec.team != contract.services[name].team:
            lines.append(f"{source}: {label}: team: {spec.team!r} differs from the metric contract's "
                         f"{contract.services[name].team!r}")
            continue
        services[name] = spec
    for name in contract.services:
        if name not in items:
            lines.append(f"{source}: service {name!r}: missing (every service of the metric contract needs settings)")
    seen_prefixes: dict[str, str] = {}
    for spec in services.values():
        prefix = spec.scaling.event.instance_prefix
        if prefix in seen_prefixes:
            lines.append(f"{source}: service {spec.name!r}: scaling.event.instance_prefix: {prefix!r} is already "
                         f"used by {seen_prefixes[prefix]!r}")
        seen_prefixes[prefix] = spec.name
    if lines or sre is None:
        raise ServicesError("\n".join(lines))
    return ServiceCatalog(services, sre, source)


def load_services(path: Path | str = SERVICES_PATH, contract: Contract | None = None) -> ServiceCatalog:
    """Read and validate services.yaml."""
    source = display_path(path)
    try:
        raw = read_yaml(path, source)
    except SpecError as exc:
        raise ServicesError(str(exc)) from exc
    return parse_services(raw, source, contract)
