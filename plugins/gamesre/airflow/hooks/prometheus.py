"""PrometheusHook: a PrometheusClient built from an Airflow connection (default `prometheus_default`): its URL,
credentials, TLS settings and headers (gamesre.airflow.hooks.http_endpoint; docs/connections.md)."""
from __future__ import annotations

import logging

from airflow.sdk import BaseHook

from gamesre.airflow.hooks.http_endpoint import endpoint_from_connection
from gamesre.integrations.http_endpoint import HttpEndpoint
from gamesre.integrations.prometheus import PrometheusClient

log = logging.getLogger(__name__)


class PrometheusHook(BaseHook):
    """Connects to Prometheus (or Mimir, Cortex, Thanos) as the connection describes it."""

    conn_name_attr = "prometheus_conn_id"
    default_conn_name = "prometheus_default"
    conn_type = "http"
    hook_name = "Prometheus"

    def __init__(self, prometheus_conn_id: str = default_conn_name, timeout: float = 30.0):
        super().__init__()
        self.prometheus_conn_id = prometheus_conn_id
        self.timeout = timeout

    def endpoint(self) -> HttpEndpoint:
        return endpoint_from_connection(self.get_connection(self.prometheus_conn_id), "Prometheus")

    def get_conn(self) -> PrometheusClient:
        endpoint = self.endpoint()
        log.info("using %s", endpoint.describe())
        return PrometheusClient(endpoint, timeout=self.timeout)
