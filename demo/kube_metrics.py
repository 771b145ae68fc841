"""A stand-in for cAdvisor and kube-state-metrics, reporting the real demo fleet processes as pods.

    python demo/kube_metrics.py --port 19105 \\
        --pod gs-stable-1=game-server,12345,http://127.0.0.1:18101 --pod mm-stable-1=matchmaking,12346,http://...

No Kubernetes runs here, but the infrastructure dashboard and alert rules are written for a real cluster's
exporters (include/config/metrics.yaml, `infrastructure`). This process serves the same series about the
demo fleet, each fleet process being one pod of namespace `game` (pod name = instance name, container =
service name), from real readings:

  GET /metrics/cadvisor   what the kubelet's cAdvisor serves: container CPU seconds and working-set memory read
                          from /proc/<pid>, and the container's memory limit (the pod spec below)
  GET /metrics            what kube-state-metrics serves: pod phase and Ready condition, container restarts,
                          the service endpoints (ready or not) and the namespace's resource quota (hard and used)
  GET /healthz            200

Phase and readiness come from each instance's own probes, polled every --poll seconds: /healthz is the
liveness probe, /ready the readiness probe. A process that is gone is `Failed`; a failing liveness probe
(the `crash` or `killed` fault) makes the pod `Pending` (being restarted), and its recovery counts one
container restart, as the kubelet would after restarting it. Endpoint addresses are the instances'
host:port (label `ip` and `port_number`), ready when the readiness probe passes. Quota usage sums the pod
spec's requests over the pods that are not Failed.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python demo/kube_metrics.py`
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(_ROOT), str(_ROOT / "plugins")]

import argparse
import os
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

NAMESPACE = "game"
QUOTA_NAME = "game-quota"
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
MI = 1024 * 1024


@dataclass(frozen=True)
class PodSpec:
    """What the pod spec of each service asks for (the numbers a real Deployment would carry)."""

    cpu_request: float  # cores
    memory_request: int  # bytes
    memory_limit: int  # bytes


POD_SPECS = {
    "game-server": PodSpec(cpu_request=0.5, memory_request=256 * MI, memory_limit=512 * MI),
    "matchmaking": PodSpec(cpu_request=0.25, memory_request=128 * MI, memory_limit=256 * MI),
}
# The namespace's ResourceQuota: room for the default topology (5 pods) and a few more, not unlimited.
QUOTA_HARD = {"pods": 10.0, "requests.cpu": 4.0, "requests.memory": float(2048 * MI), "limits.memory": float(4096 * MI)}


@dataclass
class Pod:
    name: str
    service: str
    pid: int
    url: str
    # what the last poll saw
    alive: bool = True
    live: bool = True
    ready: bool = False
    restarts: int = 0
    polled: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def spec(self) -> PodSpec:
        return POD_SPECS.get(self.service, POD_SPECS["game-server"])

    @property
    def phase(self) -> str:
        if not self.alive:
            return "Failed"
        if not self.polled:
            return "Unknown"
        return "Running" if self.live else "Pending"


def parse_pod(text: str) -> Pod:
    """NAME=SERVICE,PID,URL -> Pod; the error names what is wrong."""
    name, sep, rest = text.partition("=")
    parts = rest.split(",")
    if not sep or not name or len(parts) != 3:
        raise ValueError(f"--pod {text!r}: expected NAME=SERVICE,PID,URL")
    service, pid, url = parts
    if service not in POD_SPECS:
        raise ValueError(f"--pod {text!r}: unknown service {service!r} (known: {', '.join(sorted(POD_SPECS))})")
    if not pid.isdigit():
        raise ValueError(f"--pod {text!r}: PID {pid!r} is not a number")
    if urlsplit(url).scheme != "http" or not urlsplit(url).port:
        raise ValueError(f"--pod {text!r}: {url!r} is not an http://host:port URL")
    return Pod(name, service, int(pid), url.rstrip("/"))


def _probe(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:  # noqa: S310 (the fleet's own probes)
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited


def poll(pod: Pod) -> None:
    """Read the pod's process and probes once, counting a restart when liveness comes back."""
    alive = process_alive(pod.pid)
    live = alive and _probe(f"{pod.url}/healthz")
    ready = live and _probe(f"{pod.url}/ready")
    with pod.lock:
        if pod.polled and alive and live and not pod.live:
            pod.restarts += 1
        pod.alive, pod.live, pod.ready, pod.polled = alive, live, ready, True


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of the process, in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def working_set_bytes(pid: int) -> int | None:
    """Resident memory of the process (VmRSS), standing in for the container's working set."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


class CadvisorCollector(Collector):
    def __init__(self, pods: list[Pod]) -> None:
        self.pods = pods

    def collect(self) -> Iterator[Metric]:
        labels = ["namespace", "pod", "container"]
        cpu = CounterMetricFamily("container_cpu_usage_seconds", "CPU seconds used by a container.", labels=labels)
        mem = GaugeMetricFamily("container_memory_working_set_bytes", "Working-set memory of a container.",
                                labels=labels)
        limit = GaugeMetricFamily("container_spec_memory_limit_bytes", "Memory limit of a container.", labels=labels)
        for pod in self.pods:
            key = [NAMESPACE, pod.name, pod.service]
            used, rss = cpu_seconds(pod.pid), working_set_bytes(pod.pid)
            if used is None or rss is None:
                continue  # cAdvisor reports running containers only
            cpu.add_metric(key, used)
            mem.add_metric(key, rss)
            limit.add_metric(key, pod.spec.memory_limit)
        yield from (cpu, mem, limit)


class KubeStateCollector(Collector):
    def __init__(self, pods: list[Pod]) -> None:
        self.pods = pods

    def collect(self) -> Iterator[Metric]:
        phase = GaugeMetricFamily("kube_pod_status_phase", "The pod's current phase.",
                                  labels=["namespace", "pod", "phase"])
        ready = GaugeMetricFamily("kube_pod_status_ready", "The pod's Ready condition.",
                                  labels=["namespace", "pod", "condition"])
        restarts = CounterMetricFamily("kube_pod_container_status_restarts", "Container restarts.",
                                       labels=["namespace", "pod", "container"])
        endpoints = GaugeMetricFamily("kube_endpoint_address", "Endpoint addresses, ready or not.",
                                      labels=["namespace", "endpoint", "ip", "port_number", "ready"])
        quota = GaugeMetricFamily("kube_resourcequota", "Resource quota hard limit and usage.",
                                  labels=["namespace", "resourcequota", "resource", "type"])
        used = dict.fromkeys(QUOTA_HARD, 0.0)
        for pod in self.pods:
            with pod.lock:
                current, is_ready, count, alive, polled = pod.phase, pod.ready, pod.restarts, pod.alive, pod.polled
            for p in PHASES:
                phase.add_metric([NAMESPACE, pod.name, p], float(p == current))
            condition = "unknown" if not polled else ("true" if is_ready else "false")
            for c in ("true", "false", "unknown"):
                ready.add_metric([NAMESPACE, pod.name, c], float(c == condition))
            restarts.add_metric([NAMESPACE, pod.name, pod.service], count)
            if alive:
                split = urlsplit(pod.url)
                endpoints.add_metric([NAMESPACE, pod.service, str(split.hostname), str(split.port),
                                      "true" if is_ready else "false"], 1.0)
                used["pods"] += 1
                used["requests.cpu"] += pod.spec.cpu_request
                used["requests.memory"] += pod.spec.memory_request
                used["limits.memory"] += pod.spec.memory_limit
        for resource, hard in QUOTA_HARD.items():
            quota.add_metric([NAMESPACE, QUOTA_NAME, resource, "hard"], hard)
            quota.add_metric([NAMESPACE, QUOTA_NAME, resource, "used"], used[resource])
        yield from (phase, ready, restarts, endpoints, quota)


def registries(pods: list[Pod]) -> dict[str, CollectorRegistry]:
    """Path -> registry: /metrics/cadvisor (the kubelet's) and /metrics (kube-state-metrics')."""
    cadvisor, kube_state = CollectorRegistry(auto_describe=False), CollectorRegistry(auto_describe=False)
    cadvisor.register(CadvisorCollector(pods))
    kube_state.register(KubeStateCollector(pods))
    return {"/metrics/cadvisor": cadvisor, "/metrics": kube_state}


def make_server(host: str, port: int, pods: list[Pod]) -> ThreadingHTTPServer:
    routes = registries(pods)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/healthz":
                body, ctype = b"ok\n", "text/plain"
            elif path in routes:
                body, ctype = generate_latest(routes[path]), "text/plain; version=0.0.4; charset=utf-8"
            else:
                self.send_error(404, f"no such path; serving {', '.join(sorted(routes))} and /healthz")
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo/kube_metrics.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="TCP port to serve the metrics on")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--pod", action="append", default=[], metavar="NAME=SERVICE,PID,URL",
                        help="one fleet process as a pod (repeat for each)")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between probe polls (default: 2)")
    args = parser.parse_args(argv)
    try:
        pods = [parse_pod(p) for p in args.pod]
    except ValueError as exc:
        parser.error(str(exc))
    if not pods:
        parser.error("give at least one --pod")
    stop = threading.Event()

    def poller() -> None:
        while not stop.is_set():
            for pod in pods:
                poll(pod)
            stop.wait(args.poll)

    server = make_server(args.host, args.port, pods)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    threading.Thread(target=poller, daemon=True, name="probe-poller").start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
