"""Airflow wired to a live demo stack: the fleet behind HAProxy under load, scraped by a real Prometheus.

game_service_deploy moves real traffic with HAProxy weights and judges real metrics, so this package's Airflow
gets its own stack (the other end-to-end tests use a Prometheus holding backfilled history only). Package
scoped: it stops when the deploy tests are done, before the other end-to-end tests start their Airflow.
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from demo.airflow_env import Endpoints
from demo.procs import ProcessGroup, free_port
from gamesre.integrations.haproxy import HAProxyRuntime
from gamesre.integrations.store import SREStore
from tests.airflow_api import AirflowAPI, RestartableAlertmanager, airflow_standalone
from tests.conftest import LiveStack, _start_live_stack, fleet_document
from tests.databases import postgres_database, postgres_reachable


@dataclass
class DeployStack:
    airflow: AirflowAPI
    live: LiveStack
    fleet: dict
    store: SREStore
    haproxy: HAProxyRuntime

    def publish_state(self, service: str, state: str, slo_states: dict[str, str] | None = None) -> None:
        """Publish a fresh error-budget state for the service, as error_budget_report would."""
        self.store.publish_state("service", service, state, datetime.now(UTC), [],
                                 {"service": service, "state": state, "slo_states": slo_states or {}})




@pytest.fixture(scope="package")
def deploy_stack(tmp_path_factory: pytest.TempPathFactory, slack_sink) -> Iterator[DeployStack]:
    workdir = tmp_path_factory.mktemp("deploy-stack")
    group = ProcessGroup()
    with group.running(), contextlib.ExitStack() as stack:
        # The demo's own load (30 requests/s at the evening peak): a 10% canary then sees ~2 actions a second.
        live = _start_live_stack(group, workdir, peak_rps=30)
        fleet = fleet_document(live)
        fleet_file = Path(workdir) / "fleet.json"
        fleet_file.write_text(json.dumps(fleet, indent=2))
        alertmanager = RestartableAlertmanager(workdir / "alertmanager", free_port(), slack_sink.webhook_url)
        alertmanager.start()
        stack.callback(alertmanager.stop)
        if postgres_reachable():
            metadata_url: str | None = stack.enter_context(postgres_database("gamesre_e2e_deploy_airflow"))
            store_url = stack.enter_context(postgres_database("gamesre_e2e_deploy_store"))
        else:
            metadata_url, store_url = None, f"sqlite:///{workdir / 'sre.db'}"
        ep = Endpoints(prometheus_port=int(live.prometheus_url.rsplit(":", 1)[1]),
                       alertmanager_port=alertmanager.port, slack_sink_port=slack_sink.port,
                       sre_store_url=store_url, haproxy_runtime_port=live.haproxy_admin_port, fleet_file=fleet_file)
        port = free_port()
        home = workdir / "airflow-home"
        with airflow_standalone(home, ep, port, metadata_url) as password:
            api = AirflowAPI(f"http://127.0.0.1:{port}", password, store_url, home, alertmanager)
            haproxy = HAProxyRuntime("127.0.0.1", live.haproxy_admin_port)
            yield DeployStack(api, live, fleet, SREStore(store_url), haproxy)
