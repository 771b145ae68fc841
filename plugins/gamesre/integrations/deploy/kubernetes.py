"""The `kubernetes` deploy backend: plain apps/v1 Deployments and a core/v1 Service, moved the way kubectl moves them.

Works on a `kubernetes.client.ApiClient` passed in (the Airflow layer builds it with the cncf-kubernetes
provider's KubernetesHook); this module does not import Airflow. The version is the image tag of
`image_repo:<version>` in the chosen container (`container`, else the one running `image_repo`, else the only
one). What a deploy started from is written before the first change into the annotation `gamesre.io/deploy`
(JSON) so a retry, a later task or a rollback after a crash knows it; it is removed when the deploy ends.

canary      Traffic follows replica counts: the Service selects the pods by `app` and sends the canary its
            share of the endpoints. prepare: the record on the stable Deployment; a Deployment
            `<deployment>-canary` copied from the stable one (labels + `track: canary`, `version: <tag>`,
            selector + `track: canary`) at 0 replicas. shift(i): the canary's replicas (scale subresource)
            so that canary / (canary + stable) ~ weight: round(S x w / (100 - w)), at least 1, at most S (the
            recorded stable replicas). The stable Deployment is never scaled down, so a rollback is instant
            and never overloads it; the price: weights above 50% (the plan's 100 included) run at 50%, and
            promote() moves the rest. status() reports the effective share from ready replicas.
            promote: the stable Deployment's image (strategic merge patch, as `kubectl set image`), the
            canary deleted at once (no wait), the record removed. rollback: the stable's image put back if a
            promote got half way, its replicas raised back to the recorded count if they fell below it (never
            lowered: an HPA may have scaled it up), the canary scaled to 0 and deleted, the record removed.
blue-green  The Service selects one slot by its `slot` label (blue | green). prepare: the record (with the
            Service's selector) on the Service; `<deployment>-<other slot>` created from the active one (or
            replaced, PUT, when a previous deploy left it scaled to 0) with the new image and the same
            replicas, not selected by the Service. shift(0): once that Deployment is ready, the Service's
            selector gets the new slot (instant switch). promote: the old slot's Deployment scaled to 0.
            rollback: the old slot scaled back up if it was scaled down, the selector restored exactly (keys
            the deploy added removed), the new slot scaled to 0.
rolling     Kubernetes rolls a whole Deployment and cannot stop at N%; the approximation: prepare records the
            image, the revision and the rollingUpdate settings. shift(i) (not the last): image set with
            maxSurge = the batch's missing pods and maxUnavailable = 0, unpaused, then paused as soon as the
            controller has created the batch (status.updatedReplicas >= ceil(S x w / 100), polled for at
            most `batch_timeout_s`). The old pods are only removed when the rollout resumes, so after the
            first batch the new version has ceil(S x w / 100) of S + that many pods, and one surge more can
            slip through before the pause lands. The last batch restores the recorded rollingUpdate settings
            and unpauses: the controller finishes. rollback = `kubectl rollout undo` to the recorded revision
            (kubectl's JSON patch replacing /spec/template with that ReplicaSet's template minus its
            pod-template-hash label, and /metadata/annotations as kubectl computes them), plus unpause and
            the recorded rollingUpdate settings in the same patch (kubectl refuses a paused Deployment).

Patches (the content type is always explicit: for a dict body the generated client would otherwise send
json-patch, which the API server refuses): merge patch for annotations and the scale subresource (as
`kubectl annotate` and `kubectl scale`), strategic merge patch for pod templates and the Service selector
(as `kubectl set image` / `kubectl patch`), JSON patch for the undo (as `kubectl rollout undo`, see
kubernetes/kubernetes staging/src/k8s.io/kubectl/pkg/polymorphichelpers/rollback.go and
staging/src/k8s.io/kubectl/pkg/scale/scale.go). Every API error becomes a `KubernetesDeployError` (a
DeployBackendError) naming the object, the HTTP status and the API's message.

A stage with no players (plan strategy `verify`) is refused: these backends offer no synthetic traffic, and
a preview nobody sends traffic to can only be judged inconclusive.

Tested only against the fake API server in tests/fakes/kube_api.py, never against a real cluster.
"""
from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kubernetes import client

from gamesre.deploy.backend import DEPLOY_BACKENDS, BackendStatus, Cohorts, DeployBackend, DeployBackendError

if TYPE_CHECKING:
    from gamesre.core.services import ServiceSpec
    from gamesre.integrations.connections import Connections
from gamesre.integrations.kubernetes import json_call

RECORD_ANNOTATION = "gamesre.io/deploy"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
STRATEGIES = ("canary", "blue-green", "rolling")
SLOTS = ("blue", "green")
# kubectl rollout undo keeps these from the Deployment instead of taking them from the ReplicaSet.
UNDO_ANNOTATIONS_TO_SKIP = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration", REVISION_ANNOTATION,
    "deployment.kubernetes.io/revision-history", "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas", "deprecated.deployment.rollback.to",
})


class KubernetesDeployError(DeployBackendError):
    """The Kubernetes API refused or failed a request of a deploy backend (status None: not reachable)."""

    def __init__(self, backend: str, action: str, status: int | None, reason: str, message: str):
        code = f"HTTP {status} " if status is not None else ""
        super().__init__(f"{backend}: {action} failed: {code}{reason}: {message}")
        self.backend, self.action, self.status, self.reason, self.message = backend, action, status, reason, message


def kube_call(backend: str, action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run one generated-client call and return the JSON the API answered; errors name `action`."""
    return json_call(lambda status, reason, message: KubernetesDeployError(backend, action, status, reason, message),
                     fn, *args, **kwargs)


def image_tag(image: str) -> str:
    """The tag of an image reference (`repo:tag`, `repo:tag@digest`); the digest without a tag; else latest."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.split(":", 1)[1]
    return digest or "latest"


def image_repository(image: str) -> str:
    name = image.partition("@")[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def container_index(containers: list[dict[str, Any]], name: str | None, image_repo: str, where: str) -> int:
    """The container a deploy changes: by name, else the one running image_repo, else the only one."""
    names = [str(c.get("name")) for c in containers]
    if name is not None:
        if name not in names:
            raise DeployBackendError(f"{where} has no container {name!r} (containers: {', '.join(names)})")
        return names.index(name)
    running = [i for i, c in enumerate(containers) if image_repository(str(c.get("image", ""))) == image_repo]
    if running:
        return running[0]
    if len(containers) == 1:
        return 0
    raise DeployBackendError(f"{where}: none of the containers {', '.join(names)} runs {image_repo}; "
                             "name the container to deploy")


def _spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj.get("spec") or {})


def _status(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj.get("status") or {})


def _annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _containers(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(((_spec(obj).get("template") or {}).get("spec") or {}).get("containers") or [])


def _template_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(((_spec(obj).get("template") or {}).get("metadata") or {}).get("labels") or {})


def _replicas(obj: Mapping[str, Any]) -> int:
    value = _spec(obj).get("replicas")
    return 1 if value is None else int(value)


def _observed(obj: Mapping[str, Any]) -> bool:
    """The controller has seen the object's latest spec (status.observedGeneration >= metadata.generation)."""
    generation = (obj.get("metadata") or {}).get("generation")
    observed = _status(obj).get("observedGeneration")
    return generation is None or (observed is not None and int(observed) >= int(generation))


def deployment_ready(obj: Mapping[str, Any]) -> bool:
    """Every wanted pod of the Deployment passes its readiness check (and there is at least one)."""
    wanted = _replicas(obj)
    status = _status(obj)
    return (wanted > 0 and _observed(obj) and int(status.get("updatedReplicas") or 0) >= wanted
            and int(status.get("readyReplicas") or 0) >= wanted)


def canary_replicas(stable_replicas: int, weight: int) -> int:
    """Canary pods beside `stable_replicas` untouched stable ones for a share of ~weight% (1..stable)."""
    top = max(stable_replicas, 1)
    if weight >= 100:
        return top
    return min(top, max(1, math.floor(stable_replicas * weight / (100 - weight) + 0.5)))


def batch_replicas(replicas: int, weight: int) -> int:
    """Pods on the new version after a rolling batch of weight% (at least one)."""
    return max(1, math.ceil(replicas * weight / 100))


def json_pointer_token(key: str) -> str:
    """A map key as one RFC 6901 JSON-pointer token (`gamesre.io/deploy` -> `gamesre.io~1deploy`)."""
    return key.replace("~", "~0").replace("/", "~1")


def _record_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


class KubernetesDeployBackend(DeployBackend):
    """One service's Deployment (and Service) in one namespace; strategy: canary | blue-green | rolling."""

    kind = "kubernetes"

    def __init__(self, api_client: client.ApiClient, *, namespace: str, deployment: str, service: str,
                 container: str | None = None, image_repo: str, strategy: str, batch_timeout_s: float = 120.0,
                 poll_interval_s: float = 2.0, sleep: Callable[[float], None] = time.sleep) -> None:
        """`batch_timeout_s`/`poll_interval_s`: how long (and how often) a rolling batch waits for the
        controller to create its pods before pausing; `sleep` is replaceable for tests."""
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.deployment = deployment
        self.service = service
        self.container = container
        self.image_repo = image_repo
        self.strategy = strategy
        self.batch_timeout_s = batch_timeout_s
        self.poll_interval_s = poll_interval_s
        self._sleep = sleep

    # --- plumbing ----------------------------------------------------------------------------------------------
    def _where(self, name: str, what: str = "deployment") -> str:
        return f"{what} {self.namespace}/{name}"

    def _fail(self, message: str) -> DeployBackendError:
        return DeployBackendError(f"{self.kind}: {message}")

    def _call(self, action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        return kube_call(self.kind, action, fn, *args, **kwargs)

    def _read(self, name: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
        try:
            return self._call(f"reading {self._where(name)}", self.apps.read_namespaced_deployment, name,
                              self.namespace)
        except KubernetesDeployError as exc:
            if missing_ok and exc.status == 404:
                return None
            raise

    def _deployment(self, name: str) -> dict[str, Any]:
        obj = self._read(name)
        assert obj is not None
        return obj

    def _patch(self, name: str, body: Any, content_type: str, what: str) -> dict[str, Any]:
        return self._call(f"patching {self._where(name)} ({what})", self.apps.patch_namespaced_deployment, name,
                          self.namespace, body, _content_type=content_type)

    def _scale(self, name: str, replicas: int) -> None:
        """`kubectl scale`: a merge patch of spec.replicas on the scale subresource."""
        self._call(f"scaling {self._where(name)} to {replicas}", self.apps.patch_namespaced_deployment_scale,
                   name, self.namespace, {"spec": {"replicas": replicas}}, _content_type=MERGE_PATCH)

    def _delete(self, name: str) -> None:
        try:
            self._call(f"deleting {self._where(name)}", self.apps.delete_namespaced_deployment, name,
                       self.namespace)
        except KubernetesDeployError as exc:
            if exc.status != 404:  # already gone is what we wanted
                raise

    def _read_service(self) -> dict[str, Any]:
        return self._call(f"reading {self._where(self.service, 'service')}", self.core.read_namespaced_service,
                          self.service, self.namespace)

    def _patch_service(self, body: Any, content_type: str, what: str) -> None:
        self._call(f"patching {self._where(self.service, 'service')} ({what})", self.core.patch_namespaced_service,
                   self.service, self.namespace, body, _content_type=content_type)

    def _record(self, obj: Mapping[str, Any], what: str) -> dict[str, Any] | None:
        raw = _annotations(obj).get(RECORD_ANNOTATION)
        if raw is None:
            return None
        try:
            record = json.loads(raw)
            if not isinstance(record, dict) or "version" not in record or "strategy" not in record:
                raise ValueError("not a deploy record")
        except ValueError:
            raise self._fail(f"{what}: annotation {RECORD_ANNOTATION} is not what gamesre writes: {raw!r}") from None
        if record["strategy"] != self.strategy:
            raise self._fail(f"{what} records a {record['strategy']} deploy of {record['version']}, but this "
                             f"backend runs {self.strategy}; finish or roll that back with its own strategy")
        return record

    def _require_record(self, obj: Mapping[str, Any], what: str) -> dict[str, Any]:
        record = self._record(obj, what)
        if record is None:
            raise self._fail(f"{what} has no deploy in progress (annotation {RECORD_ANNOTATION} missing): "
                             "prepare first")
        return record

    def _check_not_other(self, record: Mapping[str, Any] | None, version: str, what: str) -> None:
        if record is not None and record["version"] != version:
            raise self._fail(f"{what}: a deploy of {record['version']} is still in progress; promote it or roll it "
                             f"back before deploying {version}")

    def _image(self, version: str) -> str:
        return f"{self.image_repo}:{version}"

    def _container_index(self, obj: Mapping[str, Any], name: str) -> int:
        return container_index(_containers(obj), self.container, self.image_repo, self._where(name))

    def _current_image(self, obj: Mapping[str, Any], name: str) -> str:
        return str(_containers(obj)[self._container_index(obj, name)].get("image", ""))

    def _image_patch(self, obj: Mapping[str, Any], name: str, image: str) -> dict[str, Any]:
        """A strategic merge patch of the pod template as `kubectl set image` sends it (containers by name),
        with the template's `version` label kept in step where the template has one."""
        containers = _containers(obj)
        container = containers[self._container_index(obj, name)]
        template: dict[str, Any] = {"spec": {"containers": [{"name": container["name"], "image": image}]}}
        if "version" in _template_labels(obj):
            template["metadata"] = {"labels": {"version": image_tag(image)}}
        return template

    def _check_plan(self, plan: Any) -> None:
        strategy = str(getattr(plan, "strategy", ""))
        if strategy == "verify":
            raise self._fail("a stage without players (plan 'verify') needs synthetic traffic, which the kubernetes "
                             "backend does not offer: a preview nobody sends traffic to can only be judged "
                             "inconclusive. Give the stage's environment `traffic: players`")
        if strategy != self.strategy:
            raise self._fail(f"the plan is {strategy!r} but {self._where(self.deployment)} is deployed with "
                             f"{self.strategy!r} (services.yaml deploy.strategy)")

    # --- the interface -----------------------------------------------------------------------------------------
    def prepare(self, version: str, plan: Any) -> None:
        self._check_plan(plan)
        if self.strategy == "canary":
            self._prepare_canary(version, plan)
        elif self.strategy == "blue-green":
            self._prepare_blue_green(version)
        else:
            self._prepare_rolling(version, plan)

    def shift(self, step: int) -> None:
        if self.strategy == "canary":
            self._shift_canary(step)
        elif self.strategy == "blue-green":
            self._switch(step)
        else:
            self._shift_rolling(step)

    def promote(self) -> None:
        if self.strategy == "canary":
            self._promote_canary()
        elif self.strategy == "blue-green":
            self._promote_blue_green()
        else:
            self._promote_rolling()

    def rollback(self, reason: str) -> None:
        if self.strategy == "canary":
            self._rollback_canary()
        elif self.strategy == "blue-green":
            self._rollback_blue_green()
        else:
            self._rollback_rolling()

    def status(self) -> BackendStatus:
        if self.strategy == "canary":
            return self._status_canary()
        if self.strategy == "blue-green":
            return self._status_blue_green()
        return self._status_rolling()

    def cohorts(self) -> Cohorts:
        """Candidate: the new version's series; baseline: the old version's while any of it gets traffic."""
        status = self.status()
        candidate = status.candidate_version or status.stable_version or ""
        serving_old = status.raw.get("baseline_serving", False)
        baseline = ({"version": status.stable_version} if status.stable_version and serving_old
                    and status.stable_version != candidate else None)
        return Cohorts({"version": candidate}, baseline)

    # --- canary ------------------------------------------------------------------------------------------------
    @property
    def _canary(self) -> str:
        return f"{self.deployment}-canary"

    def _canary_object(self, stable: dict[str, Any], version: str) -> dict[str, Any]:
        spec = copy.deepcopy(_spec(stable))
        spec.pop("paused", None)
        spec["replicas"] = 0  # no pods, no traffic: shift(0) gives it its first share
        selector = spec.setdefault("selector", {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), "track": "canary"}
        template = spec.setdefault("template", {})
        template_meta = template.setdefault("metadata", {})
        template_meta["labels"] = {**(template_meta.get("labels") or {}), "track": "canary", "version": version}
        template["spec"]["containers"][self._container_index(stable, self.deployment)]["image"] = self._image(version)
        labels = {**((stable.get("metadata") or {}).get("labels") or {}), "track": "canary", "version": version}
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": self._canary, "namespace": self.namespace, "labels": labels,
                             "annotations": {"gamesre.io/canary-of": self.deployment}},
                "spec": spec}

    def _prepare_canary(self, version: str, plan: Any) -> None:
        stable = self._deployment(self.deployment)
        what = self._where(self.deployment)
        record = self._record(stable, what)
        self._check_not_other(record, version, what)
        wanted = self._canary_object(stable, version)
        selector = dict((_spec(self._read_service()).get("selector")) or {})
        pod_labels = wanted["spec"]["template"]["metadata"]["labels"]
        if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
            raise self._fail(f"{self._where(self.service, 'service')} selects {selector}, which does not match the "
                             f"canary's pods {pod_labels}: the canary would get no traffic")
        if record is None:
            replicas = _replicas(stable)
            if replicas < 1:
                raise self._fail(f"{what} runs 0 replicas: there is no stable version to compare a canary with")
            record = {"strategy": "canary", "version": version, "image": self._image(version),
                      "stable_image": self._current_image(stable, self.deployment), "stable_replicas": replicas,
                      "weights": [int(w) for w in plan.weights]}
            self._patch(self.deployment, {"metadata": {
                "resourceVersion": stable["metadata"]["resourceVersion"],
                "annotations": {RECORD_ANNOTATION: _record_json(record)}}}, MERGE_PATCH, "record the deploy")
        existing = self._read(self._canary, missing_ok=True)
        if existing is None:
            self._call(f"creating {self._where(self._canary)}", self.apps.create_namespaced_deployment,
                       self.namespace, wanted)
        elif self._current_image(existing, self._canary) != self._image(version):
            raise self._fail(f"{self._where(self._canary)} exists and runs "
                             f"{self._current_image(existing, self._canary)}, not {self._image(version)}; "
                             "roll the previous deploy back first")

    def _shift_canary(self, step: int) -> None:
        stable = self._deployment(self.deployment)
        record = self._require_record(stable, self._where(self.deployment))
        weights = list(record["weights"])
        if not 0 <= step < len(weights):
            raise self._fail(f"the canary plan has {len(weights)} weights {weights}; there is no step {step}")
        canary = self._read(self._canary, missing_ok=True)
        if canary is None:
            raise self._fail(f"{self._where(self._canary)} does not exist: prepare first")
        replicas = canary_replicas(int(record["stable_replicas"]), int(weights[step]))
        if _replicas(canary) != replicas:
            self._scale(self._canary, replicas)

    def _promote_canary(self) -> None:
        stable = self._deployment(self.deployment)
        record = self._record(stable, self._where(self.deployment))
        canary = self._read(self._canary, missing_ok=True)
        if record is None:
            if canary is not None:
                raise self._fail(f"{self._where(self._canary)} exists but no deploy is recorded on "
                                 f"{self._where(self.deployment)}; not promoting what was not prepared here")
            return  # promoted already
        if self._current_image(stable, self.deployment) != record["image"]:
            self._patch(self.deployment, {"spec": {"template": self._image_patch(stable, self.deployment,
                                                                                  record["image"])}},
                        STRATEGIC_MERGE_PATCH, f"image {record['image']}")
        if canary is not None:
            self._delete(self._canary)
        self._patch(self.deployment, {"metadata": {"annotations": {RECORD_ANNOTATION: None}}}, MERGE_PATCH,
                    "end the deploy record")

    def _rollback_canary(self) -> None:
        stable = self._deployment(self.deployment)
        record = self._record(stable, self._where(self.deployment))
        canary = self._read(self._canary, missing_ok=True)
        if record is not None:
            if self._current_image(stable, self.deployment) != record["stable_image"]:  # a promote got half way
                self._patch(self.deployment, {"spec": {"template": self._image_patch(
                    stable, self.deployment, record["stable_image"])}}, STRATEGIC_MERGE_PATCH,
                    f"image back to {record['stable_image']}")
            if _replicas(stable) < int(record["stable_replicas"]):
                self._scale(self.deployment, int(record["stable_replicas"]))
        if canary is not None:
            if _replicas(canary) != 0:
                self._scale(self._canary, 0)
            self._delete(self._canary)
        if record is not None:
            self._patch(self.deployment, {"metadata": {"annotations": {RECORD_ANNOTATION: None}}}, MERGE_PATCH,
                        "end the deploy record")

    def _status_canary(self) -> BackendStatus:
        stable = self._deployment(self.deployment)
        record = self._record(stable, self._where(self.deployment))
        canary = self._read(self._canary, missing_ok=True)
        stable_image = record["stable_image"] if record else self._current_image(stable, self.deployment)
        stable_ready = int(_status(stable).get("readyReplicas") or 0)
        candidate: str | None = None
        canary_ready, weight, ready = 0, 0, False
        if canary is not None:
            candidate = image_tag(self._current_image(canary, self._canary))
            canary_ready = int(_status(canary).get("readyReplicas") or 0)
            total = canary_ready + stable_ready
            weight = round(100 * canary_ready / total) if total else 0
            ready = deployment_ready(canary)
        stable_version = image_tag(stable_image)
        detail = (f"{self.deployment} {stable_version} {stable_ready}/{_replicas(stable)} ready"
                  + (f", {self._canary} {candidate} {canary_ready}/{_replicas(canary)} ready: "
                     f"{weight}% of the ready pods" if canary is not None else ", no canary"))
        raw = {"strategy": "canary", "record": record, "stable_replicas": _replicas(stable),
               "stable_ready": stable_ready, "canary_replicas": _replicas(canary) if canary else None,
               "canary_ready": canary_ready if canary else None, "baseline_serving": stable_ready > 0}
        return BackendStatus(stable_version, candidate, weight, ready, detail, raw)

    # --- blue-green --------------------------------------------------------------------------------------------
    def _slots(self, service: Mapping[str, Any]) -> tuple[str, str]:
        slot = (_spec(service).get("selector") or {}).get("slot")
        if slot not in SLOTS:
            raise self._fail(f"{self._where(self.service, 'service')} selects {_spec(service).get('selector')}: "
                             f"blue-green needs a `slot` label of {' or '.join(SLOTS)} in its selector")
        return str(slot), SLOTS[1 - SLOTS.index(str(slot))]

    def _active(self, service: Mapping[str, Any], slot: str) -> dict[str, Any]:
        selector = dict(_spec(service).get("selector") or {})
        for name in (f"{self.deployment}-{slot}", self.deployment):
            obj = self._read(name, missing_ok=True)
            if obj is not None and all(_template_labels(obj).get(k) == v for k, v in selector.items()):
                return obj
        raise self._fail(f"neither {self._where(f'{self.deployment}-{slot}')} nor {self._where(self.deployment)} "
                         f"runs the pods {self._where(self.service, 'service')} selects ({selector})")

    def _slot_object(self, active: dict[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
        name, slot, version = str(record["new_deployment"]), str(record["new_slot"]), str(record["version"])
        spec = copy.deepcopy(_spec(active))
        spec.pop("paused", None)
        spec["replicas"] = int(record["replicas"])
        selector = spec.setdefault("selector", {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), "slot": slot}
        template = spec.setdefault("template", {})
        template_meta = template.setdefault("metadata", {})
        template_meta["labels"] = {**(template_meta.get("labels") or {}), "slot": slot, "version": version}
        index = self._container_index(active, str(record["active_deployment"]))
        template["spec"]["containers"][index]["image"] = record["image"]
        labels = {**((active.get("metadata") or {}).get("labels") or {}), "slot": slot, "version": version}
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": self.namespace, "labels": labels}, "spec": spec}

    def _prepare_blue_green(self, version: str) -> None:
        service = self._read_service()
        what = self._where(self.service, "service")
        record = self._record(service, what)
        self._check_not_other(record, version, what)
        if record is None:
            active_slot, new_slot = self._slots(service)
            active = self._active(service, active_slot)
            active_name = str(active["metadata"]["name"])
            record = {"strategy": "blue-green", "version": version, "image": self._image(version),
                      "previous_selector": dict(_spec(service).get("selector") or {}),
                      "active_deployment": active_name, "new_deployment": f"{self.deployment}-{new_slot}",
                      "new_slot": new_slot, "stable_image": self._current_image(active, active_name),
                      "replicas": max(_replicas(active), 1)}
            self._patch_service({"metadata": {"resourceVersion": service["metadata"]["resourceVersion"],
                                              "annotations": {RECORD_ANNOTATION: _record_json(record)}}},
                                MERGE_PATCH, "record the deploy")
        else:
            active = self._deployment(str(record["active_deployment"]))
        wanted = self._slot_object(active, record)
        name = str(record["new_deployment"])
        existing = self._read(name, missing_ok=True)
        if existing is None:
            self._call(f"creating {self._where(name)}", self.apps.create_namespaced_deployment, self.namespace,
                       wanted)
        elif (self._current_image(existing, name) != record["image"] or _replicas(existing) != record["replicas"]
              or any(_template_labels(existing).get(k) != v for k, v in _template_labels(wanted).items())):
            # Left by an earlier deploy (scaled to 0): rebuilt from the active one, as `kubectl replace` would.
            wanted["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            self._call(f"replacing {self._where(name)}", self.apps.replace_namespaced_deployment, name,
                       self.namespace, wanted)

    def _switched_selector(self, record: Mapping[str, Any]) -> dict[str, str]:
        return {**record["previous_selector"], "slot": record["new_slot"]}

    def _switch(self, step: int) -> None:
        if step != 0:
            raise self._fail(f"blue-green has one shift, the switch (step 0), not step {step}")
        service = self._read_service()
        record = self._require_record(service, self._where(self.service, "service"))
        if dict(_spec(service).get("selector") or {}) == self._switched_selector(record):
            return
        name = str(record["new_deployment"])
        new = self._read(name, missing_ok=True)
        if new is None:
            raise self._fail(f"{self._where(name)} does not exist: prepare first")
        if not deployment_ready(new):
            status = _status(new)
            raise self._fail(f"{self._where(name)} is not ready ({status.get('readyReplicas') or 0}/"
                             f"{_replicas(new)} pods ready); not switching players to it")
        self._patch_service({"spec": {"selector": {"slot": record["new_slot"]}}}, STRATEGIC_MERGE_PATCH,
                            f"selector slot {record['new_slot']}")

    def _promote_blue_green(self) -> None:
        service = self._read_service()
        record = self._record(service, self._where(self.service, "service"))
        if record is None:
            return  # promoted already
        if dict(_spec(service).get("selector") or {}) != self._switched_selector(record):
            raise self._fail(f"{self._where(self.service, 'service')} still selects slot "
                             f"{(_spec(service).get('selector') or {}).get('slot')}: switch before promoting "
                             "(promoting now would scale down the version that serves the players)")
        old = self._read(str(record["active_deployment"]), missing_ok=True)
        if old is not None and _replicas(old) != 0:
            self._scale(str(record["active_deployment"]), 0)
        self._patch_service({"metadata": {"annotations": {RECORD_ANNOTATION: None}}}, MERGE_PATCH,
                            "end the deploy record")

    def _rollback_blue_green(self) -> None:
        service = self._read_service()
        record = self._record(service, self._where(self.service, "service"))
        if record is None:
            return  # nothing prepared, or already rolled back
        old_name = str(record["active_deployment"])
        old = self._read(old_name, missing_ok=True)
        if old is not None and _replicas(old) < int(record["replicas"]):
            self._scale(old_name, int(record["replicas"]))
        previous = dict(record["previous_selector"])
        current = dict(_spec(service).get("selector") or {})
        if current != previous:
            selector: dict[str, Any] = {k: None for k in current if k not in previous}
            selector.update(previous)
            self._patch_service({"spec": {"selector": selector}}, STRATEGIC_MERGE_PATCH, "selector restored")
        new = self._read(str(record["new_deployment"]), missing_ok=True)
        if new is not None and _replicas(new) != 0:
            self._scale(str(record["new_deployment"]), 0)
        self._patch_service({"metadata": {"annotations": {RECORD_ANNOTATION: None}}}, MERGE_PATCH,
                            "end the deploy record")

    def _status_blue_green(self) -> BackendStatus:
        service = self._read_service()
        record = self._record(service, self._where(self.service, "service"))
        selector = dict(_spec(service).get("selector") or {})
        if record is None:
            slot, _ = self._slots(service)
            active = self._active(service, slot)
            name = str(active["metadata"]["name"])
            version = image_tag(self._current_image(active, name))
            return BackendStatus(version, None, 0, deployment_ready(active),
                                 f"{self.service} selects slot {slot}: {name} {version}, no deploy in progress",
                                 {"strategy": "blue-green", "selector": selector, "record": None,
                                  "baseline_serving": True})
        new_name = str(record["new_deployment"])
        new = self._read(new_name, missing_ok=True)
        switched = selector == self._switched_selector(record)
        ready = new is not None and deployment_ready(new)
        stable_version = image_tag(str(record["stable_image"]))
        detail = (f"{self.service} selects slot {selector.get('slot')}: {record['version']} on {new_name} "
                  f"({'live' if switched else 'preview'}, {'ready' if ready else 'not ready'}), "
                  f"{stable_version} on {record['active_deployment']}")
        return BackendStatus(stable_version, str(record["version"]), 100 if switched else 0, ready, detail,
                             {"strategy": "blue-green", "selector": selector, "record": record,
                              "new_ready": _status(new).get("readyReplicas") if new else None,
                              "baseline_serving": not switched})

    # --- rolling -----------------------------------------------------------------------------------------------
    def _rolling_update(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        value = (_spec(obj).get("strategy") or {}).get("rollingUpdate")
        return dict(value) if isinstance(value, dict) else None

    def _prepare_rolling(self, version: str, plan: Any) -> None:
        obj = self._deployment(self.deployment)
        what = self._where(self.deployment)
        record = self._record(obj, what)
        self._check_not_other(record, version, what)
        if record is not None:
            return
        kind = (_spec(obj).get("strategy") or {}).get("type", "RollingUpdate")
        if kind != "RollingUpdate":
            raise self._fail(f"{what} uses the {kind} strategy; a rolling deploy needs RollingUpdate")
        record = {"strategy": "rolling", "version": version, "image": self._image(version),
                  "previous_image": self._current_image(obj, self.deployment),
                  "previous_revision": _annotations(obj).get(REVISION_ANNOTATION),
                  "previous_rolling_update": self._rolling_update(obj),
                  "batches": [int(w) for w in plan.weights]}
        self._patch(self.deployment, {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"],
                                                   "annotations": {RECORD_ANNOTATION: _record_json(record)}}},
                    MERGE_PATCH, "record the deploy")

    def _finish_rolling(self, obj: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
        """The spec part of a patch that lets the controller finish: image, recorded rollingUpdate, unpaused."""
        spec: dict[str, Any] = {}
        if self._current_image(obj, self.deployment) != record["image"]:
            spec["template"] = self._image_patch(obj, self.deployment, str(record["image"]))
        if self._rolling_update(obj) != record["previous_rolling_update"]:
            spec["strategy"] = {"rollingUpdate": record["previous_rolling_update"]}
        if _spec(obj).get("paused"):
            spec["paused"] = False
        return spec

    def _shift_rolling(self, step: int) -> None:
        obj = self._deployment(self.deployment)
        record = self._require_record(obj, self._where(self.deployment))
        batches = list(record["batches"])
        if not 0 <= step < len(batches):
            raise self._fail(f"the rolling plan has {len(batches)} batches {batches}; there is no step {step}")
        if batches[step] >= 100 or step == len(batches) - 1:
            spec = self._finish_rolling(obj, record)
            if spec:
                self._patch(self.deployment, {"spec": spec}, STRATEGIC_MERGE_PATCH, "last batch: roll the rest")
            return
        target = batch_replicas(_replicas(obj), int(batches[step]))
        updated = int(_status(obj).get("updatedReplicas") or 0) if _observed(obj) else 0
        on_image = self._current_image(obj, self.deployment) == record["image"]
        if on_image and updated >= target:
            if not _spec(obj).get("paused"):
                self._patch(self.deployment, {"spec": {"paused": True}}, STRATEGIC_MERGE_PATCH, "pause")
            return
        surge = max(1, target - (updated if on_image else 0))
        patched = self._patch(self.deployment, {"spec": {
            "paused": False, "template": self._image_patch(obj, self.deployment, str(record["image"])),
            "strategy": {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": 0}}}},
            STRATEGIC_MERGE_PATCH, f"batch {step}: {target} pods on {record['image']}")
        generation = int((patched.get("metadata") or {}).get("generation") or 0)
        deadline = time.monotonic() + self.batch_timeout_s
        while True:
            current = self._deployment(self.deployment)
            observed = int(_status(current).get("observedGeneration") or 0) >= generation
            updated = int(_status(current).get("updatedReplicas") or 0) if observed else 0
            if updated >= target or time.monotonic() >= deadline:
                break
            self._sleep(self.poll_interval_s)
        self._patch(self.deployment, {"spec": {"paused": True}}, STRATEGIC_MERGE_PATCH, "pause after the batch")
        if updated < target:
            raise self._fail(f"{self._where(self.deployment)}: the controller created {updated} of the batch's "
                             f"{target} new pods within {self.batch_timeout_s:.0f}s; paused there")

    def _promote_rolling(self) -> None:
        obj = self._deployment(self.deployment)
        record = self._record(obj, self._where(self.deployment))
        if record is None:
            return  # promoted already
        body: dict[str, Any] = {"metadata": {"annotations": {RECORD_ANNOTATION: None}}}
        spec = self._finish_rolling(obj, record)
        if spec:
            body["spec"] = spec
        self._patch(self.deployment, body, STRATEGIC_MERGE_PATCH, "finish the rollout, end the deploy record")

    def _revision_replicaset(self, obj: Mapping[str, Any], revision: str | None) -> dict[str, Any] | None:
        if revision is None:
            return None
        match = ((_spec(obj).get("selector") or {}).get("matchLabels")) or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
        listed = self._call(f"listing the replicasets of {self._where(self.deployment)}",
                            self.apps.list_namespaced_replica_set, self.namespace, label_selector=selector)
        uid = (obj.get("metadata") or {}).get("uid")
        for rs in listed.get("items") or []:
            owners = (rs.get("metadata") or {}).get("ownerReferences") or []
            owned = not owners or any(o.get("kind") == "Deployment" and (o.get("uid") == uid
                                                                         or o.get("name") == self.deployment)
                                      for o in owners)
            if owned and _annotations(rs).get(REVISION_ANNOTATION) == revision:
                return dict(rs)
        return None

    def _rollback_rolling(self) -> None:
        obj = self._deployment(self.deployment)
        record = self._record(obj, self._where(self.deployment))
        if record is None:
            return  # nothing prepared, or already rolled back
        annotations = _annotations(obj)
        ops: list[dict[str, Any]] = []
        rs = self._revision_replicaset(obj, record.get("previous_revision"))
        template = copy.deepcopy(_spec(obj).get("template") or {})
        if rs is not None:
            wanted = copy.deepcopy(_spec(rs).get("template") or {})
            wanted.setdefault("metadata", {}).setdefault("labels", {}).pop(HASH_LABEL, None)
            if wanted != template:  # kubectl: "skipped rollback" when the template already matches
                ops.append({"op": "replace", "path": "/spec/template", "value": wanted})
                kept = {k: v for k, v in annotations.items() if k in UNDO_ANNOTATIONS_TO_SKIP}
                kept.update({k: v for k, v in _annotations(rs).items() if k not in UNDO_ANNOTATIONS_TO_SKIP})
                kept.pop(RECORD_ANNOTATION, None)
                ops.append({"op": "replace", "path": "/metadata/annotations", "value": kept})
        elif self._current_image(obj, self.deployment) != record["previous_image"]:
            # The recorded revision's ReplicaSet is gone (revisionHistoryLimit): put the recorded image back.
            index = self._container_index(obj, self.deployment)
            template["spec"]["containers"][index]["image"] = record["previous_image"]
            if "version" in (template.get("metadata") or {}).get("labels", {}):
                template["metadata"]["labels"]["version"] = image_tag(str(record["previous_image"]))
            ops.append({"op": "replace", "path": "/spec/template", "value": template})
        if not any(op["path"] == "/metadata/annotations" for op in ops):
            ops.append({"op": "remove", "path": f"/metadata/annotations/{json_pointer_token(RECORD_ANNOTATION)}"})
        if _spec(obj).get("paused"):
            ops.append({"op": "add", "path": "/spec/paused", "value": False})
        previous = record.get("previous_rolling_update")
        if self._rolling_update(obj) != previous:
            if previous is None:
                ops.append({"op": "remove", "path": "/spec/strategy/rollingUpdate"})
            else:
                ops.append({"op": "add", "path": "/spec/strategy/rollingUpdate", "value": previous})
        self._patch(self.deployment, ops, JSON_PATCH, f"rollout undo to revision {record.get('previous_revision')}")

    def _status_rolling(self) -> BackendStatus:
        obj = self._deployment(self.deployment)
        record = self._record(obj, self._where(self.deployment))
        image = self._current_image(obj, self.deployment)
        status = _status(obj)
        replicas = int(status.get("replicas") or 0)
        updated = int(status.get("updatedReplicas") or 0) if _observed(obj) else 0
        ready_pods = int(status.get("readyReplicas") or 0)
        if record is None:
            version = image_tag(image)
            return BackendStatus(version, None, 0, deployment_ready(obj),
                                 f"{self.deployment} {version} {ready_pods}/{_replicas(obj)} ready, no deploy in "
                                 "progress", {"strategy": "rolling", "record": None, "baseline_serving": True})
        on_image = image == record["image"]
        weight = round(100 * updated / replicas) if on_image and replicas else 0
        ready = on_image and _observed(obj) and updated > 0 and ready_pods >= replicas
        detail = (f"{self.deployment}: {updated if on_image else 0}/{replicas} pods on {record['version']} "
                  f"({weight}%), {ready_pods} ready{', paused' if _spec(obj).get('paused') else ''}")
        return BackendStatus(image_tag(str(record["previous_image"])), str(record["version"]), weight, ready, detail,
                             {"strategy": "rolling", "record": record, "replicas": replicas, "updated": updated,
                              "ready": ready_pods, "paused": bool(_spec(obj).get("paused")),
                              "baseline_serving": not on_image or updated < replicas})


def _kubernetes(spec: ServiceSpec, stage: str, connections: Connections) -> KubernetesDeployBackend:
    k8s = spec.kubernetes
    assert k8s is not None  # services.yaml requires the Kubernetes coordinates for this backend
    return KubernetesDeployBackend(connections.kubernetes(), namespace=spec.deploy.environments[stage].namespace
                                   or k8s.namespace, deployment=str(k8s.deployment),
                                   service=str(k8s.service or k8s.deployment), image_repo=spec.deploy.image.repo,
                                   strategy=spec.deploy.strategy)


DEPLOY_BACKENDS.register("kubernetes", _kubernetes)
