"""The `argo-rollouts` deploy backend: an Argo Rollout moved with the exact patches of Argo's kubectl plugin.

Works on a Rollout (argoproj.io/v1alpha1, plural `rollouts`) through `kubernetes.client.CustomObjectsApi` on
an ApiClient passed in (the Airflow layer builds it with the cncf-kubernetes provider's KubernetesHook). The
Argo Rollouts controller does the moving; this backend only writes what `kubectl argo rollouts` writes. The
version is the image tag of `image_repo:<version>` in the chosen container (`container`, else the one
running `image_repo`, else the only one).

The patches, taken from the plugin's source (argoproj/argo-rollouts, pkg/kubectl-argo-rollouts/cmd/):
- promote/promote.go, `promote` (default branch of getPatches): a JSON merge patch on the **status
  subresource**, `{"status":{"pauseConditions":null}}` when the rollout has pause conditions, otherwise (a
  canary not paused yet) `{"status":{"pauseConditions":null,"currentStepIndex":<current + 1>}}`; then,
  only if `spec.paused` is true, `{"spec":{"paused":false}}` on the main resource. Status first, spec second.
- promote/promote.go, `promote --full`: `{"status":{"promoteFull":true}}` on the status subresource, sent
  only when `status.currentPodHash != status.stableRS`.
- abort/abort.go: `{"status":{"abort":true}}` on the status subresource.
- retry/retry.go, `retry rollout`: `{"status":{"abort":false}}` on the status subresource.
The plugin falls back to patching the main resource when /status answers 404 (Argo Rollouts v0.9, before
the CRD had a status subresource); this backend does not, it needs Argo Rollouts >= v0.10. Custom resources
refuse strategic merge patches (HTTP 415), so every write here is a merge patch (RFC 7386).

Mapping of the plan (gamesre.deploy.plan.RolloutPlan) onto the Rollout:
canary      prepare: one merge patch of the main resource, guarded by the resourceVersion just read, setting
            the container's image (the whole containers list, since a merge patch replaces lists) and
            spec.strategy.canary.steps = [{setWeight: w}, {pause: {}}] for each plan weight. Argo starts
            stepping as soon as it sees the new template, so after prepare the rollout sits at the first
            weight, paused; shift(0) only checks that. shift(i): the plugin's promote, releasing the pause
            before the i-th setWeight; a no-op when status.currentStepIndex is already at or past it.
            Unlike a plain "no pause after 100", a pause follows the final setWeight 100 as well: without it
            Argo would finish the rollout on its own at the last shift and the analysis of the 100% step could
            no longer be answered with an abort. promote: `promote --full`. rollback: `abort`.
rolling     Argo has no rolling strategy: the batches become canary steps the same way.
blue-green  prepare: image plus spec.strategy.blueGreen {autoPromotionEnabled: false, scaleDownDelaySeconds:
            plan.scale_down_delay_s}: the preview comes up and Argo pauses before the switch. shift(0): the
            plugin's promote (the switch). promote: `promote --full`, which is a no-op once the switch made the
            new ReplicaSet stable; Argo scales the old one down after scaleDownDelaySeconds itself.
Idempotency: every method reads the Rollout first and writes nothing when the state is already there;
`status.observedGeneration` (Argo writes the generation it reconciled, as a decimal string) tells whether
the status describes the current spec. A plan without players (`verify`) is refused: this backend offers
no synthetic traffic.

Tested only against the fake API server in tests/fakes/kube_api.py, never against a real cluster or
controller.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kubernetes import client

from gamesre.deploy.backend import DEPLOY_BACKENDS, BackendStatus, Cohorts, DeployBackend, DeployBackendError

if TYPE_CHECKING:
    from gamesre.core.services import ServiceSpec
    from gamesre.integrations.connections import Connections
from gamesre.integrations.deploy.kubernetes import MERGE_PATCH, container_index, image_tag, kube_call

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "rollouts"
HASH_LABEL = "rollouts-pod-template-hash"
PROMOTE_PATCH: dict[str, Any] = {"status": {"pauseConditions": None}}
UNPAUSE_PATCH: dict[str, Any] = {"spec": {"paused": False}}
PROMOTE_FULL_PATCH: dict[str, Any] = {"status": {"promoteFull": True}}
ABORT_PATCH: dict[str, Any] = {"status": {"abort": True}}
RETRY_PATCH: dict[str, Any] = {"status": {"abort": False}}
READY_PHASES = ("Healthy", "Paused")


def canary_steps(weights: tuple[int, ...] | list[int]) -> list[dict[str, Any]]:
    """Argo canary steps for plan weights: each setWeight followed by an indefinite pause."""
    steps: list[dict[str, Any]] = []
    for weight in weights:
        steps += [{"setWeight": int(weight)}, {"pause": {}}]
    return steps


def _status(ro: Mapping[str, Any]) -> dict[str, Any]:
    return dict(ro.get("status") or {})


def _spec(ro: Mapping[str, Any]) -> dict[str, Any]:
    return dict(ro.get("spec") or {})


def observed(ro: Mapping[str, Any]) -> bool:
    """The controller has reconciled the current spec. Unknown (no or a non-numeric observedGeneration, as
    very old Argo versions wrote a hash) counts as observed."""
    value = str(_status(ro).get("observedGeneration", ""))
    generation = (ro.get("metadata") or {}).get("generation")
    return not (value.isdigit() and generation is not None and int(value) != int(generation))


class ArgoRolloutsBackend(DeployBackend):
    """One Argo Rollout in one namespace."""

    kind = "argo-rollouts"

    def __init__(self, api_client: client.ApiClient, *, namespace: str, rollout: str, container: str | None = None,
                 image_repo: str) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.namespace = namespace
        self.rollout = rollout
        self.container = container
        self.image_repo = image_repo
        self.where = f"rollout {namespace}/{rollout}"

    # --- plumbing ----------------------------------------------------------------------------------------------
    def _fail(self, message: str) -> DeployBackendError:
        return DeployBackendError(f"{self.kind}: {self.where}: {message}")

    def _call(self, action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        return kube_call(self.kind, action, fn, *args, **kwargs)

    def _read(self) -> dict[str, Any]:
        return self._call(f"reading {self.where}", self.custom.get_namespaced_custom_object, GROUP, VERSION,
                          self.namespace, PLURAL, self.rollout)

    def _patch(self, body: dict[str, Any], what: str) -> None:
        self._call(f"patching {self.where} ({what})", self.custom.patch_namespaced_custom_object, GROUP, VERSION,
                   self.namespace, PLURAL, self.rollout, body, _content_type=MERGE_PATCH)

    def _patch_status(self, body: dict[str, Any], what: str) -> None:
        self._call(f"patching the status of {self.where} ({what})",
                   self.custom.patch_namespaced_custom_object_status, GROUP, VERSION, self.namespace, PLURAL,
                   self.rollout, body, _content_type=MERGE_PATCH)

    def _template(self, ro: Mapping[str, Any]) -> dict[str, Any]:
        template = _spec(ro).get("template")
        if not isinstance(template, dict) or not (template.get("spec") or {}).get("containers"):
            raise self._fail("has no spec.template with containers (a Rollout with workloadRef is not supported)")
        return template

    def _containers(self, ro: Mapping[str, Any]) -> list[dict[str, Any]]:
        return list(self._template(ro)["spec"]["containers"])

    def _index(self, containers: list[dict[str, Any]], where: str) -> int:
        return container_index(containers, self.container, self.image_repo, where)

    def _template_version(self, ro: Mapping[str, Any]) -> str:
        containers = self._containers(ro)
        return image_tag(str(containers[self._index(containers, self.where)].get("image", "")))

    def _steps(self, ro: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        canary = (_spec(ro).get("strategy") or {}).get("canary")
        return list(canary.get("steps") or []) if isinstance(canary, dict) else None

    def _is_blue_green(self, ro: Mapping[str, Any]) -> bool:
        return isinstance((_spec(ro).get("strategy") or {}).get("blueGreen"), dict)

    def _replicaset(self, pod_hash: str | None) -> dict[str, Any] | None:
        """The ReplicaSet (apps/v1) with this rollouts-pod-template-hash, preferring one this Rollout owns."""
        if not pod_hash:
            return None
        listed = self._call(f"listing the replicasets of {self.where}", self.apps.list_namespaced_replica_set,
                            self.namespace, label_selector=f"{HASH_LABEL}={pod_hash}")
        items = [dict(i) for i in listed.get("items") or []]
        owned = [i for i in items if any(o.get("kind") == "Rollout" and o.get("name") == self.rollout
                                         for o in (i.get("metadata") or {}).get("ownerReferences") or [])]
        matches = owned or items
        return matches[0] if matches else None

    def _rs_version(self, rs: Mapping[str, Any]) -> str | None:
        containers = list((((rs.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [])
        if not containers:
            return None
        where = f"replicaset {self.namespace}/{(rs.get('metadata') or {}).get('name')}"
        return image_tag(str(containers[self._index(containers, where)].get("image", "")))

    # --- the kubectl plugin's writes ---------------------------------------------------------------------------
    def _promote_step(self, ro: Mapping[str, Any]) -> None:
        """`kubectl argo rollouts promote` (promote.go, getPatches' default branch)."""
        status = _status(ro)
        steps = self._steps(ro)
        if status.get("pauseConditions"):
            self._patch_status(PROMOTE_PATCH, "promote: clear the pause conditions")
        elif steps:
            index = int(status.get("currentStepIndex") or 0)
            if index < len(steps):
                index += 1
            self._patch_status({"status": {"pauseConditions": None, "currentStepIndex": index}},
                               f"promote: step index {index}")
        if _spec(ro).get("paused"):
            self._patch(UNPAUSE_PATCH, "promote: unpause")

    def retry(self) -> None:
        """`kubectl argo rollouts retry rollout` (retry.go): lift an abort; a no-op when not aborted."""
        if _status(self._read()).get("abort"):
            self._patch_status(RETRY_PATCH, "retry")

    # --- the interface -----------------------------------------------------------------------------------------
    def prepare(self, version: str, plan: Any) -> None:
        strategy = str(getattr(plan, "strategy", ""))
        if strategy not in ("canary", "rolling", "blue-green"):
            raise self._fail(f"a {strategy!r} plan is not supported: a stage without players needs synthetic "
                             "traffic, which this backend does not offer (give the environment `traffic: players`)")
        ro = self._read()
        containers = self._containers(ro)
        index = self._index(containers, self.where)
        image = f"{self.image_repo}:{version}"
        spec: dict[str, Any] = {}
        if containers[index].get("image") != image:
            changed = copy.deepcopy(containers)
            changed[index]["image"] = image
            spec["template"] = {"spec": {"containers": changed}}
        rollout_strategy = _spec(ro).get("strategy") or {}
        if strategy == "blue-green":
            blue_green = rollout_strategy.get("blueGreen")
            if not isinstance(blue_green, dict):
                raise self._fail("the plan is blue-green but the Rollout's strategy is not blueGreen")
            wanted = {"autoPromotionEnabled": False, "scaleDownDelaySeconds": int(plan.scale_down_delay_s)}
            if any(blue_green.get(k) != v for k, v in wanted.items()):
                spec["strategy"] = {"blueGreen": wanted}
        else:
            if not isinstance(rollout_strategy.get("canary"), dict):
                raise self._fail(f"the plan is {strategy} but the Rollout's strategy is not canary")
            steps = canary_steps(tuple(plan.weights))
            if self._steps(ro) != steps:
                spec["strategy"] = {"canary": {"steps": steps}}
        if spec:
            self._patch({"metadata": {"resourceVersion": ro["metadata"]["resourceVersion"]}, "spec": spec},
                        f"image {image}" + (", strategy" if "strategy" in spec else ""))
        if _status(ro).get("abort"):  # a rolled-back deploy of this version is being tried again
            self._patch_status(RETRY_PATCH, "retry the aborted rollout")

    def shift(self, step: int) -> None:
        ro = self._read()
        status = _status(ro)
        if status.get("abort"):
            raise self._fail("is aborted; prepare again (or retry()) before shifting traffic")
        if self._is_blue_green(ro):
            self._switch(ro, step)
            return
        steps = self._steps(ro)
        if steps is None:
            raise self._fail("has neither a canary nor a blueGreen strategy")
        weight_steps = [i for i, s in enumerate(steps) if "setWeight" in s]
        if not 0 <= step < len(weight_steps):
            raise self._fail(f"has {len(weight_steps)} setWeight steps; there is no shift {step}")
        target = weight_steps[step]
        if step > 0 and not observed(ro):
            raise self._fail(f"the controller has not reconciled generation {ro['metadata'].get('generation')} "
                             f"yet (status at {status.get('observedGeneration')}); not promoting blind")
        current = int(status.get("currentStepIndex") or 0)
        if current >= target:
            return  # the controller is at or past this setWeight step
        if current != target - 1 or "pause" not in steps[current]:
            raise self._fail(f"is at step {current} of {len(steps)} ({steps[current]}); shift({step}) releases the "
                             f"pause at step {target - 1}, before setWeight {steps[target]['setWeight']}")
        self._promote_step(ro)

    def _switch(self, ro: Mapping[str, Any], step: int) -> None:
        if step != 0:
            raise self._fail(f"blue-green has one shift, the switch (step 0), not step {step}")
        if not observed(ro):
            raise self._fail("the controller has not reconciled the current spec yet; not switching blind")
        status = _status(ro)
        active = (status.get("blueGreen") or {}).get("activeSelector")
        if active and active == status.get("currentPodHash"):
            return  # switched
        if not status.get("pauseConditions") and not _spec(ro).get("paused"):
            raise self._fail("is not paused before the switch (the preview is not ready yet?); nothing to promote")
        self._promote_step(ro)

    def promote(self) -> None:
        ro = self._read()
        status = _status(ro)
        if status.get("abort"):
            raise self._fail("is aborted; not promoting")
        if status.get("currentPodHash") == status.get("stableRS") or status.get("promoteFull"):
            return  # fully promoted, or asked to be
        self._patch_status(PROMOTE_FULL_PATCH, "promote --full")

    def rollback(self, reason: str) -> None:
        ro = self._read()
        status = _status(ro)
        if status.get("abort"):
            return  # aborted already
        if observed(ro) and status.get("stableRS") and status.get("stableRS") == status.get("currentPodHash"):
            return  # nothing is rolling out: the stable version is all there is
        log.warning("%s: aborting: %s", self.where, reason)
        self._patch_status(ABORT_PATCH, "abort")

    def status(self) -> BackendStatus:
        ro = self._read()
        status, spec = _status(ro), _spec(ro)
        template_version = self._template_version(ro)
        stable_hash, current_hash = status.get("stableRS"), status.get("currentPodHash")
        fresh = observed(ro)
        unseen = not fresh and stable_hash == current_hash  # the controller has not seen the new template yet
        stable_rs = self._replicaset(stable_hash)
        stable_version = self._rs_version(stable_rs) if stable_rs else None
        if stable_version is None and stable_hash and stable_hash == current_hash and fresh:
            stable_version = template_version
        candidate = template_version if template_version != stable_version else None
        steps = self._steps(ro) or []
        index = int(status.get("currentStepIndex") or 0)
        weights = ((status.get("canary") or {}).get("weights") or {}).get("canary") or {}
        if candidate is None or status.get("abort") or unseen:
            weight = 0
        elif "weight" in weights:
            weight = int(weights["weight"])
        elif self._is_blue_green(ro):
            weight = 100 if (status.get("blueGreen") or {}).get("activeSelector") == current_hash else 0
        elif index >= len(steps):
            weight = 100
        else:
            weight = next((int(s["setWeight"]) for s in reversed(steps[:index + 1]) if "setWeight" in s), 0)
        phase = str(status.get("phase") or "Unknown")
        available, wanted = int(status.get("availableReplicas") or 0), int(spec.get("replicas", 1) or 0)
        candidate_rs = self._replicaset(current_hash) if candidate is not None and not unseen else None
        candidate_ready = candidate_rs is None or (
            int((candidate_rs.get("status") or {}).get("readyReplicas") or 0)
            >= int((candidate_rs.get("spec") or {}).get("replicas") or 0))
        ready = (fresh and not status.get("abort") and phase in READY_PHASES and available >= wanted
                 and candidate_ready)
        detail = (f"{self.where}: {candidate or 'no candidate'} at {weight}% over {stable_version or 'unknown stable'}"
                  f", step {index}/{len(steps)}, {phase}" + (", aborted" if status.get("abort") else "")
                  + (", ready" if ready else ", not ready"))
        raw = {"phase": phase, "message": status.get("message"), "currentStepIndex": status.get("currentStepIndex"),
               "steps": len(steps), "stableRS": stable_hash, "currentPodHash": current_hash,
               "pauseConditions": [p.get("reason") for p in status.get("pauseConditions") or []],
               "abort": bool(status.get("abort")), "promoteFull": bool(status.get("promoteFull")),
               "paused": bool(spec.get("paused")), "replicas": wanted, "availableReplicas": available,
               "observedGeneration": status.get("observedGeneration"),
               "generation": (ro.get("metadata") or {}).get("generation"),
               "canaryWeight": weights.get("weight"),
               "activeSelector": (status.get("blueGreen") or {}).get("activeSelector"),
               "previewSelector": (status.get("blueGreen") or {}).get("previewSelector")}
        return BackendStatus(stable_version, candidate, weight, ready, detail, raw)

    def cohorts(self) -> Cohorts:
        """Candidate: the template's version; baseline: the stable ReplicaSet's, None when there is none
        (a first rollout) or when the candidate has become the stable one."""
        status = self.status()
        candidate = status.candidate_version or status.stable_version or ""
        baseline = ({"version": status.stable_version}
                    if status.stable_version and status.stable_version != candidate else None)
        return Cohorts({"version": candidate}, baseline)


def _argo_rollouts(spec: ServiceSpec, stage: str, connections: Connections) -> ArgoRolloutsBackend:
    k8s = spec.kubernetes
    assert k8s is not None  # services.yaml requires the Kubernetes coordinates for this backend
    return ArgoRolloutsBackend(connections.kubernetes(), namespace=spec.deploy.environments[stage].namespace
                               or k8s.namespace, rollout=str(k8s.rollout), image_repo=spec.deploy.image.repo)


DEPLOY_BACKENDS.register("argo-rollouts", _argo_rollouts)
