"""The metric contract: names, labels, label values and buckets of every game metric (include/config/metrics.yaml)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from gamesre.core.paths import METRICS_CONTRACT

METRIC_TYPES = ("counter", "gauge", "histogram")


class ContractError(ValueError):
    """The contract file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class MetricDef:
    name: str
    type: str
    service: str  # a service name from the contract, or "any"
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()

    def series_names(self) -> tuple[str, ...]:
        """Names of the exposed series (histograms expand to _bucket, _sum and _count)."""
        if self.type == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


@dataclass(frozen=True)
class ServiceDef:
    name: str
    team: str
    job: str


@dataclass(frozen=True)
class Contract:
    target_labels: tuple[str, ...]
    scrape_labels: tuple[str, ...]
    max_concurrent_sessions: int
    services: dict[str, ServiceDef]
    label_values: dict[str, tuple[str, ...]]
    metrics: dict[str, MetricDef]
    # Series of the standard exporters (node-exporter, cAdvisor, kube-state-metrics, Prometheus itself): exporter
    # name -> job, and metric name -> definition whose `service` is the exporter. Their label values are open.
    exporters: dict[str, str] = field(default_factory=dict)
    infrastructure: dict[str, MetricDef] = field(default_factory=dict)

    def metric(self, name: str) -> MetricDef:
        try:
            return self.metrics[name]
        except KeyError:
            raise ContractError(f"metric {name!r} is not in the metric contract") from None

    def all_labels(self, metric: MetricDef) -> tuple[str, ...]:
        """Every label a stored series of this metric may carry."""
        extra = ("le",) if metric.type == "histogram" else ()
        return self.target_labels + self.scrape_labels + metric.labels + extra

    def series_index(self) -> dict[str, MetricDef]:
        """Exposed series name -> metric definition (histograms contribute three names)."""
        return {series: m for m in self.metrics.values() for series in m.series_names()}

    def all_series(self) -> set[str]:
        """Every series name a dashboard or alert rule may read: the game series and the infrastructure ones."""
        return set(self.series_index()) | set(self.infrastructure)

    def infra_job(self, metric: str) -> str:
        """The Prometheus job that scrapes an infrastructure metric's exporter."""
        return self.exporters[self.infrastructure[metric].service]

    def metrics_for(self, service: str) -> list[MetricDef]:
        return [m for m in self.metrics.values() if m.service in (service, "any")]


_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def parse_contract(raw: object, source: str = "metrics.yaml") -> Contract:
    """Validate the raw YAML document; every error names the file and the entry."""
    if not isinstance(raw, dict):
        raise ContractError(f"{source}: expected a mapping at the top level")

    def need(mapping: dict[str, Any], key: str, where: str) -> Any:
        if key not in mapping:
            raise ContractError(f"{source}: {where}: missing field {key!r}")
        return mapping[key]

    services = {
        name: ServiceDef(name=name, team=str(need(s, "team", f"services.{name}")),
                         job=str(need(s, "job", f"services.{name}")))
        for name, s in dict(need(raw, "services", "top level")).items()
    }
    label_values = {k: tuple(str(v) for v in vs) for k, vs in dict(need(raw, "label_values", "top level")).items()}
    metrics: dict[str, MetricDef] = {}
    for name, m in dict(need(raw, "metrics", "top level")).items():
        where = f"metrics.{name}"
        if not _NAME.match(name):
            raise ContractError(f"{source}: {where}: not a valid Prometheus metric name")
        mtype = str(need(m, "type", where))
        if mtype not in METRIC_TYPES:
            raise ContractError(f"{source}: {where}.type: {mtype!r} is not one of {', '.join(METRIC_TYPES)}")
        service = str(need(m, "service", where))
        if service != "any" and service not in services:
            raise ContractError(f"{source}: {where}.service: unknown service {service!r}")
        labels = tuple(str(x) for x in m.get("labels") or ())
        for label in labels:
            if label not in label_values:
                raise ContractError(f"{source}: {where}.labels: label {label!r} has no entry in label_values")
        buckets = tuple(float(b) for b in m.get("buckets") or ())
        if mtype == "histogram":
            if not buckets or list(buckets) != sorted(set(buckets)):
                raise ContractError(f"{source}: {where}.buckets: a histogram needs strictly increasing buckets")
        elif buckets:
            raise ContractError(f"{source}: {where}.buckets: only histograms have buckets")
        metrics[name] = MetricDef(name, mtype, service, str(m.get("help", "")), labels, buckets)
    exporters = {name: str(need(e, "job", f"exporters.{name}")) for name, e in dict(raw.get("exporters") or {}).items()}
    infrastructure: dict[str, MetricDef] = {}
    for name, m in dict(raw.get("infrastructure") or {}).items():
        where = f"infrastructure.{name}"
        if not _NAME.match(name):
            raise ContractError(f"{source}: {where}: not a valid Prometheus metric name")
        if name in metrics:
            raise ContractError(f"{source}: {where}: already defined under metrics")
        mtype = str(need(m, "type", where))
        if mtype not in ("counter", "gauge"):
            raise ContractError(f"{source}: {where}.type: {mtype!r} is not one of counter, gauge")
        exporter = str(need(m, "exporter", where))
        if exporter not in exporters:
            raise ContractError(f"{source}: {where}.exporter: unknown exporter {exporter!r}")
        infrastructure[name] = MetricDef(name, mtype, exporter, str(m.get("help", "")),
                                         tuple(str(x) for x in m.get("labels") or ()))
    capacity = dict(raw.get("capacity") or {})
    return Contract(
        target_labels=tuple(need(raw, "target_labels", "top level")),
        scrape_labels=tuple(need(raw, "scrape_labels", "top level")),
        max_concurrent_sessions=int(need(capacity, "max_concurrent_sessions", "capacity")),
        services=services,
        label_values=label_values,
        metrics=metrics,
        exporters=exporters,
        infrastructure=infrastructure,
    )


@lru_cache(maxsize=4)
def load_contract(path: Path = METRICS_CONTRACT) -> Contract:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"{path}: cannot read the metric contract: {exc}") from exc
    return parse_contract(raw, str(path))
