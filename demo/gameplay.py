"""The game-server simulation of a fleet process: actions, player-data saves and sessions, with their metrics.

Each request draws a latency from the model (plus injected latency), sleeps it (sleeping costs no CPU), then
records what happened with the measured duration. Failures carry an error type whose HTTP code comes from
`model.ERROR_CODE`. Sessions are scaled: a login or logout carries a `players` count (see model.PEAK_SESSIONS).
"""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from demo import model
from demo.admin import Faults
from demo.fleet_metrics import FleetMetrics

ACTION_REQUESTS = "game_action_requests_total"
ACTION_ERRORS = "game_action_errors_total"
ACTION_DURATION = "game_action_duration_seconds"
SESSIONS_ACTIVE = "game_sessions_active"
SESSIONS_CAPACITY = "game_sessions_capacity"
ADMISSIONS = "game_session_admissions_total"
SAVES = "game_data_save_total"
SAVE_DURATION = "game_data_save_duration_seconds"


@dataclass(frozen=True)
class Plan:
    """What a request will do before it is served: how long it takes and how (or whether) it fails."""

    latency_s: float
    error_type: str | None

    @property
    def code(self) -> str:
        return model.SUCCESS_CODE if self.error_type is None else model.ERROR_CODE[self.error_type]


def plan_request(profile: model.LatencyProfile, faults: Faults, rng: random.Random, *, uses_db: bool,
                 timeout_s: float, injected_latency: bool = True,
                 base_error_rate: float = model.BASE_ERROR_RATE) -> Plan:
    """Draw the latency and the failure (if any) of one request under the current faults.

    `base_error_rate` is the share that fails on a good day, with no fault injected.
    """
    if faults.crash:
        return Plan(0.0, "overload")
    latency = profile.sample(rng) * (1.0 + faults.cpu_load)  # a busy CPU slows everything down
    if injected_latency:
        latency += faults.latency_ms / 1000.0
    error: str | None = None
    if uses_db:
        latency += faults.db_latency_ms / 1000.0
        if faults.db_fail_rate and rng.random() < faults.db_fail_rate:
            error = "database"
    if error is None and faults.error_rate and rng.random() < faults.error_rate:
        error = model.weighted_choice(rng, model.INJECTED_ERROR_MIX)
    if error is None and base_error_rate and rng.random() < base_error_rate:
        error = model.weighted_choice(rng, model.BASE_ERROR_MIX)
    if error == "timeout" or latency >= timeout_s:
        return Plan(timeout_s, "timeout")  # the server's deadline: it gives up and answers 504
    if error is not None:
        latency *= 0.5  # failures are answered faster than the work they abandon
    return Plan(latency, error)


class GameServer:
    """Actions, saves and the session count of one game-server instance."""

    def __init__(self, metrics: FleetMetrics, rng: random.Random, capacity: int) -> None:
        self._metrics = metrics
        self._rng = rng
        self._capacity = capacity
        self._sessions = 0
        self._lock = threading.Lock()
        metrics.set(SESSIONS_CAPACITY, (), capacity)

    @property
    def sessions(self) -> int:
        return self._sessions

    @property
    def capacity(self) -> int:
        return self._capacity

    def _serve(self, action: str, plan: Plan) -> float:
        """Sleep the planned latency and record the action; returns the measured duration."""
        start = time.perf_counter()
        if plan.latency_s > 0:
            time.sleep(plan.latency_s)
        elapsed = time.perf_counter() - start
        self._metrics.inc(ACTION_REQUESTS, (action, plan.code))
        if plan.error_type is not None:
            self._metrics.inc(ACTION_ERRORS, (action, plan.error_type))
        self._metrics.observe(ACTION_DURATION, (action,), elapsed)
        return elapsed

    def action(self, action: str, faults: Faults) -> tuple[int, dict[str, object]]:
        plan = plan_request(model.ACTION_LATENCY[action], faults, self._rng, uses_db=False,
                            timeout_s=model.ACTION_TIMEOUT_S)
        elapsed = self._serve(action, plan)
        if plan.error_type is not None:
            return int(plan.code), {"error": plan.error_type}
        return 200, {"action": action, "seconds": round(elapsed, 4)}

    def login(self, players: int, faults: Faults) -> tuple[int, dict[str, object]]:
        """Admit `players` players at once (all or none): a database call, then a capacity check."""
        plan = plan_request(model.ACTION_LATENCY["login"], faults, self._rng, uses_db=True,
                            timeout_s=model.ACTION_TIMEOUT_S, base_error_rate=0.0)  # rejected only when full or faulty
        if plan.error_type is None:
            with self._lock:
                if self._sessions + players > self._capacity:
                    plan = Plan(plan.latency_s, "overload")  # full: admission rejected
                else:
                    self._sessions += players
                    self._metrics.set(SESSIONS_ACTIVE, (), self._sessions)
        self._serve("login", plan)
        result = "accepted" if plan.error_type is None else "rejected"
        self._metrics.inc(ADMISSIONS, (result,), players)
        body: dict[str, object] = {"players": players, "admission": result, **self._session_view()}
        if plan.error_type is not None:
            body["error"] = plan.error_type
            return int(plan.code), body
        return 200, body

    def logout(self, players: int, faults: Faults) -> tuple[int, dict[str, object]]:
        if faults.crash:
            return 503, {"error": "overload"}
        with self._lock:
            gone = min(players, self._sessions)
            self._sessions -= gone
            self._metrics.set(SESSIONS_ACTIVE, (), self._sessions)
        return 200, {"players": gone, **self._session_view()}

    def save(self, faults: Faults) -> tuple[int, dict[str, object]]:
        plan = plan_request(model.SAVE_LATENCY, faults, self._rng, uses_db=True,
                            timeout_s=model.SAVE_TIMEOUT_S, injected_latency=False,
                            base_error_rate=model.BASE_SAVE_FAILURE_RATE)
        start = time.perf_counter()
        if plan.latency_s > 0:
            time.sleep(plan.latency_s)
        self._metrics.observe(SAVE_DURATION, (), time.perf_counter() - start)
        self._metrics.inc(SAVES, ("success" if plan.error_type is None else "failure",))
        if plan.error_type is not None:
            return int(plan.code), {"error": plan.error_type}
        return 200, {"saved": True}

    def drop_sessions(self) -> int:
        """A crash disconnects every player."""
        with self._lock:
            gone, self._sessions = self._sessions, 0
            self._metrics.set(SESSIONS_ACTIVE, (), 0)
        return gone

    def _session_view(self) -> dict[str, object]:
        return {"sessions": self._sessions, "capacity": self._capacity}
