"""The one place that builds the use cases' ports from Airflow hooks and connections (gamesre.app.*)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from gamesre.airflow import notify
from gamesre.app.ports import utcnow

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from gamesre.app.chaos import ChaosPorts
    from gamesre.app.checklists import ChecklistPorts
    from gamesre.app.deploy import DeployPorts
    from gamesre.app.enforcement import EnforcementPorts
    from gamesre.app.failures import FailurePorts
    from gamesre.app.incidents import IncidentPorts
    from gamesre.app.maintenance import MaintenancePorts
    from gamesre.app.slo import SloPorts
    from gamesre.chaos.faults import ChaosBackend
    from gamesre.integrations.alertmanager import AlertmanagerClient
    from gamesre.integrations.haproxy import HAProxyRuntime
    from gamesre.integrations.pagerduty import PagerDutyEvents
    from gamesre.integrations.prometheus import PrometheusClient
    from gamesre.integrations.statuspage import StatusPage
    from gamesre.integrations.store import SREStore

T = TypeVar("T")


class SlackNotifier:
    """Slack's Web API through the provider (`slack_api_default`): messages and files to a channel by its id."""

    def message(self, text: str, *, channel_id: str) -> bool:
        return notify.post_message(text, channel_id=channel_id)

    def file(self, path: Path, *, channel_id: str, title: str, comment: str | None = None) -> bool:
        return notify.post_file(path, channel_id=channel_id, title=title, comment=comment)

    def create_channel(self, name: str) -> str:
        return notify.create_channel(name)


def store() -> SREStore:
    from gamesre.airflow.hooks.store import SREStoreHook

    return SREStoreHook().get_conn()


def prometheus() -> PrometheusClient:
    from gamesre.airflow.hooks.prometheus import PrometheusHook

    return PrometheusHook().get_conn()


def alertmanager() -> AlertmanagerClient:
    from gamesre.airflow.hooks.alertmanager import AlertmanagerHook

    return AlertmanagerHook().get_conn()


# --- chaos game-days ------------------------------------------------------------------------------------------

class _OnFirstUse:
    """Stands for a client and builds it when first used."""

    def __init__(self, build: Callable[[], object]):
        self._build = build
        self._client: object | None = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = self._build()
        return getattr(self._client, name)


def on_first_use(build: Callable[[], T]) -> T:
    """`build()`'s client, built on its first use: a task reads only the connections of the systems it asks (recover
    never needs Alertmanager's), and a missing one fails only the task that needs it."""
    return cast(T, _OnFirstUse(build))


class HookConnections:
    """The clients a backend factory asks for (gamesre.integrations.connections), from Airflow connections
    (`haproxy_default`, `kubernetes_default`), opened when first asked for."""

    def haproxy(self) -> HAProxyRuntime:
        from gamesre.airflow.hooks.haproxy import HAProxyHook

        return HAProxyHook().get_conn()

    def kubernetes(self) -> ApiClient:
        from gamesre.airflow.hooks.kubernetes import api_client

        return api_client()


def maintenance_ports() -> MaintenancePorts:
    import gamesre.integrations.backends  # noqa: F401  (registers the product's scaling kinds)
    from gamesre.app.maintenance import MaintenancePorts
    from gamesre.calendar import load_calendar
    from gamesre.calendar.scaling import EVENT_SCALERS
    from gamesre.core.services import load_services

    services = load_services()
    connections = HookConnections()
    return MaintenancePorts(store=store(), silences=alertmanager(), notifier=SlackNotifier(), clock=utcnow,
                            scaler=lambda kind: EVENT_SCALERS.create(kind, services, connections),
                            services=services, calendar=load_calendar(services=services))


def checklist_ports() -> ChecklistPorts:
    """The checklists read Prometheus and Alertmanager through their inputs: a client that cannot be built
    (no connection) makes its inputs Unavailable with the reason, never fails the run."""
    from gamesre.app.checklists import ChecklistPorts
    from gamesre.checklists import load_checklists
    from gamesre.core.paths import report_root
    from gamesre.core.services import load_services
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
                          checklists=load_checklists(), report_dir=report_root(),
                          report_channel_id=load_services().sre.slack.channel_id)


def slo_ports() -> SloPorts:
    from gamesre.app.slo import SloPorts
    from gamesre.core.services import load_services
    from gamesre.slo.spec import load_policies, load_slos

    return SloPorts(store=store(), prometheus=prometheus, notifier=SlackNotifier(), clock=utcnow, slos=load_slos(),
                    policy=load_policies(), report_channel_id=load_services().sre.slack.channel_id)


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
    connections = HookConnections()

    def backend(service: str, stage: str) -> Any:
        spec = services.get(service)
        return DEPLOY_BACKENDS.create(spec.deploy.backend, spec, stage, connections)

    return DeployPorts(store=store(), alertmanager=alertmanager(), backend=backend, notifier=SlackNotifier(),
                       clock=utcnow, configs=configs, run_url=lambda run_id: run_url("game_service_deploy", run_id))


def chaos_ports() -> ChaosPorts:
    """The chaos steps' ports: the SRE store, Prometheus and Alertmanager from their connections, each service's
    fault backend by its kind (services.yaml chaos.backend) from the registry, Slack, the kill-switch Variable, and
    the report folder (GAMESRE_REPORT_DIR, else $AIRFLOW_HOME/reports, then chaos/)."""
    from airflow.sdk import Variable

    import gamesre.integrations.backends  # noqa: F401  (registers the product's backend kinds)
    from gamesre.app.chaos import ChaosConfig, ChaosPorts
    from gamesre.chaos.faults import FAULT_BACKENDS
    from gamesre.core.paths import report_root

    config = ChaosConfig()
    connections = HookConnections()

    def backend(service: str) -> ChaosBackend:
        spec = config.services.get(service)
        return FAULT_BACKENDS.create(spec.chaos.backend, spec, connections)

    def kill_switch(variable: str) -> object:
        return Variable.get(variable, default=None)

    return ChaosPorts(store=on_first_use(store), prometheus=on_first_use(prometheus),
                      alertmanager=on_first_use(alertmanager), backend=backend, notifier=SlackNotifier(),
                      kill_switch=kill_switch, config=config, report_dir=report_root() / "chaos")


def pager() -> PagerDutyEvents:
    from gamesre.airflow.hooks.pagerduty import PagerDutyEventsHook

    return PagerDutyEventsHook().get_conn()


def failure_ports() -> FailurePorts:
    """For the failure notifier: Slack, and the store and PagerDuty (`pagerduty_default`) opened only when needed,
    so a missing connection costs only the part that needs it."""
    from gamesre.app.failures import FailurePorts
    from gamesre.core.services import load_services
    from gamesre.slo.spec import load_policies

    return FailurePorts(notifier=SlackNotifier(), fixed_channel=notify.post_webhook, pager=pager, store=store,
                        clock=utcnow, services=load_services(), policy=load_policies())


def incident_ports() -> IncidentPorts:
    from gamesre.app.incidents import IncidentPorts
    from gamesre.core.paths import report_root

    return IncidentPorts(store=store(), chat=SlackNotifier(), pager=pager, clock=utcnow, report_dir=report_root(),
                         status_page=status_page, alertmanager=alertmanager, chaos_abort=abort_chaos_run)


def abort_chaos_run(run_id: str, why: str) -> str:
    """Turn on one chaos run's own kill switch (a Variable its monitor reads at every poll); returns its key."""
    from airflow.sdk import Variable

    from gamesre.app.chaos import ChaosConfig
    from gamesre.chaos.gates import run_switch_variable

    key = run_switch_variable(ChaosConfig().catalog.policy.kill_switch_variable, run_id)
    Variable.set(key, "on", description=f"kill switch of chaos run {run_id}: {why}"[:1000])
    return key


def status_page() -> StatusPage:
    from gamesre.airflow.hooks.statuspage import StatusPageHook

    return StatusPageHook().get_conn()


def enforcement_ports() -> EnforcementPorts:
    """The budget policy's enforcement: the SRE store, Slack, PagerDuty (opened only to page), the configuration."""
    from gamesre.app.enforcement import EnforcementPorts
    from gamesre.core.services import load_services
    from gamesre.slo.spec import load_policies, load_slos

    return EnforcementPorts(store=store(), notifier=SlackNotifier(), pager=pager, clock=utcnow,
                            services=load_services(), slos=load_slos(), policy=load_policies())
