"""The `fleet` container's entrypoint (`python -m demo.compose fleet`) run as a process here: the five instances
and the Kubernetes stand-in answer, the stand-in reports each instance as a Running pod, its health check passes,
and SIGTERM stops every process it started. (No Docker engine runs here; docker-compose.yaml is checked as data.)"""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from demo import compose
from demo.procs import free_port, port_in_use
from demo.topology import DEFAULT_TOPOLOGY

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def free_port_run(count: int) -> int:
    """A first port of `count` consecutive free loopback ports."""
    for _ in range(50):
        base = free_port()
        ports = range(base, base + count)
        sockets = []
        try:
            for port in ports:
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise AssertionError(f"no {count} consecutive free ports found")


def probe(*urls: str) -> int:
    return subprocess.run([sys.executable, "-m", "demo.compose", "probe", *urls], cwd=REPO,
                          capture_output=True, check=False).returncode


def test_the_fleet_entrypoint_runs_every_instance_and_the_kube_stand_in_and_stops_on_sigterm(tmp_path: Path) -> None:
    base, kube = free_port_run(len(DEFAULT_TOPOLOGY)), free_port()
    ports = compose.fleet_ports(base)
    urls = [f"http://127.0.0.1:{p}/healthz" for p in ports.values()] + [f"http://127.0.0.1:{kube}/healthz"]
    assert probe(*urls) == 1  # nothing answers yet: the health check can fail
    process = subprocess.Popen([sys.executable, "-m", "demo.compose", "fleet", "--host", "127.0.0.1", "--base-port",
                                str(base), "--kube-port", str(kube), "--log-dir", str(tmp_path)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while probe(*urls) != 0:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the fleet did not answer within 60 s"
            time.sleep(0.5)
        deadline = time.monotonic() + 20
        while True:  # the stand-in polls the instances' probes every 2 s
            text = requests.get(f"http://127.0.0.1:{kube}/metrics", timeout=5).text
            running = {line.split('pod="')[1].split('"')[0] for line in text.splitlines()
                       if line.startswith("kube_pod_status_phase") and 'phase="Running"' in line
                       and line.endswith(" 1.0")}
            if running == set(ports) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert running == set(ports), text
        for instance in DEFAULT_TOPOLOGY:  # each port serves the instance of the topology order
            metrics = requests.get(f"http://127.0.0.1:{ports[instance.name]}/metrics", timeout=5).text
            assert f'version="{instance.version}"' in metrics and f'track="{instance.track}"' in metrics, instance
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=40) == 0
        output = process.stdout.read() if process.stdout else ""
        assert "stopping the fleet" in output, output
        assert not any(port_in_use(p) for p in [*ports.values(), kube]), "a fleet process outlived the entrypoint"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
