"""ChaosMonitorTrigger against a fake Prometheus HTTP API: abort rules, the kill switch, errors and recovery.

The fake (aiohttp.web on a free loopback port) serves `GET /api/v1/query`. Each test scripts, per query
expression, the replies of its successive calls (the last one repeats) and reads back what was asked and at
which evaluation `time`. Probe intervals are a few hundredths of a second.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import pytest
import pytest_asyncio
from aiohttp import web

from demo.procs import free_port
from gamesre.airflow.triggers.chaos import ChaosMonitorTrigger
from gamesre.chaos.catalog import AbortRules, Probe, Tolerance
from gamesre.chaos.gates import run_switch_variable

if TYPE_CHECKING:
    from airflow.triggers.base import TriggerEvent

AVAILABILITY_Q = 'sum(rate(game_action_requests_total{code="200"}[30s])) / sum(rate(game_action_requests_total[30s]))'
LATENCY_Q = "histogram_quantile(0.95, sum by (le) (rate(game_action_duration_seconds_bucket[30s])))"
BURN_Q = "(1 - availability_ratio_1m) / 0.001"
PROBES = [Probe(name="availability", query=AVAILABILITY_Q, tolerance=Tolerance(type="range", min=0.99), weight=2.0),
          Probe(name="latency-p95", query=LATENCY_Q, tolerance=Tolerance(type="range", max=0.5))]
KILL_SWITCH = "gamesre_chaos_kill_switch"
INTERVAL_S = 0.05
RUN_LIMIT_S = 5.0  # a trigger still running by then never decides

Reply = tuple[int, str]  # (HTTP status, body)


def vector(*values: float) -> Reply:
    """A successful instant query with one series per value (none: an empty result)."""
    result = [{"metric": {"instance": f"gs-{i}"}, "value": [time.time(), f"{v:g}"]} for i, v in enumerate(values)]
    return 200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})


HTTP_500: Reply = (500, "<html><body>upstream prometheus exploded</body></html>")


class FakePrometheus:
    def __init__(self) -> None:
        self.url = ""
        self.replies: dict[str, list[Reply]] = {AVAILABILITY_Q: [vector(0.999)], LATENCY_Q: [vector(0.2)],
                                                BURN_Q: [vector(1.0)]}
        self.calls: Counter[str] = Counter()
        self.asked: list[tuple[str, float]] = []  # (expression, evaluation time)
        self.delays: dict[str, float] = {}  # seconds before answering, per expression

    def script(self, expr: str, *replies: Reply) -> None:
        self.replies[expr] = list(replies)

    async def query(self, request: web.Request) -> web.Response:
        expr = request.query["query"]
        self.asked.append((expr, float(request.query["time"])))
        replies = self.replies[expr]
        status, body = replies[min(self.calls[expr], len(replies) - 1)]
        self.calls[expr] += 1
        await asyncio.sleep(self.delays.get(expr, 0.0))
        return web.Response(status=status, text=body,
                            content_type="application/json" if body.startswith("{") else "text/html")

    def polls(self, expr: str) -> list[float]:
        """The evaluation times at which the expression was asked, in order."""
        return [at for e, at in self.asked if e == expr]


@pytest_asyncio.fixture
async def prometheus() -> AsyncIterator[FakePrometheus]:
    fake = FakePrometheus()
    app = web.Application()
    app.router.add_get("/api/v1/query", fake.query)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture(autouse=True)
def kill_switch_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"AIRFLOW_VAR_{KILL_SWITCH.upper()}", "off")


def monitor_spec(*, consecutive_failures: int = 2, no_data: str = "abort", duration_s: float = 60.0,
                 interval_s: float = INTERVAL_S) -> dict[str, Any]:
    """Shaped like gamesre.app.chaos.monitor_spec."""
    abort = AbortRules(consecutive_failures=consecutive_failures, no_data=no_data,  # type: ignore[arg-type]
                       burn_rate=14.4, burn_slos=["availability"], burn_window="1m")
    return {"mode": "monitor", "run_id": "manual__2026-11-25T05:00:00", "experiment": "gs-latency",
            "probes": [p.model_dump() for p in PROBES], "abort": abort.model_dump(), "baselines": {},
            "started_at": time.time(), "duration_s": duration_s, "interval_s": interval_s,
            "burn_queries": {"availability": BURN_Q}, "kill_switch_variable": KILL_SWITCH}


def recovery_spec(*, recovery_time_s: float = 5.0, confirmations: int = 2) -> dict[str, Any]:
    """Shaped like gamesre.app.chaos.recovery_spec."""
    return {"mode": "recovery", "run_id": "manual__2026-11-25T05:00:00", "experiment": "gs-latency",
            "probes": [p.model_dump() for p in PROBES], "baselines": {}, "started_at": time.time(),
            "recovery_time_s": recovery_time_s, "confirmations": confirmations, "interval_s": INTERVAL_S}


async def first_event(trigger: ChaosMonitorTrigger) -> dict[str, Any]:
    events = cast("AsyncGenerator[TriggerEvent, None]", trigger.run())  # run() is an async generator
    try:
        event = await asyncio.wait_for(events.asend(None), timeout=RUN_LIMIT_S)
    finally:
        await events.aclose()
    json.dumps(event.payload, allow_nan=False)  # the triggerer stores the event as JSON
    return event.payload


def passed(event: dict[str, Any], probe: str) -> list[bool | None]:
    return [sample[2] for sample in event["samples"][probe]]


# --- serialization ------------------------------------------------------------------------------------------


def test_serialize_gives_the_classpath_and_the_kwargs() -> None:
    from airflow.sdk.module_loading import import_string
    from airflow.serialization.serialized_objects import BaseSerialization

    spec = monitor_spec()
    trigger = ChaosMonitorTrigger(spec, prometheus_conn_id="prom_prod", prometheus_url="http://prom:9090")

    classpath, kwargs = trigger.serialize()

    assert classpath == "gamesre.airflow.triggers.chaos.ChaosMonitorTrigger"
    assert kwargs == {"spec": spec, "prometheus_conn_id": "prom_prod", "prometheus_url": "http://prom:9090"}
    assert import_string(classpath) is ChaosMonitorTrigger
    stored = json.loads(json.dumps(BaseSerialization.serialize(kwargs)))
    assert import_string(classpath)(**BaseSerialization.deserialize(stored)).serialize() == (classpath, kwargs)


def test_serialize_defaults_to_the_prometheus_connection() -> None:
    spec = recovery_spec()

    assert ChaosMonitorTrigger(spec).serialize() == (
        "gamesre.airflow.triggers.chaos.ChaosMonitorTrigger",
        {"spec": spec, "prometheus_conn_id": "prometheus_default", "prometheus_url": None})


# --- monitor mode -------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_monitor_aborts_on_the_second_consecutive_failing_poll(prometheus: FakePrometheus) -> None:
    # pass, fail, pass (resets), fail, fail: the 5th poll is the 2nd failure in a row
    prometheus.script(AVAILABILITY_Q, vector(0.999), vector(0.9), vector(0.999), vector(0.9), vector(0.95))
    spec = monitor_spec(consecutive_failures=2)

    event = await first_event(ChaosMonitorTrigger(spec, prometheus_url=prometheus.url + "/"))

    assert (event["mode"], event["outcome"], event["rule"]) == ("monitor", "aborted", "consecutive_failures")
    assert event["reason"] == "probe availability failed 2 polls in a row (last: 0.95 is below 0.99)"
    assert (event["polls"], event["errors"]) == (5, 0)
    assert passed(event, "availability") == [True, False, True, False, False]
    assert passed(event, "latency-p95") == [True] * 5
    assert [s[1] for s in event["samples"]["availability"]] == [0.999, 0.9, 0.999, 0.9, 0.95]
    assert [b["burn"] for b in event["burns"]] == [1.0] * 5
    # each poll asks every probe and the burn rate at one instant, one interval apart
    times = prometheus.polls(AVAILABILITY_Q)
    assert len(times) == 5
    assert prometheus.polls(LATENCY_Q) == times == prometheus.polls(BURN_Q)
    assert [round(s[0], 3) for s in event["samples"]["availability"]] == times
    assert all(b - a >= INTERVAL_S - 0.005 for a, b in itertools.pairwise(times))
    assert spec["started_at"] <= event["at"] <= time.time()


@pytest.mark.asyncio
async def test_monitor_completes_when_the_fault_ran_its_duration(prometheus: FakePrometheus) -> None:
    spec = monitor_spec(duration_s=0.2)

    event = await first_event(ChaosMonitorTrigger(spec, prometheus_url=prometheus.url))

    assert (event["outcome"], event["rule"]) == ("completed", "duration")
    assert event["at"] - spec["started_at"] >= 0.2
    assert event["polls"] >= 2
    assert set(passed(event, "availability")) == {True}


@pytest.mark.asyncio
async def test_monitor_aborts_on_the_burn_rate(prometheus: FakePrometheus) -> None:
    prometheus.script(BURN_Q, vector(2.0), vector(20.0))

    event = await first_event(ChaosMonitorTrigger(monitor_spec(), prometheus_url=prometheus.url))

    assert (event["outcome"], event["rule"], event["polls"]) == ("aborted", "burn_rate", 2)
    assert event["reason"] == "SLO availability burns its error budget at 20.0x over 1m (abort at 14.4x)"


@pytest.mark.asyncio
async def test_the_kill_switch_aborts_at_the_first_poll(prometheus: FakePrometheus,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_GAMESRE_CHAOS_KILL_SWITCH", "on")

    event = await first_event(ChaosMonitorTrigger(monitor_spec(), prometheus_url=prometheus.url))

    assert (event["outcome"], event["rule"], event["polls"]) == ("aborted", "kill_switch", 1)
    assert event["reason"] == f"the chaos kill switch was turned on (Variable {KILL_SWITCH})"
    assert passed(event, "availability") == [True]  # the probes were healthy: only the switch stopped it


@pytest.mark.asyncio
async def test_prometheus_http_500_is_no_data_and_aborts_under_no_data_abort(prometheus: FakePrometheus) -> None:
    prometheus.script(AVAILABILITY_Q, HTTP_500)

    event = await first_event(ChaosMonitorTrigger(monitor_spec(no_data="abort"), prometheus_url=prometheus.url))

    assert (event["outcome"], event["rule"], event["polls"]) == ("aborted", "no_data", 2)
    assert event["reason"].startswith("probe availability had no data 2 polls in a row (last: no data: Prometheus at "
                                      f"{prometheus.url} refused the query: HTTP 500: ")
    assert "upstream prometheus exploded" in event["reason"]
    assert event["errors"] == 2
    assert [s[1:] for s in event["samples"]["availability"]] == [[None, None], [None, None]]


@pytest.mark.asyncio
async def test_prometheus_http_500_is_neither_pass_nor_fail_under_no_data_ignore(prometheus: FakePrometheus) -> None:
    prometheus.script(AVAILABILITY_Q, HTTP_500)

    event = await first_event(ChaosMonitorTrigger(monitor_spec(no_data="ignore", duration_s=0.2),
                                                  prometheus_url=prometheus.url))

    assert (event["outcome"], event["rule"]) == ("completed", "duration")
    assert event["errors"] == event["polls"] >= 2
    assert set(passed(event, "availability")) == {None}


@pytest.mark.asyncio
async def test_a_probe_returning_two_series_is_an_error_not_a_value(prometheus: FakePrometheus) -> None:
    prometheus.script(AVAILABILITY_Q, vector(0.999, 0.5))

    event = await first_event(ChaosMonitorTrigger(monitor_spec(), prometheus_url=prometheus.url))

    assert (event["outcome"], event["rule"], event["polls"], event["errors"]) == ("aborted", "no_data", 2, 2)
    assert event["reason"] == ("probe availability had no data 2 polls in a row (last: no data: the query returned "
                               "2 series; a probe must return one)")


@pytest.mark.asyncio
async def test_no_prometheus_listening_is_no_data(prometheus: FakePrometheus) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    event = await first_event(ChaosMonitorTrigger(monitor_spec(), prometheus_url=url))

    assert (event["outcome"], event["rule"], event["polls"]) == ("aborted", "no_data", 2)
    assert f"Prometheus at {url} failed" in event["reason"]
    assert event["errors"] == 2 * 3  # two probes and the burn rate, twice
    assert prometheus.asked == []


@pytest.mark.asyncio
async def test_a_slow_burn_rate_query_does_not_stretch_the_time_between_polls(prometheus: FakePrometheus) -> None:
    # A loaded Prometheus: the probes answer (failing) just inside an interval, the burn rate not at all. Read
    # one after the other, the second failure came almost two intervals after the first; read together, one.
    interval = 0.5
    prometheus.script(LATENCY_Q, vector(0.9))
    prometheus.delays.update({LATENCY_Q: 0.7 * interval, AVAILABILITY_Q: 0.7 * interval, BURN_Q: 4 * interval})

    event = await first_event(ChaosMonitorTrigger(monitor_spec(interval_s=interval), prometheus_url=prometheus.url))

    assert (event["outcome"], event["rule"], event["polls"]) == ("aborted", "consecutive_failures", 2)
    first, second = (s[0] for s in event["samples"]["latency-p95"])
    assert interval - 0.01 <= second - first < 1.5 * interval
    assert event["errors"] == 2  # the burn rate timed out at each poll
    assert event["burns"] == []  # so no burn rate was judged


@pytest.mark.asyncio
async def test_a_runs_own_kill_switch_stops_that_run_only(prometheus: FakePrometheus,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An incident's abort turns on the run's scoped switch; another run (another key) goes on."""
    mine = run_switch_variable(KILL_SWITCH, "manual__2026-11-25T05:00:00+00:00")
    assert mine == f"{KILL_SWITCH}__manual__2026-11-25T05-00-00-00-00"
    monkeypatch.setenv(f"AIRFLOW_VAR_{mine.upper()}", "on")
    spec = {**monitor_spec(duration_s=3 * INTERVAL_S), "run_switch_variable": mine}

    event = await first_event(ChaosMonitorTrigger(spec, prometheus_url=prometheus.url))

    assert (event["outcome"], event["rule"], event["polls"]) == ("aborted", "kill_switch", 1)
    assert event["reason"] == f"this experiment's kill switch was turned on (Variable {mine})"
    other = {**spec, "run_switch_variable": run_switch_variable(KILL_SWITCH, "manual__other")}
    assert (await first_event(ChaosMonitorTrigger(other, prometheus_url=prometheus.url)))["outcome"] == "completed"


@pytest.mark.asyncio
async def test_a_slow_kill_switch_read_keeps_the_polls_on_time_and_still_aborts(
        prometheus: FakePrometheus, monkeypatch: pytest.MonkeyPatch) -> None:
    interval = 0.2
    monkeypatch.delenv(f"AIRFLOW_VAR_{KILL_SWITCH.upper()}")
    reads: list[str] = []

    async def slow_read(key: str) -> str:  # a busy API server: the first read takes three and a half intervals
        reads.append(key)
        await asyncio.sleep(3.5 * interval)
        return "on"

    monkeypatch.setattr("gamesre.airflow.triggers.chaos.read_variable", slow_read)

    event = await first_event(ChaosMonitorTrigger(monitor_spec(interval_s=interval), prometheus_url=prometheus.url))

    assert (event["outcome"], event["rule"]) == ("aborted", "kill_switch")
    assert event["polls"] >= 4  # the polls went on while the switch was being read
    assert reads == [KILL_SWITCH]  # one read at a time: none is started while another runs
    times = [s[0] for s in event["samples"]["availability"]]
    assert all(b - a < 1.5 * interval for a, b in itertools.pairwise(times))


# --- recovery mode ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_recovery_passes_after_the_confirmations(prometheus: FakePrometheus) -> None:
    # fail, pass, fail (resets), pass, pass: confirmed at the 5th poll, recovered since the 4th
    prometheus.script(LATENCY_Q, vector(0.9), vector(0.3), vector(0.9), vector(0.3), vector(0.3))
    spec = recovery_spec(confirmations=2)

    event = await first_event(ChaosMonitorTrigger(spec, prometheus_url=prometheus.url))

    assert (event["mode"], event["passed"], event["polls"]) == ("recovery", True, 5)
    assert event["reason"] == "every probe within tolerance for 2 polls in a row"
    assert passed(event, "latency-p95") == [False, True, False, True, True]
    fourth_poll = event["samples"]["latency-p95"][3][0]
    assert event["recovered_within_s"] == pytest.approx(fourth_poll - spec["started_at"])
    assert event["recovered_within_s"] >= 3 * INTERVAL_S - 0.01
    assert [(p["name"], p["passed"]) for p in event["probes"]] == [("availability", True), ("latency-p95", True)]


@pytest.mark.asyncio
async def test_recovery_fails_after_the_recovery_time_naming_the_failing_probe(prometheus: FakePrometheus) -> None:
    prometheus.script(LATENCY_Q, vector(0.3), vector(0.9))  # one good poll is not enough
    spec = recovery_spec(recovery_time_s=0.25, confirmations=2)

    event = await first_event(ChaosMonitorTrigger(spec, prometheus_url=prometheus.url))
    took = time.time() - spec["started_at"]

    assert (event["passed"], event["recovered_within_s"]) == (False, None)
    assert event["reason"] == "not back within 0.25s: latency-p95: 0.9 is above 0.5"
    assert 0.25 <= took < 0.25 + 10 * INTERVAL_S  # it stops at the deadline, not later
    assert passed(event, "latency-p95")[0] is True
    assert set(passed(event, "latency-p95")[1:]) == {False}
    assert set(passed(event, "availability")) == {True}
    assert [(p["name"], p["passed"]) for p in event["probes"]] == [("availability", True), ("latency-p95", False)]
