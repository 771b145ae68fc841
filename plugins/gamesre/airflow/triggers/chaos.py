"""ChaosMonitorTrigger: watches a running chaos experiment, or waits for the steady state to come back.

Runs in the triggerer (async, no worker slot held). Two modes, given by `spec["mode"]`:

monitor   once per probe interval: every steady-state probe and every burn-rate query at one instant, and the
          kill switch (an Airflow Variable); gamesre.chaos.probes.MonitorState decides. Fires one event when
          an abort rule holds or the fault has run its duration:
              {"mode": "monitor", "outcome": "completed" | "aborted", "rule": ..., "reason": ..., "at": epoch,
               "samples": {probe: [[at, value, passed], ...]}, "burns": [...], "polls": N, "errors": N}
recovery  after the fault is removed: polls until the steady state holds `confirmations` polls in a row, or
          the recovery time is over:
              {"mode": "recovery", "passed": bool, "recovered_within_s": s | None, "reason": ...,
               "probes": [last readings], "samples": {...}, "polls": N}

A Prometheus error is no data for the probes it concerns (never a pass); the experiment's no_data policy
decides whether it counts toward an abort.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import TriggerEvent

from gamesre.airflow.triggers.analysis import PrometheusQueryFailed, PrometheusSpecTrigger, TriggerPrometheus
from gamesre.chaos.catalog import AbortRules, Probe
from gamesre.chaos.gates import kill_switch_on
from gamesre.chaos.probes import MonitorState, read_probes, steady_state

CLASSPATH = "gamesre.airflow.triggers.chaos.ChaosMonitorTrigger"


async def read_variable(key: str) -> str | None:
    """An Airflow Variable from the triggerer: the environment (AIRFLOW_VAR_*) first, then the API server."""
    env = os.environ.get(f"AIRFLOW_VAR_{key.upper()}")
    if env is not None:
        return env
    from airflow.sdk.execution_time.secrets.execution_api import ExecutionAPISecretsBackend

    return await ExecutionAPISecretsBackend().aget_variable(key)


class ChaosMonitorTrigger(PrometheusSpecTrigger):
    """`spec` is built by gamesre.app.chaos.monitor_spec / recovery_spec (JSON-safe)."""

    classpath = CLASSPATH
    _switch: str = ""  # the kill switch as last read: why it is on ("" off)
    _switch_read: asyncio.Future[str] | None = None  # a read still running

    async def kill_switch(self) -> str:
        """Why the experiment must stop: the global kill switch, or this run's own (an incident's abort); "" off."""
        for key, why in ((self.spec.get("kill_switch_variable"), "the chaos kill switch was turned on"),
                         (self.spec.get("run_switch_variable"), "this experiment's kill switch was turned on")):
            if not key:
                continue
            try:
                if kill_switch_on(await read_variable(str(key))):
                    return f"{why} (Variable {key})"
            except Exception as exc:  # an unreadable switch is logged; the probes still guard the experiment
                self.log.warning("cannot read the kill switch %s: %s", key, exc)
        return ""

    async def _kill_switch_within(self, wait: float) -> str:
        """The kill switch as read within `wait` seconds. A read still running then (a busy API server) is not
        cancelled, which could leave its reply on the supervisor channel for the next request: it goes on in
        the background, this poll uses the last value read, and a later poll picks the new one up."""
        if self._switch_read is None:
            self._switch_read = asyncio.ensure_future(self.kill_switch())
        await asyncio.wait({self._switch_read}, timeout=wait)
        if self._switch_read.done():
            self._switch, self._switch_read = self._switch_read.result(), None
        return self._switch

    async def _query_all(self, prometheus: TriggerPrometheus, queries: dict[str, str], at: float,
                         timeout: float) -> tuple[dict[str, float | None], dict[str, str]]:
        """({name: value or None}, {name: error}) for named single-series queries at one instant."""
        names = list(queries)
        results = await asyncio.gather(*(prometheus.values(queries[n], at, timeout) for n in names),
                                       return_exceptions=True)
        values: dict[str, float | None] = {}
        errors: dict[str, str] = {}
        for name, result in zip(names, results, strict=True):
            if isinstance(result, PrometheusQueryFailed):
                errors[name] = str(result)
            elif isinstance(result, BaseException):
                errors[name] = f"{type(result).__name__}: {result}"
            elif len(result) > 1:
                errors[name] = f"the query returned {len(result)} series; a probe must return one"
            else:
                values[name] = result[0] if result else None
        return values, errors

    async def run(self) -> AsyncIterator[TriggerEvent]:
        spec = self.spec
        probes = [Probe.model_validate(p) for p in spec["probes"]]
        interval = float(spec["interval_s"])
        async with self.prometheus() as prometheus:  # without a usable connection, every poll is no data
            if spec["mode"] == "monitor":
                event = await self._monitor(prometheus, probes, interval)
            else:
                event = await self._recovery(prometheus, probes, interval)
        yield TriggerEvent(event)

    async def _monitor(self, prometheus: TriggerPrometheus, probes: list[Probe], interval: float) -> dict[str, Any]:
        spec = self.spec
        rules = AbortRules.model_validate(spec["abort"])
        state = MonitorState(started_at=float(spec["started_at"]), duration_s=float(spec["duration_s"]))
        burn_queries: dict[str, str] = dict(spec.get("burn_queries") or {})
        errors = 0
        self._switch, self._switch_read = "", None
        while True:
            # Probes, burn rates and the kill switch are read together, each within one interval, so a slow
            # Prometheus or API server never stretches a poll past one interval (the abort rules count polls,
            # and `consecutive_failures` polls must mean that many intervals).
            at = time.time()
            (values, failed), (burns, burn_failed), switched = await asyncio.gather(
                self._query_all(prometheus, {p.name: p.query for p in probes}, at, interval),
                self._query_all(prometheus, burn_queries, at, interval),
                self._kill_switch_within(interval))
            errors += len(failed) + len(burn_failed)
            readings = read_probes(probes, values, at, spec.get("baselines") or {}, failed)
            decision = state.observe(readings, rules, at=at, burn_rates=burns, kill_switch=switched)
            self.log.info("%s poll %d: %s", spec.get("experiment"), state.polls,
                          ", ".join(f"{r.name}={r.value if r.value is None else round(r.value, 4)}"
                                    f"{'' if r.passed else ' (' + r.reason + ')'}" for r in readings))
            if decision is not None:
                return {"mode": "monitor", "outcome": decision.outcome, "rule": decision.rule,
                        "reason": decision.reason, "at": decision.at, "samples": state.samples,
                        "burns": state.burns, "polls": state.polls, "errors": errors}
            await asyncio.sleep(max(0.0, interval - (time.time() - at)))

    async def _recovery(self, prometheus: TriggerPrometheus, probes: list[Probe], interval: float) -> dict[str, Any]:
        spec = self.spec
        since = float(spec["started_at"])
        deadline = since + float(spec["recovery_time_s"])
        needed = int(spec.get("confirmations", 2))
        streak, polls, first_ok = 0, 0, None
        samples: dict[str, list[list[Any]]] = {}
        while True:
            at = time.time()
            polls += 1
            values, failed = await self._query_all(prometheus, {p.name: p.query for p in probes}, at, interval)
            readings = read_probes(probes, values, at, spec.get("baselines") or {}, failed)
            for r in readings:
                samples.setdefault(r.name, []).append([r.at, r.value, r.passed])
            holds, reason = steady_state(readings)
            if holds:
                first_ok = at if streak == 0 else first_ok
                streak += 1
            else:
                streak, first_ok = 0, None
            if streak >= needed:
                assert first_ok is not None
                return {"mode": "recovery", "passed": True, "recovered_within_s": max(0.0, first_ok - since),
                        "reason": f"every probe within tolerance for {needed} polls in a row",
                        "probes": [r.to_dict() for r in readings], "samples": samples, "polls": polls}
            # Judged on at least `needed` polls, even when the watch started late (a busy triggerer).
            if at >= deadline and polls >= needed:
                return {"mode": "recovery", "passed": False, "recovered_within_s": None,
                        "reason": f"not back within {float(spec['recovery_time_s']):g}s: {reason}",
                        "probes": [r.to_dict() for r in readings], "samples": samples, "polls": polls}
            await asyncio.sleep(max(0.0, min(interval - (time.time() - at), deadline - time.time() + 0.01)))
