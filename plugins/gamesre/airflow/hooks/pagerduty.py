"""PagerDutyEventsHook: a PagerDutyEvents client from an Airflow connection (default `pagerduty_default`).

The connection's password is the PagerDuty service's Events v2 integration (routing) key; its host (and port,
schema) the Events API, PagerDuty's own when the host is empty.
"""
from __future__ import annotations

from airflow.sdk import BaseHook

from gamesre.integrations.pagerduty import EVENTS_URL, PagerDutyEvents


class PagerDutyEventsHook(BaseHook):
    conn_name_attr = "pagerduty_conn_id"
    default_conn_name = "pagerduty_default"
    conn_type = "http"
    hook_name = "PagerDuty Events v2"

    def __init__(self, pagerduty_conn_id: str = default_conn_name, timeout: float = 10.0):
        super().__init__()
        self.pagerduty_conn_id = pagerduty_conn_id
        self.timeout = timeout

    def get_conn(self) -> PagerDutyEvents:
        conn = self.get_connection(self.pagerduty_conn_id)
        return PagerDutyEvents(conn.password or "", api_url(conn.host, conn.schema, conn.port, EVENTS_URL),
                               timeout=self.timeout)


def api_url(host: str | None, schema: str | None, port: int | None, default: str) -> str:
    """An API's base URL from a connection whose password is a key, not an HTTP credential (so not an
    HttpEndpoint): the host as a full URL, or scheme://host:port; `default` (the vendor's own) without a host."""
    if not host:
        return default
    if "://" in host:
        return host.rstrip("/")
    return f"{schema or 'https'}://{host}" + (f":{port}" if port else "")
