"""CanaryAnalysisTrigger against a fake Prometheus HTTP API: verdicts, deadlines, errors and what it queries.

The fake serves `GET /api/v1/query` on a free loopback port, answers from a script per query expression (the
cohort from `version="..."`, good or total from `code="200"` / `_bucket`) and records every query with its
evaluation `time`. The thresholds are the shipped ones scaled down to fractions of a second.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from demo.procs import free_port
from gamesre.airflow.triggers.analysis import CanaryAnalysisTrigger
from gamesre.deploy.analysis import SliSpec, Thresholds
from tests.fakes.serving import serving_in_background

CANDIDATE = {"version": "1.5.1", "track": "canary"}
BASELINE = {"version": "1.5.0", "track": "stable"}
AVAILABILITY = SliSpec("availability", 0.999, ('game_action_requests_total{service="game-server"}',),
                       good=('game_action_requests_total{code="200",service="game-server"}',))
LATENCY = SliSpec("latency", 0.95, ('game_action_duration_seconds_count{service="game-server"}',),
                  good=('game_action_duration_seconds_bucket{le="0.5",service="game-server"}',))
THRESHOLDS = Thresholds(min_samples=40, alpha=0.01, beta=0.05, regression_burn=6, fast_abort_burn=14.4,
                        min_duration_s=0.5, max_duration_s=2.0, interval_s=0.2)
NOT_JUDGED = [{"slo": "concurrent-sessions", "decision": "not_judged", "reason": "threshold SLI over the fleet"}]
RUN_LIMIT_S = THRESHOLDS.max_duration_s + 3  # a trigger still running by then never decides


# --- the fake Prometheus ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    expr: str
    at: float  # the evaluation time sent as `time`
    poll: int  # the index of its evaluation time among the distinct ones seen (0: the first poll)

    @property
    def cohort(self) -> str:
        return "candidate" if f'version="{CANDIDATE["version"]}"' in self.expr else "baseline"

    @property
    def sli(self) -> str:
        return "latency" if "game_action_duration_seconds" in self.expr else "availability"

    @property
    def kind(self) -> str:
        return "good" if 'code="200"' in self.expr or "_bucket" in self.expr else "total"

    @property
    def span_s(self) -> int:
        spans = {int(s) for s in re.findall(r"\[(\d+)s\]", self.expr)}
        assert len(spans) == 1, self.expr
        return spans.pop()


Reply = tuple[int, str, str]  # (HTTP status, content type, body)
Script = Callable[[Query], Reply]


def vector(value: float | None) -> Reply:
    """A successful instant query: one sample, or an empty vector for None (no such series)."""
    result = [] if value is None else [{"metric": {}, "value": [time.time(), f"{value:g}"]}]
    return 200, "application/json", json.dumps({"status": "success",
                                                "data": {"resultType": "vector", "result": result}})


def counts(table: dict[tuple[str, str], tuple[float, float]]) -> Script:
    """Answers {(cohort, sli): (good, total)}; SLIs not in the table get healthy baseline-like numbers."""
    def answer(q: Query) -> Reply:
        good, total = table.get((q.cohort, q.sli), (99_990.0, 100_000.0))
        return vector(good if q.kind == "good" else total)
    return answer


def healthy() -> Script:
    return counts({("candidate", "availability"): (500, 500), ("candidate", "latency"): (500, 500),
                   ("baseline", "availability"): (4996, 5000), ("baseline", "latency"): (4900, 5000)})


class FakePrometheus:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.queries: list[Query] = []
        self._times: list[float] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/api/v1/query":
                    self._send(404, "text/plain", "not found")
                    return
                params = parse_qs(url.query)
                self._send(*fake.record(params["query"][0], float(params["time"][0])))

            def _send(self, status: int, content_type: str, body: str) -> None:
                raw = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # a trigger that decided closes its other queries
                    self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def record(self, expr: str, at: float) -> Reply:
        with self._lock:
            if at not in self._times:
                self._times.append(at)
            query = Query(expr, at, self._times.index(at))
            self.queries.append(query)
        return self.script(query)

    def polls(self) -> list[list[Query]]:
        """The recorded queries grouped by evaluation time, in order."""
        with self._lock:
            return [[q for q in self.queries if q.at == at] for at in self._times]


@contextlib.contextmanager
def serving(fake: FakePrometheus) -> Iterator[FakePrometheus]:
    with serving_in_background(fake.server):
        yield fake


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    with serving(FakePrometheus(healthy())) as fake:
        yield fake


# --- running the trigger --------------------------------------------------------------------------------------


def make_spec(*, since_ago_s: float = 0.0) -> dict[str, Any]:
    """Shaped like gamesre.app.deploy.analysis_spec; the step starts now, the stage since_ago_s earlier."""
    now = time.time()
    return {"service": "game-server", "stage": "prod", "step": 1, "step_label": "canary 25%",
            "slis": [s.to_dict() for s in (AVAILABILITY, LATENCY)], "not_judged": NOT_JUDGED,
            "cohorts": {"candidate": CANDIDATE, "baseline": BASELINE},
            "thresholds": asdict(THRESHOLDS), "since": now - since_ago_s, "step_started": now}


@dataclass(frozen=True)
class Run:
    events: list[dict[str, Any]]
    started: float  # the spec's step start
    wall_s: float  # from the step start to the trigger's return

    @property
    def event(self) -> dict[str, Any]:
        assert len(self.events) == 1, f"expected exactly one event, got {len(self.events)}"
        return self.events[0]


async def run_trigger(trigger: CanaryAnalysisTrigger) -> Run:
    started = float(trigger.spec["step_started"])

    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    events = await asyncio.wait_for(collect(), timeout=RUN_LIMIT_S)
    return Run(events, started, time.time() - started)


def sli_verdict(event: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [s for s in event["slis"] if s["slo"] == name]
    return found


def error_script(kind: str) -> Script:
    def answer(_: Query) -> Reply:
        if kind == "http_500":  # a reverse proxy in front of Prometheus, not Prometheus' JSON
            return 500, "text/html", "<html><body>upstream prometheus exploded</body></html>"
        return 422, "application/json", json.dumps({"status": "error", "errorType": "execution",
                                                    "error": "query would load too many samples"})
    return answer


@dataclass(frozen=True)
class DeadlineRun:
    run: Run
    spec: dict[str, Any]
    polls: list[list[Query]]  # what the fake Prometheus was asked, per poll


# the scenarios that last until the step deadline; None: nothing listens at the URL
DEADLINE_SCRIPTS: dict[str, Script | None] = {"no_data": lambda _: vector(None),
                                              "http_500": error_script("http_500"),
                                              "status_error": error_script("status_error"),
                                              "unreachable": None}


@pytest.fixture(scope="module")
def deadline_runs() -> dict[str, DeadlineRun]:
    """Each scenario of DEADLINE_SCRIPTS run once, all at the same time (2 s in all, not 2 s each)."""
    with contextlib.ExitStack() as stack:
        fakes = {name: stack.enter_context(serving(FakePrometheus(script or healthy())))
                 for name, script in DEADLINE_SCRIPTS.items()}
        urls = {name: fake.url if DEADLINE_SCRIPTS[name] else f"http://127.0.0.1:{free_port()}"
                for name, fake in fakes.items()}
        specs = {name: make_spec(since_ago_s=3.0) for name in fakes}  # a later step: the stage began before

        async def run_all() -> list[Run]:
            return await asyncio.gather(*(run_trigger(CanaryAnalysisTrigger(specs[name], prometheus_url=urls[name]))
                                          for name in fakes))

        runs = dict(zip(fakes, asyncio.run(run_all()), strict=True))
        return {name: DeadlineRun(runs[name], specs[name], fakes[name].polls()) for name in fakes}


# --- serialization ------------------------------------------------------------------------------------------


def test_serialize_round_trips_through_the_classpath_and_airflow_serialization() -> None:
    from airflow.sdk.module_loading import import_string
    from airflow.serialization.serialized_objects import BaseSerialization

    spec = make_spec(since_ago_s=12.5)
    trigger = CanaryAnalysisTrigger(spec, prometheus_conn_id="prom_prod", prometheus_url="http://prom:9090")

    classpath, kwargs = trigger.serialize()

    assert classpath == "gamesre.airflow.triggers.analysis.CanaryAnalysisTrigger"
    assert kwargs == {"spec": spec, "prometheus_conn_id": "prom_prod", "prometheus_url": "http://prom:9090",
                      "sre_store_conn_id": "sre_store", "sre_store_url": None}
    assert import_string(classpath) is CanaryAnalysisTrigger
    # what the triggerer stores and reads back: Airflow's serialization of the kwargs, as JSON
    stored = json.loads(json.dumps(BaseSerialization.serialize(kwargs)))
    recreated = import_string(classpath)(**BaseSerialization.deserialize(stored))
    assert recreated.serialize() == (classpath, kwargs)


# --- verdicts -----------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_healthy_candidate_passes_once_min_duration_is_over(prometheus: FakePrometheus) -> None:
    run = await run_trigger(CanaryAnalysisTrigger(make_spec(), prometheus_url=prometheus.url + "/"))
    event = run.event

    assert event["decision"] == "pass", event["reason"]
    assert event["elapsed_s"] >= THRESHOLDS.min_duration_s
    assert run.wall_s >= THRESHOLDS.min_duration_s
    # every SLI passes from the first poll on: it decided on the first poll once min_duration was over
    elapsed = [queries[0].at - run.started for queries in prometheus.polls()]
    assert event["polls"] == len(elapsed) >= 2
    assert elapsed[-2] < THRESHOLDS.min_duration_s <= elapsed[-1] + 0.001
    assert event["errors"] == 0

    availability = sli_verdict(event, "availability")
    assert (availability["decision"], availability["rule"]) == ("pass", "evidence_favours_h0")
    assert availability["candidate"] == {"total": 500.0, "bad": 0.0, "ratio": 0.0}
    assert availability["baseline"]["total"] == 5000.0
    assert availability["baseline"]["bad"] == pytest.approx(4.0)
    assert availability["statistic"]["llr"] < 0
    assert availability["statistic"]["p0"] == pytest.approx(0.001)
    assert 'version="1.5.1"' in availability["queries"]["candidate"]["good"]
    assert 'version="1.5.0"' in availability["queries"]["baseline"]["total"]
    assert sli_verdict(event, "latency")["decision"] == "pass"

    assert event["not_judged"] == NOT_JUDGED
    assert event["cohorts"] == {"candidate": CANDIDATE, "baseline": BASELINE}
    assert event["thresholds"]["min_samples"] == 40
    assert event["thresholds"]["sprt_upper"] == pytest.approx(math.log(0.95 / 0.01))
    assert event["thresholds"]["sprt_lower"] == pytest.approx(math.log(0.05 / 0.99))
    decided_at = datetime.fromisoformat(event["decided_at"])
    assert decided_at.tzinfo is not None
    assert run.started <= decided_at.timestamp() <= time.time()
    json.dumps(event, allow_nan=False)  # the event is stored as JSON by the triggerer


@pytest.mark.asyncio
async def test_a_candidate_failing_3_percent_fails_on_the_first_poll(prometheus: FakePrometheus) -> None:
    prometheus.script = counts({("candidate", "availability"): (291, 300), ("candidate", "latency"): (300, 300),
                                ("baseline", "availability"): (5000, 5000)})

    run = await run_trigger(CanaryAnalysisTrigger(make_spec(), prometheus_url=prometheus.url))
    event = run.event

    assert event["decision"] == "fail", event["reason"]
    assert event["polls"] == 1 == len(prometheus.polls())
    assert event["elapsed_s"] < THRESHOLDS.min_duration_s  # a regression does not wait for min_duration
    assert run.wall_s < THRESHOLDS.min_duration_s
    availability = sli_verdict(event, "availability")
    assert availability["decision"] == "fail"
    assert availability["rule"] in {"sprt_reject", "fast_abort"}
    assert availability["candidate"] == {"total": 300.0, "bad": 9.0, "ratio": pytest.approx(0.03)}
    assert availability["statistic"]["llr"] >= THRESHOLDS.upper
    assert sli_verdict(event, "latency")["decision"] != "fail"
    assert event["reason"].startswith("availability: ")


def test_no_data_times_out_at_max_duration_and_never_passes(deadline_runs: dict[str, DeadlineRun]) -> None:
    event = deadline_runs["no_data"].run.event

    assert event["decision"] == "timed_out"
    assert THRESHOLDS.max_duration_s <= event["elapsed_s"] < THRESHOLDS.max_duration_s + 2 * THRESHOLDS.interval_s
    assert "no data" in event["reason"]
    assert event["errors"] == 0
    for verdict in event["slis"]:
        assert (verdict["decision"], verdict["rule"]) == ("inconclusive", "no_data")
        assert verdict["candidate"] == {}


@pytest.mark.parametrize(("failure", "expected"), [
    ("http_500", ["HTTP 500", "upstream prometheus exploded"]),
    ("status_error", ["HTTP 422", "query would load too many samples"]),
    ("unreachable", ["Prometheus at http://127.0.0.1:", "failed"]),
])
def test_prometheus_errors_are_inconclusive_until_the_deadline(deadline_runs: dict[str, DeadlineRun], failure: str,
                                                               expected: list[str]) -> None:
    event = deadline_runs[failure].run.event

    assert event["decision"] == "timed_out"
    assert THRESHOLDS.max_duration_s <= event["elapsed_s"] < THRESHOLDS.max_duration_s + 2 * THRESHOLDS.interval_s
    assert event["polls"] >= THRESHOLDS.max_duration_s / THRESHOLDS.interval_s * 0.5
    assert event["errors"] == event["polls"] * len(event["slis"])  # every SLI of every poll
    for verdict in event["slis"]:
        assert (verdict["decision"], verdict["rule"]) == ("inconclusive", "no_data")
        assert verdict["candidate"] == {}
        for text in expected:
            assert text in verdict["reason"]
            assert text in event["reason"]
    if failure != "unreachable":
        assert len(deadline_runs[failure].polls) == event["polls"]


@pytest.mark.asyncio
async def test_a_prometheus_that_recovers_is_judged_on_the_recovered_data(prometheus: FakePrometheus) -> None:
    failures: list[Script] = [error_script("http_500"),
                              lambda _: (200, "application/json", "null"),  # JSON, but not Prometheus' API
                              error_script("status_error")]
    failing_polls = len(failures)
    good_data = healthy()
    prometheus.script = lambda q: failures[q.poll](q) if q.poll < failing_polls else good_data(q)

    run = await run_trigger(CanaryAnalysisTrigger(make_spec(), prometheus_url=prometheus.url))
    event = run.event

    assert event["decision"] == "pass", event["reason"]
    assert event["polls"] == failing_polls + 1
    assert event["errors"] == failing_polls * 2  # each failing poll made both SLIs inconclusive
    assert sli_verdict(event, "availability")["candidate"] == {"total": 500.0, "bad": 0.0, "ratio": 0.0}
    assert sli_verdict(event, "latency")["rule"] in {"sprt_accept", "evidence_favours_h0"}


# --- what is queried, and when ----------------------------------------------------------------------------


def test_every_poll_queries_both_cohorts_at_one_instant_over_the_span_since_the_stage_began(
        deadline_runs: dict[str, DeadlineRun]) -> None:
    run, spec, polls = (deadline_runs["no_data"].run, deadline_runs["no_data"].spec, deadline_runs["no_data"].polls)

    assert len(polls) == run.event["polls"]
    for queries in polls:
        # 2 SLIs x 2 cohorts x (good, total), all at the poll's one evaluation time
        assert sorted((q.sli, q.cohort, q.kind) for q in queries) == sorted(
            (s, c, k) for s in ("availability", "latency") for c in ("baseline", "candidate")
            for k in ("good", "total"))
        at = queries[0].at
        assert run.started - 0.001 <= at <= run.started + run.wall_s
        for q in queries:
            assert q.expr.startswith("sum(increase(")
            assert f'track="{CANDIDATE["track"] if q.cohort == "candidate" else BASELINE["track"]}"' in q.expr
            # the span reaches back to `since` (the stage's start), not to the step's start
            assert abs(q.span_s - (at - spec["since"])) <= 1.0, (q.span_s, at - spec["since"])
        assert len({q.span_s for q in queries}) == 1
    spans = [queries[0].span_s for queries in polls]
    assert spans == sorted(spans)
    assert spans[-1] - spans[0] >= THRESHOLDS.max_duration_s - 1


def test_polls_are_one_interval_apart(deadline_runs: dict[str, DeadlineRun]) -> None:
    run = deadline_runs["no_data"].run
    times = [queries[0].at for queries in deadline_runs["no_data"].polls]

    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= THRESHOLDS.interval_s - 0.01  # never faster than the interval
    expected = run.event["elapsed_s"] / THRESHOLDS.interval_s + 1  # a poll at 0 s, then one per interval
    assert expected * 0.8 <= len(times) <= expected + 1


# --- people steering the step (the store's deploy_control log, read at every poll) -----------------------------


@pytest.fixture
def store_url(tmp_path) -> str:
    from gamesre.integrations.store import SREStore

    url = f"sqlite:///{tmp_path / 'sre.db'}"
    SREStore(url).deploy_controls("warm-up")  # the schema, created once before the trigger reads it
    return url


def steered_spec(**changes: Any) -> dict[str, Any]:
    return {**make_spec(), "deployment_id": "run-1", "max_pause_s": 60.0, **changes}


def ask(store_url: str, action: str, at: datetime | None = None) -> int:
    from datetime import UTC

    from gamesre.integrations.store import SREStore

    return SREStore(store_url).add_deploy_control("run-1", action, "kim", f"{action} please",
                                                  requested_at=at or datetime.now(UTC))


@pytest.mark.asyncio
async def test_a_pause_holds_a_healthy_step_until_resume_and_does_not_count_against_the_deadline(
        prometheus: FakePrometheus, store_url: str) -> None:
    ask(store_url, "pause")

    async def resume_later() -> None:
        await asyncio.sleep(THRESHOLDS.max_duration_s + 0.3)  # paused past the step deadline: still no time-out
        ask(store_url, "resume")

    resumer = asyncio.create_task(resume_later())
    run = await run_trigger(CanaryAnalysisTrigger(steered_spec(), prometheus_url=prometheus.url,
                                                  sre_store_url=store_url))
    await resumer
    event = run.event
    assert event["decision"] == "pass", event["reason"]
    assert run.wall_s >= THRESHOLDS.max_duration_s + 0.3
    assert event["paused_s"] >= THRESHOLDS.max_duration_s and event["control"] is None


@pytest.mark.asyncio
async def test_a_paused_step_still_rolls_back_a_breach_at_once(prometheus: FakePrometheus, store_url: str) -> None:
    prometheus.script = counts({("candidate", "availability"): (291, 300), ("candidate", "latency"): (300, 300),
                                ("baseline", "availability"): (5000, 5000)})
    ask(store_url, "pause")
    run = await run_trigger(CanaryAnalysisTrigger(steered_spec(), prometheus_url=prometheus.url,
                                                  sre_store_url=store_url))
    assert run.event["decision"] == "fail" and run.event["polls"] == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(("action", "decision"), [("abort", "aborted"), ("promote", "pass"),
                                                  ("promote_full", "pass")])
async def test_an_abort_or_a_promotion_decides_at_the_next_poll(prometheus: FakePrometheus, store_url: str,
                                                                action: str, decision: str) -> None:
    control_id = ask(store_url, action)
    run = await run_trigger(CanaryAnalysisTrigger(steered_spec(), prometheus_url=prometheus.url,
                                                  sre_store_url=store_url))
    event = run.event
    assert (event["decision"], event["polls"]) == (decision, 1)  # before min_duration: a person decided
    assert event["control"]["id"] == control_id and event["control"]["action"] == action
    assert event["reason"].endswith(f"by kim: {action} please")


@pytest.mark.asyncio
async def test_a_pause_longer_than_max_pause_rolls_back(prometheus: FakePrometheus, store_url: str) -> None:
    from datetime import UTC, timedelta

    ask(store_url, "pause", at=datetime.now(UTC) - timedelta(seconds=61))
    run = await run_trigger(CanaryAnalysisTrigger(steered_spec(), prometheus_url=prometheus.url,
                                                  sre_store_url=store_url))
    assert run.event["decision"] == "timed_out" and "longer than max_pause 60s" in run.event["reason"]


@pytest.mark.asyncio
async def test_an_unreadable_store_leaves_the_step_to_the_analysis(prometheus: FakePrometheus, tmp_path) -> None:
    spec = steered_spec()
    run = await run_trigger(CanaryAnalysisTrigger(spec, prometheus_url=prometheus.url,
                                                  sre_store_url=f"sqlite:///{tmp_path}/no/such/dir/sre.db"))
    assert run.event["decision"] == "pass" and run.event["control"] is None
