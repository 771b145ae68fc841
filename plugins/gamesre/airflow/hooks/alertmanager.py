"""AlertmanagerHook: an AlertmanagerClient built from an Airflow connection (default `alertmanager_default`): its
URL, credentials, TLS settings and headers (gamesre.airflow.hooks.http_endpoint; docs/connections.md)."""
from __future__ import annotations

import logging

from airflow.sdk import BaseHook

from gamesre.airflow.hooks.http_endpoint import endpoint_from_connection
from gamesre.integrations.alertmanager import AlertmanagerClient
from gamesre.integrations.http_endpoint import HttpEndpoint

log = logging.getLogger(__name__)


class AlertmanagerHook(BaseHook):
    conn_name_attr = "alertmanager_conn_id"
    default_conn_name = "alertmanager_default"
    conn_type = "http"
    hook_name = "Alertmanager"

    def __init__(self, alertmanager_conn_id: str = default_conn_name, timeout: float = 10.0):
        super().__init__()
        self.alertmanager_conn_id = alertmanager_conn_id
        self.timeout = timeout

    def endpoint(self) -> HttpEndpoint:
        return endpoint_from_connection(self.get_connection(self.alertmanager_conn_id), "Alertmanager")

    def get_conn(self) -> AlertmanagerClient:
        endpoint = self.endpoint()
        log.info("using %s", endpoint.describe())
        return AlertmanagerClient(endpoint, timeout=self.timeout)
