"""CanaryAnalysisTrigger: polls Prometheus once per scrape interval and judges one rollout step.

Runs in the triggerer (async, no worker slot held). Every poll evaluates, at one instant, the candidate's and
the baseline's bad and total event counts of every SLI since the stage's analysis began
(gamesre.deploy.analysis), and judges them. It fires exactly one event when the step is decided:

    {"decision": "pass" | "fail" | "timed_out", "reason": ..., "elapsed_s": ..., "slis": [...],
     "not_judged": [...], "polls": N, "errors": N, "decided_at": ISO time, "thresholds": {...}}

A Prometheus error or missing data makes the SLIs concerned inconclusive for that poll (never a pass);
when that lasts until the step deadline the step ends `timed_out`, which rolls back.

People steer the step through the store's `deploy_control` log (gamesre.deploy.control), read at every poll
when the spec names a `deployment_id`: a pause holds a pass and the deadline (not a failure), a promotion passes
the step (the event carries the request as `control`), an abort fires `aborted`. A store that cannot be read
leaves the last requests read in force (logged), so an outage never releases a pause.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from gamesre.deploy.analysis import (
    Counts,
    SliSpec,
    SliVerdict,
    Thresholds,
    judge_sli,
    judge_step,
    sli_queries,
)
from gamesre.deploy.control import Control, control_state, paused_seconds, steer
from gamesre.integrations.http_endpoint import ACCESS_DENIED, EndpointSettingsError, HttpEndpoint

if TYPE_CHECKING:
    import aiohttp

CLASSPATH = "gamesre.airflow.triggers.analysis.CanaryAnalysisTrigger"


class PrometheusQueryFailed(RuntimeError):
    pass


async def instant_values(session: aiohttp.ClientSession, endpoint: HttpEndpoint, expr: str, at: float,
                         timeout: float) -> list[float]:
    """The values of an instant query's series (an empty list for an empty result); PrometheusQueryFailed on errors.

    The error names what answered and how: refused credentials or a failed TLS verification (naming the
    connection), the HTTP status with Prometheus' error, or the start of the body when it is not Prometheus' JSON
    (a proxy's error page). No error carries a secret of the endpoint.
    """
    import aiohttp

    try:
        async with session.get(endpoint.url("/api/v1/query"), params={"query": expr, "time": f"{at:.3f}"},
                               timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            status, text = response.status, await response.text(errors="replace")
    except aiohttp.ClientSSLError as exc:
        raise PrometheusQueryFailed(endpoint.tls_failed(exc)) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise PrometheusQueryFailed(endpoint.scrub(f"{endpoint.name} failed: {type(exc).__name__}: {exc}")) from None
    if status in ACCESS_DENIED:
        raise PrometheusQueryFailed(endpoint.refused(status, text))
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("status") != "success":
        detail = body.get("error") if isinstance(body, dict) and body.get("error") else " ".join(text.split())[:200]
        raise PrometheusQueryFailed(endpoint.scrub(f"{endpoint.name} refused the query: HTTP {status}: {detail}"))
    try:
        data = body["data"]
        if data["resultType"] == "scalar":
            return [float(data["result"][1])]
        return [float(r["value"][1]) for r in data["result"]]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PrometheusQueryFailed(f"{endpoint.name} answered a malformed result: "
                                    f"{type(exc).__name__}: {exc}") from None


class TriggerPrometheus:
    """A trigger's instant queries to one Prometheus: its endpoint and session, or why there is none (then every
    query fails with that reason, which the trigger's rules read as no data)."""

    def __init__(self, session: aiohttp.ClientSession | None, endpoint: HttpEndpoint | None, unusable: str = ""):
        self.session = session
        self.endpoint = endpoint
        self.unusable = unusable

    async def values(self, expr: str, at: float, timeout: float) -> list[float]:
        if self.session is None or self.endpoint is None:
            raise PrometheusQueryFailed(self.unusable)
        return await instant_values(self.session, self.endpoint, expr, at, timeout)

    async def value(self, expr: str, at: float, timeout: float) -> float | None:
        """The sum of an instant query's series (None for an empty result)."""
        values = await self.values(expr, at, timeout)
        return sum(values) if values else None


class PrometheusSpecTrigger(BaseTrigger):
    """A trigger that polls Prometheus for a JSON-safe `spec`; subclasses set `classpath` and `run`.

    Prometheus is the connection `prometheus_conn_id` (its credentials, TLS settings and headers: looked up in
    the triggerer, never serialized), or `prometheus_url`, a plain URL without credentials (tests, benchmarks).
    """

    classpath = ""

    def __init__(self, spec: dict[str, Any], prometheus_conn_id: str = "prometheus_default",
                 prometheus_url: str | None = None) -> None:
        super().__init__()
        if prometheus_url and "@" in prometheus_url:  # user:password@, even with a / in the password
            raise ValueError("prometheus_url must not carry credentials (they would be stored with the trigger): "
                             "put them in a connection and pass prometheus_conn_id")
        self.spec = spec
        self.prometheus_conn_id = prometheus_conn_id
        self.prometheus_url = prometheus_url

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return self.classpath, {"spec": self.spec, "prometheus_conn_id": self.prometheus_conn_id,
                                "prometheus_url": self.prometheus_url}

    async def _endpoint(self) -> HttpEndpoint:
        if self.prometheus_url:
            return HttpEndpoint.from_url("Prometheus", self.prometheus_url)
        from gamesre.airflow.hooks.http_endpoint import aendpoint_for

        return await aendpoint_for(self.prometheus_conn_id, "Prometheus")

    @contextlib.asynccontextmanager
    async def prometheus(self) -> AsyncIterator[TriggerPrometheus]:
        """Prometheus for the whole run; a connection that is missing or cannot be used makes every query fail
        with the reason (logged once, never with a secret)."""
        try:
            endpoint = await self._endpoint()
            session = await endpoint.aiohttp_session()
        except EndpointSettingsError as exc:
            unusable = str(exc)
        except Exception as exc:  # no such connection, a TLS file gone since: the rules read it as no data
            unusable = f"no usable Prometheus connection {self.prometheus_conn_id!r}: {type(exc).__name__}: {exc}"
        else:
            self.log.info("querying %s", endpoint.describe())
            async with session:
                yield TriggerPrometheus(session, endpoint)
            return
        self.log.error("%s", unusable)
        yield TriggerPrometheus(None, None, unusable)


class CanaryAnalysisTrigger(PrometheusSpecTrigger):
    """Judge one step: `spec` is built by gamesre.app.deploy.analysis_spec (JSON-safe).

    The SRE store (people's requests) is the connection `sre_store_conn_id`, or `sre_store_url` (tests).
    """

    classpath = CLASSPATH

    def __init__(self, spec: dict[str, Any], prometheus_conn_id: str = "prometheus_default",
                 prometheus_url: str | None = None, sre_store_conn_id: str = "sre_store",
                 sre_store_url: str | None = None) -> None:
        super().__init__(spec, prometheus_conn_id, prometheus_url)
        if sre_store_url and "@" in sre_store_url:
            raise ValueError("sre_store_url must not carry credentials (they would be stored with the trigger): "
                             "use the connection sre_store_conn_id")
        self.sre_store_conn_id = sre_store_conn_id
        self.sre_store_url = sre_store_url
        self._store: Any = None
        self._controls: list[Control] = []

    def serialize(self) -> tuple[str, dict[str, Any]]:
        classpath, kwargs = super().serialize()
        return classpath, {**kwargs, "sre_store_conn_id": self.sre_store_conn_id, "sre_store_url": self.sre_store_url}

    async def controls(self) -> list[Control]:
        """The deploy's control requests as last read (an unreadable store keeps the previous read)."""
        deployment_id = self.spec.get("deployment_id")
        if not deployment_id:
            return []
        from gamesre.integrations.store import SREStore

        try:
            if self._store is None:
                url = self.sre_store_url
                if url is None:
                    from airflow.sdk import BaseHook

                    from gamesre.airflow.hooks.store import store_url

                    url = store_url(await BaseHook.aget_connection(self.sre_store_conn_id))
                self._store = await asyncio.to_thread(SREStore, url)
            rows = await asyncio.to_thread(self._store.deploy_controls, str(deployment_id))
            self._controls = [Control.from_row(r) for r in rows]
        except Exception as exc:
            self.log.warning("cannot read the deploy's control requests (the last read stays in force): %s", exc)
        return self._controls

    async def run(self) -> AsyncIterator[TriggerEvent]:
        spec = self.spec
        t = Thresholds(**spec["thresholds"])
        slis = [SliSpec.from_dict(s) for s in spec["slis"]]
        candidate, baseline = spec["cohorts"]["candidate"], spec["cohorts"]["baseline"]
        since, step_started = float(spec["since"]), float(spec["step_started"])
        polls = errors = 0
        async with self.prometheus() as prometheus:
            while True:
                started = time.time()
                polls += 1
                span = max(t.interval_s, started - since)
                verdicts: list[SliVerdict] = []
                for sli in slis:
                    queries = {"candidate": sli_queries(sli, candidate, int(span))}
                    if baseline is not None:
                        queries["baseline"] = sli_queries(sli, baseline, int(span))
                    try:
                        values = await asyncio.gather(*(
                            asyncio.gather(*(prometheus.value(q, started, t.interval_s * 2) for q in group.values()))
                            for group in queries.values()))
                    except PrometheusQueryFailed as exc:
                        errors += 1
                        verdicts.append(judge_sli(sli, None, None, t, queries=queries, error=str(exc)))
                        continue
                    by_cohort = {cohort: dict(zip(group, vals, strict=True))
                                 for (cohort, group), vals in zip(queries.items(), values, strict=True)}
                    cand = Counts.from_values(by_cohort["candidate"])
                    base = Counts.from_values(by_cohort["baseline"]) if "baseline" in by_cohort else None
                    verdicts.append(judge_sli(sli, cand, base, t, queries=queries))
                requests = await self.controls()
                now = datetime.now(UTC)
                held = paused_seconds(requests, datetime.fromtimestamp(step_started, UTC), now)
                step = judge_step(verdicts, started - step_started - held, t, spec.get("not_judged", ()))
                decision, reason, applied = steer(step.decision, step.reason, control_state(requests), now,
                                                  float(spec.get("max_pause_s", 3600)))
                if decision != "continue":
                    yield TriggerEvent({**step.to_dict(), "decision": decision, "reason": reason, "polls": polls,
                                        "errors": errors, "decided_at": now.isoformat(), "thresholds": t.to_dict(),
                                        "span_s": span, "cohorts": spec["cohorts"], "paused_s": held,
                                        "control": applied.to_dict() if applied else None})
                    return
                self.log.info("step %s: %s", spec.get("step_label"), reason)
                await asyncio.sleep(max(0.0, t.interval_s - (time.time() - started)))
