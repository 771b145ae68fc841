"""Player-load generator: sends game traffic through HAProxy following the daily load curve (Asia/Seoul).

    python demo/loadgen.py --base-url http://127.0.0.1:8080 [--peak-rps 30] [--duration 60]
                           [--time-scale 1 | --fixed-hour 20] [--concurrency 32] [--seed 7]
                           [--service game-server|matchmaking]

Requests arrive as a Poisson process at `peak_rps x load_factor(now in KST)` (see demo/curve.py) and are
mixed as in demo/model.py: game actions, saves, logins and logouts carrying many players each (scaled
sessions that follow the same curve), and matchmaking across modes and tiers. A small thread pool sends
them; when every worker is busy (a slow fleet) a request is shed and counted rather than queued. A summary
line (JSON) is printed every --report-every seconds and at exit. SIGTERM or SIGINT stops it cleanly.

A fixed rate: `--fixed-hour 20 --peak-rps X` sends X requests/s, since the load factor is exactly 1.0 at
20:00 on a weekday. Smoke traffic straight at one fleet instance (a deploy's preview, which no player
reaches): `--service NAME --base-url http://127.0.0.1:<instance port>` sends only that service's requests
(game-server: actions, saves, logins and logouts; matchmaking: match requests), and every login and logout
then carries SMOKE_SESSION_PLAYERS players, so the instance's sessions stay where they were instead of
following the curve of a whole fleet (demo/services.py: smoke_command).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python demo/loadgen.py`: make `demo` and `gamesre` importable
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(_ROOT), str(_ROOT / "plugins")]

import argparse
import http.client
import json
import math
import random
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

from demo import model
from demo.curve import KST, load_factor, load_factor_at_hour
from gamesre.core.contract import Contract, load_contract

REQUEST_TIMEOUT_S = 10.0
ESTIMATE_TTL_S = 30.0  # an instance not heard from for this long no longer counts in the session estimate
CATCH_UP_S = 60.0  # the session count closes its gap to the target over about this long
# The requests each service answers (--service); together they are the whole traffic mix.
SERVICE_KINDS: dict[str, tuple[str, ...]] = {
    "game-server": ("action", "login", "logout", "save"),
    "matchmaking": ("match",),
}
SMOKE_SESSION_PLAYERS = 1  # players per login and per logout with --service: equal in and out


@dataclass(frozen=True)
class Request:
    kind: str  # action | login | logout | save | match
    path: str  # path with query string

    def __str__(self) -> str:
        return f"POST {self.path}"


class SimClock:
    """The simulated wall clock that drives the load curve: real time, sped up, or pinned to an hour."""

    def __init__(self, *, time_scale: float = 1.0, fixed_hour: float | None = None,
                 start: datetime | None = None) -> None:
        self.time_scale = time_scale
        self.fixed_hour = fixed_hour
        self._start = start or datetime.now(UTC)
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        if self.fixed_hour is not None:
            return self._start
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self.time_scale)

    def load(self) -> float:
        if self.fixed_hour is not None:
            return load_factor_at_hour(self.fixed_hour)
        return load_factor(self.now())


class SessionPlanner:
    """How many players each login/logout request carries, so the fleet's sessions follow the curve.

    It estimates the fleet's sessions from the `sessions` each game-server reports in its answers, then
    spreads the needed flow (churn of sessions ending naturally, plus closing the gap to the target) over
    the login and logout requests the traffic mix sends.
    """

    def __init__(self, peak_sessions: float = model.PEAK_SESSIONS, session_s: float = model.SESSION_MEAN_S):
        self.peak_sessions = peak_sessions
        self.session_s = session_s
        self._lock = threading.Lock()
        self._reports: dict[str, tuple[int, float]] = {}  # instance -> (sessions, monotonic time)

    def report(self, instance: str, sessions: int, at: float | None = None) -> None:
        with self._lock:
            self._reports[instance] = (sessions, time.monotonic() if at is None else at)

    def estimate(self, at: float | None = None) -> int:
        now = time.monotonic() if at is None else at
        with self._lock:
            return sum(s for s, t in self._reports.values() if now - t <= ESTIMATE_TTL_S)

    def players(self, kind: str, load: float, requests_per_s: float, at: float | None = None) -> int:
        """Players for one login or logout request when `requests_per_s` such requests are sent."""
        current = self.estimate(at)
        target = self.peak_sessions * load
        churn = current / self.session_s  # players per second whose session ends on its own
        gap = (target - current) / CATCH_UP_S
        flow = churn + max(gap, 0.0) if kind == "login" else churn + max(-gap, 0.0)
        per_request = flow / max(requests_per_s, 1e-6)
        return max(1, min(model.MAX_PLAYERS_PER_REQUEST, math.ceil(per_request)))


class SteadySessions(SessionPlanner):
    """Logins and logouts carry the same number of players, so one instance's sessions stay about where they are.

    For smoke traffic straight at one instance: the fleet-wide target of SessionPlanner would pile a whole
    fleet's sessions onto it. Logins and logouts come at the same rate, so on average they cancel out.
    """

    def __init__(self, players: int = SMOKE_SESSION_PLAYERS) -> None:
        super().__init__()
        self.fixed_players = players

    def players(self, kind: str, load: float, requests_per_s: float, at: float | None = None) -> int:
        return self.fixed_players


class TrafficMix:
    """Draws the next player request from the model's traffic mix (label values from the contract).

    With `service`, only that service's requests, in the same proportions among themselves.
    """

    def __init__(self, contract: Contract, rng: random.Random, service: str | None = None) -> None:
        self.rng = rng
        kinds = dict(model.TRAFFIC_SHARE)
        if service is not None:
            if service not in contract.services or service not in SERVICE_KINDS:
                raise ValueError(f"service {service!r}: expected one of {', '.join(sorted(SERVICE_KINDS))}")
            kinds = {k: share for k, share in kinds.items() if k in SERVICE_KINDS[service]}
        total = sum(kinds.values())
        self.kinds = {k: share / total for k, share in kinds.items()}  # share of the requests sent
        self.actions = {a: model.ACTION_WEIGHT[a] for a in contract.label_values["action"] if a != "login"}
        self.modes = {m: model.MODE_WEIGHT[m] for m in contract.label_values["mode"]}
        self.tiers = {t: model.TIER_WEIGHT[t] for t in contract.label_values["tier"]}

    def next(self, players: dict[str, int]) -> Request:
        kind = model.weighted_choice(self.rng, self.kinds)
        if kind == "action":
            return Request(kind, f"/api/action/{model.weighted_choice(self.rng, self.actions)}")
        if kind in ("login", "logout"):
            return Request(kind, f"/api/session/{kind}?{urlencode({'players': players[kind]})}")
        if kind == "save":
            return Request(kind, "/api/save")
        query = urlencode({"mode": model.weighted_choice(self.rng, self.modes),
                           "tier": model.weighted_choice(self.rng, self.tiers)})
        return Request(kind, f"/api/match?{query}")


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_status: Counter[str] = Counter()
        self.by_kind: Counter[str] = Counter()
        self.shed = 0
        self.started = time.monotonic()

    def record(self, kind: str, status: str) -> None:
        with self._lock:
            self.by_status[status] += 1
            self.by_kind[kind] += 1

    def record_shed(self) -> None:
        with self._lock:
            self.shed += 1

    def snapshot(self, **extra: object) -> dict[str, object]:
        with self._lock:
            sent = sum(self.by_status.values())
            return {"elapsed_s": round(time.monotonic() - self.started, 1), "sent": sent,
                    "ok": self.by_status.get("200", 0), "by_status": dict(sorted(self.by_status.items())),
                    "by_kind": dict(sorted(self.by_kind.items())), "shed": self.shed, **extra}


class LoadGenerator:
    def __init__(self, base_url: str, *, peak_rps: float, clock: SimClock, concurrency: int, seed: int | None,
                 planner: SessionPlanner, contract: Contract, service: str | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"--base-url must be an http:// URL, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.peak_rps = peak_rps
        self.clock = clock
        self.concurrency = concurrency
        self.rng = random.Random(seed)
        self.planner = planner
        self.mix = TrafficMix(contract, self.rng, service)
        self.stats = Stats()
        self.stop = threading.Event()
        self._slots = threading.BoundedSemaphore(concurrency)
        self._local = threading.local()

    # --- one request ---------------------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
            self._local.conn = conn
        return conn

    def send(self, request: Request) -> str:
        """Send one request (one reconnect on a dropped keep-alive connection); returns the status or error."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("POST", request.path, body=b"", headers={"Content-Length": "0"})
                response = conn.getresponse()
                body = response.read()
                if request.kind in ("login", "logout"):
                    self._learn_sessions(body)
                return str(response.status)
            except (http.client.HTTPException, OSError) as exc:
                conn.close()
                self._local.conn = None
                if attempt == 2 or isinstance(exc, TimeoutError):
                    return type(exc).__name__
        return "unreachable"  # pragma: no cover (the loop always returns)

    def _learn_sessions(self, body: bytes) -> None:
        try:
            doc = json.loads(body)
        except ValueError:
            return
        if isinstance(doc, dict) and isinstance(doc.get("sessions"), int) and isinstance(doc.get("instance"), str):
            self.planner.report(doc["instance"], doc["sessions"])

    def _run_one(self, request: Request) -> None:
        try:
            self.stats.record(request.kind, self.send(request))
        finally:
            self._slots.release()

    # --- the arrival loop ----------------------------------------------------------------------------------
    def run(self, duration: float | None = None, report_every: float = 30.0) -> dict[str, object]:
        deadline = None if duration is None else time.monotonic() + duration
        next_report = time.monotonic() + report_every
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="player") as pool:
            while not self.stop.is_set():
                load = self.clock.load()
                rps = max(self.peak_rps * load, 0.01)
                wait = self.rng.expovariate(rps)  # Poisson arrivals at the current rate
                if deadline is not None:
                    wait = min(wait, max(deadline - time.monotonic(), 0.0))
                if self.stop.wait(wait):
                    break
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                if now >= next_report:
                    self._print(self.stats.snapshot(load=round(load, 3), sessions_estimate=self.planner.estimate()))
                    next_report = now + report_every
                session_rps = rps * self.mix.kinds.get("login", 0.0)
                players = {k: self.planner.players(k, load, session_rps) for k in ("login", "logout")}
                request = self.mix.next(players)
                if not self._slots.acquire(blocking=False):
                    self.stats.record_shed()  # every worker busy: a player gives up instead of a queue growing
                    continue
                pool.submit(self._run_one, request)
        summary = self.stats.snapshot(final=True, sessions_estimate=self.planner.estimate())
        self._print(summary)
        return summary

    @staticmethod
    def _print(doc: dict[str, object]) -> None:
        print(json.dumps(doc), flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="demo/loadgen.py",
        description="Send player traffic through HAProxy following the daily load curve in Asia/Seoul, or one "
                    "service's requests straight to one fleet instance (--service).",
        epilog="A fixed rate of X requests/s: --fixed-hour 20 --peak-rps X. Smoke traffic for one instance: "
               "--service game-server --base-url http://127.0.0.1:<instance port> --fixed-hour 20 --peak-rps 5 "
               "--duration 90.",
    )
    parser.add_argument("--base-url", required=True, help="HAProxy's player frontend, e.g. http://127.0.0.1:8080, "
                        "or one fleet instance with --service")
    parser.add_argument("--peak-rps", type=float, default=model.DEFAULT_PEAK_RPS,
                        help=f"requests/s at the weekday evening peak (default {model.DEFAULT_PEAK_RPS:g})")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: run "
                        "until SIGTERM/SIGINT)")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--time-scale", type=float, default=1.0,
                      help="simulated seconds per real second for the load curve, starting now (default 1)")
    when.add_argument("--fixed-hour", type=float, default=None,
                      help="hold the load at this KST hour of a weekday, 0 <= H < 24 (20: the peak, load factor "
                           "1.0, so a fixed rate of --peak-rps)")
    parser.add_argument("--start", default=None, help="simulated start time for --time-scale, ISO 8601 (no offset "
                        "means KST; default: now)")
    parser.add_argument("--concurrency", type=int, default=32, help="worker threads, i.e. requests in flight at "
                        "most (default 32)")
    parser.add_argument("--peak-sessions", type=float, default=model.PEAK_SESSIONS,
                        help=f"concurrent sessions at load factor 1.0 (default {model.PEAK_SESSIONS}; not used with "
                             "--service)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the request mix (default: random)")
    parser.add_argument("--report-every", type=float, default=30.0, help="seconds between summary lines (default 30)")
    parser.add_argument("--service", choices=sorted(SERVICE_KINDS), default=None,
                        help="send only this service's requests (game-server: actions, saves, logins, logouts; "
                             "matchmaking: match requests), e.g. straight at one instance; logins and logouts then "
                             f"carry the same number of players ({SMOKE_SESSION_PLAYERS}) each, so its sessions "
                             "stay steady (default: the whole mix, sessions following the curve)")
    args = parser.parse_args(argv)
    if args.peak_rps <= 0:
        parser.error("--peak-rps must be positive")
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    if args.fixed_hour is not None and not 0 <= args.fixed_hour < 24:
        parser.error("--fixed-hour must be in [0, 24)")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = datetime.fromisoformat(args.start) if args.start else None
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=KST)
    clock = SimClock(time_scale=args.time_scale, fixed_hour=args.fixed_hour, start=start)
    contract = load_contract()
    model.check_against_contract(contract)
    planner = SessionPlanner(peak_sessions=args.peak_sessions) if args.service is None else SteadySessions()
    gen = LoadGenerator(args.base_url, peak_rps=args.peak_rps, clock=clock, concurrency=args.concurrency,
                        seed=args.seed, planner=planner, contract=contract, service=args.service)

    def stop(signum: int, _frame: object) -> None:
        gen.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    gen.run(duration=args.duration, report_every=args.report_every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
