"""PrometheusHook: a PrometheusClient built from an Airflow connection (default `prometheus_default`)."""
from __future__ import annotations

from airflow.sdk import BaseHook

from gamesre.integrations.prometheus import PrometheusClient


def url_from_connection(conn: object) -> str:
    """http(s)://host:port/path from an HTTP-style connection; the host may already be a full URL."""
    host = str(getattr(conn, "host", "") or "")
    if not host:
        raise ValueError(f"connection {getattr(conn, 'conn_id', '?')!r} has no host")
    if "://" in host:
        base = host.rstrip("/")
    else:
        scheme = getattr(conn, "schema", None) or "http"
        port = getattr(conn, "port", None)
        base = f"{scheme}://{host}" + (f":{port}" if port else "")
    return base


class PrometheusHook(BaseHook):
    """Connects to Prometheus through the connection's host, port and schema (http or https)."""

    conn_name_attr = "prometheus_conn_id"
    default_conn_name = "prometheus_default"
    conn_type = "http"
    hook_name = "Prometheus"

    def __init__(self, prometheus_conn_id: str = default_conn_name, timeout: float = 30.0):
        super().__init__()
        self.prometheus_conn_id = prometheus_conn_id
        self.timeout = timeout

    @property
    def url(self) -> str:
        return url_from_connection(self.get_connection(self.prometheus_conn_id))

    def get_conn(self) -> PrometheusClient:
        return PrometheusClient(self.url, timeout=self.timeout)
