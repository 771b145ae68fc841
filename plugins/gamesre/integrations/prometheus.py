"""Prometheus: instant, range and raw-sample queries, with errors that say what went wrong.

Built on prometheus-api-client's PrometheusConnect, over the session of an HttpEndpoint (gamesre.integrations.
http_endpoint: basic auth or a bearer token, TLS with a private CA or a client certificate, extra headers such as
Mimir's X-Scope-OrgID, a path prefix). Errors are sorted into kinds, because callers treat them differently (all
of them are "inconclusive", never "pass"):
- PrometheusUnreachable: nothing answered (connection refused, timeout, DNS);
- PrometheusAccessError (a PrometheusUnreachable: asking again does not help): the credentials were refused
  (HTTP 401/403) or TLS verification failed; the message names the connection;
- PrometheusQueryError: Prometheus answered and rejected the query (bad PromQL, too many samples);
- PrometheusError: anything else Prometheus answered with (5xx, malformed payload).
No message carries a secret of the endpoint.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from gamesre.core.errors import OutsideSystemError
from gamesre.integrations.http_endpoint import ACCESS_DENIED, HttpEndpoint


class PrometheusError(OutsideSystemError):
    """Prometheus answered with an error; `query` is the PromQL that was sent."""

    def __init__(self, message: str, query: str | None = None):
        super().__init__(message)
        self.query = query


class PrometheusUnreachable(PrometheusError):
    pass


class PrometheusAccessError(PrometheusUnreachable):
    """Prometheus (or a gateway in front of it) refused the credentials, or TLS verification failed."""


class PrometheusQueryError(PrometheusError):
    pass


@dataclass(frozen=True)
class RawSeries:
    labels: dict[str, str]
    t: np.ndarray  # float64 seconds
    v: np.ndarray  # float64


def _ts(value: datetime | float | int) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _duration(seconds: float) -> str:
    return f"{int(seconds)}s"


class PrometheusClient:
    """A synchronous Prometheus HTTP API client for one server: `PrometheusClient("http://127.0.0.1:9090")`, or an
    HttpEndpoint with credentials, TLS settings and headers (what PrometheusHook builds from a connection)."""

    def __init__(self, endpoint: HttpEndpoint | str, *, timeout: float = 30.0, retries: int = 2):
        self.endpoint = HttpEndpoint.of("Prometheus", endpoint)
        self.url = self.endpoint.base_url  # never holds credentials
        self.name = self.endpoint.name
        self.timeout = timeout
        # Retried: refused connections and a gateway's 502-504. Not: reads (a query may be expensive) and TLS
        # failures (urllib3's "other" errors), which the next attempt would meet again.
        retry = Retry(total=retries, connect=retries, read=0, other=0, backoff_factor=0.3,
                      status_forcelist=(502, 503, 504), allowed_methods=frozenset({"GET", "POST"}))
        # One session for the queries and the other endpoints (rules, targets, build info). POST keeps long
        # selectors out of URLs and server logs.
        self._session = self.endpoint.requests_session(retry)
        self._api = PrometheusConnect(url=self.url, retry=retry, timeout=int(timeout), method="POST",
                                      session=self._session)

    def _unreachable(self, exc: Exception, query: str) -> PrometheusUnreachable:
        if isinstance(exc, requests.exceptions.SSLError):
            return PrometheusAccessError(self.endpoint.tls_failed(exc), query)
        where = f" at {self.url}" if self.endpoint.conn_id else ""
        return PrometheusUnreachable(f"{self.name} is unreachable{where}: {type(exc).__name__}", query)

    def _call(self, query: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise self._unreachable(exc, query) from None
        except PrometheusApiClientException as exc:
            raise self._classify(str(exc), query) from None
        except (ValueError, KeyError) as exc:  # a reply that is not the API's JSON
            message = self.endpoint.scrub(f"{self.name} sent an unreadable reply: {exc}")
            raise PrometheusError(message, query) from None

    def _classify(self, message: str, query: str) -> PrometheusError:
        status, detail = 0, message
        if message.startswith("HTTP Status Code "):
            head, _, body = message.partition(" (")
            status = int(head.rsplit(" ", 1)[1])
            try:
                detail = eval_bytes_repr(body.rstrip(")"))
            except (ValueError, SyntaxError):
                detail = body
            try:
                payload = json.loads(detail)
            except ValueError:
                payload = None
            if isinstance(payload, dict):
                detail = f"{payload.get('errorType', 'error')}: {payload.get('error', '')}"
        if status in ACCESS_DENIED:
            return PrometheusAccessError(self.endpoint.refused(status, detail), query)
        if status in (400, 422):
            return PrometheusQueryError(self.endpoint.scrub(f"{self.endpoint.label} rejected the query {query!r}: "
                                                            f"{detail}"), query)
        return PrometheusError(self.endpoint.scrub(f"{self.name} failed (HTTP {status}) for {query!r}: {detail}"),
                               query)

    def query(self, expr: str, at: datetime | float) -> list[dict[str, Any]]:
        """An instant query; returns the API's `result` list."""
        return list(self._call(expr, self._api.custom_query, expr, params={"time": f"{_ts(at):.3f}"}) or [])

    def query_range(
        self, expr: str, start: datetime | float, end: datetime | float, step: float
    ) -> list[dict[str, Any]]:
        """A range query evaluated at start, start+step, ..., end."""
        s = datetime.fromtimestamp(_ts(start), UTC)
        e = datetime.fromtimestamp(_ts(end), UTC)
        return list(self._call(expr, self._api.custom_query_range, expr, s, e, f"{step:g}s") or [])

    def raw_samples(self, selector: str, start: float, end: float) -> list[RawSeries]:
        """Every stored sample of the selector's series from start to end, as arrays per series (Prometheus 2
        includes a sample exactly at `start`, Prometheus 3 does not; the ledger's arithmetic needs neither)."""
        expr = f"{selector}[{_duration(end - start)}]"
        result = self.query(expr, end)
        series = []
        for item in result:
            values = item.get("values") or []
            arr = np.asarray(values, dtype=np.float64) if values else np.empty((0, 2))
            series.append(RawSeries(dict(item.get("metric", {})), arr[:, 0].copy(), arr[:, 1].copy()))
        return series

    def last_values(self, selectors: Sequence[str], at: float, lookback: float,
                    *, batch: int = 50) -> list[tuple[dict[str, str], float]]:
        """Each series of the selectors with a sample in the `lookback` seconds up to `at`: its labels (without
        the metric name) and the value of its last sample there (staleness markers are not samples).

        Several selectors go into one query (`or`), `batch` at a time.
        """
        out = []
        for i in range(0, len(selectors), batch):
            window = f"[{_duration(lookback)}]"
            expr = " or ".join(f"last_over_time({s}{window})" for s in selectors[i:i + batch])
            for item in self.query(expr, at):
                labels = {k: v for k, v in dict(item.get("metric", {})).items() if k != "__name__"}
                out.append((labels, float(item["value"][1])))
        return out

    def scalar(self, expr: str, at: datetime | float) -> float | None:
        """The single value of an instant query, or None when it returns nothing."""
        result = self.query(expr, at)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusQueryError(f"expected one series from {expr!r}, got {len(result)}", expr)
        return float(result[0]["value"][1])

    def api_get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET /api/v1/<path> (rules, targets, status/buildinfo ...); the `data` of the answer."""
        where = f"/api/v1/{path}"
        try:
            resp = self._session.get(f"{self.url}{where}", params=dict(params or {}), timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise self._unreachable(exc, where) from None
        if resp.status_code in ACCESS_DENIED:
            raise PrometheusAccessError(self.endpoint.refused(resp.status_code, resp.text), where)
        try:
            doc = resp.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or doc.get("status") != "success" or resp.status_code >= 400:
            detail = (f"{doc.get('errorType', 'error')}: {doc.get('error', '')}" if isinstance(doc, dict)
                      else f"not the API's JSON: {resp.text[:200]!r}")
            raise PrometheusError(self.endpoint.scrub(f"{self.name} failed (HTTP {resp.status_code}) for {where}: "
                                                      f"{detail}"), where)
        return doc.get("data")

    def rules(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The rule groups Prometheus has loaded (`kind`: alert or record to keep only those rules)."""
        data = self.api_get("rules", {"type": kind} if kind else None)
        return list((data or {}).get("groups") or [])

    def targets(self, state: str = "active") -> list[dict[str, Any]]:
        """The scrape targets (`state`: active, dropped or any) as /api/v1/targets lists them."""
        data = self.api_get("targets", {"state": state}) or {}
        return list(data.get("activeTargets") or []) + list(data.get("droppedTargets") or [])

    def build_info(self) -> dict[str, Any]:
        return dict(self.api_get("status/buildinfo") or {})


def eval_bytes_repr(text: str) -> str:
    """prometheus-api-client puts the body in its message as a bytes repr (b'...'); get the text back."""
    import ast

    value = ast.literal_eval(text)
    return value.decode() if isinstance(value, bytes) else str(value)
