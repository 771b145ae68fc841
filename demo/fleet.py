"""One process of the demo game fleet: a real HTTP game-server or matchmaking instance with metrics and faults.

    python demo/fleet.py --name gs-stable-1 --service game-server --version 1.4.2 --track stable --port 18001

Endpoints (all JSON except /metrics):
  GET  /metrics                      Prometheus exposition: the contract's metrics + process_* metrics
  GET  /healthz                      liveness: 200, or 503 while the `crash` or `killed` fault is on
  GET  /ready                        readiness: 200, or 503 while `not_ready`, `crash` or `killed` is on
  game-server:
  POST /api/action/<action>          one game action (an `action` value of the metric contract)
  POST /api/save                     save player data (a database call)
  POST /api/session/login?players=N  admit N players at once (scaled sessions; a database call)
  POST /api/session/logout?players=N
  matchmaking:
  POST /api/match?mode=M&tier=T      queue a matchmaking ticket; resolved in the background
  admin (not reachable through HAProxy's player frontend):
  GET|PUT|DELETE /admin/faults       runtime faults (PUT is a partial update, all-or-nothing)
  GET|PUT        /admin/build        {"version": ..., "track": ...}: the build labels of every series, and the
                                     "defects" of the running version

Defective builds: demo/builds.yaml lists demo versions with a known defect (e.g. game-server 1.6.66 fails 3%
of requests). While the instance runs such a version, by --version or PUT /admin/build, players are served
with the injected faults combined with the build's defects (per field the larger value). Defects are not
injected faults: /admin/faults and game_fault_active show only what was injected, DELETE keeps the defects.

A crash keeps the process running so its faults can be cleared: player requests are answered 503 and
counted as failures, /healthz and /ready fail, /metrics and /admin keep answering. `killed` stands for a
deleted pod: player connections are closed without an answer (nothing is counted, HAProxy retries them on
another server: `retry-on empty-response`), sessions are dropped, /healthz and /ready fail; /metrics and /admin
keep answering so the fault can be cleared. SIGTERM stops it cleanly.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python demo/fleet.py`: make `demo` and `gamesre` importable
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(_ROOT), str(_ROOT / "plugins")]

import argparse
import json
import random
import signal
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder

from demo import model
from demo.admin import AdminValidationError, Build, Faults, active_fault_labels, parse_build_update, parse_fault_update
from demo.builds import BuildCatalog, effective_faults, load_catalog
from demo.fleet_metrics import FleetMetrics
from demo.gameplay import GameServer
from demo.matchmaker import Matchmaker
from demo.resource_faults import ResourceFaults
from demo.topology import DEFAULT_TOPOLOGY, Instance, session_capacity
from gamesre.core.contract import Contract, load_contract

FLEET_PY = Path(__file__).resolve()
MAX_BODY = 64 * 1024
READY = "game_instance_ready"
FAULT_ACTIVE = "game_fault_active"
BUILD_INFO = "game_build_info"


class FleetApp:
    """The state of one instance: build, faults, metrics and its game or matchmaking simulation.

    `faults` are the injected (admin) faults, `defects` those of the running build (demo/builds.yaml), and
    `effective` their combination, which is what players are served with.
    """

    def __init__(self, name: str, service: str, build: Build, *, contract: Contract, seed: int | None,
                 capacity: int | None = None, catalog: BuildCatalog | None = None) -> None:
        if service not in contract.services:
            raise ValueError(f"service {service!r} is not in the metric contract")
        model.check_against_contract(contract)
        self.name = name
        self.service = service
        self.contract = contract
        self.rng = random.Random(seed)
        self.metrics = FleetMetrics(contract, service, build)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.metrics)
        ProcessCollector(registry=self.registry)
        self.resources = ResourceFaults(name)
        self.catalog = catalog if catalog is not None else load_catalog(contract.services)
        self.faults = Faults()
        self.defects = Faults()
        self.effective = Faults()
        self._lock = threading.Lock()
        self.game: GameServer | None = None
        self.matchmaker: Matchmaker | None = None
        if any(m.name == "game_sessions_active" for m in contract.metrics_for(service)):
            cap = capacity if capacity is not None else session_capacity(service, DEFAULT_TOPOLOGY, contract)
            self.game = GameServer(self.metrics, self.rng, cap)
        if any(m.name == "matchmaking_queue_size" for m in contract.metrics_for(service)):
            self.matchmaker = Matchmaker(self.metrics, contract, self.rng)
            self.matchmaker.start()
        self.metrics.set(BUILD_INFO, (), 1)
        with self._lock:
            self._run_build(Faults())

    # --- faults and build ----------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return not (self.effective.not_ready or self.effective.crash or self.effective.killed)

    @property
    def alive(self) -> bool:
        return not (self.effective.crash or self.effective.killed)

    def _publish_fault_state(self) -> None:
        active = active_fault_labels(self.faults)  # injected faults only: a build's defects are not faults
        for label in self.contract.label_values["fault"]:
            self.metrics.set(FAULT_ACTIVE, (label,), 1 if label in active else 0)
        self.metrics.set(READY, (), 1 if self.ready else 0)

    def _settle(self, faults: Faults, defects: Faults) -> None:
        """Make these injected faults and build defects current: hold their resources, crash, publish.

        Raises OSError, with nothing committed, when the disk cannot be filled (the fill file is gone then):
        the caller settles again without a disk fault.
        """
        before = self.effective
        after = effective_faults(faults, defects)
        self.resources.apply(after.cpu_load, after.memory_mb, after.disk_fill_mb)
        self.faults, self.defects, self.effective = faults, defects, after
        if (after.crash or after.killed) and not (before.crash or before.killed):
            if self.game is not None:
                self.game.drop_sessions()
            if self.matchmaker is not None:
                self.matchmaker.fail_all()
        self._publish_fault_state()

    def _run_build(self, faults: Faults) -> None:
        """Settle `faults` with the defects of the running version (none for a healthy one)."""
        version = self.metrics.build.version
        defects = self.catalog.defects(self.service, version)
        try:
            self._settle(faults, defects)
        except OSError as exc:  # the build runs all the same; its disk defect cannot show
            self._settle(replace(faults, disk_fill_mb=0), replace(defects, disk_fill_mb=0))
            print(f"fleet: {self.name}: the disk_fill_mb of build {version} could not be applied: {exc}",
                  file=sys.stderr, flush=True)

    def update_faults(self, body: object) -> Faults:
        """Validate and apply a partial fault update; raises AdminValidationError (nothing applied) or OSError."""
        with self._lock:
            old = self.faults
            new = parse_fault_update(old, body)
            try:
                self._settle(new, self.defects)
            except OSError:  # the update is not applied, and the disk file is gone
                self._settle(replace(old, disk_fill_mb=0), replace(self.defects, disk_fill_mb=0))
                raise
            return new

    def clear_faults(self) -> Faults:
        """Clear every injected fault; the running build's defects stay (they are the build, not a fault)."""
        with self._lock:
            self.resources.clear()
            self._run_build(Faults())
            return self.faults

    def update_build(self, body: object) -> Build:
        """Validate and apply a partial build update; the instance takes on the new version's defects."""
        with self._lock:
            build = parse_build_update(self.metrics.build, body, self.contract.label_values["track"])
            if build != self.metrics.build:
                self.metrics.set_build(build)
                self._run_build(self.faults)
            return build

    def close(self) -> None:
        if self.matchmaker is not None:
            self.matchmaker.stop()
        self.resources.clear()

    def describe(self) -> dict[str, Any]:
        build = self.metrics.build
        return {"instance": self.name, "service": self.service, "version": build.version, "track": build.track}

    def describe_build(self) -> dict[str, Any]:
        """The build and the defects it shows now, with the catalog's note ({} for a healthy version)."""
        entry = self.catalog.lookup(self.service, self.metrics.build.version)
        defects = {} if entry is None else replace(entry, defects=self.defects).to_json()
        return {**self.describe(), "defects": defects}


def _players(query: dict[str, list[str]]) -> int:
    raw = query.get("players", ["1"])[0]
    try:
        players = int(raw)
    except ValueError:
        raise AdminValidationError("players", f"expected a whole number, got {raw!r}") from None
    if not 1 <= players <= model.MAX_PLAYERS_PER_REQUEST:
        raise AdminValidationError("players", f"{players} is outside 1..{model.MAX_PLAYERS_PER_REQUEST}")
    return players


def make_handler(app: FleetApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so HAProxy can reuse connections
        server_version = "gamesre-fleet"
        timeout = 60  # an idle keep-alive connection is closed after this long

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request would drown the demo's logs

        # --- plumbing --------------------------------------------------------------------------------------
        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Instance", app.name)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, doc: dict[str, Any]) -> None:
            self._send(status, json.dumps(doc).encode(), "application/json")

        def _body(self) -> object:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise AdminValidationError("body", f"larger than {MAX_BODY} bytes")
            raw = self.rfile.read(length) if length else b""
            if not raw.strip():
                return {}
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise AdminValidationError("body", f"invalid JSON: {exc}") from None

        def _route(self, method: str) -> None:
            parts = urlsplit(self.path)
            path, query = parts.path, parse_qs(parts.query)
            try:
                body = self._body() if method in ("POST", "PUT") else None
                self._dispatch(method, path, query, body)
            except AdminValidationError as exc:
                self._json(400, {"error": str(exc)})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

        def do_DELETE(self) -> None:
            self._route("DELETE")

        # --- routes ----------------------------------------------------------------------------------------
        def _dispatch(self, method: str, path: str, query: dict[str, list[str]], body: object) -> None:
            if path == "/metrics" and method == "GET":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, encoder(app.registry), content_type)
            elif path == "/healthz" and method == "GET":
                alive = app.alive
                self._json(200 if alive else 503, {"alive": alive, **app.describe()})
            elif path == "/ready" and method == "GET":
                self._json(200 if app.ready else 503, {"ready": app.ready, **app.describe()})
            elif path == "/admin/faults":
                self._admin_faults(method, body)
            elif path == "/admin/build":
                self._admin_build(method, body)
            elif path.startswith("/api/"):
                if method != "POST":
                    self._json(405, {"error": f"{path}: use POST"})
                else:
                    self._player(path, query)
            else:
                self._json(404, {"error": f"{path}: no such endpoint"})

        def _admin_faults(self, method: str, body: object) -> None:
            if method == "GET":
                self._json(200, app.faults.to_json())
            elif method == "PUT":
                try:
                    faults = app.update_faults(body)
                except OSError as exc:  # the disk fault could not be written: it was removed again
                    self._json(500, {"error": f"disk_fill_mb: cannot fill the disk: {exc}"})
                    return
                self._json(200, faults.to_json())
            elif method == "DELETE":
                self._json(200, app.clear_faults().to_json())
            else:
                self._json(405, {"error": "/admin/faults: use GET, PUT or DELETE"})

        def _admin_build(self, method: str, body: object) -> None:
            if method == "GET":
                self._json(200, app.describe_build())
            elif method == "PUT":
                app.update_build(body)
                self._json(200, app.describe_build())
            else:
                self._json(405, {"error": "/admin/build: use GET or PUT"})

        def _player(self, path: str, query: dict[str, list[str]]) -> None:
            faults = app.effective  # injected faults and the build's defects
            if faults.killed:  # a deleted pod answers nothing: close the connection, count nothing
                self.close_connection = True
                return
            view = {"instance": app.name}
            if app.game is not None:
                actions = app.contract.label_values["action"]
                if path.startswith("/api/action/") and path.removeprefix("/api/action/") in actions:
                    action = path.removeprefix("/api/action/")
                    if action == "login":
                        status, doc = app.game.login(_players(query), faults)
                    else:
                        status, doc = app.game.action(action, faults)
                elif path.startswith("/api/action/"):
                    raise AdminValidationError("action", f"expected one of {', '.join(actions)}")
                elif path == "/api/session/login":
                    status, doc = app.game.login(_players(query), faults)
                elif path == "/api/session/logout":
                    status, doc = app.game.logout(_players(query), faults)
                elif path == "/api/save":
                    status, doc = app.game.save(faults)
                else:
                    status, doc = 404, {"error": f"{path}: not a game-server endpoint"}
            elif app.matchmaker is not None and path == "/api/match":
                mode, tier = query.get("mode", [None])[0], query.get("tier", [None])[0]
                problem = app.matchmaker.validate(mode, tier)
                if problem is not None:
                    status, doc = 400, {"error": problem}
                else:
                    assert mode is not None and tier is not None
                    status, doc = app.matchmaker.enqueue(mode, tier, faults)
            else:
                status, doc = 404, {"error": f"{path}: not a {app.service} endpoint"}
            self._json(status, {**view, **doc})

    return Handler


class FleetServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # bursts through HAProxy must not be refused by a short listen backlog

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the peer went away (HAProxy closing an idle connection): nothing to report
        super().handle_error(request, client_address)


def build_command(instance: Instance, port: int, *, host: str = "127.0.0.1", seed: int | None = None,
                  capacity: int | None = None) -> list[str]:
    """The command line that starts one fleet process for a topology instance (run from any directory)."""
    cmd = [sys.executable, str(FLEET_PY), "--name", instance.name, "--service", instance.service,
           "--version", instance.version, "--track", instance.track, "--port", str(port), "--host", host]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    if capacity is not None:
        cmd += ["--capacity", str(capacity)]
    return cmd


def parse_args(argv: list[str] | None, contract: Contract) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="demo/fleet.py",
        description="Run one instance of the demo game fleet (game-server or matchmaking) as an HTTP server.",
        epilog="Endpoints and the admin API are described in docs/demo.md.",
    )
    parser.add_argument("--name", required=True, help="logical instance name, e.g. gs-stable-1 (the `instance` label)")
    parser.add_argument("--service", required=True, choices=sorted(contract.services), help="which service to run")
    parser.add_argument("--version", required=True, help="build version exposed as the `version` label")
    parser.add_argument("--track", required=True, choices=contract.label_values["track"],
                        help="release track exposed as the `track` label")
    parser.add_argument("--port", required=True, type=int, help="TCP port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the simulation's randomness (default: random)")
    parser.add_argument("--capacity", type=int, default=None,
                        help="concurrent sessions this game-server holds (default: the contract's capacity split "
                             "over the stable game-server instances of the default topology, 50000)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    contract = load_contract()
    args = parse_args(argv, contract)
    app = FleetApp(args.name, args.service, Build(args.version, args.track), contract=contract, seed=args.seed,
                   capacity=args.capacity)
    server = FleetServer((args.host, args.port), make_handler(app))

    def stop(signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"fleet: {args.name} ({args.service} {args.version} {args.track}) on http://{args.host}:{args.port}",
          file=sys.stderr, flush=True)
    defective = app.catalog.lookup(args.service, args.version)
    if defective is not None:
        print(f"fleet: {args.name} runs the defective build {args.version}: {defective.note}", file=sys.stderr,
              flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
