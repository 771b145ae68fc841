"""The one place that builds the use cases' ports from Airflow hooks and connections (gamesre.app.*)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gamesre.airflow import notify

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from gamesre.integrations.alertmanager import AlertmanagerClient
    from gamesre.integrations.haproxy import HAProxyRuntime
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


class HookConnections:
    """The clients a backend factory asks for (gamesre.integrations.connections), from Airflow connections."""

    def haproxy(self) -> HAProxyRuntime:
        from gamesre.airflow.hooks.haproxy import HAProxyHook

        return HAProxyHook().get_conn()

    def kubernetes(self) -> ApiClient:
        from gamesre.airflow.hooks.kubernetes import api_client

        return api_client()
