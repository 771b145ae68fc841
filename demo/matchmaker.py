"""The matchmaking simulation of a fleet process: real per-(mode, tier) queues of waiting tickets.

A request enqueues a ticket and is answered at once (202-style "queued" with HTTP 200). A background thread
resolves each ticket when its simulated wait is over: matched (success), or given up after the timeout
(timeout), or failed. `matchmaking_queue_size` is the number of tickets really waiting in each queue, so it
grows with arrival rate and wait time (Little's law) rather than being a constant.
"""
from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from dataclasses import dataclass, field

from demo import model
from demo.admin import Faults
from demo.fleet_metrics import FleetMetrics
from gamesre.core.contract import Contract

REQUESTS = "matchmaking_requests_total"
DURATION = "matchmaking_duration_seconds"
QUEUE = "matchmaking_queue_size"


@dataclass(order=True)
class Ticket:
    due: float  # monotonic time at which the ticket resolves
    ticket_id: int
    mode: str = field(compare=False)
    tier: str = field(compare=False)
    enqueued: float = field(compare=False)
    result: str = field(compare=False)  # the result it resolves with: success | timeout | failure


class Matchmaker:
    """Queues, a resolver thread, and the matchmaking metrics they drive."""

    TICK_S = 0.1

    def __init__(self, metrics: FleetMetrics, contract: Contract, rng: random.Random) -> None:
        self._metrics = metrics
        self._rng = rng
        self._modes = contract.label_values["mode"]
        self._tiers = contract.label_values["tier"]
        self._lock = threading.Lock()
        self._heap: list[Ticket] = []
        self._waiting: dict[tuple[str, str], int] = {(m, t): 0 for m in self._modes for t in self._tiers}
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="matchmaker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def validate(self, mode: str | None, tier: str | None) -> str | None:
        """An error message for bad query parameters, or None."""
        if mode not in self._modes:
            return f"mode: expected one of {', '.join(self._modes)}, got {mode!r}"
        if tier not in self._tiers:
            return f"tier: expected one of {', '.join(self._tiers)}, got {tier!r}"
        return None

    def enqueue(self, mode: str, tier: str, faults: Faults) -> tuple[int, dict[str, object]]:
        """Queue a ticket, or fail the request at once under an injected error; returns (status, body)."""
        if faults.crash or (faults.error_rate and self._rng.random() < faults.error_rate):
            time.sleep(model.MATCH_REJECT_S)
            self._record(mode, tier, "failure", model.MATCH_REJECT_S)
            error_type = "overload" if faults.crash else model.weighted_choice(self._rng, model.INJECTED_ERROR_MIX)
            return int(model.ERROR_CODE[error_type]), {"error": error_type}
        wait = model.match_wait(mode, tier).sample(self._rng) + faults.latency_ms / 1000.0
        if self._rng.random() < model.BASE_MATCH_FAILURE_RATE:
            result, wait = "failure", min(wait, model.MATCH_TIMEOUT_S)
        elif wait >= model.MATCH_TIMEOUT_S:
            result, wait = "timeout", model.MATCH_TIMEOUT_S
        else:
            result = "success"
        now = time.monotonic()
        ticket = Ticket(now + wait, next(self._ids), mode, tier, now, result)
        with self._lock:
            heapq.heappush(self._heap, ticket)
            self._waiting[(mode, tier)] += 1
            waiting = self._waiting[(mode, tier)]
            self._metrics.set(QUEUE, (mode, tier), waiting)
        return 200, {"ticket": ticket.ticket_id, "queue_size": waiting}

    def fail_all(self) -> int:
        """A crash: every waiting ticket fails now. Returns how many there were."""
        with self._lock:
            tickets, self._heap = self._heap, []
            for key in self._waiting:
                self._waiting[key] = 0
                self._metrics.set(QUEUE, key, 0)
        now = time.monotonic()
        for t in tickets:
            self._record(t.mode, t.tier, "failure", now - t.enqueued)
        return len(tickets)

    def queue_sizes(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._waiting)

    def _record(self, mode: str, tier: str, result: str, seconds: float) -> None:
        self._metrics.inc(REQUESTS, (mode, tier, result))
        self._metrics.observe(DURATION, (mode, tier), seconds)

    def _run(self) -> None:
        while not self._stop.wait(self.TICK_S):
            now = time.monotonic()
            due: list[Ticket] = []
            with self._lock:
                while self._heap and self._heap[0].due <= now:
                    t = heapq.heappop(self._heap)
                    self._waiting[(t.mode, t.tier)] -= 1
                    self._metrics.set(QUEUE, (t.mode, t.tier), self._waiting[(t.mode, t.tier)])
                    due.append(t)
            for t in due:
                self._record(t.mode, t.tier, t.result, t.due - t.enqueued)
