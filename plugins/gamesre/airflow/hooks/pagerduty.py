"""PagerDutyEventsHook: a PagerDutyEvents client from an Airflow connection (default `pagerduty_default`).

The connection's password is the PagerDuty service's Events v2 integration (routing) key; its host (and port,
schema) the Events API, PagerDuty's own when the host is empty.
"""
from __future__ import annotations

from airflow.sdk import BaseHook

from gamesre.airflow.hooks.prometheus import url_from_connection
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
        url = url_from_connection(conn) if conn.host else EVENTS_URL
        return PagerDutyEvents(conn.password or "", url, timeout=self.timeout)
