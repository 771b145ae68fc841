"""The fake Kubernetes API server keeps to the documented semantics the Kubernetes backends rely on."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fakes.kube_api import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, FakeKubeAPI
from tests.fakes.kube_patch import json_patch, merge_patch, strategic_merge_patch

DEPLOYMENTS = "/apis/apps/v1/namespaces/game/deployments"
ROLLOUTS = "/apis/argoproj.io/v1alpha1/namespaces/game/rollouts"


@pytest.fixture
def kube() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as api:
        yield api


def call(kube: FakeKubeAPI, method: str, path: str, body: Any = None, content_type: str = "application/json",
         **params: str) -> requests.Response:
    return requests.request(method, kube.url + path, json=body, params=params, timeout=5,
                            headers={"Content-Type": content_type})


def deployment(name: str = "game-server", replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [
                                      {"name": "game", "image": "game:1.4.2", "env": [{"name": "A", "value": "1"}]},
                                      {"name": "sidecar", "image": "envoy:1"}]}}},
            "status": {"replicas": 99}}


def test_create_read_list_delete_with_status_objects(kube: FakeKubeAPI) -> None:
    created = call(kube, "POST", DEPLOYMENTS, deployment())
    assert created.status_code == 201
    doc = created.json()
    assert doc["metadata"]["namespace"] == "game" and doc["metadata"]["generation"] == 1
    assert "status" not in doc  # create ignores .status when the kind has a status subresource
    again = call(kube, "POST", DEPLOYMENTS, deployment())
    assert again.status_code == 409
    assert again.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": 'deployments.apps "game-server" already exists', "reason": "AlreadyExists",
                            "details": {"name": "game-server", "group": "apps", "kind": "deployments"}, "code": 409}
    call(kube, "POST", DEPLOYMENTS, deployment("matchmaking"))
    listed = call(kube, "GET", DEPLOYMENTS, labelSelector="app=matchmaking").json()
    assert listed["kind"] == "DeploymentList" and [i["metadata"]["name"] for i in listed["items"]] == ["matchmaking"]
    assert len(call(kube, "GET", "/apis/apps/v1/deployments").json()["items"]) == 2
    gone = call(kube, "DELETE", f"{DEPLOYMENTS}/matchmaking")
    assert gone.status_code == 200 and gone.json()["status"] == "Success"
    missing = call(kube, "GET", f"{DEPLOYMENTS}/matchmaking")
    assert missing.status_code == 404
    assert missing.json()["reason"] == "NotFound"
    assert missing.json()["message"] == 'deployments.apps "matchmaking" not found'
    assert call(kube, "GET", "/apis/apps/v1/namespaces/game/statefulsets").status_code == 404


def test_resource_version_grows_on_every_write_and_guards_updates(kube: FakeKubeAPI) -> None:
    v1 = call(kube, "POST", DEPLOYMENTS, deployment()).json()
    v2 = call(kube, "PATCH", f"{DEPLOYMENTS}/game-server", {"metadata": {"labels": {"x": "y"}}}, MERGE_PATCH).json()
    assert int(v2["metadata"]["resourceVersion"]) > int(v1["metadata"]["resourceVersion"])
    assert v2["metadata"]["generation"] == 1  # metadata only: the generation stays
    stale = {**v1, "spec": {**v1["spec"], "replicas": 5}}
    conflict = call(kube, "PUT", f"{DEPLOYMENTS}/game-server", stale)
    assert conflict.status_code == 409 and conflict.json()["reason"] == "Conflict"
    fresh = {**v2, "spec": {**v2["spec"], "replicas": 5}}
    v3 = call(kube, "PUT", f"{DEPLOYMENTS}/game-server", fresh).json()
    assert v3["spec"]["replicas"] == 5 and v3["metadata"]["generation"] == 2
    guarded = call(kube, "PATCH", f"{DEPLOYMENTS}/game-server",
                   {"metadata": {"resourceVersion": v2["metadata"]["resourceVersion"]}, "spec": {"replicas": 1}},
                   MERGE_PATCH)
    assert guarded.status_code == 409


def test_status_subresource_separates_spec_and_status(kube: FakeKubeAPI) -> None:
    call(kube, "POST", ROLLOUTS, {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                  "metadata": {"name": "gs"}, "spec": {"replicas": 3}})
    status = call(kube, "PATCH", f"{ROLLOUTS}/gs/status",
                  {"spec": {"replicas": 10}, "status": {"pauseConditions": [{"reason": "CanaryPauseStep"}]}},
                  MERGE_PATCH).json()
    assert status["spec"]["replicas"] == 3  # /status writes change only .status
    assert status["status"]["pauseConditions"] == [{"reason": "CanaryPauseStep"}]
    main = call(kube, "PATCH", f"{ROLLOUTS}/gs", {"spec": {"paused": False}, "status": {"phase": "Healthy"}},
                MERGE_PATCH).json()
    assert main["spec"]["paused"] is False and main["status"] == status["status"]  # main writes ignore .status
    promoted = call(kube, "PATCH", f"{ROLLOUTS}/gs/status", {"status": {"pauseConditions": None}}, MERGE_PATCH).json()
    assert "pauseConditions" not in promoted["status"]
    # Custom resources refuse strategic merge patches, as the real API server does.
    smp = call(kube, "PATCH", f"{ROLLOUTS}/gs", {"spec": {"paused": True}}, STRATEGIC_MERGE_PATCH)
    assert smp.status_code == 415 and smp.json()["reason"] == "UnsupportedMediaType"
    assert "application/strategic-merge-patch+json" not in smp.json()["message"]


def test_patch_types_on_a_deployment(kube: FakeKubeAPI) -> None:
    call(kube, "POST", DEPLOYMENTS, deployment())
    path = f"{DEPLOYMENTS}/game-server"
    smp = call(kube, "PATCH", path, {"spec": {"template": {"spec": {"containers": [
        {"name": "game", "image": "game:1.5.0"}]}}}}, STRATEGIC_MERGE_PATCH).json()
    containers = smp["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("game", "game:1.5.0"), ("sidecar", "envoy:1")]
    assert containers[0]["env"] == [{"name": "A", "value": "1"}]  # merged by name, not replaced
    merged = call(kube, "PATCH", path, {"spec": {"template": {"spec": {"containers": [
        {"name": "game", "image": "game:1.6.0"}]}}}}, MERGE_PATCH).json()
    assert [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["game"]  # RFC 7386 replaces
    jp = call(kube, "PATCH", path, [{"op": "test", "path": "/spec/replicas", "value": 2},
                                    {"op": "replace", "path": "/spec/replicas", "value": 4}], JSON_PATCH)
    assert jp.json()["spec"]["replicas"] == 4
    failed = call(kube, "PATCH", path, [{"op": "test", "path": "/spec/replicas", "value": 2}], JSON_PATCH)
    assert failed.status_code == 422
    # The kubernetes client's default for a dict body is json-patch: the server refuses it.
    wrong = call(kube, "PATCH", path, {"spec": {"replicas": 1}}, JSON_PATCH)
    assert wrong.status_code == 400
    assert "cannot unmarshal object into Go value of type jsonpatch.Patch" in wrong.json()["message"]
    assert call(kube, "PATCH", path, {"spec": {}}, "application/apply-patch+yaml").status_code == 415


def test_scale_subresource(kube: FakeKubeAPI) -> None:
    call(kube, "POST", DEPLOYMENTS, deployment())
    scale = call(kube, "GET", f"{DEPLOYMENTS}/game-server/scale").json()
    assert scale["kind"] == "Scale" and scale["spec"] == {"replicas": 2}
    assert scale["status"]["selector"] == "app=game-server"
    call(kube, "PATCH", f"{DEPLOYMENTS}/game-server/scale", {"spec": {"replicas": 6}}, MERGE_PATCH)
    assert kube.get("apps/v1", "deployments", "game", "game-server")["spec"]["replicas"] == 6


def test_every_request_is_recorded(kube: FakeKubeAPI) -> None:
    call(kube, "POST", DEPLOYMENTS, deployment())
    call(kube, "PATCH", f"{DEPLOYMENTS}/game-server", {"spec": {"replicas": 3}}, f"{MERGE_PATCH}; charset=utf-8")
    (patch,) = kube.requests_to(f"{DEPLOYMENTS}/game-server", "PATCH")
    assert (patch.content_type, patch.body, patch.status) == (MERGE_PATCH, {"spec": {"replicas": 3}}, 200)
    assert [r.method for r in kube.writes()] == ["POST", "PATCH"]


def test_patch_algorithms_follow_their_rfcs() -> None:
    # RFC 7386 appendix A examples.
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    # RFC 6902 appendix A examples.
    assert json_patch({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}]) == {
        "foo": ["bar", "qux", "baz"]}
    assert json_patch({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
                      [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]) == {
        "foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}
    escaped = [{"op": "remove", "path": "/~1"}, {"op": "replace", "path": "/~0", "value": 3}]
    assert json_patch({"/": 1, "~": 2}, escaped) == {"~": 3}
    # Strategic merge: $patch: delete removes one named item.
    assert strategic_merge_patch({"containers": [{"name": "a"}, {"name": "b"}]},
                                 {"containers": [{"name": "a", "$patch": "delete"}]}) == {"containers": [{"name": "b"}]}


def test_replicasets_and_service_selector_patches(kube: FakeKubeAPI) -> None:
    """What the Kubernetes deploy backends rely on: ReplicaSets listed by label, a Service selector patched."""
    replicasets = "/apis/apps/v1/namespaces/game/replicasets"
    for name, revision, tag in (("gs-7d4f", "3", "1.4.2"), ("gs-5c9b", "4", "1.5.0")):
        template = {"spec": {"containers": [{"name": "game", "image": f"g:{tag}"}]}}
        kube.seed({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": name, "namespace": "game",
                                "labels": {"app": "gs", "pod-template-hash": name[3:]},
                                "annotations": {"deployment.kubernetes.io/revision": revision}},
                   "spec": {"replicas": 2, "template": template}, "status": {"replicas": 2, "readyReplicas": 2}})
    listed = call(kube, "GET", replicasets, labelSelector="app=gs,pod-template-hash=5c9b").json()
    assert listed["kind"] == "ReplicaSetList"
    assert [i["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for i in listed["items"]] == ["4"]
    assert call(kube, "GET", f"{replicasets}/gs-7d4f/scale").json()["spec"] == {"replicas": 2}

    services = "/api/v1/namespaces/game/services"
    call(kube, "POST", services, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gs"},
                                  "spec": {"selector": {"app": "gs", "slot": "blue"},
                                           "ports": [{"port": 7777, "targetPort": 7777}]}})
    switched = call(kube, "PATCH", f"{services}/gs", {"spec": {"selector": {"slot": "green", "extra": "x"}}},
                    STRATEGIC_MERGE_PATCH).json()
    assert switched["spec"]["selector"] == {"app": "gs", "slot": "green", "extra": "x"}  # a map merges by key
    assert switched["spec"]["ports"] == [{"port": 7777, "targetPort": 7777}]
    back = call(kube, "PATCH", f"{services}/gs", {"spec": {"selector": {"slot": "blue", "extra": None}}},
                STRATEGIC_MERGE_PATCH).json()
    assert back["spec"]["selector"] == {"app": "gs", "slot": "blue"}  # null removes the key
