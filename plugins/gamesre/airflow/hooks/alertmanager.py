"""AlertmanagerHook: an AlertmanagerClient built from an Airflow connection (default `alertmanager_default`)."""
from __future__ import annotations

from airflow.sdk import BaseHook

from gamesre.airflow.hooks.prometheus import url_from_connection
from gamesre.integrations.alertmanager import AlertmanagerClient


class AlertmanagerHook(BaseHook):
    conn_name_attr = "alertmanager_conn_id"
    default_conn_name = "alertmanager_default"
    conn_type = "http"
    hook_name = "Alertmanager"

    def __init__(self, alertmanager_conn_id: str = default_conn_name, timeout: float = 10.0):
        super().__init__()
        self.alertmanager_conn_id = alertmanager_conn_id
        self.timeout = timeout

    def get_conn(self) -> AlertmanagerClient:
        return AlertmanagerClient(url_from_connection(self.get_connection(self.alertmanager_conn_id)),
                                  timeout=self.timeout)
