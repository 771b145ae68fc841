"""The alerting spec (include/config/alerting.yaml) and the Prometheus alert rules generated from it.

`load_alerting()` validates alerting.yaml against the metric contract, the SLO specs and services.yaml; every
error names the file and the field. `generate()` returns the three rule files (repo-relative path -> text):

- include/prometheus/game_rules.yml: high load (fleet sessions against the concurrent-sessions SLO's
  capacity), a latency quantile against the latency SLO's threshold, matchmaking success and data-save
  failures against their SLO's error budget, matchmaking queue growth, instances not ready, game targets down;
- include/prometheus/infra_rules.yml: node CPU, memory and filesystems, pod restarts, pods not running or not
  ready, endpoints without a ready address, exporters down, the namespace quota near its hard limit;
- include/prometheus/escalation_rules.yml: Watchdog (always firing: the dead man's switch), MaintenanceWindow
  (firing inside the weekly maintenance of calendar.yaml, for each affected service; Alertmanager inhibits
  that service's alerts with it) and PageEscalation (a page that has been firing for each escalation level's
  delay: the rule's `for`, which Prometheus restores from ALERTS_FOR_STATE after a restart).

Every alert carries `severity` (page | ticket; none for the two pipeline alerts), `service` and `team`, a
summary and a description showing the value, and a `runbook_url` annotation
(`include/runbooks/<file>.md#<heading anchor>`). A page and a ticket of the same condition share their
alertname (and `slo`), so the page inhibits the ticket in Alertmanager. Rules read only series of the metric
contract (`Contract.all_series()`) and the ALERTS series Prometheus writes.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gamesre.calendar import load_calendar
from gamesre.calendar.spec import WEEKDAYS, CalendarSpec, RecurringWindow
from gamesre.core.config import SpecError, display_path, read_yaml
from gamesre.core.contract import Contract, load_contract
from gamesre.core.paths import CONFIG_DIR
from gamesre.core.services import ServiceCatalog, load_services, validation_problems
from gamesre.slo.rules import ratio_error_expr
from gamesre.slo.selectors import Selector
from gamesre.slo.spec import GaugeCondition, RatioSli, SloCatalog, ThresholdSli, load_slos

ALERTING_PATH = CONFIG_DIR / "alerting.yaml"
GAME_RULES = Path("include/prometheus/game_rules.yml")
INFRA_RULES = Path("include/prometheus/infra_rules.yml")
ESCALATION_RULES = Path("include/prometheus/escalation_rules.yml")
COMMAND = "PYTHONPATH=plugins .venv/bin/python -m gamesre observability"

ESCALATION_ALERT = "PageEscalation"
WATCHDOG_ALERT = "Watchdog"
MAINTENANCE_ALERT = "MaintenanceWindow"
# The service label of alerts about shared infrastructure and the alerting pipeline (not a game service).
PLATFORM_SERVICE = "platform"
# Jobs that are neither a game service nor an exporter of the contract but are scraped all the same.
EXTRA_JOBS = ("haproxy", "alertmanager")

RUNBOOKS = "include/runbooks"
GAME_RUNBOOK = {"game-server": f"{RUNBOOKS}/game-server-availability.md", "matchmaking": f"{RUNBOOKS}/matchmaking.md"}
INFRA_RUNBOOK = f"{RUNBOOKS}/infrastructure.md"
ESCALATION_RUNBOOK = f"{RUNBOOKS}/oncall-escalation.md"


# Alert templates (Go text/template, expanded by Prometheus): the value and labels of the alerting series.
PCT = "{{ $value | humanizePercentage }}"
DUR = "{{ $value | humanizeDuration }}"
NUM = "{{ $value | humanize }}"


def lbl(name: str) -> str:
    """The template of one label of the alerting series."""
    return "{{ $labels." + name + " }}"


class AlertingError(SpecError):
    """An invalid alerting.yaml; the message names the file and the field."""


# --- the spec -------------------------------------------------------------------------------------------


Duration = Annotated[str, Field(pattern=r"^[0-9]+[smhd]$")]
Share = Annotated[float, Field(gt=0, lt=1)]
Factor = Annotated[float, Field(gt=0)]
Channel = Annotated[str, Field(pattern=r"^#[a-z0-9][a-z0-9_-]{0,79}$")]
Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")]
AlertName = Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]+$")]
HostPort = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+:[0-9]{1,5}$")]


def seconds(duration: str) -> int:
    """Seconds of a Prometheus duration like 15s, 5m, 1h or 1d."""
    match = re.fullmatch(r"([0-9]+)([smhd])", duration)
    if not match:
        raise ValueError(f"{duration!r} is not a duration like 15s, 5m, 1h or 1d")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class ScrapeJob(_Model):
    interval: Duration
    timeout: Duration
    metrics_path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9/._-]*$")] = "/metrics"

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> ScrapeJob:
        if seconds(self.timeout) > seconds(self.interval):
            raise ValueError(f"timeout: {self.timeout} is longer than the interval {self.interval}")
        return self


class PrometheusSettings(_Model):
    evaluation_interval: Duration
    external_labels: dict[str, str] = {}
    scrape: Annotated[dict[str, ScrapeJob], Field(min_length=1)]


class ComposeSettings(_Model):
    alertmanager: HostPort
    targets: dict[str, dict[str, HostPort] | list[HostPort]]
    secrets_dir: Annotated[str, Field(pattern=r"^/")]
    pagerduty_url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    # the incident intake served by the Airflow API server (docs/incidents.md); None: pages open no incident
    incident_intake_url: Annotated[str, Field(pattern=r"^https?://")] | None = None


class Graded(_Model):
    """A condition with a ticket level (and a page level) that must hold for `for`."""

    ticket: Share
    page: Share | None = None
    for_: Duration = Field(alias="for")


class HighLoad(Graded):
    slo: Slug


class ActionLatency(_Model):
    slo: Slug
    quantile: Share
    ticket_factor: Factor
    page_factor: Factor
    rate_window: Duration
    for_: Duration = Field(alias="for")


class ErrorRatioAlert(_Model):
    slo: Slug
    alert: AlertName
    runbook: Annotated[str, Field(pattern=r"^include/runbooks/[a-z0-9-]+\.md#[a-z0-9-]+$")]


class ErrorRatio(_Model):
    ticket_factor: Factor
    page_factor: Factor
    rate_window: Duration
    for_: Duration = Field(alias="for")
    alerts: list[ErrorRatioAlert]


class QueueGrowth(_Model):
    window: Duration
    min_growth: Annotated[int, Field(gt=0)]
    min_size: Annotated[int, Field(ge=0)]
    for_: Duration = Field(alias="for")


class Hold(_Model):
    for_: Duration = Field(alias="for")


class FreeSpace(_Model):
    """Free share of a filesystem: ticket at or below `ticket`, page at or below `page`."""

    ticket: Share
    page: Share
    for_: Duration = Field(alias="for")

    @model_validator(mode="after")
    def _order(self) -> FreeSpace:
        if self.page >= self.ticket:
            raise ValueError(f"page: {self.page} must be below ticket ({self.ticket}): less free space is worse")
        return self


class FillPrediction(_Model):
    horizon: Duration
    trend: Duration
    below: Share
    for_: Duration = Field(alias="for")


class Restarts(_Model):
    count: Annotated[int, Field(gt=0)]
    window: Duration


class Thresholds(_Model):
    high_load: HighLoad
    action_latency: ActionLatency
    error_ratio: ErrorRatio
    queue_growth: QueueGrowth
    instance_not_ready: Hold
    node_cpu: Graded
    node_memory: Graded
    filesystem: FreeSpace
    filesystem_fill: FillPrediction
    filesystem_types: Annotated[str, Field(min_length=1)]
    pod_restarts: Restarts
    pod_not_running: Hold
    pod_not_ready: Hold
    endpoints_down: Hold
    target_down: Hold
    quota: Graded

    @field_validator("filesystem_types")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
        return value


class Timing(_Model):
    group_wait: Duration
    group_interval: Duration
    repeat_interval: Duration


class Routing(_Model):
    platform_team: Slug
    oncall_channel: Channel
    fallback_channel: Channel
    team_channels: dict[str, Channel]
    pagerduty_services: Annotated[list[Slug], Field(min_length=1)]
    page: Timing
    ticket: Timing
    default: Timing

    @property
    def primary_pagerduty(self) -> str:
        return self.pagerduty_services[0]


class EscalationLevel(_Model):
    level: Slug
    after: Duration
    pagerduty: Slug
    channel: Channel
    repeat_interval: Duration


class AlertingSpec(_Model):
    version: Literal[1]
    prometheus: PrometheusSettings
    compose: ComposeSettings
    thresholds: Thresholds
    routing: Routing
    escalation: Annotated[list[EscalationLevel], Field(min_length=1)]


@dataclass(frozen=True)
class Sources:
    """Everything the generated files are made from, validated together."""

    spec: AlertingSpec
    contract: Contract
    slos: SloCatalog
    services: ServiceCatalog
    calendar: CalendarSpec
    source: str = "include/config/alerting.yaml"

    def required_jobs(self) -> list[str]:
        """Jobs Prometheus must scrape: each game service's, each exporter's, HAProxy's and Alertmanager's."""
        jobs = [s.job for s in self.contract.services.values()] + list(self.contract.exporters.values())
        return list(dict.fromkeys([*jobs, *EXTRA_JOBS]))

    def team_of(self, service: str) -> str:
        return self.contract.services[service].team


def _cross_problems(spec: AlertingSpec, contract: Contract, slos: SloCatalog, services: ServiceCatalog,
                    source: str) -> list[str]:
    problems: list[str] = []
    required = [s.job for s in contract.services.values()] + list(contract.exporters.values()) + list(EXTRA_JOBS)
    for job in dict.fromkeys(required):
        if job not in spec.prometheus.scrape:
            problems.append(f"{source}: prometheus.scrape: job {job!r} is missing (every service of the metric "
                            "contract, every exporter, haproxy and alertmanager need a scrape job)")
        if job not in spec.compose.targets or not spec.compose.targets[job]:
            problems.append(f"{source}: compose.targets: job {job!r} has no target")
    for job in spec.compose.targets:
        if job not in spec.prometheus.scrape:
            problems.append(f"{source}: compose.targets.{job}: not a job of prometheus.scrape")
    teams = {s.team for s in contract.services.values()} | {spec.routing.platform_team}
    for team in sorted(teams - set(spec.routing.team_channels)):
        problems.append(f"{source}: routing.team_channels: team {team!r} has no channel")
    known_pd = spec.routing.pagerduty_services
    levels: list[int] = []
    for i, level in enumerate(spec.escalation):
        if level.pagerduty not in known_pd:
            problems.append(f"{source}: escalation[{i}].pagerduty: {level.pagerduty!r} is not one of "
                            f"routing.pagerduty_services ({', '.join(known_pd)})")
        levels.append(seconds(level.after))
    if levels != sorted(set(levels)):
        problems.append(f"{source}: escalation: levels must come in order of strictly increasing `after`")
    if len({lv.level for lv in spec.escalation}) != len(spec.escalation):
        problems.append(f"{source}: escalation: a level name is used twice")
    t = spec.thresholds
    for field, name in (("high_load", t.high_load.slo), ("action_latency", t.action_latency.slo),
                        *((f"error_ratio.alerts[{i}]", a.slo) for i, a in enumerate(t.error_ratio.alerts))):
        if name not in slos.names():
            problems.append(f"{source}: thresholds.{field}.slo: no SLO {name!r} in slos.yaml "
                            f"(known: {', '.join(slos.names())})")
    if problems:
        return problems
    try:
        capacity_condition(slos[t.high_load.slo])
    except ValueError as exc:
        problems.append(f"{source}: thresholds.high_load.slo: {exc}")
    try:
        latency_histogram(slos[t.action_latency.slo])
    except ValueError as exc:
        problems.append(f"{source}: thresholds.action_latency.slo: {exc}")
    for i, a in enumerate(t.error_ratio.alerts):
        if not isinstance(slos[a.slo].sli, RatioSli):
            problems.append(f"{source}: thresholds.error_ratio.alerts[{i}].slo: {a.slo!r} is not a ratio SLI")
    for svc in services:
        if svc.kubernetes is None or svc.kubernetes.service is None:
            problems.append(f"services.yaml: service {svc.name!r}: kubernetes.service is needed for the "
                            "endpoint alerts")
    return problems


def parse_alerting(raw: object, source: str = "alerting.yaml", *, contract: Contract | None = None,
                   slos: SloCatalog | None = None, services: ServiceCatalog | None = None,
                   calendar: CalendarSpec | None = None) -> Sources:
    """Validate a parsed alerting.yaml with the specs it refers to; all problems in one AlertingError."""
    contract = contract if contract is not None else load_contract()
    slos = slos if slos is not None else load_slos(contract=contract)
    services = services if services is not None else load_services(contract=contract)
    if calendar is None:
        calendar = load_calendar(services=services).spec
    if not isinstance(raw, dict):
        raise AlertingError(f"{source}: expected a mapping with 'version', 'prometheus', ... at the top level")
    try:
        spec = AlertingSpec.model_validate(raw)
    except ValidationError as exc:
        raise AlertingError("\n".join(f"{source}: {path}: {msg}" for path, msg in validation_problems(exc))) from None
    problems = _cross_problems(spec, contract, slos, services, source)
    if problems:
        raise AlertingError("\n".join(problems))
    return Sources(spec, contract, slos, services, calendar, source)


@lru_cache(maxsize=4)
def load_alerting(path: Path = ALERTING_PATH) -> Sources:
    """Read and validate alerting.yaml (and the contract, SLOs, services and calendar it refers to)."""
    source = display_path(path)
    try:
        raw = read_yaml(path, source)
    except SpecError as exc:
        raise AlertingError(str(exc)) from exc
    return parse_alerting(raw, source)


# --- what the SLO specs say ------------------------------------------------------------------------------


def capacity_condition(slo: Any) -> GaugeCondition:
    """The SLO's gauge condition with an upper bound (sessions <= capacity)."""
    sli = slo.sli
    if isinstance(sli, ThresholdSli):
        for c in sli.conditions:
            if isinstance(c, GaugeCondition) and c.op in ("<", "<=") and c.threshold > 0:
                return c
    raise ValueError(f"SLO {slo.name!r} has no gauge condition with an upper bound (like sessions <= capacity)")


def latency_histogram(slo: Any) -> tuple[Selector, float]:
    """(bucket selector without `le`, threshold in seconds) of a latency SLO counted from a histogram bucket."""
    sli = slo.sli
    if isinstance(sli, RatioSli) and len(sli.good_selectors()) == 1:
        good = sli.good_selectors()[0]
        if good.metric.endswith("_bucket") and "le" in good.matchers:
            matchers = {k: v for k, v in good.matchers.items() if k != "le"}
            return Selector(metric=good.metric, matchers=matchers), float(good.matchers["le"])
    raise ValueError(f"SLO {slo.name!r} is not counted from one histogram bucket (a `le` matcher on a _bucket series)")


# --- rule building ---------------------------------------------------------------------------------------


def _num(value: float) -> str:
    return f"{value:.12g}"


def _percent(share: float) -> str:
    return f"{share * 100:.12g}%"


def _rule(alert: str, expr: str, *, severity: str, service: str, team: str, runbook: str, summary: str,
          description: str, for_: str | None = None, extra: dict[str, str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": alert, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, "service": service, "team": team, **(extra or {})}
    rule["annotations"] = {"summary": summary, "description": description, "runbook_url": runbook}
    return rule


def _graded(alert: str, value_expr: str, op: str, levels: Iterable[tuple[str, float | None]], **kw: Any) -> list[
        dict[str, Any]]:
    """One rule per severity with a level: `value_expr op level`; summaries and descriptions get the level."""
    rules = []
    for severity, level in levels:
        if level is None:
            continue
        summary = kw["summary"].replace("{level}", _percent(level) if level < 1 else _num(level))
        description = kw["description"].replace("{level}", _percent(level) if level < 1 else _num(level))
        rules.append(_rule(alert, f"{value_expr} {op} {_num(level)}", severity=severity, summary=summary,
                           description=description, **{k: v for k, v in kw.items()
                                                        if k not in ("summary", "description")}))
    return rules


def _svc_matcher(service: str) -> str:
    return f'service="{service}"'


def game_rules(src: Sources) -> list[dict[str, Any]]:
    t = src.spec.thresholds
    groups: list[dict[str, Any]] = []

    # High load: the fleet's sessions against the capacity of the concurrent-sessions SLO.
    slo = src.slos[t.high_load.slo]
    cond = capacity_condition(slo)
    service = slo.service
    capacity = cond.threshold
    load = f"sum({cond.selector.promql()}) / {_num(capacity)}"
    high_load = _graded(
        "GameServerHighLoad", load, ">=", (("ticket", t.high_load.ticket), ("page", t.high_load.page)),
        service=service, team=src.team_of(service), for_=t.high_load.for_,
        runbook=f"{GAME_RUNBOOK.get(service, GAME_RUNBOOK['game-server'])}#high-load",
        extra={"slo": slo.name},
        summary=f"{service}: concurrent sessions at {PCT} of capacity",
        description=(f"The fleet holds {PCT} of the {capacity:,.0f} concurrent "
                     f"sessions the {slo.name} SLO allows (alert at {{level}} for {t.high_load.for_}). Above the "
                     "capacity, minutes count against the SLO and logins are rejected."),
    )

    # Latency: a quantile of the game-action histogram against the latency SLO's threshold.
    slo = src.slos[t.action_latency.slo]
    bucket, threshold = latency_histogram(slo)
    q = t.action_latency.quantile
    quantile = (f"histogram_quantile({_num(q)}, sum by (le) (rate({bucket.promql()}[{t.action_latency.rate_window}])))")
    latency = []
    for severity, factor in (("ticket", t.action_latency.ticket_factor), ("page", t.action_latency.page_factor)):
        limit = threshold * factor
        latency.append(_rule(
            "GameActionLatencyHigh", f"{quantile} > {_num(limit)}", severity=severity, service=slo.service,
            team=src.team_of(slo.service), for_=t.action_latency.for_, extra={"slo": slo.name},
            runbook=f"{GAME_RUNBOOK.get(slo.service, GAME_RUNBOOK['game-server'])}#action-latency",
            summary=f"{slo.service}: p{_num(q * 100)} game-action latency {DUR}",
            description=(f"The p{_num(q * 100)} latency of game actions over {t.action_latency.rate_window} is "
                         f"{DUR}, above {_num(limit * 1000)} ms "
                         f"({_num(factor)}x the {slo.name} SLO threshold of {_num(threshold * 1000)} ms) for "
                         f"{t.action_latency.for_}."),
        ))

    # Error ratios against the SLO's error budget.
    ratios = []
    er = t.error_ratio
    for item in er.alerts:
        slo = src.slos[item.slo]
        assert isinstance(slo.sli, RatioSli)
        budget = 1 - slo.target
        expr = f"({ratio_error_expr(slo.sli, er.rate_window)})"
        for severity, factor in (("ticket", er.ticket_factor), ("page", er.page_factor)):
            limit = budget * factor
            ratios.append(_rule(
                item.alert, f"{expr} > {_num(limit)}", severity=severity, service=slo.service,
                team=src.team_of(slo.service), for_=er.for_, extra={"slo": slo.name}, runbook=item.runbook,
                summary=f"{slo.service}: {slo.name} error ratio {PCT}",
                description=(f"The {slo.name} error ratio over {er.rate_window} is {PCT}, "
                             f"above {_percent(limit)} ({_num(factor)}x the error budget of {_percent(budget)}, "
                             f"target {_percent(slo.target)}) for {er.for_}."),
            ))

    # Matchmaking queues growing: players pile up faster than matches form.
    qg = t.queue_growth
    queue_metric = src.contract.metric("matchmaking_queue_size")
    queue = f'matchmaking_queue_size{{{_svc_matcher(queue_metric.service)}}}'
    growth = [_rule(
        "MatchmakingQueueGrowing",
        f"sum by (mode) (delta({queue}[{qg.window}])) >= {qg.min_growth}\n"
        f"and\nsum by (mode) ({queue}) >= {qg.min_size}",
        severity="ticket", service=queue_metric.service, team=src.team_of(queue_metric.service), for_=qg.for_,
        runbook=f"{GAME_RUNBOOK['matchmaking']}#queue-growth",
        summary="matchmaking: {{ $labels.mode }} queues grew by {{ $value | humanize }} players",
        description=(f"The {lbl('mode')} matchmaking queues grew by {NUM} players over "
                     f"{qg.window} (alert at {qg.min_growth} with at least {qg.min_size} waiting) for {qg.for_}: "
                     "players arrive faster than matches form."),
    )]

    # Per game service: instances not ready and scrape targets down.
    per_service = []
    for svc in src.contract.services.values():
        runbook = GAME_RUNBOOK.get(svc.name, GAME_RUNBOOK["game-server"])
        per_service.append(_rule(
            "GameInstanceNotReady", f"game_instance_ready{{{_svc_matcher(svc.name)}}} == 0", severity="ticket",
            service=svc.name, team=svc.team, for_=t.instance_not_ready.for_, runbook=f"{runbook}#instance-not-ready",
            summary=f"{svc.name}: instance {lbl('instance')} is not ready",
            description=(f"{lbl('instance')} ({lbl('track')} {lbl('version')}) has failed its "
                         f"readiness check for {t.instance_not_ready.for_}; it gets no traffic."),
        ))
        per_service.append(_rule(
            "TargetDown", f'up{{job="{svc.job}"}} == 0', severity="ticket", service=svc.name, team=svc.team,
            for_=t.target_down.for_, runbook=f"{runbook}#target-down",
            summary=f"{svc.name}: Prometheus cannot scrape {lbl('instance')}",
            description=(f"The scrape of {lbl('instance')} (job {svc.job}) has failed for "
                         f"{t.target_down.for_}: the process is down or its /metrics does not answer."),
        ))

    groups.append({"name": "game-load", "rules": high_load + latency})
    groups.append({"name": "game-slo-signals", "rules": ratios + growth})
    groups.append({"name": "game-instances", "rules": per_service})
    return groups


def infra_rules(src: Sources) -> list[dict[str, Any]]:
    t = src.spec.thresholds
    team = src.spec.routing.platform_team
    platform: dict[str, Any] = {"service": PLATFORM_SERVICE, "team": team}
    fs = f'fstype=~"{t.filesystem_types}"'
    node: list[dict[str, Any]] = []
    node += _graded(
        "NodeCPUHigh", '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))', ">=",
        (("ticket", t.node_cpu.ticket), ("page", t.node_cpu.page)), for_=t.node_cpu.for_,
        runbook=f"{INFRA_RUNBOOK}#node-cpu", **platform,
        summary="Node {{ $labels.instance }}: CPU {{ $value | humanizePercentage }} busy",
        description=f"The CPUs of {lbl('instance')} have been {PCT} busy "
                    f"(alert at {{level}}) for {t.node_cpu.for_}.",
    )
    node += _graded(
        "NodeMemoryHigh", "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", ">=",
        (("ticket", t.node_memory.ticket), ("page", t.node_memory.page)), for_=t.node_memory.for_,
        runbook=f"{INFRA_RUNBOOK}#node-memory", **platform,
        summary="Node {{ $labels.instance }}: memory {{ $value | humanizePercentage }} used",
        description=f"{lbl('instance')} has used {PCT} of its memory "
                    f"(alert at {{level}}) for {t.node_memory.for_}; the OOM killer is next.",
    )
    free = f"node_filesystem_avail_bytes{{{fs}}} / node_filesystem_size_bytes{{{fs}}}"
    node += _graded(
        "NodeFilesystemSpaceLow", free, "<=", (("ticket", t.filesystem.ticket), ("page", t.filesystem.page)),
        for_=t.filesystem.for_, runbook=f"{INFRA_RUNBOOK}#filesystem-space", **platform,
        summary="Node {{ $labels.instance }}: {{ $labels.mountpoint }} has {{ $value | humanizePercentage }} free",
        description=f"{lbl('mountpoint')} ({lbl('device')}) on {lbl('instance')} has "
                    f"{PCT} free (alert at {{level}}) for {t.filesystem.for_}.",
    )
    ff = t.filesystem_fill
    node.append(_rule(
        "NodeFilesystemFillingUp",
        f"predict_linear(node_filesystem_avail_bytes{{{fs}}}[{ff.trend}], {seconds(ff.horizon)}) < 0\n"
        f"and\n{free} < {_num(ff.below)}",
        severity="page", for_=ff.for_, runbook=f"{INFRA_RUNBOOK}#filesystem-filling-up", **platform,
        summary="Node {{ $labels.instance }}: {{ $labels.mountpoint }} fills up within " + ff.horizon,
        description=(f"At the pace of the last {ff.trend}, {lbl('mountpoint')} on {lbl('instance')} "
                     f"runs out of space within {ff.horizon} (less than {_percent(ff.below)} free now; predicted "
                     "free bytes {{ $value | humanize1024 }}B)."),
    ))

    pods: list[dict[str, Any]] = []
    namespaces: list[str] = []
    for spec in src.services:
        assert spec.kubernetes is not None and spec.kubernetes.service is not None  # validated
        ns, name, svc_team = spec.kubernetes.namespace, spec.name, spec.team
        namespaces.append(ns)
        # Pods of the service: those running its container (container = service name).
        of_service = (f'on (namespace, pod) kube_pod_container_status_restarts_total{{namespace="{ns}",'
                      f'container="{name}"}}')
        labels: dict[str, Any] = {"service": name, "team": svc_team}
        pods.append(_rule(
            "PodRestarting",
            f'increase(kube_pod_container_status_restarts_total{{namespace="{ns}",container="{name}"}}'
            f"[{t.pod_restarts.window}]) >= {t.pod_restarts.count}",
            severity="ticket", runbook=f"{INFRA_RUNBOOK}#pod-restarts", **labels,
            summary=f"{name}: pod {lbl('pod')} restarted {NUM} times",
            description=(f"Container {name} of pod {lbl('pod')} restarted {NUM} times in "
                         f"{t.pod_restarts.window} (alert at {t.pod_restarts.count}): a crash loop or failing "
                         "liveness probe."),
        ))
        pods.append(_rule(
            "PodNotRunning",
            f'sum by (namespace, pod) (kube_pod_status_phase{{namespace="{ns}",phase=~"Pending|Failed|Unknown"}}) > 0'
            f"\nand {of_service}",
            severity="ticket", for_=t.pod_not_running.for_, runbook=f"{INFRA_RUNBOOK}#pod-not-running", **labels,
            summary=f"{name}: pod {lbl('pod')} is not running",
            description=(f"Pod {lbl('pod')} of {name} has been Pending, Failed or Unknown for "
                         f"{t.pod_not_running.for_}."),
        ))
        pods.append(_rule(
            "PodNotReady",
            f'sum by (namespace, pod) (kube_pod_status_ready{{namespace="{ns}",condition=~"false|unknown"}}) > 0'
            f"\nand {of_service}",
            severity="ticket", for_=t.pod_not_ready.for_, runbook=f"{INFRA_RUNBOOK}#pod-not-ready", **labels,
            summary=f"{name}: pod {lbl('pod')} is not ready",
            description=(f"Pod {lbl('pod')} of {name} has not been Ready for {t.pod_not_ready.for_}; "
                         "its endpoint gets no traffic."),
        ))
        endpoint = spec.kubernetes.service
        ksm = src.contract.exporters["kube-state-metrics"]
        pods.append(_rule(
            "EndpointsDown",
            f'(sum(kube_endpoint_address{{namespace="{ns}",endpoint="{endpoint}",ready="true"}}) or vector(0)) == 0\n'
            f'and on () (max(up{{job="{ksm}"}}) == 1)',
            severity="page", for_=t.endpoints_down.for_, runbook=f"{INFRA_RUNBOOK}#endpoints-down", **labels,
            summary=f"{name}: no ready endpoint behind Service {ns}/{endpoint}",
            description=(f"Service {ns}/{endpoint} has had {{{{ $value }}}} ready endpoint addresses for "
                         f"{t.endpoints_down.for_}: "
                         f"every {name} pod is failing its readiness probe or gone. Players cannot reach {name}."),
        ))

    ns_regex = "|".join(sorted(set(namespaces)))
    used = f'kube_resourcequota{{namespace=~"{ns_regex}",type="used"}}'
    hard = f'kube_resourcequota{{namespace=~"{ns_regex}",type="hard"}}'
    cluster: list[dict[str, Any]] = _graded(
        "ResourceQuotaNearLimit", f"{used} / ignoring (type) ({hard} > 0)", ">=",
        (("ticket", t.quota.ticket), ("page", t.quota.page)), for_=t.quota.for_,
        runbook=f"{INFRA_RUNBOOK}#resource-quota", **platform,
        summary="Quota {{ $labels.namespace }}/{{ $labels.resourcequota }}: {{ $labels.resource }} at "
                "{{ $value | humanizePercentage }} of its hard limit",
        description=("{{ $labels.resource }} of quota {{ $labels.namespace }}/{{ $labels.resourcequota }} is at "
                     f"{PCT} of its hard limit (alert at {{level}}) for {t.quota.for_}: "
                     "new pods (scale-ups, rollouts) will be refused."),
    )
    service_jobs = {s.job for s in src.contract.services.values()}
    infra_jobs = [j for j in src.spec.prometheus.scrape if j not in service_jobs]
    cluster.append(_rule(
        "TargetDown", f'up{{job=~"{"|".join(infra_jobs)}"}} == 0', severity="ticket", for_=t.target_down.for_,
        runbook=f"{INFRA_RUNBOOK}#target-down", **platform,
        summary="{{ $labels.job }}: Prometheus cannot scrape {{ $labels.instance }}",
        description=("The scrape of {{ $labels.instance }} (job {{ $labels.job }}) has failed for "
                     f"{t.target_down.for_}; the dashboards and alerts that read it are blind."),
    ))
    return [{"name": "infra-nodes", "rules": node}, {"name": "infra-pods", "rules": pods},
            {"name": "infra-cluster", "rules": cluster}]


# --- the alerting pipeline: Watchdog, maintenance, escalation --------------------------------------------

MINUTES_PER_WEEK = 7 * 1440
MINUTE_OF_WEEK = "(day_of_week() * 1440 + hour() * 60 + minute())"  # UTC; day_of_week(): 0 = Sunday


@dataclass(frozen=True)
class WeeklySpan:
    """A weekly window in UTC minutes of the week (0 = Sunday 00:00 UTC), end exclusive, maybe wrapping."""

    start: int
    end: int

    def promql(self) -> str:
        if self.start < self.end:
            return f"{MINUTE_OF_WEEK} >= {self.start}\nand\n{MINUTE_OF_WEEK} < {self.end}"
        return f"{MINUTE_OF_WEEK} >= {self.start}\nor\n{MINUTE_OF_WEEK} < {self.end}"

    def utc_text(self) -> str:
        return f"{span_text(self.start, self.end)} UTC"


DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def span_text(start: int, end: int) -> str:
    """Minutes of the week (0 = Sunday 00:00) as text: 'Monday 17:00-21:00', or with both days if it spans two."""
    end %= MINUTES_PER_WEEK

    def clock(m: int) -> str:
        return f"{m % 1440 // 60:02d}:{m % 60:02d}"

    same_day = start // 1440 == (end - 1) % MINUTES_PER_WEEK // 1440 and end != 0
    if same_day:
        return f"{DAY_NAMES[start // 1440]} {clock(start)}-{clock(end)}"
    return f"{DAY_NAMES[start // 1440]} {clock(start)}-{DAY_NAMES[end // 1440]} {clock(end)}"


def weekly_span(window: RecurringWindow, calendar: CalendarSpec) -> WeeklySpan:
    """The recurring window in UTC minutes of the week; the calendar's zone must have a fixed UTC offset."""
    tz = calendar.tz
    offsets = {datetime(2026, month, 1, tzinfo=UTC).astimezone(tz).utcoffset() for month in range(1, 13)}
    if len(offsets) != 1:
        raise AlertingError(f"calendar.yaml: timezone {calendar.timezone} changes its UTC offset during the year; "
                            "a weekly alert rule (UTC clock) cannot follow it")
    offset = offsets.pop()
    assert offset is not None
    offset_minutes = int(offset.total_seconds() // 60)
    sunday_based = (WEEKDAYS.index(window.weekday) + 1) % 7
    local = sunday_based * 1440 + window.start.hour * 60 + window.start.minute
    duration = int(window.duration.total_seconds() // 60)
    if not 0 < duration < MINUTES_PER_WEEK:
        raise AlertingError(f"calendar.yaml: maintenance.recurring {window.id!r}: duration must be under a week")
    start = (local - offset_minutes) % MINUTES_PER_WEEK
    return WeeklySpan(start, (start + duration) % MINUTES_PER_WEEK)


def pipeline_rules(src: Sources) -> list[dict[str, Any]]:
    team = src.spec.routing.platform_team
    rules: list[dict[str, Any]] = [_rule(
        WATCHDOG_ALERT, "vector(1)", severity="none", service=PLATFORM_SERVICE, team=team,
        runbook=f"{INFRA_RUNBOOK}#watchdog",
        summary="The alerting pipeline is alive (always firing)",
        description=("Watchdog always fires. It proves that Prometheus evaluates rules and that Alertmanager "
                     "receives them; a heartbeat receiver that stops hearing it raises the alarm. Never silence it."),
    )]
    for window in src.calendar.maintenance.recurring:
        span = weekly_span(window, src.calendar)
        local_start = ((WEEKDAYS.index(window.weekday) + 1) % 7) * 1440 + window.start.hour * 60 + window.start.minute
        local = (f"{span_text(local_start, local_start + int(window.duration.total_seconds() // 60))} "
                 f"{src.calendar.timezone}")
        for service in window.services:
            rules.append(_rule(
                MAINTENANCE_ALERT, span.promql(), severity="none", service=service, team=src.team_of(service),
                runbook=f"{INFRA_RUNBOOK}#maintenance-window", extra={"window": window.id},
                summary=f"{service}: weekly maintenance {window.id} is on ({local})",
                description=(f"{window.reason} ({window.ticket}, owner {window.owner}). Every {local}, which is "
                             f"{span.utc_text()}. While it fires, Alertmanager inhibits the page and ticket alerts of "
                             f"{service}."),
            ))
    escalations = []
    # Each firing page, valued by how long it has been active (pending included, from ALERTS_FOR_STATE);
    # the rule's `for` counts from when the page started firing, i.e. from when on-call was paged.
    active = f'ALERTS_FOR_STATE{{severity="page",alertname!="{ESCALATION_ALERT}"}}'
    firing = f'ALERTS{{alertstate="firing",severity="page",alertname!="{ESCALATION_ALERT}"}}'
    expr = (f'label_replace(\n  (time() - {active})\n  and ignoring (alertstate) {firing},\n'
            f'  "escalated_alertname", "$1", "alertname", "(.+)"\n)')
    for level in src.spec.escalation:
        escalations.append({
            "alert": ESCALATION_ALERT,
            "expr": expr,
            "for": level.after,
            "labels": {"escalation": level.level, "escalated_after": level.after},
            "annotations": {
                "summary": (f"Escalation to {level.level}: {lbl('escalated_alertname')} "
                            f"({lbl('service')}) has paged for over {level.after}"),
                "description": (f"The page {lbl('escalated_alertname')} of {lbl('service')} (team "
                                f"{lbl('team')}) has been firing for at least {level.after} (active for "
                                f"{DUR}, pending included): the {level.level} level is brought in "
                                f"(PagerDuty service {level.pagerduty}, Slack {level.channel})."),
                "runbook_url": f"{ESCALATION_RUNBOOK}#escalation-to-{level.level}",
            },
        })
    return [{"name": "alerting-pipeline", "rules": rules}, {"name": "page-escalation", "rules": escalations}]


# --- files -----------------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str_presenter)


def dump_yaml(document: Any) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=10_000, allow_unicode=True)


def header(generator: str, sources: Iterable[str], what: str) -> str:
    return (
        "# GENERATED FILE - DO NOT EDIT.\n"
        f"# {what}\n"
        f"# Generated by {generator} from\n"
        + "".join(f"#   {s}\n" for s in sources)
        + f"# Change the specs, then regenerate: {COMMAND}\n"
        "# Explained in docs/alerting.md.\n"
    )


RULE_SOURCES = ("include/config/alerting.yaml", "include/config/slos.yaml", "include/config/metrics.yaml",
                "include/config/services.yaml", "include/config/calendar.yaml")


def generate(src: Sources | None = None) -> dict[Path, str]:
    """The three rule files: repo-relative path -> text (deterministic for the same specs)."""
    src = src if src is not None else load_alerting()
    me = "plugins/gamesre/observability/alerts.py"
    files = {
        GAME_RULES: ("Game alerts: load, latency, matchmaking, data saves, instances.", game_rules(src)),
        INFRA_RULES: ("Infrastructure alerts: nodes, pods, endpoints, quotas, scrape targets.", infra_rules(src)),
        ESCALATION_RULES: ("The alerting pipeline: Watchdog, maintenance windows, page escalation.",
                           pipeline_rules(src)),
    }
    return {path: header(me, RULE_SOURCES, what) + dump_yaml({"groups": groups})
            for path, (what, groups) in files.items()}
