"""Airflow wired to a live demo stack for the chaos game-days: the fleet behind HAProxy under load, a real
Prometheus scraping it every 5 s, a real Alertmanager, and the SRE store.

The gates look at the clock (the evening peak, maintenance windows, holidays and events), so this package's
Airflow reads a copy of include/config (GAMESRE_CONFIG_DIR) whose peak and windows are hours away from the
time the tests run; the refusal test uses a low budget instead. Package scoped, like the deploy tests.
"""
from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from demo.airflow_env import Endpoints
from demo.procs import ProcessGroup, free_port
from gamesre.core.paths import CONFIG_DIR
from gamesre.core.time import KST
from gamesre.integrations.haproxy import HAProxyRuntime
from gamesre.integrations.store import SREStore
from gamesre.slo.spec import load_slos
from tests.airflow_api import AirflowAPI, RestartableAlertmanager, airflow_standalone
from tests.conftest import LiveStack, _start_live_stack, fleet_document
from tests.databases import postgres_database, postgres_reachable


def config_away_from_now(target: Path, now: datetime) -> Path:
    """A copy of include/config whose evening peak starts 12 hours from now (for one hour), with the weekly
    maintenance on another weekday and no one-off windows, holidays or events: the gates' clock checks pass."""
    shutil.copytree(CONFIG_DIR, target)
    local = now.astimezone(KST)
    policies = yaml.safe_load((target / "policies.yaml").read_text())
    start = (local + timedelta(hours=12)).hour
    policies["evening_peak"]["start"] = f"{start:02d}:00"
    policies["evening_peak"]["end"] = f"{(start + 1) % 24:02d}:00"
    (target / "policies.yaml").write_text(yaml.safe_dump(policies, sort_keys=False))
    calendar = yaml.safe_load((target / "calendar.yaml").read_text())
    away = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"][(local.weekday() + 3) % 7]
    for recurrence in calendar["maintenance"]["recurring"]:
        recurrence["weekday"] = away
    calendar["maintenance"]["one_off"] = []
    calendar["holidays"]["days"] = []
    calendar["events"] = []
    (target / "calendar.yaml").write_text(yaml.safe_dump(calendar, sort_keys=False))
    return target


@dataclass
class ChaosStack:
    airflow: AirflowAPI
    live: LiveStack
    fleet: dict
    store: SREStore
    haproxy: HAProxyRuntime
    config_dir: Path
    report_dir: Path

    def publish_budgets(self, remaining: float) -> None:
        """Fresh per-SLO states with this budget remaining for every SLO, as error_budget_report publishes."""
        now = datetime.now(UTC)
        for slo in load_slos():
            self.store.publish_state("slo", slo.name, "normal", now, [],
                                     {"slo": slo.name, "state": "normal", "budget_remaining": remaining,
                                      "budget_remaining_adjusted": remaining})

    def faults(self, instance: str) -> dict[str, Any]:
        return dict(requests.get(f"{self.fleet['instances'][instance]['url']}/admin/faults", timeout=5).json())

    def server_status(self, instance: str) -> str:
        info = self.fleet["instances"][instance]
        return self.haproxy.server(info["job"], instance).status

    def set_kill_switch(self, value: str | None) -> None:
        key = "gamesre_chaos_kill_switch"
        if value is None:
            self.airflow.call("DELETE", f"variables/{key}")
            return
        resp = self.airflow.call("PATCH", f"variables/{key}", json={"key": key, "value": value})
        if resp.status_code == 404:
            resp = self.airflow.call("POST", "variables", json={"key": key, "value": value})
        resp.raise_for_status()


@pytest.fixture(scope="package")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory, slack_sink) -> Iterator[ChaosStack]:
    workdir = tmp_path_factory.mktemp("chaos-stack")
    group = ProcessGroup()
    with group.running(), contextlib.ExitStack() as stack:
        live = _start_live_stack(group, workdir, peak_rps=30)
        fleet = fleet_document(live)
        fleet_file = workdir / "fleet.json"
        fleet_file.write_text(json.dumps(fleet, indent=2))
        alertmanager = RestartableAlertmanager(workdir / "alertmanager", free_port(), slack_sink.webhook_url)
        alertmanager.start()
        stack.callback(alertmanager.stop)
        if postgres_reachable():
            metadata_url: str | None = stack.enter_context(postgres_database("gamesre_e2e_chaos_airflow"))
            store_url = stack.enter_context(postgres_database("gamesre_e2e_chaos_store"))
        else:
            metadata_url, store_url = None, f"sqlite:///{workdir / 'sre.db'}"
        config_dir = config_away_from_now(workdir / "config", datetime.now(UTC))
        report_dir = workdir / "reports"
        ep = Endpoints(prometheus_port=int(live.prometheus_url.rsplit(":", 1)[1]),
                       alertmanager_port=alertmanager.port, slack_sink_port=slack_sink.port,
                       sre_store_url=store_url, haproxy_runtime_port=live.haproxy_admin_port, fleet_file=fleet_file)
        port = free_port()
        home = workdir / "airflow-home"
        extra = {"GAMESRE_CONFIG_DIR": str(config_dir), "GAMESRE_REPORT_DIR": str(report_dir)}
        with airflow_standalone(home, ep, port, metadata_url, extra_env=extra) as password:
            api = AirflowAPI(f"http://127.0.0.1:{port}", password, store_url, home, alertmanager)
            haproxy = HAProxyRuntime("127.0.0.1", live.haproxy_admin_port)
            yield ChaosStack(api, live, fleet, SREStore(store_url), haproxy, config_dir, report_dir)
