"""Starters for the infrastructure exporters of the demo and the tests: node-exporter and the Kubernetes stand-in.

node-exporter is the real one from Debian (prometheus-node-exporter), with the collectors the infrastructure
dashboard and alert rules read. cAdvisor and kube-state-metrics need a cluster, so demo/kube_metrics.py
serves their series about the running fleet processes (see its docstring).
"""
from __future__ import annotations

import sys
from pathlib import Path

from demo.procs import ManagedProcess, http_ok, require_binary

REPO_ROOT = Path(__file__).resolve().parents[1]
NODE_COLLECTORS = ("cpu", "meminfo", "loadavg", "netdev", "diskstats", "filesystem")


def start_node_exporter(workdir: Path, port: int, *, timeout: float = 20.0) -> ManagedProcess:
    binary = require_binary("prometheus-node-exporter")
    workdir.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess(
        "node-exporter",
        [binary, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
         *(f"--collector.{c}" for c in NODE_COLLECTORS), "--log.level=warn"],
        workdir / "node-exporter.log",
    ).start()
    process.wait_ready(lambda: http_ok(f"http://127.0.0.1:{port}/metrics"), timeout=timeout)
    return process


def kube_metrics_command(port: int, pods: dict[str, tuple[str, int, str]], *, host: str = "127.0.0.1") -> list[str]:
    """The stand-in's command line; `pods` maps an instance name to (service, PID, base URL)."""
    cmd = [sys.executable, str(REPO_ROOT / "demo" / "kube_metrics.py"), "--port", str(port), "--host", host]
    for name, (service, pid, url) in pods.items():
        cmd += ["--pod", f"{name}={service},{pid},{url}"]
    return cmd


def start_kube_metrics(workdir: Path, port: int, fleet: dict[str, ManagedProcess], ports: dict[str, int],
                       *, timeout: float = 20.0) -> ManagedProcess:
    """The cAdvisor/kube-state-metrics stand-in for the fleet processes in `fleet` (instance name -> process)."""
    from demo.topology import by_name

    pods = {}
    for name, process in fleet.items():
        if process.proc is None:
            raise ValueError(f"fleet instance {name} has not been started")
        pods[name] = (by_name(name).service, process.proc.pid, f"http://127.0.0.1:{ports[name]}")
    workdir.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess("kube-metrics", kube_metrics_command(port, pods), workdir / "kube-metrics.log").start()
    process.wait_ready(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=timeout)
    return process
