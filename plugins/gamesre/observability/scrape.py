"""The Prometheus configuration: one scrape job per game service and exporter, rule files, Alertmanager.

One renderer, `render()`, for every place Prometheus runs: the docker-compose stack's committed
include/prometheus/prometheus.yml (`generate()`, container hostnames from alerting.yaml `compose`) and the
demo and test harness (demo/services.render_prometheus_config, loopback ports). Each job scrapes at its own
interval and timeout from alerting.yaml `prometheus.scrape`; the harness may override the interval for every
job at once (its tests want fresh samples every few seconds). Fleet targets carry their logical name as the
`instance` label (gs-stable-1, ...), never host:port, so backfilled history and live scrapes are one series.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gamesre.observability.alerts import (
    COMMAND,
    AlertingError,
    ScrapeJob,
    Sources,
    dump_yaml,
    load_alerting,
    seconds,
)

PROMETHEUS_CONFIG = Path("include/prometheus/prometheus.yml")
# Relative rule paths resolve against the configuration file's folder: the repository's include/prometheus/
# for `promtool check config`, the mounted folder in the container.
COMPOSE_RULE_FILES = ("*_rules.yml",)


@dataclass(frozen=True)
class Target:
    """One scrape target: `address` is host:port, optionally followed by the metrics path (host:port/path)."""

    job: str
    address: str
    instance: str | None = None  # the logical `instance` label (e.g. gs-stable-1); None keeps host:port

    @property
    def host_port(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def path(self) -> str | None:
        _, sep, rest = self.address.partition("/")
        return f"/{rest}" if sep else None


class ScrapeConfigError(AlertingError):
    """Targets that cannot be rendered (a job without settings, paths that disagree within a job)."""


def _job_config(job: str, targets: Sequence[Target], settings: ScrapeJob | None,
                interval_override: str | None) -> dict[str, Any]:
    paths = {t.path for t in targets if t.path}
    if len(paths) > 1:
        raise ScrapeConfigError(f"job {job!r}: targets ask for different metrics paths ({', '.join(sorted(paths))})")
    if settings is None and interval_override is None:
        raise ScrapeConfigError(f"job {job!r} has no scrape settings in include/config/alerting.yaml "
                                "prometheus.scrape")
    interval = interval_override or (settings.interval if settings else "15s")
    timeout = settings.timeout if settings else interval
    if seconds(timeout) > seconds(interval):
        timeout = interval
    path = paths.pop() if paths else (settings.metrics_path if settings else "/metrics")
    static: list[dict[str, Any]] = []
    plain = [t.host_port for t in targets if t.instance is None]
    if plain:
        static.append({"targets": plain})
    for t in targets:
        if t.instance is not None:
            static.append({"targets": [t.host_port], "labels": {"instance": t.instance}})
    config: dict[str, Any] = {"job_name": job, "scrape_interval": interval, "scrape_timeout": timeout}
    if path != "/metrics":
        config["metrics_path"] = path
    config["static_configs"] = static
    return config


def render(
    targets: Iterable[Target],
    *,
    jobs: Mapping[str, ScrapeJob],
    evaluation_interval: str,
    external_labels: Mapping[str, str],
    rule_files: Sequence[str] = (),
    alertmanagers: Sequence[str] = (),
    interval_override: str | None = None,
    header: str = "",
) -> str:
    """The configuration's text. Jobs come in the order of `jobs` (alerting.yaml), then any others by name."""
    by_job: dict[str, list[Target]] = {}
    for t in targets:
        by_job.setdefault(t.job, []).append(t)
    order = [j for j in jobs if j in by_job] + sorted(j for j in by_job if j not in jobs)
    global_interval = interval_override or min((s.interval for s in jobs.values()), key=seconds, default="15s")
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": global_interval,
            "scrape_timeout": min(global_interval, "10s", key=seconds),
            "evaluation_interval": interval_override or evaluation_interval,
            "external_labels": dict(external_labels),
        },
        "rule_files": list(rule_files),
    }
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    config["scrape_configs"] = [_job_config(j, by_job[j], jobs.get(j), interval_override) for j in order]
    return header + dump_yaml(config)


def compose_targets(src: Sources) -> list[Target]:
    """The docker-compose stack's targets from alerting.yaml `compose.targets`."""
    found: list[Target] = []
    for job, entries in src.spec.compose.targets.items():
        if isinstance(entries, dict):
            found += [Target(job, address, instance) for instance, address in entries.items()]
        else:
            found += [Target(job, address) for address in entries]
    return found


def generate(src: Sources | None = None) -> dict[Path, str]:
    """include/prometheus/prometheus.yml for the docker-compose stack (repo-relative path -> text)."""
    src = src if src is not None else load_alerting()
    prom = src.spec.prometheus
    header = (
        "# GENERATED FILE - DO NOT EDIT.\n"
        "# The Prometheus configuration of the docker-compose stack (container hostnames).\n"
        "# Generated by plugins/gamesre/observability/scrape.py from include/config/alerting.yaml\n"
        f"# Change the spec, then regenerate: {COMMAND}\n"
        "# Rule files are found next to this file. Explained in docs/alerting.md.\n"
    )
    text = render(compose_targets(src), jobs=prom.scrape, evaluation_interval=prom.evaluation_interval,
                  external_labels=prom.external_labels, rule_files=COMPOSE_RULE_FILES,
                  alertmanagers=[src.spec.compose.alertmanager], header=header)
    return {PROMETHEUS_CONFIG: text}
