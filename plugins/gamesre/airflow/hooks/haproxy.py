"""HAProxyHook: the HAProxy runtime API client from an Airflow connection (default `haproxy_default`: host, port)."""
from __future__ import annotations

from airflow.sdk import BaseHook

from gamesre.integrations.haproxy import HAProxyRuntime


class HAProxyHook(BaseHook):
    conn_name_attr = "haproxy_conn_id"
    default_conn_name = "haproxy_default"
    conn_type = "generic"
    hook_name = "HAProxy runtime API"

    def __init__(self, haproxy_conn_id: str = default_conn_name, timeout: float = 5.0):
        super().__init__()
        self.haproxy_conn_id = haproxy_conn_id
        self.timeout = timeout

    def get_conn(self) -> HAProxyRuntime:
        conn = self.get_connection(self.haproxy_conn_id)
        if not conn.host or not conn.port:
            raise ValueError(f"connection {self.haproxy_conn_id!r} needs the runtime API's host and port")
        return HAProxyRuntime(conn.host, int(conn.port), timeout=self.timeout)
