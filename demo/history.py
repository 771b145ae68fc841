"""Generates the demo's 35 days of metric history (OpenMetrics) with planted incidents, and backfills Prometheus.

    python demo/history.py --out history.om [--end 2025-06-01T12:00:00+09:00] [--days 35] [--seed 42]
    python demo/history.py --backfill DATA_DIR [--end ...] [--days 35] [--seed 42]

Every series of the metric contract for every *stable* instance of the topology, one sample per 60 s, with
the same `job` and `instance` labels the live scrape uses and the target labels (service, version, track)
of the instance's build, so history and live data are one series. Canary instances are omitted: they
carried no traffic before a deploy, and Prometheus treats a missing series as "no data", which is what a
canary that did not exist yet is.

Traffic follows the same load curve (demo/curve.py) and the same traffic mix and latency distributions
(demo/model.py) as the live load generator and fleet, at the load generator's default peak rate. Counts are
random (Poisson, binomial, multinomial) from a seeded generator, so the same seed, end and span give the
same bytes. Histogram buckets are cumulative, `le="+Inf"` equals `_count`, counters never decrease. No
`_created` lines: Prometheus 2.42 would store them as extra series outside the contract.

`plan_incidents(end)` says where the planted incidents are (see docs/demo.md).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python demo/history.py`: make `demo` and `gamesre` importable
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(_ROOT), str(_ROOT / "plugins")]

import argparse
import itertools
import math
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO

import numpy as np
from prometheus_client.utils import floatToGoString
from scipy.special import ndtr

from demo import model
from demo.curve import KST, load_factor
from demo.topology import DEFAULT_TOPOLOGY, Instance, session_capacity
from gamesre.core.contract import Contract, MetricDef, load_contract

STEP_S = 60
DEFAULT_DAYS = 35
# TSDB block length for the backfill: 54 h is a standard block range and the largest Prometheus compacts
# to with a 60-day retention (10 % of it), so the blocks are final; one OpenMetrics file per block window.
BLOCK_S = 54 * 3600

# --- incidents ---------------------------------------------------------------------------------------------
SLOW_BURN_ERROR_RATE = 0.0025  # 0.25 %: 2.5x the 0.1 % budget rate of a 99.9 % SLO
LATENCY_REGRESSION_FACTOR = 6.0  # every action takes 6x longer (a move's median goes 45 ms -> 270 ms)
LATENCY_REGRESSION_ERROR_RATE = 0.003  # some of the slow requests hit the 5 s deadline
MATCHMAKING_WAIT_FACTOR = 4.0
MATCHMAKING_FAILURE_RATE = 0.12


@dataclass(frozen=True)
class Incident:
    """A planted incident: a window of the history in which a service misbehaves in a known way."""

    name: str
    kind: str  # outage | latency | matchmaking | slow_burn
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    description: str
    affected: tuple[str, ...]  # services (contract names)

    def mask(self, ts: np.ndarray) -> np.ndarray:
        """Which samples (epoch seconds, each closing the minute before it) fall inside the incident."""
        return (ts > self.start.timestamp()) & (ts <= self.end.timestamp())


def plan_incidents(end: datetime, days: int = DEFAULT_DAYS) -> list[Incident]:
    """The planted incidents for a history ending at `end` (those inside the span), oldest first.

    Each is placed at a fixed KST time of day a fixed number of days before the end's KST date.
    """
    end_kst = end.astimezone(KST)
    first = end - timedelta(days=days)

    def at(days_before: int, hh: int, mm: int) -> datetime:
        day = end_kst.date() - timedelta(days=days_before)
        return datetime(day.year, day.month, day.day, hh, mm, tzinfo=KST).astimezone(UTC)

    incidents = [
        Incident("slow-burn-dependency-errors", "slow_burn", at(21, 9, 0), at(21, 9, 0) + timedelta(days=3),
                 "game-server: a flaky payment dependency fails 0.25 % of all actions for 3 days "
                 "(mostly 502 dependency): a slow burn at 2.5x the 0.1 % budget rate",
                 ("game-server",)),
        Incident("latency-regression", "latency", at(13, 19, 20), at(13, 19, 20) + timedelta(hours=2, minutes=10),
                 "game-server: a bad config makes every action ~6x slower for 2 h 10 min during the evening "
                 "peak; a quarter to half of the actions take longer than 0.5 s, a few hit the 5 s deadline",
                 ("game-server",)),
        Incident("game-server-outage", "outage", at(6, 20, 41), at(6, 20, 41) + timedelta(minutes=6),
                 "game-server: a database failover leaves every instance unable to serve for 6 min: "
                 "every action and login fails, saves wait in the write-behind queue (slow, none lost); "
                 "sessions drain and rebuild afterwards",
                 ("game-server",)),
        Incident("matchmaking-degradation", "matchmaking", at(3, 21, 5), at(3, 21, 5) + timedelta(hours=1),
                 "matchmaking: a queue-partition bug for 1 h: waits 4x longer and 12 % of tickets fail, "
                 "so success falls to about 75 % (timeouts and failures)",
                 ("matchmaking",)),
    ]
    return [i for i in incidents if i.end > first and i.start < end]


# --- the traffic model integrated per minute ---------------------------------------------------------------
def _loads(ts: np.ndarray) -> np.ndarray:
    return np.array([load_factor(datetime.fromtimestamp(int(t), UTC)) for t in ts])


def _lognormal_bucket_probs(mu: np.ndarray, sigma: np.ndarray, bounds: tuple[float, ...]) -> np.ndarray:
    """P(bucket k) per row for buckets (.., b_k] and the +Inf bucket: shape (N, len(bounds)+1)."""
    z = (np.log(np.asarray(bounds))[None, :] - mu[:, None]) / sigma[:, None]
    cdf = np.concatenate([ndtr(z), np.ones((len(mu), 1))], axis=1)
    return np.diff(cdf, axis=1, prepend=0.0)


def _lognormal_bucket_means(mu: np.ndarray, sigma: np.ndarray, bounds: tuple[float, ...]) -> np.ndarray:
    """E[X | X in bucket k] per row, from the log-normal partial expectations: shape (N, len(bounds)+1)."""
    logb = np.log(np.asarray(bounds))[None, :]
    m, s = mu[:, None], sigma[:, None]
    shifted = np.concatenate([ndtr((logb - m - s**2) / s), np.ones((len(mu), 1))], axis=1)
    partial = np.exp(m + s**2 / 2) * np.diff(shifted, axis=1, prepend=0.0)
    probs = _lognormal_bucket_probs(mu, sigma, bounds)
    edges = np.concatenate([[0.0], np.asarray(bounds), [np.asarray(bounds)[-1] * 2]])
    midpoints = np.broadcast_to((edges[:-1] + edges[1:]) / 2, probs.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(probs > 1e-12, partial / np.maximum(probs, 1e-300), midpoints)


def _multinomial(rng: np.random.Generator, n: np.ndarray, probs: np.ndarray) -> np.ndarray:
    probs = np.clip(probs, 0.0, None)
    probs = probs / probs.sum(axis=1, keepdims=True)
    return rng.multinomial(n.astype(np.int64), probs)


def _bucket_index(bounds: tuple[float, ...], value: float) -> int:
    return next((k for k, b in enumerate(bounds) if value <= b), len(bounds))


class Histogram:
    """One histogram series as exposed: buckets cumulative over `le`, and everything cumulative over time."""

    def __init__(self, per_bucket: np.ndarray, sums: np.ndarray) -> None:
        """`per_bucket`: (N, buckets + 1) observations per minute in each bucket; `sums`: seconds per minute."""
        self.buckets = np.cumsum(np.cumsum(per_bucket, axis=0), axis=1)
        self.count = self.buckets[:, -1]
        self.sum = np.cumsum(sums)


@dataclass
class InstanceSeries:
    instance: Instance
    values: dict[str, dict[tuple[str, ...], np.ndarray | Histogram]] = field(default_factory=dict)

    def put(self, metric: str, labels: tuple[str, ...], data: np.ndarray | Histogram) -> None:
        self.values.setdefault(metric, {})[labels] = data

    def scalars(self, metric: str) -> dict[tuple[str, ...], np.ndarray]:
        """The counter or gauge series of a metric by label values (empty when the instance has none)."""
        return {k: v for k, v in self.values.get(metric, {}).items() if isinstance(v, np.ndarray)}

    def histograms(self, metric: str) -> dict[tuple[str, ...], Histogram]:
        return {k: v for k, v in self.values.get(metric, {}).items() if isinstance(v, Histogram)}


def _incident_masks(incidents: Iterable[Incident], ts: np.ndarray, service: str) -> dict[str, np.ndarray]:
    masks: dict[str, np.ndarray] = {}
    for inc in incidents:
        if service in inc.affected:
            m = inc.mask(ts)
            masks[inc.kind] = masks[inc.kind] | m if inc.kind in masks else m
    return masks


def _mix_rows(n: int, error_types: tuple[str, ...], base: dict[str, float],
              overrides: list[tuple[np.ndarray, dict[str, float]]]) -> np.ndarray:
    rows = np.tile([base.get(e, 0.0) for e in error_types], (n, 1))
    for mask, mix in overrides:
        rows[mask] = [mix.get(e, 0.0) for e in error_types]
    return rows


def _game_server(inst: Instance, n_instances: int, ts: np.ndarray, rps: np.ndarray, load: np.ndarray,
                 incidents: list[Incident], contract: Contract, rng: np.random.Generator) -> InstanceSeries:
    out = InstanceSeries(inst)
    n = len(ts)
    masks = _incident_masks(incidents, ts, inst.service)
    none = np.zeros(n, dtype=bool)
    outage, latency, burn = (masks.get(k, none) for k in ("outage", "latency", "slow_burn"))
    error_types = contract.label_values["error_type"]
    codes = contract.label_values["code"]
    timeout_index = error_types.index("timeout")

    p_err = np.full(n, model.BASE_ERROR_RATE)
    p_err[burn] = SLOW_BURN_ERROR_RATE
    p_err[latency] = LATENCY_REGRESSION_ERROR_RATE
    p_err[outage] = 1.0
    mix = _mix_rows(n, error_types, model.BASE_ERROR_MIX, [
        (burn, {"dependency": 0.7, "internal": 0.3}),
        (latency, {"timeout": 0.8, "internal": 0.2}),
        (outage, {"database": 0.6, "timeout": 0.25, "overload": 0.15}),
    ])
    duration = contract.metric("game_action_duration_seconds")
    for action, share in model.action_shares(contract).items():
        total = rng.poisson(rps * share * STEP_S / n_instances)
        errors = rng.binomial(total, p_err)
        by_type = _multinomial(rng, errors, mix)  # (N, error types)
        for k, error_type in enumerate(error_types):
            out.put("game_action_errors_total", (action, error_type), np.cumsum(by_type[:, k]))
        for code in codes:
            if code == model.SUCCESS_CODE:
                per_minute = total - errors
            else:
                per_minute = by_type[:, [k for k, e in enumerate(error_types) if model.ERROR_CODE[e] == code]].sum(1)
            out.put("game_action_requests_total", (action, code), np.cumsum(per_minute))
        profile = model.ACTION_LATENCY[action]
        mu = np.full(n, profile.mu)
        sigma = np.full(n, profile.sigma)
        mu[latency] += math.log(LATENCY_REGRESSION_FACTOR)
        sigma[latency] *= 1.15
        timeouts = by_type[:, timeout_index]
        # Timed-out actions took exactly the deadline; the rest follow the (possibly regressed) log-normal.
        per_bucket = _multinomial(rng, total - timeouts, _lognormal_bucket_probs(mu, sigma, duration.buckets))
        sums = (per_bucket * _lognormal_bucket_means(mu, sigma, duration.buckets)).sum(1)
        per_bucket[:, _bucket_index(duration.buckets, model.ACTION_TIMEOUT_S)] += timeouts
        sums += timeouts * model.ACTION_TIMEOUT_S
        out.put("game_action_duration_seconds", (action,), Histogram(per_bucket, sums))

    # Player-data saves go through a durable write-behind queue: the outage delays them (slow answers) but
    # none is lost, so only the good-day failure rate applies.
    saves = rng.poisson(rps * model.TRAFFIC_SHARE["save"] * STEP_S / n_instances)
    failed = rng.binomial(saves, model.BASE_SAVE_FAILURE_RATE)
    out.put("game_data_save_total", ("success",), np.cumsum(saves - failed))
    out.put("game_data_save_total", ("failure",), np.cumsum(failed))
    save_duration = contract.metric("game_data_save_duration_seconds")
    profile = model.SAVE_LATENCY
    mu, sigma = np.full(n, profile.mu), np.full(n, profile.sigma)
    slow = np.where(outage, saves - failed, 0)  # during the outage saves wait in the queue until its deadline
    per_bucket = _multinomial(rng, saves - slow, _lognormal_bucket_probs(mu, sigma, save_duration.buckets))
    sums = (per_bucket * _lognormal_bucket_means(mu, sigma, save_duration.buckets)).sum(1)
    per_bucket[:, _bucket_index(save_duration.buckets, model.SAVE_TIMEOUT_S)] += slow
    out.put("game_data_save_duration_seconds", (), Histogram(per_bucket, sums + slow * model.SAVE_TIMEOUT_S))

    # Sessions follow the curve with a lag; an outage disconnects everyone, and they come back afterwards.
    desired = model.PEAK_SESSIONS * load / n_instances  # this instance's share of the fleet's sessions
    target = np.where(outage, 0.0, desired)
    alpha = np.where(outage, 1 - math.exp(-STEP_S / 120.0), 1 - math.exp(-STEP_S / 600.0))
    sessions = np.empty(n)
    level = desired[0]
    for i in range(n):  # a first-order lag; 50k steps of plain floats is fast enough
        level += (target[i] - level) * alpha[i]
        sessions[i] = level
    sessions = np.maximum(np.rint(sessions * (1 + rng.normal(0, 0.002, n))), 0).astype(np.int64)
    churn = sessions / model.SESSION_MEAN_S * STEP_S
    growth = np.maximum(np.diff(sessions, prepend=sessions[0]), 0)
    accepted = np.where(outage, 0, rng.poisson(churn + growth))
    trying = desired / model.SESSION_MEAN_S * STEP_S + np.maximum(desired - sessions, 0) * 0.05
    rejected = np.where(outage, rng.poisson(trying), 0)  # logins are refused only while the service is down
    out.put("game_session_admissions_total", ("accepted",), np.cumsum(accepted))
    out.put("game_session_admissions_total", ("rejected",), np.cumsum(rejected))
    out.put("game_sessions_active", (), sessions)
    capacity = session_capacity(inst.service, contract=contract)
    out.put("game_sessions_capacity", (), np.full(n, capacity))
    return out


def _matchmaking(inst: Instance, n_instances: int, ts: np.ndarray, rps: np.ndarray, incidents: list[Incident],
                 contract: Contract, rng: np.random.Generator) -> InstanceSeries:
    out = InstanceSeries(inst)
    n = len(ts)
    degraded = _incident_masks(incidents, ts, inst.service).get("matchmaking", np.zeros(n, dtype=bool))
    duration = contract.metric("matchmaking_duration_seconds")
    bounds = duration.buckets
    timeout_bucket = _bucket_index(bounds, model.MATCH_TIMEOUT_S)
    reject_bucket = _bucket_index(bounds, model.MATCH_REJECT_S)
    p_fail = np.where(degraded, MATCHMAKING_FAILURE_RATE, model.BASE_MATCH_FAILURE_RATE)
    for (mode, tier), share in model.match_shares(contract).items():
        arrivals_per_s = rps * share / n_instances
        total = rng.poisson(arrivals_per_s * STEP_S)
        wait = model.match_wait(mode, tier)
        mu = np.full(n, wait.mu)
        mu[degraded] += math.log(MATCHMAKING_WAIT_FACTOR)
        sigma = np.full(n, wait.sigma)
        p_timeout = 1.0 - ndtr((math.log(model.MATCH_TIMEOUT_S) - mu) / sigma)
        probs = np.stack([(1 - p_fail) * (1 - p_timeout), (1 - p_fail) * p_timeout, p_fail], axis=1)
        results = _multinomial(rng, total, probs)  # success, timeout, failure
        for k, result in enumerate(("success", "timeout", "failure")):
            out.put("matchmaking_requests_total", (mode, tier, result), np.cumsum(results[:, k]))
        # Successful waits are the log-normal cut at the timeout; timeouts wait the full timeout.
        below = _lognormal_bucket_probs(mu, sigma, bounds)[:, : timeout_bucket + 1]
        means = _lognormal_bucket_means(mu, sigma, bounds)[:, : timeout_bucket + 1]
        per_bucket = np.zeros((n, len(bounds) + 1), dtype=np.int64)
        per_bucket[:, : timeout_bucket + 1] = _multinomial(rng, results[:, 0], below)
        sums = (per_bucket[:, : timeout_bucket + 1] * np.minimum(means, model.MATCH_TIMEOUT_S)).sum(1)
        per_bucket[:, timeout_bucket] += results[:, 1]
        per_bucket[:, reject_bucket] += results[:, 2]
        sums = sums + results[:, 1] * model.MATCH_TIMEOUT_S + results[:, 2] * model.MATCH_REJECT_S
        out.put("matchmaking_duration_seconds", (mode, tier), Histogram(per_bucket, sums))
        # Little's law: tickets waiting = arrival rate x mean time in the queue.
        mean_wait = (below * np.minimum(means, model.MATCH_TIMEOUT_S)).sum(1) + p_timeout * model.MATCH_TIMEOUT_S
        out.put("matchmaking_queue_size", (mode, tier), rng.poisson(arrivals_per_s * (1 - p_fail) * mean_wait))
    return out


def _common(series: InstanceSeries, n: int, contract: Contract) -> None:
    series.put("game_instance_ready", (), np.ones(n, dtype=np.int64))
    for fault in contract.label_values["fault"]:
        series.put("game_fault_active", (fault,), np.zeros(n, dtype=np.int64))
    series.put("game_build_info", (), np.ones(n, dtype=np.int64))


# --- OpenMetrics text --------------------------------------------------------------------------------------
def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family_name(m: MetricDef) -> str:
    return m.name.removesuffix("_total") if m.type == "counter" else m.name


def _label_text(pairs: Iterable[tuple[str, str]]) -> str:
    return ",".join(f'{k}="{_escape_value(v)}"' for k, v in pairs)


@dataclass
class History:
    """Every series of a generated history, ready to be written out in time slices."""

    ts: np.ndarray  # epoch seconds of the samples
    instances: list[InstanceSeries]
    incidents: list[Incident]
    contract: Contract

    @property
    def series_count(self) -> int:
        return sum(
            len(m.buckets) + 3 if m.type == "histogram" else 1
            for inst in self.instances for name, per_combo in inst.values.items()
            for m in [self.contract.metric(name)] for _ in per_combo
        )


def compute_history(end: datetime, *, span: timedelta = timedelta(days=DEFAULT_DAYS), seed: int = 0,
                    topology: tuple[Instance, ...] = DEFAULT_TOPOLOGY, incidents: list[Incident] | None = None,
                    peak_rps: float = model.DEFAULT_PEAK_RPS, contract: Contract | None = None) -> History:
    """Simulate every series of the stable instances; the last sample is at `end` (rounded down to the minute)."""
    contract = contract or load_contract()
    model.check_against_contract(contract)
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    end_s = int(end.timestamp()) // STEP_S * STEP_S
    n = int(span.total_seconds()) // STEP_S
    if n < 1:
        raise ValueError("span must cover at least one 60 s step")
    if incidents is None:
        incidents = plan_incidents(datetime.fromtimestamp(end_s, UTC), math.ceil(span.total_seconds() / 86400))
    ts = end_s - STEP_S * np.arange(n - 1, -1, -1, dtype=np.int64)
    load = _loads(ts)
    rps = peak_rps * load
    stable = [i for i in topology if i.track == "stable"]
    instances: list[InstanceSeries] = []
    for index, inst in enumerate(stable):
        rng = np.random.default_rng([seed, index])
        peers = sum(1 for i in stable if i.service == inst.service)
        metrics = {m.name for m in contract.metrics_for(inst.service)}
        if "game_action_requests_total" in metrics:
            series = _game_server(inst, peers, ts, rps, load, incidents, contract, rng)
        elif "matchmaking_requests_total" in metrics:
            series = _matchmaking(inst, peers, ts, rps, incidents, contract, rng)
        else:
            series = InstanceSeries(inst)
        _common(series, n, contract)
        missing = {m.name for m in contract.metrics_for(inst.service)} - set(series.values)
        if missing:
            raise AssertionError(f"history for {inst.name} lacks contract metrics {sorted(missing)}")
        instances.append(series)
    return History(ts, instances, incidents, contract)


PIECE_ROWS = 1024  # samples formatted at a time per series: small strings are reused, not mapped and unmapped


def write_openmetrics(out: IO[str], history: History, rows: slice = slice(None)) -> tuple[int, int]:
    """Write the samples of `rows` (a slice of the time axis) as one OpenMetrics document ending in `# EOF`.

    Families in contract order, one family's series together, each series' samples in time order;
    a histogram's buckets, _count and _sum grouped per timestamp. Returns (lines, bytes) written.
    """
    contract = history.contract
    first, stop, _ = rows.indices(len(history.ts))
    suffixes = [f" {t}\n" for t in history.ts[first:stop].tolist()]
    pieces = [(a, min(a + PIECE_ROWS, stop)) for a in range(first, stop, PIECE_ROWS)]
    n = len(suffixes)
    lines = written = 0
    for m in contract.metrics.values():
        family = _family_name(m)
        written += _write(out, f"# HELP {family} {_escape_help(m.help)}\n# TYPE {family} {m.type}\n")
        for series in history.instances:
            data = series.values.get(m.name)
            if data is None:
                continue
            inst = series.instance
            known = {"job": inst.job(contract), "instance": inst.name, "service": inst.service,
                     "version": inst.version, "track": inst.track}
            base = [(label, known[label]) for label in contract.scrape_labels + contract.target_labels]
            for combo in itertools.product(*(contract.label_values[label] for label in m.labels)):
                labels = base + list(zip(m.labels, combo, strict=True))
                value = data[combo]
                if isinstance(value, Histogram):
                    for a, b in pieces:
                        written += _write(out, _histogram_text(m, labels, value, a, b, suffixes[a - first:b - first]))
                    lines += n * (len(m.buckets) + 3)
                else:
                    name = f"{family}_total" if m.type == "counter" else family
                    prefix = f"{name}{{{_label_text(labels)}}} "
                    for a, b in pieces:
                        written += _write(out, "".join([prefix + str(v) + s for v, s in zip(
                            value[a:b].tolist(), suffixes[a - first:b - first], strict=True)]))
                    lines += n
    written += _write(out, "# EOF\n")
    return lines, written


def _write(out: IO[str], text: str) -> int:
    out.write(text)
    return len(text)  # ASCII only: characters are bytes


def _histogram_text(m: MetricDef, labels: list[tuple[str, str]], hist: Histogram, a: int, b: int,
                    suffixes: list[str]) -> str:
    """Lines of rows a..b of one histogram series, per timestamp: buckets in order, then _count and _sum."""
    label_text = _label_text(labels)
    sep = "," if label_text else ""
    buckets = hist.buckets[a:b]
    columns = []
    for k, le in enumerate([floatToGoString(x) for x in m.buckets] + ["+Inf"]):
        prefix = f'{m.name}_bucket{{{label_text}{sep}le="{le}"}} '
        columns.append([prefix + str(v) + s for v, s in zip(buckets[:, k].tolist(), suffixes, strict=True)])
    prefix = f"{m.name}_count{{{label_text}}} "
    columns.append([prefix + str(v) + s for v, s in zip(hist.count[a:b].tolist(), suffixes, strict=True)])
    prefix = f"{m.name}_sum{{{label_text}}} "
    columns.append([f"{prefix}{v:.3f}{s}" for v, s in zip(hist.sum[a:b].tolist(), suffixes, strict=True)])
    return "".join(map("".join, zip(*columns, strict=True)))


@dataclass
class HistoryStats:
    """What a generation wrote."""

    start: datetime
    end: datetime
    samples_per_series: int
    series: int
    lines: int
    bytes: int
    seconds: float
    incidents: list[Incident]


def generate(out: IO[str], end: datetime, *, span: timedelta = timedelta(days=DEFAULT_DAYS), seed: int = 0,
             topology: tuple[Instance, ...] = DEFAULT_TOPOLOGY, incidents: list[Incident] | None = None,
             peak_rps: float = model.DEFAULT_PEAK_RPS, contract: Contract | None = None) -> HistoryStats:
    """Write OpenMetrics text for every contract series of the stable instances, ending with `# EOF`.

    `end` is the last sample's time (rounded down to the minute); samples go back `span` at 60 s steps.
    `incidents` defaults to `plan_incidents(end, span in days)`; pass another list to place them elsewhere.
    """
    started = time.perf_counter()
    history = compute_history(end, span=span, seed=seed, topology=topology, incidents=incidents,
                              peak_rps=peak_rps, contract=contract)
    lines, written = write_openmetrics(out, history)
    return _stats(history, lines, written, time.perf_counter() - started)


def _stats(history: History, lines: int, written: int, seconds: float) -> HistoryStats:
    return HistoryStats(datetime.fromtimestamp(int(history.ts[0]), UTC),
                        datetime.fromtimestamp(int(history.ts[-1]), UTC), len(history.ts), history.series_count,
                        lines, written, seconds, history.incidents)


def default_end() -> datetime:
    """Now, rounded down to the minute (UTC)."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def write_history(path: Path, end: datetime | None = None, days: int = DEFAULT_DAYS, seed: int = 0) -> HistoryStats:
    """Write the whole history to one file at `path`."""
    with path.open("w", buffering=1 << 22) as out:
        return generate(out, end or default_end(), span=timedelta(days=days), seed=seed)


# --- backfill ----------------------------------------------------------------------------------------------
class BackfillError(RuntimeError):
    """promtool is missing or failed to turn the history into TSDB blocks."""


@dataclass
class BackfillResult:
    history: HistoryStats
    seconds: float  # wall time of the whole backfill (generation and promtool overlap)
    promtool_cpu_seconds: float
    blocks: int


def block_windows(ts: np.ndarray, block_s: int = BLOCK_S) -> list[slice]:
    """Row slices of `ts`, one per TSDB block window aligned like promtool aligns them (epoch multiples)."""
    window = ts // block_s
    cuts = np.flatnonzero(np.diff(window)) + 1
    bounds = [0, *cuts.tolist(), len(ts)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def backfill(out_dir: Path, end: datetime | None = None, days: int = DEFAULT_DAYS, seed: int = 0,
             *, workers: int = 2) -> BackfillResult:
    """Generate the history and turn it into TSDB blocks in `out_dir` (a Prometheus --storage.tsdb.path).

    The history is written as one OpenMetrics file per 54 h block window, and promtool runs on each file as
    soon as it is written (at most `workers` at once), so each sample is read twice instead of once per
    block, and generation and block creation overlap. Start Prometheus on `out_dir` with
    --storage.tsdb.retention.time of at least `days` (60d in the demo). A running Prometheus also picks the
    blocks up, at its next block reload (within a minute). Raises BackfillError naming promtool when it is
    missing or fails.
    """
    promtool = shutil.which("promtool")
    if promtool is None:
        raise BackfillError("promtool is not installed (Debian package prometheus): run `make debs` and try again")
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.iterdir())
    history = compute_history(end or default_end(), span=timedelta(days=days), seed=seed)
    lines = written = 0
    cpu = 0.0
    running: list[tuple[subprocess.Popen[bytes], Path, list[str]]] = []

    def reap(block: bool) -> None:
        nonlocal cpu
        for item in list(running):
            proc, path, cmd = item
            if proc.poll() is None and not block:
                continue
            proc.wait()
            running.remove(item)
            log = path.with_suffix(".log")
            if proc.returncode != 0:
                detail = log.read_text(errors="replace").strip().splitlines()[-5:]
                raise BackfillError(f"promtool failed (exit {proc.returncode}) creating blocks from {path}: "
                                    f"{' | '.join(detail)} (command: {' '.join(cmd)})")
            path.unlink()
            block = False  # one finished is enough to make room
        cpu = _children_cpu()

    with tempfile.TemporaryDirectory(prefix="gamesre-history-", dir=_scratch_dir()) as tmp:
        try:
            for k, rows in enumerate(block_windows(history.ts)):
                path = Path(tmp) / f"window-{k:03d}.om"
                with path.open("w", buffering=1 << 22) as out:
                    n_lines, n_bytes = write_openmetrics(out, history, rows)
                lines, written = lines + n_lines, written + n_bytes
                while len(running) >= workers:
                    reap(block=True)
                cmd = [promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                       f"--max-block-duration={BLOCK_S // 3600}h", str(path), str(out_dir)]
                with path.with_suffix(".log").open("wb") as log:
                    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=_promtool_env())
                running.append((proc, path, cmd))
            while running:
                reap(block=True)
        finally:
            for proc, _, _ in running:
                proc.kill()
                proc.wait()
    seconds = time.perf_counter() - started
    blocks = len(set(out_dir.iterdir()) - before)
    return BackfillResult(_stats(history, lines, written, seconds), seconds, cpu, blocks)


def _promtool_env() -> dict[str, str]:
    """promtool's environment: Go's garbage collector runs less often (about 15 % faster, ~400 MB each)."""
    env = dict(os.environ)
    env.setdefault("GOGC", "400")
    return env


def _scratch_dir() -> str | None:
    """Where the per-window files go: memory (/dev/shm) when it has room, so 4 GB never hit the disk."""
    shm = Path("/dev/shm")  # noqa: S108 (only the parent of a private mkdtemp folder)
    try:
        if shm.is_dir() and shutil.disk_usage(shm).free > 4 * 1024**3:
            return str(shm)
    except OSError:
        pass
    return None  # the system temp folder


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _parse_end(text: str | None) -> datetime | None:
    if text is None:
        return None
    end = datetime.fromisoformat(text)
    return end if end.tzinfo is not None else end.replace(tzinfo=KST)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="demo/history.py",
        description="Generate the demo's metric history (OpenMetrics, 60 s steps, planted incidents); "
                    "optionally turn it into Prometheus TSDB blocks with promtool.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write the OpenMetrics text to this file")
    target.add_argument("--backfill", type=Path, metavar="DATA_DIR",
                        help="create TSDB blocks in this Prometheus data directory (runs promtool)")
    parser.add_argument("--end", default=None, help="time of the last sample, ISO 8601 (no offset means KST); "
                        "default: now, rounded down to the minute")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help=f"days of history (default {DEFAULT_DAYS})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same bytes")
    parser.add_argument("--workers", type=int, default=2, help="promtool processes at once with --backfill "
                        "(default 2)")
    parser.add_argument("--list-incidents", action="store_true", help="also print the planted incidents")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    end = _parse_end(args.end)
    if args.out is not None:
        stats = write_history(args.out, end, args.days, args.seed)
        print(f"wrote {args.out}: {stats.series} series x {stats.samples_per_series} samples "
              f"({stats.bytes / 1e6:.0f} MB) from {stats.start:%Y-%m-%dT%H:%MZ} to {stats.end:%Y-%m-%dT%H:%MZ} "
              f"in {stats.seconds:.1f}s")
    else:
        result = backfill(args.backfill, end, args.days, args.seed, workers=args.workers)
        stats = result.history
        print(f"backfilled {args.backfill}: {stats.series} series x {stats.samples_per_series} samples "
              f"({stats.bytes / 1e6:.0f} MB of OpenMetrics) into {result.blocks} blocks in {result.seconds:.1f}s "
              f"(promtool CPU {result.promtool_cpu_seconds:.1f}s)")
    if args.list_incidents:
        for inc in stats.incidents:
            start, stop = inc.start.astimezone(KST), inc.end.astimezone(KST)
            print(f"{inc.kind:12} {start:%Y-%m-%d %H:%M} .. {stop:%Y-%m-%d %H:%M} KST  {inc.name}: {inc.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
