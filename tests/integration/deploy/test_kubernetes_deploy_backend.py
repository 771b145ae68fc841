"""The kubernetes deploy backend (apps/v1 Deployments, a core/v1 Service) through the real kubernetes client
(directly and via the cncf-kubernetes provider's hook) against the fake API server: exact paths, patch
types and bodies for canary, blue-green and rolling, idempotency, and errors that name the object.

No Deployment controller runs here: tests write the status and ReplicaSets a controller would write. These
paths ran only against tests/fakes/kube_api.py, never against a real cluster.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from demo.procs import free_port
from gamesre.deploy.backend import Cohorts, DeployBackendError
from gamesre.deploy.plan import build_plan
from gamesre.integrations.deploy.kubernetes import (
    RECORD_ANNOTATION,
    KubernetesDeployBackend,
    KubernetesDeployError,
    canary_replicas,
)
from tests.fakes.kube_api import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, FakeKubeAPI

pytestmark = pytest.mark.integration

NS, APP = "game", "game-server"
REPO = "registry.example.com/game/game-server"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
STABLE, CANARY = f"{DEPLOYMENTS}/{APP}", f"{DEPLOYMENTS}/{APP}-canary"
SERVICE = f"/api/v1/namespaces/{NS}/services/{APP}"
ENVOY = {"name": "envoy", "image": "envoyproxy/envoy:v1.31.0"}


def game_container(tag: str) -> dict[str, Any]:
    return {"name": "game", "image": f"{REPO}:{tag}", "ports": [{"containerPort": 7777}]}


def deployment(name: str, tag: str, *, replicas: int = 4, labels: dict[str, str] | None = None,
               annotations: dict[str, str] | None = None, strategy: dict[str, Any] | None = None) -> dict[str, Any]:
    labels = labels or {"app": APP}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS, "labels": dict(labels), "annotations": annotations or {}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "strategy": strategy or {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": {**labels, "version": tag}},
                                  "spec": {"containers": [game_container(tag), ENVOY]}}},
            "status": {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                       "readyReplicas": replicas, "availableReplicas": replicas}}


def service(selector: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": APP, "namespace": NS},
            "spec": {"selector": selector, "ports": [{"port": 7777, "targetPort": 7777}]}}


@pytest.fixture
def kube() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as api:
        yield api


def backend(api_client: client.ApiClient, strategy: str, **kwargs: Any) -> KubernetesDeployBackend:
    return KubernetesDeployBackend(api_client, namespace=NS, deployment=APP, service=APP, image_repo=REPO,
                                   strategy=strategy, **kwargs)


def get(kube: FakeKubeAPI, name: str) -> dict[str, Any] | None:
    return kube.get("apps/v1", "deployments", NS, name)


def get_service(kube: FakeKubeAPI) -> dict[str, Any]:
    obj = kube.get("v1", "services", NS, APP)
    assert obj is not None
    return obj


def record_of(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    assert obj is not None
    raw = (obj["metadata"].get("annotations") or {}).get(RECORD_ANNOTATION)
    return None if raw is None else dict(json.loads(raw))


def controller(kube: FakeKubeAPI, name: str, **status: Any) -> None:
    """Write a Deployment's status as the controller would after reconciling its current generation."""
    obj = get(kube, name)
    assert obj is not None
    obj["status"] = {**obj.get("status", {}), **status, "observedGeneration": obj["metadata"]["generation"]}
    kube.seed(obj)


def writes(kube: FakeKubeAPI) -> list[tuple[str, str, str | None, Any]]:
    return [(r.method, r.path, r.content_type, r.body) for r in kube.writes()]


def test_canary_replicas_keep_the_stable_untouched() -> None:
    assert [canary_replicas(4, w) for w in (10, 25, 50, 75, 100)] == [1, 1, 4, 4, 4]
    assert [canary_replicas(10, w) for w in (10, 25, 50, 100)] == [1, 3, 10, 10]  # 9%, 23%, 50%, 50%


# --- canary --------------------------------------------------------------------------------------------------

@pytest.fixture
def canary_cluster(kube: FakeKubeAPI) -> FakeKubeAPI:
    kube.seed(deployment(APP, "1.4.2"))
    kube.seed(service({"app": APP}))
    return kube


def test_canary_prepare_records_then_creates_the_canary_once(canary_cluster: FakeKubeAPI,
                                                             api_client: client.ApiClient) -> None:
    kube = canary_cluster
    rv = get(kube, APP)["metadata"]["resourceVersion"]  # type: ignore[index]
    backend(api_client, "canary").prepare("1.5.0", build_plan("canary"))
    record = {"image": f"{REPO}:1.5.0", "stable_image": f"{REPO}:1.4.2", "stable_replicas": 4,
              "strategy": "canary", "version": "1.5.0", "weights": [10, 25, 50, 100]}
    canary_labels = {"app": APP, "track": "canary", "version": "1.5.0"}
    assert writes(kube) == [
        ("PATCH", STABLE, MERGE_PATCH, {"metadata": {"resourceVersion": rv, "annotations": {
            RECORD_ANNOTATION: json.dumps(record, sort_keys=True, separators=(",", ":"))}}}),
        ("POST", DEPLOYMENTS, "application/json", {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"{APP}-canary", "namespace": NS, "labels": canary_labels,
                         "annotations": {"gamesre.io/canary-of": APP}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": APP, "track": "canary"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%",
                                                                             "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": canary_labels},
                                  "spec": {"containers": [game_container("1.5.0"), ENVOY]}}}})]
    kube.clear_requests()
    backend(api_client, "canary").prepare("1.5.0", build_plan("canary"))
    assert writes(kube) == []
    with pytest.raises(DeployBackendError, match=r"a deploy of 1\.5\.0 is still in progress; promote it or roll "
                                                 r"it back before deploying 1\.6\.0"):
        backend(api_client, "canary").prepare("1.6.0", build_plan("canary"))


def test_canary_shifts_scale_only_the_canary(canary_cluster: FakeKubeAPI, api_client: client.ApiClient) -> None:
    kube = canary_cluster
    gs = backend(api_client, "canary")
    gs.prepare("1.5.0", build_plan("canary"))
    kube.clear_requests()
    gs.shift(0)
    assert writes(kube) == [("PATCH", f"{CANARY}/scale", MERGE_PATCH, {"spec": {"replicas": 1}})]
    gs.shift(0)
    gs.shift(1)  # 25% of 4 stable pods is also one canary pod: nothing to change
    assert len(kube.writes()) == 1
    controller(kube, f"{APP}-canary", replicas=1, updatedReplicas=1, readyReplicas=1)
    status = gs.status()
    assert (status.stable_version, status.candidate_version, status.candidate_weight, status.ready) == (
        "1.4.2", "1.5.0", 20, True)
    assert status.detail == f"{APP} 1.4.2 4/4 ready, {APP}-canary 1.5.0 1/1 ready: 20% of the ready pods"
    assert gs.cohorts() == Cohorts({"version": "1.5.0"}, {"version": "1.4.2"})
    gs.shift(2)
    gs.shift(3)  # 100%: as many canary pods as stable ones; the stable is never scaled to 0
    assert writes(kube)[1:] == [("PATCH", f"{CANARY}/scale", MERGE_PATCH, {"spec": {"replicas": 4}})]
    assert get(kube, APP)["spec"]["replicas"] == 4  # type: ignore[index]
    with pytest.raises(DeployBackendError, match=r"the canary plan has 4 weights \[10, 25, 50, 100\]; there is no "
                                                 "step 4"):
        gs.shift(4)


def test_canary_promote_updates_the_stable_and_deletes_the_canary(canary_cluster: FakeKubeAPI,
                                                                  api_client: client.ApiClient) -> None:
    kube = canary_cluster
    gs = backend(api_client, "canary")
    gs.prepare("1.5.0", build_plan("canary"))
    gs.shift(3)
    kube.clear_requests()
    gs.promote()
    assert writes(kube) == [
        ("PATCH", STABLE, STRATEGIC_MERGE_PATCH, {"spec": {"template": {
            "spec": {"containers": [{"name": "game", "image": f"{REPO}:1.5.0"}]},
            "metadata": {"labels": {"version": "1.5.0"}}}}}),
        ("DELETE", CANARY, "application/json", None),
        ("PATCH", STABLE, MERGE_PATCH, {"metadata": {"annotations": {RECORD_ANNOTATION: None}}})]
    stable = get(kube, APP)
    assert stable is not None and record_of(stable) is None
    assert stable["spec"]["template"]["spec"]["containers"] == [game_container("1.5.0"), ENVOY]  # merged by name
    assert get(kube, f"{APP}-canary") is None
    kube.clear_requests()
    gs.promote()
    gs.rollback("after the promotion there is nothing to roll back")
    assert writes(kube) == []


def test_canary_rollback_restores_exactly_what_was_recorded(canary_cluster: FakeKubeAPI,
                                                            api_client: client.ApiClient) -> None:
    kube = canary_cluster
    gs = backend(api_client, "canary")
    gs.prepare("1.5.0", build_plan("canary"))
    gs.shift(2)
    stable = get(kube, APP)
    assert stable is not None
    stable["spec"]["replicas"] = 2  # scaled down meanwhile: the rollback gives the stable its capacity back
    stable["spec"]["template"]["spec"]["containers"][0]["image"] = f"{REPO}:1.5.0"  # a promote that got half way
    kube.seed(stable)
    kube.clear_requests()
    gs.rollback("canary 50%: regression")
    assert writes(kube) == [
        ("PATCH", STABLE, STRATEGIC_MERGE_PATCH, {"spec": {"template": {
            "spec": {"containers": [{"name": "game", "image": f"{REPO}:1.4.2"}]},
            "metadata": {"labels": {"version": "1.4.2"}}}}}),
        ("PATCH", f"{STABLE}/scale", MERGE_PATCH, {"spec": {"replicas": 4}}),
        ("PATCH", f"{CANARY}/scale", MERGE_PATCH, {"spec": {"replicas": 0}}),
        ("DELETE", CANARY, "application/json", None),
        ("PATCH", STABLE, MERGE_PATCH, {"metadata": {"annotations": {RECORD_ANNOTATION: None}}})]
    restored = get(kube, APP)
    assert restored is not None and record_of(restored) is None and restored["spec"]["replicas"] == 4
    assert restored["spec"]["template"]["spec"]["containers"][0]["image"] == f"{REPO}:1.4.2"
    kube.clear_requests()
    gs.rollback("retried task")
    assert writes(kube) == []
    status = gs.status()
    assert (status.stable_version, status.candidate_version, status.candidate_weight) == ("1.4.2", None, 0)
    assert gs.cohorts() == Cohorts({"version": "1.4.2"}, None)


def test_canary_refuses_a_service_that_would_not_send_it_traffic(kube: FakeKubeAPI,
                                                                 api_client: client.ApiClient) -> None:
    kube.seed(deployment(APP, "1.4.2", labels={"app": APP, "track": "stable"}))
    kube.seed(service({"app": APP, "track": "stable"}))
    with pytest.raises(DeployBackendError, match=f"service {NS}/{APP} selects .*'track': 'stable'.*the canary "
                                                 "would get no traffic"):
        backend(api_client, "canary").prepare("1.5.0", build_plan("canary"))
    assert kube.writes() == []


# --- blue-green ----------------------------------------------------------------------------------------------

@pytest.fixture
def blue_green_cluster(kube: FakeKubeAPI) -> FakeKubeAPI:
    kube.seed(deployment(APP, "1.4.2", labels={"app": APP, "slot": "blue"}))
    kube.seed(service({"app": APP, "slot": "blue"}))
    return kube


def test_blue_green_prepare_switch_promote(blue_green_cluster: FakeKubeAPI, api_client: client.ApiClient) -> None:
    kube = blue_green_cluster
    gs = backend(api_client, "blue-green")
    rv = get_service(kube)["metadata"]["resourceVersion"]
    gs.prepare("1.5.0", build_plan("blue-green", scale_down_delay_s=60))
    record = {"active_deployment": APP, "image": f"{REPO}:1.5.0", "new_deployment": f"{APP}-green",
              "new_slot": "green", "previous_selector": {"app": APP, "slot": "blue"}, "replicas": 4,
              "stable_image": f"{REPO}:1.4.2", "strategy": "blue-green", "version": "1.5.0"}
    green_labels = {"app": APP, "slot": "green", "version": "1.5.0"}
    (annotate, create) = writes(kube)
    assert annotate == ("PATCH", SERVICE, MERGE_PATCH, {"metadata": {"resourceVersion": rv, "annotations": {
        RECORD_ANNOTATION: json.dumps(record, sort_keys=True, separators=(",", ":"))}}})
    assert create[:2] == ("POST", DEPLOYMENTS)
    assert create[3]["metadata"] == {"name": f"{APP}-green", "namespace": NS, "labels": green_labels}
    assert create[3]["spec"]["replicas"] == 4
    assert create[3]["spec"]["selector"] == {"matchLabels": {"app": APP, "slot": "green"}}
    assert create[3]["spec"]["template"] == {"metadata": {"labels": green_labels},
                                             "spec": {"containers": [game_container("1.5.0"), ENVOY]}}
    assert get_service(kube)["spec"]["selector"] == {"app": APP, "slot": "blue"}  # the preview gets no players
    kube.clear_requests()
    gs.prepare("1.5.0", build_plan("blue-green", scale_down_delay_s=60))
    assert writes(kube) == []
    preview = gs.status()
    assert (preview.stable_version, preview.candidate_version, preview.candidate_weight, preview.ready) == (
        "1.4.2", "1.5.0", 0, False)

    with pytest.raises(DeployBackendError, match=f"deployment {NS}/{APP}-green is not ready \\(0/4 pods ready\\); "
                                                 "not switching players to it"):
        gs.shift(0)
    with pytest.raises(DeployBackendError, match="switch before promoting"):
        gs.promote()
    assert writes(kube) == []
    controller(kube, f"{APP}-green", replicas=4, updatedReplicas=4, readyReplicas=4)
    gs.shift(0)
    assert writes(kube) == [("PATCH", SERVICE, STRATEGIC_MERGE_PATCH, {"spec": {"selector": {"slot": "green"}}})]
    assert get_service(kube)["spec"] == {"selector": {"app": APP, "slot": "green"},
                                         "ports": [{"port": 7777, "targetPort": 7777}]}
    gs.shift(0)
    assert len(kube.writes()) == 1
    live = gs.status()
    assert (live.candidate_weight, live.ready) == (100, True)
    assert gs.cohorts() == Cohorts({"version": "1.5.0"}, None)  # blue keeps running but serves nobody

    kube.clear_requests()
    gs.promote()
    assert writes(kube) == [("PATCH", f"{STABLE}/scale", MERGE_PATCH, {"spec": {"replicas": 0}}),
                            ("PATCH", SERVICE, MERGE_PATCH, {"metadata": {"annotations": {RECORD_ANNOTATION: None}}})]
    gs.promote()
    gs.rollback("nothing to roll back once promoted")
    assert len(kube.writes()) == 2
    assert gs.status().stable_version == "1.5.0"


def test_blue_green_rollback_puts_the_selector_back(blue_green_cluster: FakeKubeAPI,
                                                    api_client: client.ApiClient) -> None:
    kube = blue_green_cluster
    gs = backend(api_client, "blue-green")
    gs.prepare("1.5.0", build_plan("blue-green"))
    controller(kube, f"{APP}-green", replicas=4, updatedReplicas=4, readyReplicas=4)
    gs.shift(0)
    kube.clear_requests()
    gs.rollback("post-switch analysis: regression")
    assert writes(kube) == [
        ("PATCH", SERVICE, STRATEGIC_MERGE_PATCH, {"spec": {"selector": {"app": APP, "slot": "blue"}}}),
        ("PATCH", f"{DEPLOYMENTS}/{APP}-green/scale", MERGE_PATCH, {"spec": {"replicas": 0}}),
        ("PATCH", SERVICE, MERGE_PATCH, {"metadata": {"annotations": {RECORD_ANNOTATION: None}}})]
    assert get_service(kube)["spec"]["selector"] == {"app": APP, "slot": "blue"}
    kube.clear_requests()
    gs.rollback("retried")
    assert writes(kube) == []


def test_blue_green_alternates_slots_and_rebuilds_a_left_over_one(blue_green_cluster: FakeKubeAPI,
                                                                  api_client: client.ApiClient) -> None:
    kube = blue_green_cluster
    gs = backend(api_client, "blue-green")
    for version, new in (("1.5.0", "green"), ("1.6.0", "blue"), ("1.7.0", "green")):
        kube.clear_requests()
        gs.prepare(version, build_plan("blue-green"))
        made = [w for w in writes(kube) if w[0] in ("POST", "PUT")]
        assert len(made) == 1 and made[0][3]["metadata"]["name"] == f"{APP}-{new}"
        controller(kube, f"{APP}-{new}", replicas=4, updatedReplicas=4, readyReplicas=4)
        gs.shift(0)
        gs.promote()
        assert get_service(kube)["spec"]["selector"]["slot"] == new
    assert [w[0] for w in writes(kube) if w[0] in ("POST", "PUT")] == ["PUT"]  # green existed, scaled to 0
    (put,) = [r for r in kube.writes() if r.method == "PUT"]
    assert put.path == f"{DEPLOYMENTS}/{APP}-green" and put.body["metadata"]["resourceVersion"]
    assert put.body["spec"]["replicas"] == 4
    assert put.body["spec"]["template"]["spec"]["containers"][0]["image"] == f"{REPO}:1.7.0"
    assert [get(kube, n)["spec"]["replicas"] for n in (APP, f"{APP}-blue", f"{APP}-green")] == [0, 0, 4]  # type: ignore[index]


# --- rolling -------------------------------------------------------------------------------------------------

def replicaset(name: str, revision: str, tag: str, pod_hash: str, uid: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": APP, "pod-template-hash": pod_hash},
                         "annotations": {"deployment.kubernetes.io/revision": revision,
                                         "kubernetes.io/change-cause": f"release {tag}"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": APP,
                                              "uid": uid, "controller": True}]},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": APP, "pod-template-hash": pod_hash}},
                     "template": {"metadata": {"labels": {"app": APP, "version": tag, "pod-template-hash": pod_hash}},
                                  "spec": {"containers": [game_container(tag), ENVOY]}}}}


@pytest.fixture
def rolling_cluster(kube: FakeKubeAPI) -> FakeKubeAPI:
    kube.seed(deployment(APP, "1.4.2", annotations={"deployment.kubernetes.io/revision": "3",
                                                    "kubernetes.io/change-cause": "release 1.4.2"}))
    kube.seed(service({"app": APP}))
    uid = get(kube, APP)["metadata"]["uid"]  # type: ignore[index]
    kube.seed(replicaset(f"{APP}-6d8f9b7c4", "3", "1.4.2", "6d8f9b7c4", uid))
    kube.seed(replicaset(f"{APP}-5b6c7d8e9", "2", "1.4.1", "5b6c7d8e9", uid))
    return kube


def test_rolling_batch_pauses_once_the_controller_created_it(rolling_cluster: FakeKubeAPI,
                                                             api_client: client.ApiClient) -> None:
    kube = rolling_cluster
    sleeps: list[float] = []

    def controller_creates_the_batch(seconds: float) -> None:
        sleeps.append(seconds)
        controller(kube, APP, replicas=6, updatedReplicas=2, readyReplicas=4)

    gs = backend(api_client, "rolling", sleep=controller_creates_the_batch, poll_interval_s=0.5)
    gs.prepare("1.5.0", build_plan("rolling", rolling_batches=(50, 100)))
    record = record_of(get(kube, APP))
    assert record == {"batches": [50, 100], "image": f"{REPO}:1.5.0", "previous_image": f"{REPO}:1.4.2",
                      "previous_revision": "3", "previous_rolling_update": {"maxSurge": "25%", "maxUnavailable": "25%"},
                      "strategy": "rolling", "version": "1.5.0"}
    kube.clear_requests()
    gs.shift(0)
    assert sleeps == [0.5]
    assert writes(kube) == [
        ("PATCH", STABLE, STRATEGIC_MERGE_PATCH, {"spec": {
            "paused": False,
            "template": {"spec": {"containers": [{"name": "game", "image": f"{REPO}:1.5.0"}]},
                         "metadata": {"labels": {"version": "1.5.0"}}},
            "strategy": {"rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}}}}),
        ("PATCH", STABLE, STRATEGIC_MERGE_PATCH, {"spec": {"paused": True}})]
    assert gs.status().candidate_weight == 0  # a status older than the last patch is not trusted
    controller(kube, APP)  # the controller observes the pause
    status = gs.status()
    assert (status.stable_version, status.candidate_version, status.candidate_weight) == ("1.4.2", "1.5.0", 33)
    assert status.detail == f"{APP}: 2/6 pods on 1.5.0 (33%), 4 ready, paused"
    assert gs.cohorts() == Cohorts({"version": "1.5.0"}, {"version": "1.4.2"})
    kube.clear_requests()
    gs.shift(0)
    assert writes(kube) == []

    gs.shift(1)  # the last batch: the recorded settings back, unpaused, the controller finishes
    assert writes(kube) == [("PATCH", STABLE, STRATEGIC_MERGE_PATCH, {"spec": {
        "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}, "paused": False}})]
    controller(kube, APP, replicas=4, updatedReplicas=4, readyReplicas=4)
    assert gs.status().candidate_weight == 100 and gs.cohorts().baseline is None
    kube.clear_requests()
    gs.promote()
    assert writes(kube) == [("PATCH", STABLE, STRATEGIC_MERGE_PATCH,
                             {"metadata": {"annotations": {RECORD_ANNOTATION: None}}})]
    gs.promote()
    assert len(kube.writes()) == 1


def test_rolling_batch_that_the_controller_does_not_start_is_paused_and_reported(
        rolling_cluster: FakeKubeAPI, api_client: client.ApiClient) -> None:
    kube = rolling_cluster
    gs = backend(api_client, "rolling", batch_timeout_s=0)
    gs.prepare("1.5.0", build_plan("rolling", rolling_batches=(25, 100)))
    with pytest.raises(DeployBackendError, match=f"deployment {NS}/{APP}: the controller created 0 of the batch's 1 "
                                                 "new pods within 0s; paused there"):
        gs.shift(0)
    assert get(kube, APP)["spec"]["paused"] is True  # type: ignore[index]


def test_rolling_rollback_is_kubectl_rollout_undo_to_the_recorded_revision(
        rolling_cluster: FakeKubeAPI, api_client: client.ApiClient) -> None:
    kube = rolling_cluster
    gs = backend(api_client, "rolling", batch_timeout_s=0)
    gs.prepare("1.5.0", build_plan("rolling", rolling_batches=(50, 100)))
    with pytest.raises(DeployBackendError):
        gs.shift(0)  # no controller: paused after the image change
    uid = get(kube, APP)["metadata"]["uid"]  # type: ignore[index]
    kube.seed(replicaset(f"{APP}-7f8e9d6c5", "4", "1.5.0", "7f8e9d6c5", uid))
    stable = get(kube, APP)
    assert stable is not None
    stable["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "4"
    kube.seed(stable)
    kube.clear_requests()
    gs.rollback("batch 50%: regression")
    old_template = {"metadata": {"labels": {"app": APP, "version": "1.4.2"}},
                    "spec": {"containers": [game_container("1.4.2"), ENVOY]}}
    assert writes(kube) == [("PATCH", STABLE, JSON_PATCH, [
        {"op": "replace", "path": "/spec/template", "value": old_template},
        {"op": "replace", "path": "/metadata/annotations",
         "value": {"deployment.kubernetes.io/revision": "4", "kubernetes.io/change-cause": "release 1.4.2"}},
        {"op": "add", "path": "/spec/paused", "value": False},
        {"op": "add", "path": "/spec/strategy/rollingUpdate", "value": {"maxSurge": "25%", "maxUnavailable": "25%"}},
    ])]
    restored = get(kube, APP)
    assert restored is not None and record_of(restored) is None
    assert restored["spec"]["template"] == old_template and restored["spec"]["paused"] is False
    kube.clear_requests()
    gs.rollback("retried")
    assert writes(kube) == []


def test_rolling_rollback_before_any_batch_only_ends_the_record(rolling_cluster: FakeKubeAPI,
                                                                api_client: client.ApiClient) -> None:
    kube = rolling_cluster
    gs = backend(api_client, "rolling")
    gs.prepare("1.5.0", build_plan("rolling"))
    kube.clear_requests()
    gs.rollback("the first batch's gate failed")
    assert writes(kube) == [("PATCH", STABLE, JSON_PATCH,
                             [{"op": "remove", "path": "/metadata/annotations/gamesre.io~1deploy"}])]
    assert record_of(get(kube, APP)) is None


def test_rolling_needs_a_rolling_update_deployment(kube: FakeKubeAPI, api_client: client.ApiClient) -> None:
    kube.seed(deployment(APP, "1.4.2", strategy={"type": "Recreate"}))
    with pytest.raises(DeployBackendError, match=f"deployment {NS}/{APP} uses the Recreate strategy"):
        backend(api_client, "rolling").prepare("1.5.0", build_plan("rolling"))
    assert kube.writes() == []


# --- errors and the provider hook ------------------------------------------------------------------------------

def test_errors_name_the_object_status_and_message(canary_cluster: FakeKubeAPI, api_client: client.ApiClient) -> None:
    missing = KubernetesDeployBackend(api_client, namespace=NS, deployment="nope", service=APP, image_repo=REPO,
                                      strategy="canary")
    with pytest.raises(KubernetesDeployError) as info:
        missing.prepare("1.5.0", build_plan("canary"))
    assert str(info.value) == (f'kubernetes: reading deployment {NS}/nope failed: HTTP 404 NotFound: '
                               'deployments.apps "nope" not found')
    assert isinstance(info.value, DeployBackendError) and (info.value.status, info.value.reason) == (404, "NotFound")
    with pytest.raises(DeployBackendError, match="the plan is 'rolling' but deployment game/game-server is deployed "
                                                 "with 'canary'"):
        backend(api_client, "canary").prepare("1.5.0", build_plan("rolling"))
    with pytest.raises(DeployBackendError, match="needs synthetic traffic"):
        backend(api_client, "canary").prepare("1.5.0", build_plan("canary", synthetic=True))
    with pytest.raises(DeployBackendError, match="a `slot` label of blue or green"):
        backend(api_client, "blue-green").prepare("1.5.0", build_plan("blue-green"))
    with pytest.raises(DeployBackendError, match=r"no deploy in progress .*prepare first"):
        backend(api_client, "canary").shift(0)
    assert canary_cluster.writes() == []


def test_unreachable_api_server() -> None:
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{free_port()}"
    configuration.retries = 0
    with client.ApiClient(configuration) as api, pytest.raises(KubernetesDeployError) as info:
        backend(api, "canary").status()
    assert info.value.status is None and info.value.reason == "Unreachable"
    assert str(info.value).startswith(f"kubernetes: reading deployment {NS}/{APP} failed: Unreachable: ")


def test_through_the_cncf_kubernetes_provider_hook(canary_cluster: FakeKubeAPI,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The ApiClient of gamesre.airflow.hooks.kubernetes (KubernetesHook, kubeconfig in the connection extra)."""
    from gamesre.airflow.hooks.kubernetes import api_client

    kube = canary_cluster
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_FAKE", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config": kube.kubeconfig(namespace=NS)}}))
    default = client.Configuration.get_default_copy()
    try:
        api = api_client("kubernetes_fake")
        assert api.configuration.host == kube.url
        gs = backend(api, "canary")
        gs.prepare("1.5.0", build_plan("canary"))
        gs.shift(0)
        gs.rollback("through the hook")
    finally:
        client.Configuration.set_default(default)  # the hook loads the kubeconfig into the process default
    assert [(r.method, r.path, r.content_type) for r in kube.writes()] == [
        ("PATCH", STABLE, MERGE_PATCH), ("POST", DEPLOYMENTS, "application/json"),
        ("PATCH", f"{CANARY}/scale", MERGE_PATCH), ("PATCH", f"{CANARY}/scale", MERGE_PATCH),
        ("DELETE", CANARY, "application/json"), ("PATCH", STABLE, MERGE_PATCH)]
    assert get(kube, f"{APP}-canary") is None and record_of(get(kube, APP)) is None
