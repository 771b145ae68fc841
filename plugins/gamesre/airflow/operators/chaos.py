"""ChaosMonitorSensor: the deferrable sensor of a chaos experiment, in one of two modes.

monitor    while the fault is injected: defers on ChaosMonitorTrigger (probes, burn rates, the kill switch)
           until an abort rule holds or the fault has run its duration; an abort stops the fault at once.
recovery   after recovery: defers until the steady state is back (or the recovery time is over).

The worker slot is held only to start and to record; never while watching.
"""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

if TYPE_CHECKING:
    from airflow.sdk import Context

MODES = ("monitor", "recovery")


class ChaosMonitorSensor(BaseOperator):
    """Watch one experiment run.

    :param run: the validate task's result (the ExperimentRun as a dict), templated.
    :param before: the steady_state_before task's result (probe values, the baselines), templated.
    :param mode: `monitor` (while injected) or `recovery` (after the fault is removed).
    :param deferrable: always deferred: a chaos watch never holds a worker slot (kept for the provider's API).
    """

    template_fields = ("run", "before")
    ui_color = "#fbe9e7"

    def __init__(self, *, run: Any, before: Any, mode: str = "monitor", deferrable: bool = True,
                 prometheus_conn_id: str = "prometheus_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not deferrable:
            raise ValueError("ChaosMonitorSensor only runs deferred: watching a game-day must not hold a worker slot")
        self.run = run
        self.before = before
        self.mode = mode
        self.deferrable = deferrable
        self.prometheus_conn_id = prometheus_conn_id

    def execute(self, context: Context) -> Any:
        from gamesre.airflow.chaos import monitor_spec, recovery_spec
        from gamesre.airflow.triggers.chaos import ChaosMonitorTrigger

        run_id = str(context["dag_run"].run_id)
        if self.run.get("dry_run"):
            raise AirflowSkipException("dry run: nothing is injected, nothing to watch")
        if self.mode == "monitor":
            spec = monitor_spec(self.run, self.before or {}, run_id)
            timeout = float(spec["duration_s"]) + 10 * float(spec["interval_s"]) + 120
        else:
            watch = recovery_spec(self.run, self.before or {}, run_id)
            if watch is None:
                raise AirflowSkipException("the fault was not recovered (see recover): no steady state to wait for")
            spec = watch
            timeout = float(spec["recovery_time_s"]) + 120
        self.log.info("%s: watching %s (%s)", self.mode, self.run.get("experiment"),
                      ", ".join(p["name"] for p in spec["probes"]))
        self.defer(trigger=ChaosMonitorTrigger(spec, prometheus_conn_id=self.prometheus_conn_id),
                   method_name="execute_complete", timeout=timedelta(seconds=timeout))

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        from gamesre.airflow.chaos import monitor_done, steady_after_done

        run_id = str(context["dag_run"].run_id)
        event = dict(event or {})
        if self.mode == "monitor":
            return monitor_done(self.run, run_id, event)
        return steady_after_done(run_id, event)
