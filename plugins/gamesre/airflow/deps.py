"""The one place that builds the use cases' ports from Airflow hooks and connections (gamesre.app.*)."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from gamesre.airflow import notify

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from gamesre.app.chaos import ChaosPorts
    from gamesre.chaos.faults import ChaosBackend
    from gamesre.integrations.alertmanager import AlertmanagerClient
    from gamesre.integrations.haproxy import HAProxyRuntime
    from gamesre.integrations.prometheus import PrometheusClient
    from gamesre.integrations.store import SREStore

T = TypeVar("T")


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
    """The clients a backend factory asks for (gamesre.integrations.connections), from Airflow connections."""

    def haproxy(self) -> HAProxyRuntime:
        from gamesre.airflow.hooks.haproxy import HAProxyHook

        return HAProxyHook().get_conn()

    def kubernetes(self) -> ApiClient:
        from gamesre.airflow.hooks.kubernetes import api_client

        return api_client()


def chaos_ports() -> ChaosPorts:
    """The chaos steps' ports: the SRE store, Prometheus and Alertmanager from their connections, each service's
    fault backend by its kind (services.yaml chaos.backend) from the registry, Slack, the kill-switch Variable, and
    the report folder (GAMESRE_REPORT_DIR, else $AIRFLOW_HOME/reports, then chaos/)."""
    from airflow.sdk import Variable

    import gamesre.integrations.backends  # noqa: F401  (registers the product's backend kinds)
    from gamesre.app.chaos import ChaosConfig, ChaosPorts
    from gamesre.chaos.faults import FAULT_BACKENDS

    config = ChaosConfig()
    connections = HookConnections()

    def backend(service: str) -> ChaosBackend:
        spec = config.services.get(service)
        return FAULT_BACKENDS.create(spec.chaos.backend, spec, connections)

    def kill_switch(variable: str) -> object:
        return Variable.get(variable, default=None)

    reports = os.environ.get("GAMESRE_REPORT_DIR") or os.path.join(os.environ.get("AIRFLOW_HOME", "."), "reports")
    return ChaosPorts(store=on_first_use(store), prometheus=on_first_use(prometheus),
                      alertmanager=on_first_use(alertmanager), backend=backend, notifier=SlackNotifier(),
                      kill_switch=kill_switch, config=config, report_dir=Path(reports) / "chaos")
