"""The Kubernetes stand-in (demo/kube_metrics.py) and node-exporter report the real fleet processes.

Two fleet instances run as real processes; the stand-in must show their CPU and memory as /proc does, follow
a `killed` fault through the pod phase, readiness, endpoints and the restart count, report a stopped process
as Failed, and expose only series the metric contract's `infrastructure` section names.
"""
from __future__ import annotations

import functools
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from demo.fleet import build_command
from demo.infra import start_kube_metrics, start_node_exporter
from demo.kube_metrics import cpu_seconds, parse_pod, working_set_bytes
from demo.procs import ManagedProcess, ProcessGroup, free_port, http_ok
from demo.topology import by_name
from gamesre.core.contract import load_contract

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    matches = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(matches) == 1, f"{name}{labels}: {len(matches)} series"
    return matches[0]


def wait_until(check, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, ManagedProcess], dict]]:
    workdir = tmp_path_factory.mktemp("kube-metrics")
    group = ProcessGroup()
    with group.running():
        fleet, ports = {}, {}
        for name in ("gs-stable-1", "mm-stable-1"):
            ports[name] = free_port()
            fleet[name] = group.add(ManagedProcess(name, build_command(by_name(name), ports[name], seed=3),
                                                   workdir / f"{name}.log").start())
            fleet[name].wait_ready(functools.partial(http_ok, f"http://127.0.0.1:{ports[name]}/ready"), timeout=30)
        port = free_port()
        group.add(start_kube_metrics(workdir, port, fleet, ports))
        yield f"http://127.0.0.1:{port}", fleet, ports


def set_faults(port: int, method: str, body: dict | None = None) -> None:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}/admin/faults", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).close()


def test_cadvisor_series_are_the_processes_own_readings(stand_in) -> None:
    url, fleet, _ = stand_in
    pid = fleet["gs-stable-1"].proc.pid
    before = cpu_seconds(pid)
    samples = scrape(f"{url}/metrics/cadvisor")
    after = cpu_seconds(pid)
    assert before is not None and after is not None
    pod = {"namespace": "game", "pod": "gs-stable-1", "container": "game-server"}
    assert before <= value(samples, "container_cpu_usage_seconds_total", **pod) <= after
    rss = working_set_bytes(pid)
    assert rss is not None
    assert value(samples, "container_memory_working_set_bytes", **pod) == pytest.approx(rss, rel=0.5)
    assert value(samples, "container_spec_memory_limit_bytes", **pod) == 512 * 1024 * 1024


def test_a_killed_pod_is_pending_unready_and_counts_a_restart_when_it_returns(stand_in) -> None:
    url, _, ports = stand_in
    pod = {"namespace": "game", "pod": "gs-stable-1"}
    endpoint = {"endpoint": "game-server", "port_number": str(ports["gs-stable-1"])}
    assert wait_until(lambda: value(scrape(f"{url}/metrics"), "kube_pod_status_phase", phase="Running", **pod) == 1)
    restarts = value(scrape(f"{url}/metrics"), "kube_pod_container_status_restarts_total", **pod)
    set_faults(ports["gs-stable-1"], "PUT", {"killed": True})
    try:
        assert wait_until(lambda: value(scrape(f"{url}/metrics"), "kube_pod_status_phase", phase="Pending", **pod))
        samples = scrape(f"{url}/metrics")
        assert value(samples, "kube_pod_status_ready", condition="false", **pod) == 1
        assert value(samples, "kube_endpoint_address", ready="false", **endpoint) == 1
        # the other service's pod is untouched
        assert value(samples, "kube_pod_status_phase", namespace="game", pod="mm-stable-1", phase="Running") == 1
    finally:
        set_faults(ports["gs-stable-1"], "DELETE")
    assert wait_until(lambda: value(scrape(f"{url}/metrics"), "kube_pod_status_ready", condition="true", **pod))
    samples = scrape(f"{url}/metrics")
    assert value(samples, "kube_pod_container_status_restarts_total", **pod) == restarts + 1
    assert value(samples, "kube_endpoint_address", ready="true", **endpoint) == 1


def test_quota_usage_sums_the_pod_specs_and_a_stopped_process_fails_its_pod(stand_in) -> None:
    url, fleet, _ = stand_in
    quota = {"namespace": "game", "resourcequota": "game-quota"}
    samples = scrape(f"{url}/metrics")
    assert value(samples, "kube_resourcequota", resource="pods", type="used", **quota) == 2
    assert value(samples, "kube_resourcequota", resource="requests.cpu", type="used", **quota) == 0.75
    assert value(samples, "kube_resourcequota", resource="pods", type="hard", **quota) == 10
    fleet["mm-stable-1"].stop()
    pod = {"namespace": "game", "pod": "mm-stable-1"}
    assert wait_until(lambda: value(scrape(f"{url}/metrics"), "kube_pod_status_phase", phase="Failed", **pod))
    samples = scrape(f"{url}/metrics")
    assert value(samples, "kube_resourcequota", resource="pods", type="used", **quota) == 1
    assert not any(n == "kube_endpoint_address" and ("endpoint", "matchmaking") in ls for n, ls in samples)
    assert not any(("pod", "mm-stable-1") in ls for _, ls in scrape(f"{url}/metrics/cadvisor"))


def test_only_contract_series_are_exposed_by_the_stand_in_and_node_exporter(stand_in, tmp_path: Path) -> None:
    url, _, _ = stand_in
    contract = load_contract()
    group = ProcessGroup()
    with group.running():
        port = free_port()
        group.add(start_node_exporter(tmp_path, port))
        node = {n for n, _ in scrape(f"http://127.0.0.1:{port}/metrics") if n.startswith("node_")}
    wanted_node = {m for m, d in contract.infrastructure.items() if d.service == "node-exporter"}
    assert wanted_node <= node, f"node-exporter lacks {sorted(wanted_node - node)}"
    for path, exporter in (("/metrics", "kube-state-metrics"), ("/metrics/cadvisor", "kubelet")):
        samples = scrape(f"{url}{path}")
        names = {n for n, _ in samples}
        defined = {m for m, d in contract.infrastructure.items() if d.service == exporter}
        assert names == defined, f"{path}: {sorted(names ^ defined)}"
        for (name, labels) in samples:
            assert {k for k, _ in labels} == set(contract.infrastructure[name].labels), name


def test_bad_pod_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="unknown service 'chat'"):
        parse_pod("x=chat,1,http://127.0.0.1:1")
    with pytest.raises(ValueError, match="expected NAME=SERVICE,PID,URL"):
        parse_pod("gs-stable-1")
    with pytest.raises(ValueError, match="is not an http://host:port URL"):
        parse_pod("x=game-server,1,ftp://h")
