"""CanaryAnalysisTrigger: polls Prometheus once per scrape interval and judges one rollout step.

Runs in the triggerer (async, no worker slot held). Every poll evaluates, at one instant, the candidate's and
the baseline's bad and total event counts of every SLI since the stage's analysis began
(gamesre.deploy.analysis), and judges them. It fires exactly one event when the step is decided:

    {"decision": "pass" | "fail" | "timed_out", "reason": ..., "elapsed_s": ..., "slis": [...],
     "not_judged": [...], "polls": N, "errors": N, "decided_at": ISO time, "thresholds": {...}}

A Prometheus error or missing data makes the SLIs concerned inconclusive for that poll (never a pass);
when that lasts until the step deadline the step ends `timed_out`, which rolls back.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

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

CLASSPATH = "gamesre.airflow.triggers.analysis.CanaryAnalysisTrigger"


class PrometheusQueryFailed(RuntimeError):
    pass


async def instant_values(session: Any, base_url: str, expr: str, at: float, timeout: float) -> list[float]:
    """The values of an instant query's series (an empty list for an empty result); PrometheusQueryFailed on errors.

    The error names what answered and how: the HTTP status with Prometheus' error, or the start of the body
    when it is not Prometheus' JSON (a proxy's error page).
    """
    import aiohttp

    try:
        async with session.get(f"{base_url}/api/v1/query", params={"query": expr, "time": f"{at:.3f}"},
                               timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            status, text = response.status, await response.text(errors="replace")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise PrometheusQueryFailed(f"Prometheus at {base_url} failed: {type(exc).__name__}: {exc}") from None
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("status") != "success":
        detail = body.get("error") if isinstance(body, dict) and body.get("error") else " ".join(text.split())[:200]
        raise PrometheusQueryFailed(f"Prometheus at {base_url} refused the query: HTTP {status}: {detail}")
    try:
        data = body["data"]
        if data["resultType"] == "scalar":
            return [float(data["result"][1])]
        return [float(r["value"][1]) for r in data["result"]]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PrometheusQueryFailed(f"Prometheus at {base_url} answered a malformed result: "
                                    f"{type(exc).__name__}: {exc}") from None


async def instant_value(session: Any, base_url: str, expr: str, at: float, timeout: float) -> float | None:
    """The sum of an instant query's series (None for an empty result); PrometheusQueryFailed on errors."""
    values = await instant_values(session, base_url, expr, at, timeout)
    return sum(values) if values else None


async def prometheus_base_url(conn_id: str, url: str | None = None) -> str:
    """Prometheus' base URL: `url` when given, else from the Airflow connection (looked up asynchronously)."""
    if url:
        return url.rstrip("/")
    from airflow.sdk import BaseHook

    from gamesre.airflow.hooks.prometheus import url_from_connection

    return url_from_connection(await BaseHook.aget_connection(conn_id))


class PrometheusSpecTrigger(BaseTrigger):
    """A trigger that polls Prometheus for a JSON-safe `spec`; subclasses set `classpath` and `run`."""

    classpath = ""

    def __init__(self, spec: dict[str, Any], prometheus_conn_id: str = "prometheus_default",
                 prometheus_url: str | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.prometheus_conn_id = prometheus_conn_id
        self.prometheus_url = prometheus_url

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return self.classpath, {"spec": self.spec, "prometheus_conn_id": self.prometheus_conn_id,
                                "prometheus_url": self.prometheus_url}

    async def _base_url(self) -> str:
        return await prometheus_base_url(self.prometheus_conn_id, self.prometheus_url)


class CanaryAnalysisTrigger(PrometheusSpecTrigger):
    """Judge one step: `spec` is built by gamesre.app.deploy.analysis_spec (JSON-safe)."""

    classpath = CLASSPATH

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import aiohttp

        spec = self.spec
        t = Thresholds(**spec["thresholds"])
        slis = [SliSpec.from_dict(s) for s in spec["slis"]]
        candidate, baseline = spec["cohorts"]["candidate"], spec["cohorts"]["baseline"]
        since, step_started = float(spec["since"]), float(spec["step_started"])
        polls = errors = 0
        try:
            base_url = await self._base_url()
        except Exception as exc:  # no connection: every poll is inconclusive until the deadline
            base_url, connection_error = "", f"no Prometheus connection {self.prometheus_conn_id!r}: {exc}"
        else:
            connection_error = ""
        async with aiohttp.ClientSession() as session:
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
                        if connection_error:
                            raise PrometheusQueryFailed(connection_error)
                        values = await asyncio.gather(*(
                            asyncio.gather(*(instant_value(session, base_url, q, started, t.interval_s * 2)
                                             for q in group.values()))
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
                step = judge_step(verdicts, started - step_started, t, spec.get("not_judged", ()))
                if step.decision != "continue":
                    yield TriggerEvent({**step.to_dict(), "polls": polls, "errors": errors,
                                        "decided_at": datetime.now(UTC).isoformat(), "thresholds": t.to_dict(),
                                        "span_s": span, "cohorts": spec["cohorts"]})
                    return
                self.log.info("step %s: %s", spec.get("step_label"), step.reason)
                await asyncio.sleep(max(0.0, t.interval_s - (time.time() - started)))
