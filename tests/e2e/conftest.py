"""A real Airflow (`airflow standalone`) wired to the test services, driven through its REST API."""
from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from demo.airflow_env import Endpoints
from demo.procs import free_port
from gamesre.core.paths import CONFIG_DIR
from tests.airflow_api import AirflowAPI, RestartableAlertmanager, airflow_standalone
from tests.databases import postgres_database, postgres_reachable


@pytest.fixture(scope="package")
def airflow_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str | None, str]]:
    """(Airflow metadata URL, SRE store URL): on PostgreSQL where it answers (as on CI), else SQLite files."""
    if not postgres_reachable():
        yield None, f"sqlite:///{tmp_path_factory.mktemp('sre-store') / 'sre.db'}"
        return
    with postgres_database("gamesre_e2e_airflow") as metadata, postgres_database("gamesre_e2e_store") as store:
        yield metadata, store


# The incident tests' escalation, in seconds rather than 5 min, 30 min and 1 h (only incidents.yaml differs from the
# repository's include/config, and only the incident workflow reads it).
FAST_ESCALATION = {"secondary_unacknowledged_after": "20s", "tertiary_unresolved_after": "300s",
                   "executive_unresolved_after": "600s"}


def config_with_fast_escalation(target: Path) -> Path:
    shutil.copytree(CONFIG_DIR, target)
    incidents = yaml.safe_load((target / "incidents.yaml").read_text())
    incidents["incidents"]["escalation"] = FAST_ESCALATION
    (target / "incidents.yaml").write_text(yaml.safe_dump(incidents, sort_keys=False))
    return target


@pytest.fixture(scope="package")
def airflow(tmp_path_factory: pytest.TempPathFactory, history_prometheus, slack_sink,
            airflow_databases) -> Iterator[AirflowAPI]:
    """Airflow for the end-to-end tests; stopped when they are done, so it does not load later tests."""
    home = tmp_path_factory.mktemp("airflow-home")
    metadata_url, store_url = airflow_databases
    intake_token = home / "incident-intake-token"  # what the incident intake on the API server checks
    intake_token.write_text(secrets.token_hex(32))
    config_dir = config_with_fast_escalation(home / "config")
    port = free_port()
    alertmanager = RestartableAlertmanager(tmp_path_factory.mktemp("airflow-alertmanager"), free_port(),
                                           slack_sink.webhook_url)
    alertmanager.start()
    ep = Endpoints(
        prometheus_port=int(history_prometheus.url.rsplit(":", 1)[1]),
        alertmanager_port=alertmanager.port,
        slack_sink_port=slack_sink.port,
        sre_store_url=store_url,
        incident_intake_token_file=intake_token,
    )
    try:
        with airflow_standalone(home, ep, port, metadata_url,
                                extra_env={"GAMESRE_CONFIG_DIR": str(config_dir)}) as password:
            yield AirflowAPI(f"http://127.0.0.1:{port}", password, store_url, home, alertmanager)
    finally:
        alertmanager.stop()
