"""HPA event scaling through the real kubernetes client (directly and via the cncf-kubernetes provider's hook)
against the fake API server: exact paths, patch types and bodies, and a scale-back that restores the original.

No real cluster runs here: these paths ran only against tests/fakes/kube_api.py.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from demo.procs import free_port
from gamesre.core.services import load_services
from gamesre.integrations.kubernetes import (
    SCALING_ANNOTATION,
    HpaBounds,
    HpaScalingConflict,
    KubernetesError,
    get_hpa,
    restore_hpa,
    set_hpa_min_replicas,
)
from tests.fakes.kube_api import MERGE_PATCH, FakeKubeAPI

pytestmark = pytest.mark.integration

K8S = load_services().get("game-server").kubernetes
NS, HPA = K8S.namespace, K8S.hpa
HPA_PATH = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/{HPA}"


@pytest.fixture
def kube() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as api:
        api.seed({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": HPA, "namespace": NS, "labels": {"app": HPA}},
            "spec": {"minReplicas": 4, "maxReplicas": 20,
                     "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": K8S.deployment},
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 60}}}]},
            "status": {"currentReplicas": 4, "desiredReplicas": 4},
        })
        yield api


def stored(kube: FakeKubeAPI) -> dict[str, Any]:
    obj = kube.get("autoscaling/v2", "horizontalpodautoscalers", NS, HPA)
    assert obj is not None
    return obj


def test_scale_up_is_one_merge_patch_with_the_previous_bounds_recorded(kube: FakeKubeAPI,
                                                                       api_client: client.ApiClient) -> None:
    rv = stored(kube)["metadata"]["resourceVersion"]
    change = set_hpa_min_replicas(api_client, NS, HPA, 12, event_id="winter-festival-2026")
    assert change.changed and not change.raised_max
    assert change.previous == HpaBounds(4, 20) and change.target == HpaBounds(12, 20)
    assert change.message == f"{NS}/{HPA}: minReplicas 4 -> 12"
    (patch,) = [r for r in kube.writes()]
    assert (patch.method, patch.path, patch.content_type) == ("PATCH", HPA_PATH, MERGE_PATCH)
    record = json.dumps({"event": "winter-festival-2026", "maxReplicas": 20, "minReplicas": 4}, sort_keys=True)
    assert patch.body == {"metadata": {"resourceVersion": rv, "annotations": {SCALING_ANNOTATION: record}},
                          "spec": {"minReplicas": 12}}
    obj = stored(kube)
    assert (obj["spec"]["minReplicas"], obj["spec"]["maxReplicas"]) == (12, 20)
    assert obj["spec"]["metrics"][0]["resource"]["name"] == "cpu"  # the merge patch kept the rest
    assert obj["status"] == {"currentReplicas": 4, "desiredReplicas": 4}


def test_retry_is_a_no_op_that_still_reports_the_original_bounds(kube: FakeKubeAPI,
                                                                 api_client: client.ApiClient) -> None:
    set_hpa_min_replicas(api_client, NS, HPA, 12, event_id="winter-festival-2026")
    kube.clear_requests()
    again = set_hpa_min_replicas(api_client, NS, HPA, 12, event_id="winter-festival-2026")
    assert not again.changed and again.previous == HpaBounds(4, 20)
    assert kube.writes() == []
    assert [r.method for r in kube.requests] == ["GET"]


def test_scale_back_restores_exactly_the_original(kube: FakeKubeAPI, api_client: client.ApiClient) -> None:
    original = stored(kube)
    set_hpa_min_replicas(api_client, NS, HPA, 12, event_id="winter-festival-2026")
    rv = stored(kube)["metadata"]["resourceVersion"]
    kube.clear_requests()
    back = restore_hpa(api_client, NS, HPA, event_id="winter-festival-2026")
    assert back.changed and back.target == HpaBounds(4, 20)
    (patch,) = kube.writes()
    assert (patch.path, patch.content_type) == (HPA_PATH, MERGE_PATCH)
    assert patch.body == {"metadata": {"resourceVersion": rv, "annotations": {SCALING_ANNOTATION: None}},
                          "spec": {"minReplicas": 4}}
    restored = stored(kube)
    assert restored["spec"] == original["spec"]
    assert SCALING_ANNOTATION not in (restored["metadata"].get("annotations") or {})
    kube.clear_requests()
    assert not restore_hpa(api_client, NS, HPA, event_id="winter-festival-2026").changed
    assert kube.writes() == []


def test_max_replicas_is_raised_when_the_minimum_exceeds_it_and_restored_after(
        kube: FakeKubeAPI, api_client: client.ApiClient) -> None:
    change = set_hpa_min_replicas(api_client, NS, HPA, 30, event_id="big-event")
    assert change.raised_max and change.target == HpaBounds(30, 30)
    assert "maxReplicas raised 20 -> 30 because the new minimum exceeded it" in change.message
    assert kube.writes()[-1].body["spec"] == {"minReplicas": 30, "maxReplicas": 30}
    assert get_hpa(api_client, NS, HPA).bounds == HpaBounds(30, 30)
    restore_hpa(api_client, NS, HPA, event_id="big-event")
    assert kube.writes()[-1].body["spec"] == {"minReplicas": 4, "maxReplicas": 20}
    assert get_hpa(api_client, NS, HPA).bounds == HpaBounds(4, 20)


def test_explicit_previous_bounds_without_a_record(kube: FakeKubeAPI, api_client: client.ApiClient) -> None:
    change = set_hpa_min_replicas(api_client, NS, HPA, 8)
    assert change.previous == HpaBounds(4, 20)
    assert "annotations" not in kube.writes()[-1].body["metadata"]
    assert not restore_hpa(api_client, NS, HPA).changed  # nothing recorded, nothing given
    assert restore_hpa(api_client, NS, HPA, previous=change.previous).changed
    assert get_hpa(api_client, NS, HPA).bounds == HpaBounds(4, 20)


def test_another_events_scaling_is_not_overwritten(kube: FakeKubeAPI, api_client: client.ApiClient) -> None:
    set_hpa_min_replicas(api_client, NS, HPA, 12, event_id="winter-festival-2026")
    with pytest.raises(HpaScalingConflict, match="scaled for event 'winter-festival-2026'"):
        set_hpa_min_replicas(api_client, NS, HPA, 16, event_id="seollal-event-2027")
    with pytest.raises(HpaScalingConflict):
        restore_hpa(api_client, NS, HPA, event_id="seollal-event-2027")
    assert get_hpa(api_client, NS, HPA).bounds == HpaBounds(12, 20)


def test_api_errors_carry_status_reason_and_message(api_client: client.ApiClient) -> None:
    with pytest.raises(KubernetesError) as info:
        set_hpa_min_replicas(api_client, NS, "nope", 12, event_id="x")
    assert (info.value.status, info.value.reason) == (404, "NotFound")
    assert info.value.message == 'horizontalpodautoscalers.autoscaling "nope" not found'
    assert "HTTP 404 NotFound" in str(info.value)


def test_unreachable_api_server() -> None:
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{free_port()}"
    configuration.retries = 0
    with client.ApiClient(configuration) as api, pytest.raises(KubernetesError) as info:
        get_hpa(api, NS, HPA)
    assert info.value.status is None and info.value.reason == "Unreachable"


def test_through_the_cncf_kubernetes_provider_hook(kube: FakeKubeAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """KubernetesHook reads a kubeconfig (server = the fake's URL) from the connection's `kube_config` extra."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_FAKE", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config": kube.kubeconfig(namespace=NS)}}))
    default = client.Configuration.get_default_copy()
    try:
        api = KubernetesHook(conn_id="kubernetes_fake").get_conn()
        assert api.configuration.host == kube.url
        change = set_hpa_min_replicas(api, NS, HPA, 12, event_id="winter-festival-2026")
        back = restore_hpa(api, NS, HPA, event_id="winter-festival-2026")
    finally:
        client.Configuration.set_default(default)  # the hook loads the kubeconfig into the process default
    assert change.previous == back.target == HpaBounds(4, 20)
    patches = [r for r in kube.writes() if r.method == "PATCH"]
    assert [(p.path, p.content_type) for p in patches] == [(HPA_PATH, MERGE_PATCH)] * 2
    assert patches[0].body["spec"] == {"minReplicas": 12}
    assert patches[1].body["spec"] == {"minReplicas": 4}
    assert stored(kube)["spec"]["minReplicas"] == 4
