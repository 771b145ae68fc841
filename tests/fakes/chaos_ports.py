"""In-memory ports of the chaos game-day steps (gamesre.app.chaos.ChaosPorts), for unit tests: the real SRE store on
in-memory SQLite, a scripted fault backend, Prometheus and Alertmanager from tables, a recording Slack, Variables
from a dict and a clock the test sets. The configuration is the product's own (include/config), read once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from gamesre.app import chaos
from gamesre.app.chaos import ChaosConfig, ChaosPorts
from gamesre.integrations.store import SREStore
from tests.fakes.alertmanager import ListedAlertmanager
from tests.fakes.chaos_backend import ScriptedBackend
from tests.fakes.memory_store import memory_store
from tests.fakes.notifier import RecordingNotifier
from tests.fakes.prometheus import TablePrometheus

NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # a Wednesday, 14:00 KST: clear of the evening peak and maintenance
HEALTHY = {"histogram_quantile": 0.2}  # p95 latency 200 ms; every other probe (availability) answers 0.999
RUN_URL = "http://airflow.test/dags/chaos_experiment/runs/r1"


@cache
def product_config() -> ChaosConfig:
    """include/config as the steps read it; shared by the tests, which only read it."""
    return ChaosConfig()


@dataclass
class ChaosRig:
    """The fakes behind one ChaosPorts: change them, then take `ports`. The helpers walk a run (gs-instance-kill on
    game-server by default) through the first steps, as the chaos_experiment DAG does."""

    report_dir: Path
    config: ChaosConfig = field(default_factory=product_config)
    store: SREStore = field(default_factory=memory_store)
    backend: ScriptedBackend = field(default_factory=ScriptedBackend)
    prometheus: TablePrometheus = field(default_factory=lambda: TablePrometheus(dict(HEALTHY), 0.999))
    alertmanager: ListedAlertmanager = field(default_factory=ListedAlertmanager)
    notifier: RecordingNotifier = field(default_factory=RecordingNotifier)
    variables: dict[str, str] = field(default_factory=dict)
    now: datetime = NOW
    slept: list[float] = field(default_factory=list)

    @property
    def ports(self) -> ChaosPorts:
        return ChaosPorts(store=self.store, prometheus=self.prometheus, alertmanager=self.alertmanager,
                          backend=lambda service: self.backend, notifier=self.notifier,
                          kill_switch=self.variables.get, report_dir=self.report_dir, config=self.config,
                          clock=lambda: self.now, sleep=self.slept.append)

    def budgets(self, remaining: float, service: str = "game-server") -> None:
        """Fresh published states with this budget remaining for every SLO of the service."""
        for slo in self.config.slos:
            if slo.service == service:
                self.store.publish_state("slo", slo.name, "normal", self.now, [],
                                         {"budget_remaining": remaining, "budget_remaining_adjusted": remaining})

    def validated(self, run_id: str = "r1", **conf: Any) -> dict[str, Any]:
        return chaos.validate(self.ports, {"experiment": "gs-instance-kill", **conf}, run_id, "alice",
                              run_url=RUN_URL)

    def through_gates(self, run_id: str = "r1", **conf: Any) -> dict[str, Any]:
        self.budgets(0.9)
        run = self.validated(run_id, **conf)
        chaos.check_gates(self.ports, run, run_id)
        return run

    def injected(self, run_id: str = "r1", **conf: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The run validated, through the gates, its steady state read, its fault injected: (run, before)."""
        run = self.through_gates(run_id, **conf)
        before = chaos.steady_state_before(self.ports, run, run_id)
        chaos.inject(self.ports, run, run_id)
        return run, before
