"""The one place that builds the use cases' ports from Airflow hooks and connections (gamesre.app.*)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gamesre.airflow import notify
from gamesre.app.ports import utcnow

if TYPE_CHECKING:
    from gamesre.app.maintenance import MaintenancePorts
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
