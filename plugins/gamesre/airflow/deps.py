"""The one place that builds the use cases' ports from Airflow hooks and connections (gamesre.app.*)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gamesre.airflow import notify
from gamesre.app.ports import utcnow

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from gamesre.app.checklists import ChecklistPorts
    from gamesre.app.deploy import DeployPorts
    from gamesre.app.maintenance import MaintenancePorts
    from gamesre.app.slo import SloPorts
    from gamesre.integrations.alertmanager import AlertmanagerClient
    from gamesre.integrations.prometheus import PrometheusClient
    from gamesre.integrations.store import SREStore


class SlackNotifier:
    """Slack through the provider's hooks (`slack_default` webhook, `slack_api_default` Web API)."""

    def message(self, text: str, *, channel: str | None = None) -> bool:
        return notify.post_message(text, channel=channel)

    def file(self, path: Path, *, channel_id: str, title: str, comment: str | None = None) -> bool:
        return notify.post_file(path, channel_id=channel_id, title=title, comment=comment)


def store() -> SREStore:
    from gamesre.airflow.hooks.store import SREStoreHook

    return SREStoreHook().get_conn()


def prometheus() -> PrometheusClient:
    from gamesre.airflow.hooks.prometheus import PrometheusHook

    return PrometheusHook().get_conn()


def alertmanager() -> AlertmanagerClient:
    from gamesre.airflow.hooks.alertmanager import AlertmanagerHook

    return AlertmanagerHook().get_conn()


class AirflowConnections:
    """The connections backend factories ask for, from Airflow connections (`haproxy_default`,
    `kubernetes_default`), opened when first asked for."""

    def haproxy(self) -> Any:
        from gamesre.airflow.hooks.haproxy import HAProxyHook

        return HAProxyHook().get_conn()

    def kubernetes(self) -> Any:
        from gamesre.airflow.hooks.kubernetes import api_client

        return api_client()


def maintenance_ports() -> MaintenancePorts:
    import gamesre.integrations.backends  # noqa: F401  (registers the product's scaling kinds)
    from gamesre.app.maintenance import MaintenancePorts
    from gamesre.calendar import load_calendar
    from gamesre.calendar.scaling import EVENT_SCALERS
    from gamesre.core.services import load_services

    services = load_services()
    connections = AirflowConnections()
    return MaintenancePorts(store=store(), silences=alertmanager(), notifier=SlackNotifier(), clock=utcnow,
                            scaler=lambda kind: EVENT_SCALERS.create(kind, services, connections),
                            services=services, calendar=load_calendar(services=services))


def checklist_ports() -> ChecklistPorts:
    """The checklists read Prometheus and Alertmanager through their inputs: a client that cannot be built
    (no connection) makes its inputs Unavailable with the reason, never fails the run."""
    from gamesre.app.checklists import ChecklistPorts
    from gamesre.checklists import load_checklists
    from gamesre.core.paths import report_root
    from gamesre.integrations.checklist_sources import fetch_inputs

    the_store = store()
    clients: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for name, build in (("prometheus", prometheus), ("alertmanager", alertmanager)):
        try:
            clients[name] = build()
        except Exception as exc:  # no connection: its inputs are Unavailable with this reason
            missing[name] = f"{type(exc).__name__}: {exc}"
            log.warning("%s unavailable for this checklist: %s", name, missing[name])

    def fetch(plan: Any, at: int) -> Any:
        return fetch_inputs(plan, at, prometheus=clients.get("prometheus"), alertmanager=clients.get("alertmanager"),
                            store=the_store)

    return ChecklistPorts(store=the_store, fetch_inputs=fetch, notifier=SlackNotifier(), clock=utcnow,
                          checklists=load_checklists(), report_dir=report_root())


def slo_ports() -> SloPorts:
    import os

    from gamesre.app.slo import SloPorts
    from gamesre.slo.spec import load_policies, load_slos

    return SloPorts(store=store(), prometheus=prometheus, notifier=SlackNotifier(), clock=utcnow, slos=load_slos(),
                    policy=load_policies(),
                    report_channel_id=os.environ.get("GAMESRE_REPORT_CHANNEL", "C0SREREPORTS"))


def deploy_ports() -> DeployPorts:
    import gamesre.integrations.backends  # noqa: F401  (registers the product's deploy backend kinds)
    from gamesre.airflow.links import run_url
    from gamesre.app.deploy import DeployConfigs, DeployPorts
    from gamesre.calendar import load_calendar
    from gamesre.core.services import load_services
    from gamesre.deploy.backend import DEPLOY_BACKENDS
    from gamesre.deploy.config import load_deploy_config
    from gamesre.slo.spec import load_policies, load_slos

    services = load_services()
    configs = DeployConfigs(services=services, deploy=load_deploy_config(), policy=load_policies(), slos=load_slos(),
                            calendar=load_calendar(services=services))
    connections = AirflowConnections()

    def backend(service: str, stage: str) -> Any:
        spec = services.get(service)
        return DEPLOY_BACKENDS.create(spec.deploy.backend, spec, stage, connections)

    return DeployPorts(store=store(), alertmanager=alertmanager(), backend=backend, notifier=SlackNotifier(),
                       clock=utcnow, configs=configs, run_url=lambda run_id: run_url("game_service_deploy", run_id))
