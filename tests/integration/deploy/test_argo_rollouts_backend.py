"""The argo-rollouts deploy backend through the real kubernetes client (directly and via the cncf-kubernetes
provider's hook) against the fake API server: exact paths, merge patches and bodies of Argo's kubectl plugin
(promote, promote --full, abort, retry), idempotency, and errors that name the object.

No Argo Rollouts controller runs here: each test writes the status the controller would write
(`controller(...)`). These paths ran only against tests/fakes/kube_api.py, never against a real cluster.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from gamesre.deploy.backend import Cohorts, DeployBackendError
from gamesre.deploy.plan import build_plan
from gamesre.integrations.deploy.argo_rollouts import ArgoRolloutsBackend
from tests.fakes.kube_api import MERGE_PATCH, FakeKubeAPI

pytestmark = pytest.mark.integration

NS, NAME = "game", "game-server"
REPO = "registry.example.com/game/game-server"
ROLLOUT = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts/{NAME}"
STATUS = f"{ROLLOUT}/status"
OLD_HASH, NEW_HASH = "6f7c9d5b8", "84d5f6c7b"
CANARY_STEPS = [{"setWeight": 10}, {"pause": {}}, {"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}},
                {"setWeight": 100}, {"pause": {}}]
ENVOY = {"name": "envoy", "image": "envoyproxy/envoy:v1.31.0"}


def game_container(tag: str) -> dict[str, Any]:
    return {"name": "game", "image": f"{REPO}:{tag}", "ports": [{"containerPort": 7777}],
            "env": [{"name": "REGION", "value": "kr"}]}


def rollout(strategy: dict[str, Any], *, paused: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": 4, "selector": {"matchLabels": {"app": NAME}},
        "template": {"metadata": {"labels": {"app": NAME}},
                     "spec": {"containers": [game_container("1.4.2"), ENVOY]}},
        "strategy": strategy}
    if paused:
        spec["paused"] = True
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": NAME, "namespace": NS, "generation": 3}, "spec": spec,
            "status": {"phase": "Healthy", "stableRS": OLD_HASH, "currentPodHash": OLD_HASH, "currentStepIndex": 6,
                       "observedGeneration": "3", "replicas": 4, "availableReplicas": 4}}


def replicaset(pod_hash: str, tag: str, replicas: int, ready: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{NAME}-{pod_hash}", "namespace": NS,
                         "labels": {"app": NAME, "rollouts-pod-template-hash": pod_hash},
                         "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": NAME,
                                              "uid": "r-1", "controller": True}]},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [game_container(tag), ENVOY]}}},
            "status": {"replicas": replicas, "readyReplicas": ready}}


CANARY = {"canary": {"canaryService": f"{NAME}-canary", "stableService": NAME,
                     "steps": [{"setWeight": 20}, {"pause": {"duration": "1m"}}, {"setWeight": 100}]}}
BLUE_GREEN = {"blueGreen": {"activeService": NAME, "previewService": f"{NAME}-preview"}}


@pytest.fixture
def kube() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as api:
        api.seed(rollout(CANARY))
        api.seed(replicaset(OLD_HASH, "1.4.2", 4, 4))
        yield api


@pytest.fixture
def backend(api_client: client.ApiClient) -> ArgoRolloutsBackend:
    return ArgoRolloutsBackend(api_client, namespace=NS, rollout=NAME, image_repo=REPO)


def stored(kube: FakeKubeAPI) -> dict[str, Any]:
    obj = kube.get("argoproj.io/v1alpha1", "rollouts", NS, NAME)
    assert obj is not None
    return obj


def controller(kube: FakeKubeAPI, **status: Any) -> None:
    """Write status as the Argo Rollouts controller would after reconciling the current generation."""
    obj = stored(kube)
    merged = {**obj.get("status", {}), **status, "observedGeneration": str(obj["metadata"]["generation"])}
    obj["status"] = {k: v for k, v in merged.items() if v is not None}
    kube.seed(obj)


def paused_at(index: int, reason: str = "CanaryPauseStep") -> dict[str, Any]:
    return {"currentPodHash": NEW_HASH, "currentStepIndex": index, "phase": "Paused",
            "pauseConditions": [{"reason": reason, "startTime": "2026-03-03T09:00:00Z"}]}


def writes(kube: FakeKubeAPI) -> list[tuple[str, str, str | None, Any]]:
    return [(r.method, r.path, r.content_type, r.body) for r in kube.writes()]


def test_prepare_is_one_guarded_merge_patch_of_image_and_steps(kube: FakeKubeAPI,
                                                               backend: ArgoRolloutsBackend) -> None:
    rv = stored(kube)["metadata"]["resourceVersion"]
    backend.prepare("1.5.0", build_plan("canary"))
    assert writes(kube) == [("PATCH", ROLLOUT, MERGE_PATCH, {
        "metadata": {"resourceVersion": rv},
        "spec": {"template": {"spec": {"containers": [game_container("1.5.0"), ENVOY]}},
                 "strategy": {"canary": {"steps": CANARY_STEPS}}}})]
    obj = stored(kube)
    assert obj["spec"]["strategy"]["canary"]["canaryService"] == f"{NAME}-canary"  # the merge patch kept the rest
    assert obj["spec"]["template"]["spec"]["containers"][1] == ENVOY
    assert obj["metadata"]["generation"] == 4 and obj["status"]["stableRS"] == OLD_HASH
    kube.clear_requests()
    backend.prepare("1.5.0", build_plan("canary"))  # a retried task: everything already matches
    assert writes(kube) == [] and [r.method for r in kube.requests] == ["GET"]


def test_canary_steps_are_promoted_the_way_the_kubectl_plugin_does(kube: FakeKubeAPI,
                                                                   backend: ArgoRolloutsBackend) -> None:
    backend.prepare("1.5.0", build_plan("canary"))
    kube.clear_requests()
    backend.shift(0)  # Argo runs the first setWeight itself as soon as it sees the new template
    assert writes(kube) == []
    kube.seed(replicaset(NEW_HASH, "1.5.0", 1, 1))
    controller(kube, **paused_at(1))
    status = backend.status()
    assert (status.stable_version, status.candidate_version, status.candidate_weight, status.ready) == (
        "1.4.2", "1.5.0", 10, True)
    assert status.detail == f"rollout {NS}/{NAME}: 1.5.0 at 10% over 1.4.2, step 1/8, Paused, ready"
    assert status.raw["pauseConditions"] == ["CanaryPauseStep"]
    assert backend.cohorts() == Cohorts({"version": "1.5.0"}, {"version": "1.4.2"})
    backend.shift(0)
    assert writes(kube) == []

    backend.shift(1)
    assert writes(kube) == [("PATCH", STATUS, MERGE_PATCH, {"status": {"pauseConditions": None}})]
    obj = stored(kube)
    assert "pauseConditions" not in obj["status"] and obj["spec"].get("paused") is None
    controller(kube, **paused_at(3))
    kube.clear_requests()
    backend.shift(1)  # retried after the controller moved on: nothing to do
    assert writes(kube) == []
    assert backend.status().candidate_weight == 25
    for step, index in ((2, 5), (3, 7)):
        backend.shift(step)
        controller(kube, **paused_at(index))
    assert [w[1:] for w in writes(kube)] == [(STATUS, MERGE_PATCH, {"status": {"pauseConditions": None}})] * 2
    assert backend.status().candidate_weight == 100


def test_shifts_out_of_order_or_before_the_controller_caught_up_are_refused(
        kube: FakeKubeAPI, backend: ArgoRolloutsBackend) -> None:
    backend.prepare("1.5.0", build_plan("canary"))
    kube.clear_requests()
    with pytest.raises(DeployBackendError, match=r"has not reconciled generation 4 yet \(status at 3\)"):
        backend.shift(1)
    controller(kube, **paused_at(1))
    with pytest.raises(DeployBackendError, match=r"is at step 1 of 8 .*shift\(2\) releases the pause at step 3"):
        backend.shift(2)
    with pytest.raises(DeployBackendError, match="has 4 setWeight steps; there is no shift 4"):
        backend.shift(4)
    assert writes(kube) == []


def test_a_paused_spec_is_unpaused_after_the_status_patch(kube: FakeKubeAPI, backend: ArgoRolloutsBackend) -> None:
    kube.seed(rollout(CANARY, paused=True))
    backend.prepare("1.5.0", build_plan("canary"))
    controller(kube, **paused_at(1))
    kube.clear_requests()
    backend.shift(1)
    assert writes(kube) == [("PATCH", STATUS, MERGE_PATCH, {"status": {"pauseConditions": None}}),
                            ("PATCH", ROLLOUT, MERGE_PATCH, {"spec": {"paused": False}})]
    assert stored(kube)["spec"]["paused"] is False


def test_without_pause_conditions_the_step_index_moves_on_as_in_the_plugin(
        kube: FakeKubeAPI, backend: ArgoRolloutsBackend) -> None:
    backend.prepare("1.5.0", build_plan("canary"))
    controller(kube, currentPodHash=NEW_HASH, currentStepIndex=1, phase="Progressing")  # not paused yet
    kube.clear_requests()
    backend.shift(1)
    assert writes(kube) == [("PATCH", STATUS, MERGE_PATCH,
                             {"status": {"pauseConditions": None, "currentStepIndex": 2}})]
    assert stored(kube)["status"]["currentStepIndex"] == 2


def test_promote_full_abort_and_retry(kube: FakeKubeAPI, backend: ArgoRolloutsBackend) -> None:
    backend.prepare("1.5.0", build_plan("canary"))
    controller(kube, **paused_at(7))
    kube.clear_requests()
    backend.promote()
    assert writes(kube) == [("PATCH", STATUS, MERGE_PATCH, {"status": {"promoteFull": True}})]
    backend.promote()  # asked already: the controller is on it
    controller(kube, stableRS=NEW_HASH, currentStepIndex=8, pauseConditions=None, promoteFull=None, phase="Healthy")
    backend.promote()  # fully promoted
    assert len(kube.writes()) == 1
    kube.clear_requests()
    backend.rollback("after the promotion there is nothing to abort")
    assert writes(kube) == []

    backend.prepare("1.6.0", build_plan("canary"))
    controller(kube, **{**paused_at(1), "currentPodHash": "9a8b7c6d5"})
    kube.clear_requests()
    backend.rollback("canary 10%: regression")
    assert writes(kube) == [("PATCH", STATUS, MERGE_PATCH, {"status": {"abort": True}})]
    backend.rollback("retried task")
    assert len(kube.writes()) == 1
    status = backend.status()
    assert (status.candidate_version, status.candidate_weight, status.ready) == ("1.6.0", 0, False)
    assert status.detail.endswith(", aborted, not ready")
    with pytest.raises(DeployBackendError, match="is aborted; not promoting"):
        backend.promote()
    with pytest.raises(DeployBackendError, match="is aborted; prepare again"):
        backend.shift(1)
    kube.clear_requests()
    backend.retry()
    assert writes(kube) == [("PATCH", STATUS, MERGE_PATCH, {"status": {"abort": False}})]
    backend.retry()
    assert len(kube.writes()) == 1


def test_prepare_of_an_aborted_version_retries_it(kube: FakeKubeAPI, backend: ArgoRolloutsBackend) -> None:
    backend.prepare("1.5.0", build_plan("canary"))
    controller(kube, **paused_at(1), abort=True)
    kube.clear_requests()
    backend.prepare("1.5.0", build_plan("canary"))
    assert writes(kube) == [("PATCH", STATUS, MERGE_PATCH, {"status": {"abort": False}})]


def test_rolling_batches_become_canary_steps(kube: FakeKubeAPI, backend: ArgoRolloutsBackend) -> None:
    backend.prepare("1.5.0", build_plan("rolling", rolling_batches=(50, 100)))
    (patch,) = kube.writes()
    assert patch.body["spec"]["strategy"] == {"canary": {"steps": [{"setWeight": 50}, {"pause": {}},
                                                                   {"setWeight": 100}, {"pause": {}}]}}


def test_traffic_routing_weight_is_read_from_the_status(kube: FakeKubeAPI, backend: ArgoRolloutsBackend) -> None:
    backend.prepare("1.5.0", build_plan("canary"))
    kube.seed(replicaset(NEW_HASH, "1.5.0", 1, 0))
    controller(kube, **paused_at(1), canary={"weights": {"canary": {"podTemplateHash": NEW_HASH, "weight": 22},
                                                         "stable": {"podTemplateHash": OLD_HASH, "weight": 78}}})
    status = backend.status()
    assert (status.candidate_weight, status.ready) == (22, False)  # the canary's pod is not ready
    assert status.raw["canaryWeight"] == 22 and status.raw["stableRS"] == OLD_HASH


def test_blue_green_preview_switch_and_promote(kube: FakeKubeAPI, backend: ArgoRolloutsBackend) -> None:
    kube.seed(rollout(BLUE_GREEN))
    rv = stored(kube)["metadata"]["resourceVersion"]
    backend.prepare("1.5.0", build_plan("blue-green", scale_down_delay_s=60))
    assert writes(kube) == [("PATCH", ROLLOUT, MERGE_PATCH, {
        "metadata": {"resourceVersion": rv},
        "spec": {"template": {"spec": {"containers": [game_container("1.5.0"), ENVOY]}},
                 "strategy": {"blueGreen": {"autoPromotionEnabled": False, "scaleDownDelaySeconds": 60}}}})]
    assert stored(kube)["spec"]["strategy"]["blueGreen"]["previewService"] == f"{NAME}-preview"
    kube.seed(replicaset(NEW_HASH, "1.5.0", 4, 4))
    controller(kube, currentPodHash=NEW_HASH, phase="Paused", currentStepIndex=None,
               pauseConditions=[{"reason": "BlueGreenPause", "startTime": "2026-03-03T09:00:00Z"}],
               blueGreen={"activeSelector": OLD_HASH, "previewSelector": NEW_HASH})
    preview = backend.status()
    assert (preview.stable_version, preview.candidate_version, preview.candidate_weight, preview.ready) == (
        "1.4.2", "1.5.0", 0, True)
    kube.clear_requests()
    backend.shift(0)  # the switch
    assert writes(kube) == [("PATCH", STATUS, MERGE_PATCH, {"status": {"pauseConditions": None}})]
    controller(kube, stableRS=NEW_HASH, phase="Healthy", blueGreen={"activeSelector": NEW_HASH})
    backend.shift(0)
    backend.promote()  # the new ReplicaSet is stable: Argo scales the old one down after the delay itself
    assert len(kube.writes()) == 1
    after = backend.status()
    assert (after.stable_version, after.candidate_version) == ("1.5.0", None)
    assert backend.cohorts() == Cohorts({"version": "1.5.0"}, None)
    with pytest.raises(DeployBackendError, match="blue-green has one shift"):
        backend.shift(1)


def test_blue_green_switch_waits_for_the_preview(kube: FakeKubeAPI, backend: ArgoRolloutsBackend) -> None:
    kube.seed(rollout(BLUE_GREEN))
    backend.prepare("1.5.0", build_plan("blue-green", scale_down_delay_s=60))
    controller(kube, currentPodHash=NEW_HASH, phase="Progressing",
               blueGreen={"activeSelector": OLD_HASH, "previewSelector": NEW_HASH})
    kube.clear_requests()
    with pytest.raises(DeployBackendError, match="is not paused before the switch"):
        backend.shift(0)
    assert writes(kube) == []


def test_refusals_name_the_rollout_and_change_nothing(kube: FakeKubeAPI, api_client: client.ApiClient,
                                                      backend: ArgoRolloutsBackend) -> None:
    missing = ArgoRolloutsBackend(api_client, namespace=NS, rollout="nope", image_repo=REPO)
    with pytest.raises(DeployBackendError) as info:
        missing.status()
    assert str(info.value) == (f'argo-rollouts: reading rollout {NS}/nope failed: HTTP 404 NotFound: '
                               'rollouts.argoproj.io "nope" not found')
    assert info.value.status == 404  # type: ignore[attr-defined]
    with pytest.raises(DeployBackendError, match=f"rollout {NS}/{NAME}: the plan is blue-green but the Rollout's "
                                                 "strategy is not blueGreen"):
        backend.prepare("1.5.0", build_plan("blue-green"))
    with pytest.raises(DeployBackendError, match="'verify' plan is not supported"):
        backend.prepare("1.5.0", build_plan("canary", synthetic=True))
    sidecar_only = ArgoRolloutsBackend(api_client, namespace=NS, rollout=NAME, image_repo=REPO, container="nginx")
    with pytest.raises(DeployBackendError, match="has no container 'nginx' \\(containers: game, envoy\\)"):
        sidecar_only.prepare("1.5.0", build_plan("canary"))
    assert kube.writes() == []


def test_through_the_cncf_kubernetes_provider_hook(kube: FakeKubeAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ApiClient of gamesre.airflow.hooks.kubernetes (KubernetesHook, kubeconfig in the connection extra)."""
    from gamesre.airflow.hooks.kubernetes import api_client

    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_FAKE", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config": kube.kubeconfig(namespace=NS)}}))
    default = client.Configuration.get_default_copy()
    try:
        api = api_client("kubernetes_fake")
        assert api.configuration.host == kube.url
        backend = ArgoRolloutsBackend(api, namespace=NS, rollout=NAME, image_repo=REPO)
        backend.prepare("1.5.0", build_plan("canary"))
        controller(kube, **paused_at(1))
        backend.shift(1)
        backend.rollback("through the hook")
    finally:
        client.Configuration.set_default(default)  # the hook loads the kubeconfig into the process default
    assert [(w[0], w[1], w[2]) for w in writes(kube)] == [("PATCH", ROLLOUT, MERGE_PATCH),
                                                          ("PATCH", STATUS, MERGE_PATCH),
                                                          ("PATCH", STATUS, MERGE_PATCH)]
    assert [w[3] for w in writes(kube)][1:] == [{"status": {"pauseConditions": None}}, {"status": {"abort": True}}]
    assert stored(kube)["status"]["abort"] is True
