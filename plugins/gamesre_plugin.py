"""The gamesre Airflow plugin: what the project adds to the Airflow API server.

- /gamesre/incidents/alertmanager: Alertmanager's webhook receiver for pages, which opens or joins incidents and
  starts their incident_response runs (gamesre/airflow/incident_intake.py; docs/incidents.md).

The library itself (gamesre/) is on sys.path for every component and is not scanned for plugins
(plugins/.airflowignore); this file is the one the plugin manager loads.
"""
from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from gamesre.airflow.incident_intake import airflow_app


class GameSREPlugin(AirflowPlugin):
    name = "gamesre"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": airflow_app(), "url_prefix": "/gamesre", "name": "gamesre incident intake"}]
