"""The kubernetes chaos backend through the real kubernetes client against the fake API server: the exact
objects it creates for LitmusChaos and Chaos Mesh, the merge patches of abort, deletion only after the
operator confirmed the recovery, idempotent retries, the reaper's view after a crash, and errors.

No chaos operator runs here: the tests play it (`litmus_operator`, `mesh_controller`), writing the status
fields the real operators document. These paths ran only against tests/fakes/kube_api.py, never against a
real cluster, LitmusChaos or Chaos Mesh.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from demo.procs import free_port
from gamesre.chaos.faults import ChaosBackendError, FaultSpec, Injection
from gamesre.integrations.chaos import kubernetes as chaos_kubernetes
from gamesre.integrations.chaos.kubernetes import (
    KubernetesChaosBackend,
    KubernetesChaosError,
    label_value,
    object_name,
)
from tests.fakes.kube_api import BUILTIN_RESOURCES, MERGE_PATCH, ApiError, FakeKubeAPI

pytestmark = pytest.mark.integration

NS, SERVICE = "game", "game-server"
APP = {"app": SERVICE}
RUN_ID = "manual__2026-03-03T09:00:00+00:00"
NOW = "2026-03-03T09:00:05+00:00"
DB_HOSTS = ["game-db.internal", "10.0.4.12"]
LITMUS = "/apis/litmuschaos.io/v1alpha1/namespaces/game"
MESH = "/apis/chaos-mesh.org/v1alpha1/namespaces/game"
PODS = f"/api/v1/namespaces/{NS}/pods"
LATENCY = FaultSpec("network_latency", {"latency_ms": 400, "jitter_ms": 20}, 90.0)
MANAGED = "app.kubernetes.io/managed-by=gamesre-chaos"


def pod(name: str, *, labels: dict[str, str] | None = None, phase: str = "Running",
        terminating: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS, "labels": labels or {**APP, "track": "stable"}}
    if terminating:
        meta["deletionTimestamp"] = "2026-03-03T08:59:00Z"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [{"name": "game"}]},
            "status": {"phase": phase}}


@pytest.fixture
def kube() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as api:
        api.seed(pod("game-server-7d9c-a"))
        api.seed(pod("game-server-7d9c-b"))
        api.seed(pod("game-server-canary-c", labels={**APP, "track": "canary"}))
        api.seed(pod("game-server-7d9c-pending", phase="Pending"))
        api.seed(pod("game-server-7d9c-old", terminating=True))
        api.seed(pod("matchmaking-5f6b-a", labels={"app": "matchmaking"}))
        yield api


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chaos_kubernetes, "_now", lambda: NOW)


class Clock:
    """A fake clock: sleep() advances it and plays the operator (`on_sleep`) meanwhile."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[], None] = lambda: None

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep()

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(api_client: client.ApiClient, engine: Any, clock: Clock, **kwargs: Any) -> KubernetesChaosBackend:
    options: dict[str, Any] = {"poll_interval": 2.0, "recover_timeout": 10.0, "database_hosts": DB_HOSTS}
    options.update(kwargs)
    return KubernetesChaosBackend(api_client, namespace=NS, service=SERVICE, selector_labels=APP, engine=engine,
                                  sleep=clock.sleep, clock=clock.monotonic, **options)


def writes(kube: FakeKubeAPI) -> list[tuple[str, str, str | None, Any]]:
    return [(r.method, r.path, r.content_type, r.body) for r in kube.writes()]


def requests(kube: FakeKubeAPI) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in kube.requests]


def env(body: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in body["spec"]["experiments"][0]["spec"]["components"]["env"]}


def fail_with(kube: FakeKubeAPI, monkeypatch: pytest.MonkeyPatch, method: str, path: str, code: int = 500,
              reason: str = "InternalError", message: str = "etcdserver: request timed out") -> None:
    """The fake answers this one method and path with an error (an overloaded API server)."""
    real = kube.handle

    def handle(m: str, p: str, query: dict[str, list[str]], content_type: str | None,
               body: Any) -> tuple[int, dict[str, Any]]:
        if (m, p) == (method, path):
            raise ApiError(code, reason, message, {})
        return real(m, p, query, content_type, body)

    monkeypatch.setattr(kube, "handle", handle)


# --- naming and targets ----------------------------------------------------------------------------------------

def test_names_and_labels_are_deterministic_and_kubernetes_safe() -> None:
    name = object_name(RUN_ID, "latency-400ms")
    assert name == object_name(RUN_ID, "latency-400ms") != object_name(RUN_ID + "x", "latency-400ms")
    assert re.fullmatch(r"gamesre-latency-400ms-[0-9a-f]{10}", name)
    long_name = object_name(RUN_ID, "Game Server: DB latency during the evening peak (KST)")
    assert len(long_name) <= 40 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", long_name)
    # the Litmus ChaosResult <engine>-<experiment> and its `name` label stay a valid label value
    assert len(f"{long_name}-pod-network-partition") <= 63
    label = label_value(RUN_ID)
    assert label.startswith("manual__2026-03-03T09-00-00-00-00-") and len(label) <= 63
    assert re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", label)
    assert label_value("scheduled__" + "x" * 80) != label_value("scheduled__" + "x" * 81)
    assert len(label_value("scheduled__" + "x" * 80)) == 63
    assert label_value(SERVICE) == SERVICE


def test_targets_are_the_running_pods_of_the_service_matching_the_selector(kube: FakeKubeAPI,
                                                                           api_client: client.ApiClient,
                                                                           clock: Clock) -> None:
    gs = make(api_client, "litmus", clock)
    assert gs.targets({}) == ["game-server-7d9c-a", "game-server-7d9c-b", "game-server-canary-c"]
    assert gs.targets({"track": "canary"}) == ["game-server-canary-c"]
    assert gs.targets({"track": "blue"}) == []
    assert [r.query["labelSelector"] for r in kube.requests_to(PODS, "GET")] == [
        ["app=game-server"], ["app=game-server,track=canary"], ["app=game-server,track=blue"]]
    with pytest.raises(ChaosBackendError, match="the selector app=matchmaking contradicts the pod labels of "
                                                "game-server"):
        gs.targets({"app": "matchmaking"})
    with pytest.raises(ValueError, match="empty selector would match every pod"):
        KubernetesChaosBackend(api_client, namespace=NS, service=SERVICE, selector_labels={}, engine="litmus")
    with pytest.raises(ValueError, match="engine must be one of litmus, chaos-mesh"):
        KubernetesChaosBackend(api_client, namespace=NS, service=SERVICE, selector_labels=APP, engine="gremlin")  # type: ignore[arg-type]


# --- LitmusChaos -----------------------------------------------------------------------------------------------

def litmus_engine(kube: FakeKubeAPI, name: str) -> dict[str, Any] | None:
    return kube.get("litmuschaos.io/v1alpha1", "chaosengines", NS, name)


def litmus_operator(kube: FakeKubeAPI, name: str, experiment: str, *, engine_status: str, phase: str,
                    verdict: str, targets: dict[str, str]) -> None:
    """Write what the chaos-operator and the experiment write: the engine's status and the ChaosResult."""
    engine = litmus_engine(kube, name)
    assert engine is not None
    experiment_status = {"initialized": "Running", "stopped": "Forcefully Aborted"}.get(engine_status, "Completed")
    engine["status"] = {"engineStatus": engine_status,
                        "experiments": [{"name": experiment, "runner": f"{name}-runner", "status": experiment_status,
                                         "verdict": verdict, "experimentPod": f"{experiment}-x1y2z3"}]}
    kube.seed(engine)
    kube.seed({"apiVersion": "litmuschaos.io/v1alpha1", "kind": "ChaosResult",
               "metadata": {"name": f"{name}-{experiment}", "namespace": NS,
                            "labels": {"chaosUID": engine["metadata"]["uid"], "name": f"{name}-{experiment}"}},
               "spec": {"engine": name, "experiment": experiment},
               "status": {"experimentStatus": {"phase": phase, "verdict": verdict},
                          "history": {"passedRuns": 0, "failedRuns": 0, "stoppedRuns": 0,
                                      "targets": [{"name": t, "kind": "pod", "chaosStatus": s}
                                                  for t, s in targets.items()]}}})


def stop_when_asked(kube: FakeKubeAPI, name: str, experiment: str, targets: list[str]) -> Callable[[], None]:
    """The operator's answer to engineState: stop: experiment pods deleted, fault reverted, engine stopped."""
    def react() -> None:
        engine = litmus_engine(kube, name)
        if engine is not None and engine["spec"]["engineState"] == "stop":
            litmus_operator(kube, name, experiment, engine_status="stopped", phase="Stopped", verdict="Stopped",
                            targets=dict.fromkeys(targets, "reverted"))
    return react


def test_litmus_inject_creates_one_chaos_engine_pinned_to_the_targets(kube: FakeKubeAPI,
                                                                       api_client: client.ApiClient,
                                                                       clock: Clock) -> None:
    gs = make(api_client, "litmus", clock)
    name = object_name(RUN_ID, "latency-400ms")
    injection = gs.inject(RUN_ID, "latency-400ms", LATENCY, ["game-server-7d9c-b", "game-server-7d9c-a"])
    assert requests(kube) == [("GET", f"{LITMUS}/chaosengines/{name}"), ("GET", PODS),
                              ("POST", f"{LITMUS}/chaosengines")]
    assert writes(kube) == [("POST", f"{LITMUS}/chaosengines", "application/json", {
        "apiVersion": "litmuschaos.io/v1alpha1", "kind": "ChaosEngine",
        "metadata": {
            "name": name, "namespace": NS,
            "labels": {"app.kubernetes.io/managed-by": "gamesre-chaos", "gamesre.io/run-id": label_value(RUN_ID),
                       "gamesre.io/experiment": "latency-400ms", "gamesre.io/service": SERVICE},
            "annotations": {"gamesre.io/run-id": RUN_ID, "gamesre.io/experiment": "latency-400ms",
                            "gamesre.io/service": SERVICE,
                            "gamesre.io/fault": json.dumps({"duration_s": 90.0, "kind": "network_latency",
                                                            "params": {"jitter_ms": 20, "latency_ms": 400}}),
                            "gamesre.io/targets": '["game-server-7d9c-a", "game-server-7d9c-b"]',
                            "gamesre.io/injected-at": NOW}},
        "spec": {
            "engineState": "active",
            "appinfo": {"appns": NS, "applabel": "app=game-server", "appkind": "deployment"},
            "chaosServiceAccount": "litmus-admin", "jobCleanUpPolicy": "delete",
            "experiments": [{"name": "pod-network-latency", "spec": {"components": {"env": [
                {"name": "TOTAL_CHAOS_DURATION", "value": "90"},
                {"name": "TARGET_PODS", "value": "game-server-7d9c-a,game-server-7d9c-b"},
                {"name": "NETWORK_LATENCY", "value": "400"}, {"name": "JITTER", "value": "20"}]}}}]}})]
    assert injection == Injection(
        run_id=RUN_ID, experiment="latency-400ms", backend="kubernetes", service=SERVICE, fault=LATENCY,
        targets=("game-server-7d9c-a", "game-server-7d9c-b"), injected_at=NOW,
        handles={"engine": "litmus", "namespace": NS, "apiVersion": "litmuschaos.io/v1alpha1",
                 "kind": "ChaosEngine", "plural": "chaosengines", "name": name,
                 "experiment": "pod-network-latency", "result": f"{name}-pod-network-latency"})
    assert Injection.from_dict(json.loads(json.dumps(injection.to_dict()))) == injection  # survives XCom


@pytest.mark.parametrize(("fault", "experiment", "expected_env"), [
    (FaultSpec("pod_delete", {}, 30), "pod-delete",
     {"CHAOS_INTERVAL": "30", "FORCE": "false"}),
    (FaultSpec("cpu_hog", {"cpu_cores": 2, "cpu_load": 0.75}, 60), "pod-cpu-hog",
     {"CPU_CORES": "2", "CPU_LOAD": "75"}),
    (FaultSpec("cpu_hog", {}, 60), "pod-cpu-hog", {"CPU_CORES": "1", "CPU_LOAD": "90"}),
    (FaultSpec("memory_hog", {"memory_mb": 512}, 60), "pod-memory-hog", {"MEMORY_CONSUMPTION": "512"}),
    (FaultSpec("network_loss", {"loss_percent": 25}, 60), "pod-network-loss",
     {"NETWORK_PACKET_LOSS_PERCENTAGE": "25"}),
    (FaultSpec("disk_fill", {"disk_fill_mb": 800}, 120.5), "disk-fill", {"EPHEMERAL_STORAGE_MEBIBYTES": "800"}),
    (FaultSpec("db_failure", {"db_fail_rate": 0.3}, 60), "pod-network-loss",
     {"NETWORK_PACKET_LOSS_PERCENTAGE": "30", "DESTINATION_HOSTS": "game-db.internal,10.0.4.12"}),
    (FaultSpec("db_failure", {}, 60), "pod-network-loss",
     {"NETWORK_PACKET_LOSS_PERCENTAGE": "100", "DESTINATION_HOSTS": "game-db.internal,10.0.4.12"}),
    (FaultSpec("db_latency", {"db_latency_ms": 250}, 60), "pod-network-latency",
     {"NETWORK_LATENCY": "250", "DESTINATION_HOSTS": "game-db.internal,10.0.4.12"}),
])
def test_litmus_experiment_and_env_per_fault(kube: FakeKubeAPI, api_client: client.ApiClient, clock: Clock,
                                            fault: FaultSpec, experiment: str, expected_env: dict[str, str]) -> None:
    injection = make(api_client, "litmus", clock).inject(RUN_ID, "exp", fault, ["game-server-canary-c"])
    body = kube.writes()[0].body
    assert body["spec"]["experiments"][0]["name"] == experiment == injection.handles["experiment"]
    seconds = str(-(-int(fault.duration_s * 10) // 10))  # ceil
    assert env(body) == {"TOTAL_CHAOS_DURATION": seconds, "TARGET_PODS": "game-server-canary-c", **expected_env}


def test_litmus_partition_covers_the_whole_service_or_nothing(kube: FakeKubeAPI, api_client: client.ApiClient,
                                                              clock: Clock) -> None:
    gs = make(api_client, "litmus", clock)
    partition = FaultSpec("network_partition", {}, 45)
    with pytest.raises(ChaosBackendError, match=r"pod-network-partition ignores TARGET_PODS and partitions every pod "
                                                r"labelled app=game-server \(3 running\); the targets are 1 of them"):
        gs.inject(RUN_ID, "partition", partition, ["game-server-canary-c"])
    assert kube.writes() == []
    gs.inject(RUN_ID, "partition", partition, ["game-server-7d9c-a", "game-server-7d9c-b", "game-server-canary-c"])
    body = kube.writes()[0].body
    assert body["spec"]["experiments"][0]["name"] == "pod-network-partition"
    assert env(body) == {"TOTAL_CHAOS_DURATION": "45", "POLICY_TYPES": "ingress"}


def test_inject_refuses_bad_faults_and_foreign_targets_without_writing(kube: FakeKubeAPI,
                                                                      api_client: client.ApiClient,
                                                                      clock: Clock) -> None:
    gs = make(api_client, "litmus", clock, database_hosts=())
    cases = [
        (FaultSpec("memory_hog", {}, 60), ["game-server-7d9c-a"], "memory_hog needs the parameter memory_mb"),
        (FaultSpec("network_loss", {"loss_percent": 150}, 60), ["game-server-7d9c-a"],
         r"loss_percent must be within 0..100, got 150"),
        (FaultSpec("network_latency", {"latency_ms": "slow"}, 60), ["game-server-7d9c-a"],
         "latency_ms must be a number"),
        (FaultSpec("db_latency", {"db_latency_ms": 300}, 60), ["game-server-7d9c-a"],
         r"db_latency needs the database hosts of game-server \(database_hosts\)"),
        (FaultSpec("pod_delete", {}, 0), ["game-server-7d9c-a"], "duration_s must be a positive number"),
        (FaultSpec("time_travel", {}, 60), ["game-server-7d9c-a"], "unknown fault kind 'time_travel'"),
        (LATENCY, [], "no targets"),
        (LATENCY, ["game-server-7d9c-a", "matchmaking-5f6b-a", "game-server-7d9c-old"],
         "game-server-7d9c-old, matchmaking-5f6b-a is not a running pod of game-server"),
    ]
    for fault, targets, message in cases:
        with pytest.raises(ChaosBackendError, match=message):
            gs.inject(RUN_ID, "bad", fault, targets)
    assert kube.writes() == []


def test_a_retried_inject_returns_the_same_injection(kube: FakeKubeAPI, api_client: client.ApiClient,
                                                    clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    gs = make(api_client, "litmus", clock)
    first = gs.inject(RUN_ID, "latency-400ms", LATENCY, ["game-server-7d9c-a"])
    kube.clear_requests()
    monkeypatch.setattr(chaos_kubernetes, "_now", lambda: "2026-03-03T09:07:00+00:00")
    again = make(api_client, "litmus", clock).inject(RUN_ID, "latency-400ms", LATENCY, ["game-server-7d9c-a"])
    assert again == first and again.injected_at == NOW
    assert requests(kube) == [("GET", f"{LITMUS}/chaosengines/{first.handles['name']}")]
    with pytest.raises(ChaosBackendError, match=r"exists for run .* with network_latency jitter_ms=20 latency_ms=400, "
                                                r"not network_latency latency_ms=900; recover it first"):
        gs.inject(RUN_ID, "latency-400ms", FaultSpec("network_latency", {"latency_ms": 900}, 90.0),
                  ["game-server-7d9c-a"])
    assert kube.writes() == []


def test_inject_racing_another_try_reads_the_object_it_lost_to(kube: FakeKubeAPI, api_client: client.ApiClient,
                                                              clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    real = kube.handle

    def handle(m: str, p: str, query: dict[str, list[str]], content_type: str | None,
               body: Any) -> tuple[int, dict[str, Any]]:
        if m == "POST" and not kube.get("litmuschaos.io/v1alpha1", "chaosengines", NS, body["metadata"]["name"]):
            kube.seed(body)  # the other try's create lands first
        return real(m, p, query, content_type, body)

    monkeypatch.setattr(kube, "handle", handle)
    gs = make(api_client, "litmus", clock)
    injection = gs.inject(RUN_ID, "latency-400ms", LATENCY, ["game-server-7d9c-a"])
    name = object_name(RUN_ID, "latency-400ms")
    assert [(r.method, r.path, r.status) for r in kube.requests] == [
        ("GET", f"{LITMUS}/chaosengines/{name}", 404), ("GET", PODS, 200),
        ("POST", f"{LITMUS}/chaosengines", 409), ("GET", f"{LITMUS}/chaosengines/{name}", 200)]
    assert injection.handles["name"] == name and injection.targets == ("game-server-7d9c-a",)


def test_litmus_abort_is_the_engine_state_merge_patch_once(kube: FakeKubeAPI, api_client: client.ApiClient,
                                                          clock: Clock) -> None:
    gs = make(api_client, "litmus", clock)
    injection = gs.inject(RUN_ID, "latency-400ms", LATENCY, ["game-server-7d9c-a"])
    path = f"{LITMUS}/chaosengines/{injection.handles['name']}"
    kube.clear_requests()
    gs.abort(injection)
    assert writes(kube) == [("PATCH", path, MERGE_PATCH, {"spec": {"engineState": "stop"}})]
    gs.abort(injection)
    assert len(kube.writes()) == 1  # already stopping: read, nothing written
    # the engine is deleted by hand: abort is still fine
    client.CustomObjectsApi(api_client).delete_namespaced_custom_object("litmuschaos.io", "v1alpha1", NS,
                                                                        "chaosengines", injection.handles["name"])
    kube.clear_requests()
    gs.abort(injection)
    assert requests(kube) == [("GET", path)]


def test_litmus_recover_deletes_only_after_the_operator_confirmed(kube: FakeKubeAPI, api_client: client.ApiClient,
                                                                 clock: Clock) -> None:
    gs = make(api_client, "litmus", clock)
    targets = ["game-server-7d9c-a", "game-server-7d9c-b"]
    injection = gs.inject(RUN_ID, "latency-400ms", LATENCY, targets)
    name, result = injection.handles["name"], injection.handles["result"]
    litmus_operator(kube, name, "pod-network-latency", engine_status="initialized", phase="Running",
                    verdict="Awaited", targets=dict.fromkeys(targets, "injected"))
    clock.on_sleep = stop_when_asked(kube, name, "pod-network-latency", targets)
    kube.clear_requests()
    recovery = gs.recover(injection)
    assert recovery.recovered and recovery.remaining == ()
    assert recovery.detail == (f"chaosengine game/{name}: engineStatus stopped, chaosresult {result} phase Stopped, "
                               "verdict Stopped; deleted")
    assert clock.sleeps == [2.0]
    assert writes(kube) == [("PATCH", f"{LITMUS}/chaosengines/{name}", MERGE_PATCH, {"spec": {"engineState": "stop"}}),
                            ("DELETE", f"{LITMUS}/chaosengines/{name}", "application/json", None),
                            ("DELETE", f"{LITMUS}/chaosresults/{result}", "application/json", None)]
    # the confirmation was read before the first delete
    methods = [(r.method, r.path.rsplit("/", 2)[-2]) for r in kube.requests]
    assert methods.index(("GET", "chaosresults")) < methods.index(("DELETE", "chaosengines"))
    assert litmus_engine(kube, name) is None
    kube.clear_requests()
    again = gs.recover(injection)  # idempotent: gone is recovered
    assert again.recovered and kube.writes() == []


def test_litmus_engine_completed_on_its_own_is_deleted_without_a_stop(kube: FakeKubeAPI,
                                                                      api_client: client.ApiClient,
                                                                      clock: Clock) -> None:
    gs = make(api_client, "litmus", clock)
    injection = gs.inject(RUN_ID, "cpu", FaultSpec("cpu_hog", {}, 60), ["game-server-7d9c-a"])
    name = injection.handles["name"]
    engine = litmus_engine(kube, name)
    assert engine is not None
    engine["spec"]["engineState"] = "stop"  # the operator stops a completed engine itself
    kube.seed(engine)
    litmus_operator(kube, name, "pod-cpu-hog", engine_status="completed", phase="Completed", verdict="Pass",
                    targets={"game-server-7d9c-a": "reverted"})
    kube.clear_requests()
    assert gs.recover(injection).recovered
    assert [(m, p.rsplit("/", 2)[-2]) for m, p, _, _ in writes(kube)] == [("DELETE", "chaosengines"),
                                                                         ("DELETE", "chaosresults")]
    assert clock.sleeps == []


def test_litmus_recover_not_confirmed_leaves_everything_in_place(kube: FakeKubeAPI, api_client: client.ApiClient,
                                                                clock: Clock) -> None:
    gs = make(api_client, "litmus", clock)
    targets = ["game-server-7d9c-a", "game-server-7d9c-b"]
    injection = gs.inject(RUN_ID, "latency-400ms", LATENCY, targets)
    name = injection.handles["name"]
    kube.clear_requests()
    recovery = gs.recover(injection)  # no operator answers
    assert not recovery.recovered
    assert recovery.remaining == ("game-server-7d9c-a: network_latency jitter_ms=20 latency_ms=400",
                                  "game-server-7d9c-b: network_latency jitter_ms=20 latency_ms=400")
    assert recovery.detail == (f"chaosengine game/{name}: recovery not confirmed within 10s (engineStatus not set, "
                               "not stopped or completed); left in place, nothing deleted")
    assert clock.sleeps == [2.0] * 5
    assert [r.method for r in kube.writes()] == ["PATCH"]
    assert litmus_engine(kube, name) is not None

    # the engine stopped, but the experiment could not revert one pod: that pod is still injected
    litmus_operator(kube, name, "pod-network-latency", engine_status="stopped", phase="Stopped", verdict="Stopped",
                    targets={"game-server-7d9c-a": "reverted", "game-server-7d9c-b": "injected"})
    kube.clear_requests()
    recovery = gs.recover(injection)
    assert not recovery.recovered
    assert recovery.remaining == ("game-server-7d9c-b: network_latency jitter_ms=20 latency_ms=400",)
    assert "still injected: game-server-7d9c-b" in recovery.detail
    assert kube.writes() == []  # already stopped: nothing to patch, nothing deleted


def test_litmus_engine_gone_but_result_still_injected_is_not_recovered(kube: FakeKubeAPI,
                                                                       api_client: client.ApiClient,
                                                                       clock: Clock) -> None:
    gs = make(api_client, "litmus", clock)
    injection = gs.inject(RUN_ID, "latency-400ms", LATENCY, ["game-server-7d9c-a"])
    name, result = injection.handles["name"], injection.handles["result"]
    litmus_operator(kube, name, "pod-network-latency", engine_status="initialized", phase="Running",
                    verdict="Awaited", targets={"game-server-7d9c-a": "injected"})
    client.CustomObjectsApi(api_client).delete_namespaced_custom_object("litmuschaos.io", "v1alpha1", NS,
                                                                        "chaosengines", name)
    kube.clear_requests()
    recovery = gs.recover(injection)
    assert not recovery.recovered and recovery.remaining == (
        "game-server-7d9c-a: network_latency jitter_ms=20 latency_ms=400",)
    assert recovery.detail.startswith(f"chaosengine game/{name} is gone but chaosresult {result} phase Running")
    assert kube.writes() == []


# --- Chaos Mesh ------------------------------------------------------------------------------------------------

def mesh_object(kube: FakeKubeAPI, plural: str, name: str) -> dict[str, Any] | None:
    return kube.get("chaos-mesh.org/v1alpha1", plural, NS, name)


def mesh_controller(kube: FakeKubeAPI, plural: str, name: str, desired: str, phases: dict[str, str]) -> None:
    """Write the status Chaos Mesh's controller writes: status.experiment.{desiredPhase, containerRecords}."""
    obj = mesh_object(kube, plural, name)
    assert obj is not None
    obj["status"] = {"experiment": {"desiredPhase": desired, "containerRecords": [
        {"id": f"{NS}/{target}", "selectorKey": ".", "phase": phase, "injectedCount": 1,
         "recoveredCount": int(phase == "Not Injected")} for target, phase in phases.items()]}}
    kube.seed(obj)


SELECTED = {"mode": "all", "selector": {"pods": {NS: ["game-server-7d9c-a", "game-server-canary-c"]}}}


@pytest.mark.parametrize(("fault", "kind", "plural", "spec"), [
    (FaultSpec("pod_delete", {}, 30), "PodChaos", "podchaos", {"action": "pod-kill", **SELECTED}),
    (FaultSpec("cpu_hog", {"cpu_cores": 2, "cpu_load": 0.8}, 60), "StressChaos", "stresschaos",
     {**SELECTED, "stressors": {"cpu": {"workers": 2, "load": 80}}, "duration": "60s"}),
    (FaultSpec("memory_hog", {"memory_mb": 512}, 60), "StressChaos", "stresschaos",
     {**SELECTED, "stressors": {"memory": {"workers": 1, "size": "512MB"}}, "duration": "60s"}),
    (LATENCY, "NetworkChaos", "networkchaos",
     {**SELECTED, "action": "delay", "direction": "to", "delay": {"latency": "400ms", "jitter": "20ms"},
      "duration": "90s"}),
    (FaultSpec("network_loss", {"loss_percent": 12.5}, 60), "NetworkChaos", "networkchaos",
     {**SELECTED, "action": "loss", "direction": "to", "loss": {"loss": "12.5"}, "duration": "60s"}),
    (FaultSpec("network_partition", {}, 45), "NetworkChaos", "networkchaos",
     {**SELECTED, "action": "partition", "direction": "from", "duration": "45s"}),
    (FaultSpec("db_failure", {"db_fail_rate": 0.5}, 60), "NetworkChaos", "networkchaos",
     {**SELECTED, "action": "loss", "direction": "to", "loss": {"loss": "50"}, "externalTargets": DB_HOSTS,
      "duration": "60s"}),
    (FaultSpec("db_latency", {"db_latency_ms": 250}, 60), "NetworkChaos", "networkchaos",
     {**SELECTED, "action": "delay", "direction": "to", "delay": {"latency": "250ms", "jitter": "0ms"},
      "externalTargets": DB_HOSTS, "duration": "60s"}),
])
def test_chaos_mesh_object_per_fault_is_pinned_to_the_targets(kube: FakeKubeAPI, api_client: client.ApiClient,
                                                              clock: Clock, fault: FaultSpec, kind: str,
                                                              plural: str, spec: dict[str, Any]) -> None:
    gs = make(api_client, "chaos-mesh", clock)
    injection = gs.inject(RUN_ID, "exp", fault, ["game-server-canary-c", "game-server-7d9c-a"])
    name = object_name(RUN_ID, "exp")
    [(method, path, content_type, body)] = writes(kube)
    assert (method, path, content_type) == ("POST", f"{MESH}/{plural}", "application/json")
    assert (body["apiVersion"], body["kind"], body["metadata"]["name"]) == ("chaos-mesh.org/v1alpha1", kind, name)
    assert body["spec"] == spec
    assert body["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gamesre-chaos"
    assert json.loads(body["metadata"]["annotations"]["gamesre.io/fault"]) == fault.to_dict()
    assert injection.handles == {"engine": "chaos-mesh", "namespace": NS, "apiVersion": "chaos-mesh.org/v1alpha1",
                                 "kind": kind, "plural": plural, "name": name}


def test_chaos_mesh_has_no_disk_fill(kube: FakeKubeAPI, api_client: client.ApiClient, clock: Clock) -> None:
    with pytest.raises(ChaosBackendError, match=r"Chaos Mesh has no disk-fill fault .* run disk_fill with the "
                                                r"litmus engine"):
        make(api_client, "chaos-mesh", clock).inject(RUN_ID, "disk", FaultSpec("disk_fill", {"disk_fill_mb": 500}),
                                                     ["game-server-7d9c-a"])
    assert kube.requests == []


def test_chaos_mesh_abort_is_the_pause_annotation_merge_patch_once(kube: FakeKubeAPI, api_client: client.ApiClient,
                                                                  clock: Clock) -> None:
    gs = make(api_client, "chaos-mesh", clock)
    injection = gs.inject(RUN_ID, "latency-400ms", LATENCY, ["game-server-7d9c-a"])
    path = f"{MESH}/networkchaos/{injection.handles['name']}"
    kube.clear_requests()
    gs.abort(injection)
    gs.abort(injection)
    assert writes(kube) == [("PATCH", path, MERGE_PATCH,
                             {"metadata": {"annotations": {"experiment.chaos-mesh.org/pause": "true"}}})]
    obj = mesh_object(kube, "networkchaos", injection.handles["name"])
    assert obj is not None and obj["metadata"]["annotations"]["gamesre.io/run-id"] == RUN_ID  # merged, not replaced


def test_chaos_mesh_recover_waits_for_every_record_to_be_not_injected(kube: FakeKubeAPI,
                                                                      api_client: client.ApiClient,
                                                                      clock: Clock) -> None:
    gs = make(api_client, "chaos-mesh", clock)
    targets = ["game-server-7d9c-a", "game-server-7d9c-b"]
    injection = gs.inject(RUN_ID, "latency-400ms", LATENCY, targets)
    name = injection.handles["name"]
    mesh_controller(kube, "networkchaos", name, "Run", dict.fromkeys(targets, "Injected"))
    steps = iter([
        {"game-server-7d9c-a": "Not Injected", "game-server-7d9c-b": "Injected/Wait"},  # recovering
        {"game-server-7d9c-a": "Not Injected", "game-server-7d9c-b": "Not Injected"},
    ])

    def controller() -> None:
        obj = mesh_object(kube, "networkchaos", name)
        assert obj is not None and obj["metadata"]["annotations"].get("experiment.chaos-mesh.org/pause") == "true"
        mesh_controller(kube, "networkchaos", name, "Stop", next(steps))

    clock.on_sleep = controller
    kube.clear_requests()
    recovery = gs.recover(injection)
    assert recovery.recovered
    assert recovery.detail == f"networkchaos game/{name}: desiredPhase Stop, all 2 records Not Injected; deleted"
    assert clock.sleeps == [2.0, 2.0]
    assert writes(kube) == [
        ("PATCH", f"{MESH}/networkchaos/{name}", MERGE_PATCH,
         {"metadata": {"annotations": {"experiment.chaos-mesh.org/pause": "true"}}}),
        ("DELETE", f"{MESH}/networkchaos/{name}", "application/json", None)]
    assert mesh_object(kube, "networkchaos", name) is None


def test_chaos_mesh_recover_not_confirmed_names_the_injected_pods(kube: FakeKubeAPI, api_client: client.ApiClient,
                                                                  clock: Clock) -> None:
    gs = make(api_client, "chaos-mesh", clock, recover_timeout=4.0)
    injection = gs.inject(RUN_ID, "cpu", FaultSpec("cpu_hog", {"cpu_cores": 1}, 60),
                          ["game-server-7d9c-a", "game-server-7d9c-b"])
    name = injection.handles["name"]
    clock.on_sleep = lambda: mesh_controller(kube, "stresschaos", name, "Stop", {
        "game-server-7d9c-a": "Not Injected", "game-server-7d9c-b": "Injected"})  # recover keeps failing on b
    kube.clear_requests()
    recovery = gs.recover(injection)
    assert not recovery.recovered
    assert recovery.remaining == ("game-server-7d9c-b: cpu_hog cpu_cores=1 (Injected)",)
    assert recovery.detail == (f"stresschaos game/{name}: recovery not confirmed within 4s (desiredPhase Stop, 1 of "
                               "2 records not Not Injected); left in place, nothing deleted")
    assert [r.method for r in kube.writes()] == ["PATCH"]
    assert mesh_object(kube, "stresschaos", name) is not None


def test_chaos_mesh_pod_kill_done_and_finished_experiments_are_deleted_without_pausing(
        kube: FakeKubeAPI, api_client: client.ApiClient, clock: Clock) -> None:
    gs = make(api_client, "chaos-mesh", clock)
    injection = gs.inject(RUN_ID, "kill", FaultSpec("pod_delete"), ["game-server-7d9c-a"])
    mesh_controller(kube, "podchaos", injection.handles["name"], "Stop", {"game-server-7d9c-a": "Not Injected"})
    kube.clear_requests()
    assert gs.recover(injection).recovered
    assert [(m, p) for m, p, _, _ in writes(kube)] == [("DELETE", f"{MESH}/podchaos/{injection.handles['name']}")]


# --- the reaper's view -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["litmus", "chaos-mesh"])
def test_injected_finds_what_a_crashed_run_left_behind(kube: FakeKubeAPI, api_client: client.ApiClient,
                                                       clock: Clock, engine: str) -> None:
    crashed = make(api_client, engine, clock)
    first = crashed.inject(RUN_ID, "latency-400ms", LATENCY, ["game-server-7d9c-a"])
    second = crashed.inject("scheduled__2026-03-04T02:00:00+00:00", "cpu", FaultSpec("cpu_hog", {}, 30),
                            ["game-server-canary-c"])
    kube.seed({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos",
               "metadata": {"name": "someone-elses", "namespace": NS, "labels": {"app": "x"}},
               "spec": {"action": "pod-kill"}})
    kube.clear_requests()
    reaper = make(api_client, engine, clock)  # a new process: knows nothing but the cluster
    assert reaper.injected() == [first, second]
    assert reaper.injected(SERVICE) == [first, second]
    assert reaper.injected("matchmaking") == []
    plurals = ["chaosengines"] if engine == "litmus" else ["podchaos", "stresschaos", "networkchaos"]
    root = LITMUS if engine == "litmus" else MESH
    listed = [(r.path, r.query["labelSelector"][0]) for r in kube.requests]
    assert listed[:len(plurals)] == [(f"{root}/{p}", MANAGED) for p in plurals]
    assert listed[len(plurals)] == (f"{root}/{plurals[0]}", f"{MANAGED},gamesre.io/service={SERVICE}")
    for leftover in reaper.injected():
        reaper.abort(leftover)
    if engine == "litmus":
        assert all(litmus_engine(kube, i.handles["name"])["spec"]["engineState"] == "stop"  # type: ignore[index]
                   for i in (first, second))


def test_injected_refuses_a_managed_object_it_cannot_read(kube: FakeKubeAPI, api_client: client.ApiClient,
                                                          clock: Clock) -> None:
    kube.seed({"apiVersion": "litmuschaos.io/v1alpha1", "kind": "ChaosEngine",
               "metadata": {"name": "gamesre-hand-made", "namespace": NS,
                            "labels": {"app.kubernetes.io/managed-by": "gamesre-chaos"}},
               "spec": {"engineState": "active"}})
    with pytest.raises(ChaosBackendError, match=re.escape(
            "chaosengine game/gamesre-hand-made is labelled app.kubernetes.io/managed-by=gamesre-chaos but its "
            "annotations are not what gamesre writes")):
        make(api_client, "litmus", clock).injected()


# --- errors ----------------------------------------------------------------------------------------------------

def test_api_errors_name_the_action_the_object_and_the_status(kube: FakeKubeAPI, api_client: client.ApiClient,
                                                              clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    gs = make(api_client, "litmus", clock)
    injection = gs.inject(RUN_ID, "latency-400ms", LATENCY, ["game-server-7d9c-a"])
    name = injection.handles["name"]
    fail_with(kube, monkeypatch, "PATCH", f"{LITMUS}/chaosengines/{name}")
    with pytest.raises(KubernetesChaosError) as info:
        gs.abort(injection)
    assert str(info.value) == (f"kubernetes chaos (litmus): patching chaosengine game/{name} (engineState: stop) "
                               "failed: HTTP 500 InternalError: etcdserver: request timed out")
    assert isinstance(info.value, ChaosBackendError) and info.value.status == 500

    monkeypatch.undo()
    monkeypatch.setattr(chaos_kubernetes, "_now", lambda: NOW)
    litmus_operator(kube, name, "pod-network-latency", engine_status="stopped", phase="Stopped", verdict="Stopped",
                    targets={"game-server-7d9c-a": "reverted"})
    fail_with(kube, monkeypatch, "DELETE", f"{LITMUS}/chaosengines/{name}", 403, "Forbidden",
              'chaosengines.litmuschaos.io "x" is forbidden: User "airflow" cannot delete resource')
    with pytest.raises(ChaosBackendError, match=rf"deleting chaosengine game/{name} failed: HTTP 403 Forbidden: "):
        gs.recover(injection)
    assert litmus_engine(kube, name) is not None


def test_missing_custom_resource_definitions_are_a_clear_404(api_client: client.ApiClient, clock: Clock) -> None:
    with FakeKubeAPI(resources=BUILTIN_RESOURCES) as bare:  # no Chaos Mesh installed
        bare.seed(pod("game-server-7d9c-a"))
        configuration = client.Configuration()
        configuration.host = bare.url
        with client.ApiClient(configuration) as api:
            gs = make(api, "chaos-mesh", clock)
            with pytest.raises(KubernetesChaosError) as info:
                gs.inject(RUN_ID, "latency-400ms", LATENCY, ["game-server-7d9c-a"])
            assert str(info.value) == (f"kubernetes chaos (chaos-mesh): creating networkchaos game/"
                                       f"{object_name(RUN_ID, 'latency-400ms')} failed: HTTP 404 NotFound: the server "
                                       "could not find the requested resource")
            with pytest.raises(KubernetesChaosError, match=r"listing the podchaos of gamesre in game failed: HTTP 404"):
                gs.injected()


def test_an_injection_of_another_backend_is_refused(kube: FakeKubeAPI, api_client: client.ApiClient,
                                                    clock: Clock) -> None:
    injection = make(api_client, "chaos-mesh", clock).inject(RUN_ID, "x", LATENCY, ["game-server-7d9c-a"])
    with pytest.raises(ChaosBackendError, match="made by kubernetes/chaos-mesh, not kubernetes/litmus"):
        make(api_client, "litmus", clock).recover(injection)


def test_unreachable_api_server(clock: Clock) -> None:
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{free_port()}"
    configuration.retries = 0
    with client.ApiClient(configuration) as api, pytest.raises(KubernetesChaosError) as info:
        make(api, "litmus", clock).targets({})
    assert info.value.status is None and info.value.reason == "Unreachable"
    assert str(info.value).startswith("kubernetes chaos (litmus): listing the pods app=game-server in game failed: "
                                      "Unreachable: ")
