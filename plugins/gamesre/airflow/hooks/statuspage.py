"""StatusPageHook: a Statuspage-compatible client from an Airflow connection (default `statuspage_default`).

The connection's password is the API key; its extra `page_id` the page; its host (and port, schema) the API,
Statuspage's own when the host is empty.
"""
from __future__ import annotations

from airflow.sdk import BaseHook

from gamesre.airflow.hooks.pagerduty import api_url
from gamesre.integrations.statuspage import API_URL, StatusPage


class StatusPageHook(BaseHook):
    conn_name_attr = "statuspage_conn_id"
    default_conn_name = "statuspage_default"
    conn_type = "http"
    hook_name = "Status page (Statuspage API v1)"

    def __init__(self, statuspage_conn_id: str = default_conn_name, timeout: float = 10.0):
        super().__init__()
        self.statuspage_conn_id = statuspage_conn_id
        self.timeout = timeout

    def get_conn(self) -> StatusPage:
        conn = self.get_connection(self.statuspage_conn_id)
        return StatusPage(conn.password or "", str(conn.extra_dejson.get("page_id") or ""),
                          api_url(conn.host, conn.schema, conn.port, API_URL), timeout=self.timeout)
