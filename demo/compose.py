"""The container side of docker-compose.yaml: entrypoints of the project image and the files the stack needs.

    python -m demo.compose fleet               the five fleet instances (18101..18105) and the Kubernetes stand-in
                                               (:9105) in the foreground, as the `fleet` container's main process
    python -m demo.compose haproxy-config      (re)generate include/haproxy/haproxy.cfg for the compose hostnames
    python -m demo.compose fleet-file PATH     the fleet description Airflow's local backends read (GAMESRE_DEMO_FLEET)
    python -m demo.compose pools-file PATH     the DAGs' pools as an `airflow pools import` file
    python -m demo.compose auth-file PATH      the simple auth manager's password file from $AIRFLOW_ADMIN_PASSWORD
    python -m demo.compose probe URL...        exit 0 when every URL answers 2xx (the containers' health checks)

Hostnames and ports are the compose service names of docs/compose.md; nothing here needs Docker, so the
generated files and the fleet entrypoint are tested on the machine itself (tests/unit/test_compose.py).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from demo.procs import ManagedProcess, ProcessGroup, StackError, http_ok

REPO_ROOT = Path(__file__).resolve().parents[1]
HAPROXY_CFG = REPO_ROOT / "include" / "haproxy" / "haproxy.cfg"

# Compose service hostnames and ports (docs/compose.md).
FLEET_HOST = "fleet"
FLEET_BASE_PORT = 18101
KUBE_METRICS_PORT = 9105
HAPROXY_HOST = "haproxy"
HAPROXY_PLAYER_PORT = 8000
HAPROXY_STATS_PORT = 8404
HAPROXY_ADMIN_PORT = 8405
DOCKER_DNS = "127.0.0.11:53"  # Docker's embedded DNS server, in every container on a user-defined network


def fleet_ports(base_port: int = FLEET_BASE_PORT) -> dict[str, int]:
    """Each topology instance's port in the fleet container: BASE, BASE+1, ... in topology order."""
    from demo.topology import DEFAULT_TOPOLOGY

    return {instance.name: base_port + i for i, instance in enumerate(DEFAULT_TOPOLOGY)}


def fleet_description() -> dict[str, object]:
    """demo/run.py's fleet.json for the compose stack: the same shape, with container hostnames."""
    from demo.topology import DEFAULT_TOPOLOGY

    ports = fleet_ports()
    instances = {i.name: {"service": i.service, "track": i.track, "version": i.version, "job": i.job(),
                          "port": ports[i.name], "url": f"http://{FLEET_HOST}:{ports[i.name]}"}
                 for i in DEFAULT_TOPOLOGY}
    return {
        "instances": instances,
        "haproxy": {"players": f"http://{HAPROXY_HOST}:{HAPROXY_PLAYER_PORT}",
                    "stats": f"http://{HAPROXY_HOST}:{HAPROXY_STATS_PORT}", "admin_port": HAPROXY_ADMIN_PORT},
    }


def _replace_line(lines: list[str], old: str, new: list[str]) -> list[str]:
    """Replace the one line equal to `old`; the renderer changed if it is not there exactly once."""
    hits = [i for i, line in enumerate(lines) if line == old]
    if len(hits) != 1:
        raise StackError(f"demo/haproxy_config.render no longer writes the line {old.strip()!r} exactly once "
                         f"(found {len(hits)}): update demo/compose.py render_haproxy_config")
    i = hits[0]
    return lines[:i] + new + lines[i + 1:]


def render_haproxy_config() -> str:
    """HAProxy for the compose stack: demo/haproxy_config.render with the fleet container as every server's host.

    What differs from the loopback demo: the frontends and the runtime API listen on every address of the
    container (the runtime API is reachable by the Airflow workers on the compose network only: the port is
    not published), and the servers' address `fleet` is resolved by Docker's DNS at run time (`init-addr
    last,libc,none`), so HAProxy starts before the fleet answers and follows it when the container is recreated.
    """
    from demo.haproxy_config import HEALTH_CHECK, render

    text = render(fleet_ports(), player_port=HAPROXY_PLAYER_PORT, stats_port=HAPROXY_STATS_PORT,
                  admin_port=HAPROXY_ADMIN_PORT, host=FLEET_HOST)
    lines = text.splitlines()
    lines = _replace_line(lines, f"    stats socket ipv4@127.0.0.1:{HAPROXY_ADMIN_PORT} level admin",
                          [f"    stats socket ipv4@0.0.0.0:{HAPROXY_ADMIN_PORT} level admin"])
    for port in (HAPROXY_PLAYER_PORT, HAPROXY_STATS_PORT):
        lines = _replace_line(lines, f"    bind {FLEET_HOST}:{port}", [f"    bind :{port}"])
    lines = _replace_line(lines, f"    default-server {HEALTH_CHECK}",
                          [f"    default-server {HEALTH_CHECK} resolvers docker init-addr last,libc,none"])
    lines = _replace_line(lines, "defaults", [
        "resolvers docker",
        f"    nameserver dns {DOCKER_DNS}",
        "    hold valid 10s",
        "",
        "defaults"])
    header = [
        "# Generated by `python -m demo.compose haproxy-config` for docker-compose.yaml (container hostnames) from",
        "# demo/haproxy_config.py and demo/topology.py; do not edit: change those and generate again.",
    ]
    body = [line for line in lines if not line.startswith("# ")]
    return "\n".join(header + body).rstrip("\n") + "\n"


def pools_file() -> dict[str, dict[str, object]]:
    """demo/airflow_env.airflow_pools() in the form `airflow pools import` reads."""
    from demo.airflow_env import airflow_pools

    return {str(p["name"]): {"slots": p["slots"], "description": p["description"],
                             "include_deferred": p["include_deferred"]} for p in airflow_pools()}


def auth_file(password: str) -> dict[str, str]:
    """The simple auth manager's password file: the admin user with the password from .env."""
    from demo.airflow_env import AIRFLOW_USER

    if not password.strip():
        raise StackError("AIRFLOW_ADMIN_PASSWORD is empty: set it in .env (see .env.example)")
    return {AIRFLOW_USER: password}


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)


def log(message: str) -> None:
    print(f"[compose {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_fleet(host: str, base_port: int, kube_port: int, log_dir: Path, stop: threading.Event) -> int:
    """The fleet container: every topology instance plus the Kubernetes stand-in, until `stop` or one exits."""
    from demo.fleet import build_command
    from demo.infra import kube_metrics_command
    from demo.topology import DEFAULT_TOPOLOGY

    ports = fleet_ports(base_port)
    group = ProcessGroup()
    with group.running():
        fleet: dict[str, ManagedProcess] = {}
        for instance in DEFAULT_TOPOLOGY:
            port = ports[instance.name]
            process = group.add(ManagedProcess(f"fleet {instance.name}", build_command(instance, port, host=host),
                                               log_dir / f"fleet-{instance.name}.log").start())
            process.wait_ready(functools.partial(http_ok, f"http://127.0.0.1:{port}/healthz"), timeout=60)
            fleet[instance.name] = process
            log(f"{instance.name} ({instance.service} {instance.version}, {instance.track}) listens on {host}:{port}")
        pods = {name: (next(i.service for i in DEFAULT_TOPOLOGY if i.name == name), int(p.proc.pid),
                       f"http://127.0.0.1:{ports[name]}") for name, p in fleet.items() if p.proc is not None}
        kube = group.add(ManagedProcess("kube-metrics", kube_metrics_command(kube_port, pods, host=host),
                                        log_dir / "kube-metrics.log").start())
        kube.wait_ready(lambda: http_ok(f"http://127.0.0.1:{kube_port}/healthz"), timeout=30)
        log(f"the Kubernetes stand-in (cAdvisor, kube-state-metrics) listens on {host}:{kube_port}")
        while not stop.wait(2):
            dead = [p for p in group.processes if not p.running]
            if dead:
                for p in dead:
                    log(f"{p.name} exited with code {p.proc.returncode if p.proc else '?'}: {p.log_tail(5)}")
                return 1
        log("stopping the fleet")
    return 0


def probe(urls: Sequence[str], timeout: float) -> list[str]:
    """What did not answer 2xx, one line per URL."""
    problems = []
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (the stack's own services)
                if not 200 <= resp.status < 300:
                    problems.append(f"{url}: HTTP {resp.status}")
        except urllib.error.HTTPError as exc:
            problems.append(f"{url}: HTTP {exc.code}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problems.append(f"{url}: {getattr(exc, 'reason', exc)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.compose", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fleet = sub.add_parser("fleet", help="run the fleet and the Kubernetes stand-in in the foreground")
    fleet.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0: the container's)")
    fleet.add_argument("--base-port", type=int, default=FLEET_BASE_PORT, help="port of the first instance")
    fleet.add_argument("--kube-port", type=int, default=KUBE_METRICS_PORT, help="port of the Kubernetes stand-in")
    fleet.add_argument("--log-dir", type=Path, default=Path(tempfile.gettempdir()) / "gamesre-fleet",
                       help="folder of the processes' logs (their last lines are printed when one exits)")
    haproxy = sub.add_parser("haproxy-config", help="generate the compose HAProxy configuration")
    haproxy.add_argument("-o", "--output", type=Path, default=HAPROXY_CFG, help=f"default: {HAPROXY_CFG}")
    haproxy.add_argument("--check", action="store_true", help="validate the written file with `haproxy -c`")
    for name, what in (("fleet-file", "the compose fleet description (GAMESRE_DEMO_FLEET)"),
                       ("pools-file", "the DAGs' pools for `airflow pools import`"),
                       ("auth-file", "the simple auth manager's password file ($AIRFLOW_ADMIN_PASSWORD)")):
        sub.add_parser(name, help=f"write {what}").add_argument("path", type=Path)
    probe_cmd = sub.add_parser("probe", help="exit 0 when every URL answers 2xx")
    probe_cmd.add_argument("urls", nargs="+")
    probe_cmd.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    try:
        if args.command == "fleet":
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            return run_fleet(args.host, args.base_port, args.kube_port, args.log_dir, stop)
        if args.command == "haproxy-config":
            _write(args.output, render_haproxy_config())
            if args.check:
                from demo.haproxy_config import HAProxyConfigError, check

                try:
                    check(args.output)
                except HAProxyConfigError as exc:
                    raise StackError(str(exc)) from None
            return 0
        if args.command == "fleet-file":
            _write(args.path, json.dumps(fleet_description(), indent=2) + "\n")
        elif args.command == "pools-file":
            _write(args.path, json.dumps(pools_file(), indent=2) + "\n")
        elif args.command == "auth-file":
            _write(args.path, json.dumps(auth_file(os.environ.get("AIRFLOW_ADMIN_PASSWORD", ""))), mode=0o600)
        elif args.command == "probe":
            problems = probe(args.urls, args.timeout)
            for line in problems:
                print(f"unhealthy: {line}", file=sys.stderr)
            return 1 if problems else 0
        return 0
    except StackError as exc:
        print(f"demo.compose: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
