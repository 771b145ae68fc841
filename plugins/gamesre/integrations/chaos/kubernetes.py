"""The `kubernetes` chaos backend: faults as LitmusChaos ChaosEngines or Chaos Mesh experiments on a service's pods.

Works on a `kubernetes.client.ApiClient` passed in (the Airflow layer builds it with the cncf-kubernetes
provider's KubernetesHook); this module does not import Airflow. The operator of the chosen engine does the
injecting; this backend writes the custom resource, stops it, waits until the operator confirms the fault is
gone, and only then deletes it. Targets are the Running pods (not terminating) in `namespace` that carry
`selector_labels` (the Deployment's pod labels) plus the selector the experiment asks for.

Faults (parameters: gamesre.chaos.faults.FAULT_KINDS; duration = ceil(duration_s) seconds):

kind               litmus (ChaosEngine, experiments[0])                chaos-mesh
pod_delete         pod-delete, TARGET_PODS, CHAOS_INTERVAL = duration   PodChaos action pod-kill (one-shot,
                   (the pods are deleted once), FORCE=false             no duration)
cpu_hog            pod-cpu-hog CPU_CORES=cpu_cores (1),                 StressChaos stressors.cpu
                   CPU_LOAD=cpu_load x 100 (90)                         {workers: cpu_cores, load}
memory_hog         pod-memory-hog MEMORY_CONSUMPTION=memory_mb          StressChaos stressors.memory
                                                                        {workers: 1, size: "<memory_mb>MB"}
network_latency    pod-network-latency NETWORK_LATENCY, JITTER (ms)     NetworkChaos delay {latency, jitter}
network_loss       pod-network-loss NETWORK_PACKET_LOSS_PERCENTAGE      NetworkChaos loss {loss}
network_partition  pod-network-partition POLICY_TYPES=ingress (a        NetworkChaos partition, direction from,
                   NetworkPolicy; the experiment ignores TARGET_PODS    no target: every packet into the pods
                   and selects every pod with appinfo.applabel, so      is dropped (iptables INPUT), which
                   inject refuses unless the targets are all the        also drops the answers to the pods'
                   service's running pods)                              own calls: a full isolation
disk_fill          disk-fill EPHEMERAL_STORAGE_MEBIBYTES=disk_fill_mb   refused: Chaos Mesh has no disk-fill
                                                                        fault (StressChaos stresses cpu and
                                                                        memory only, IOChaos delays or fails
                                                                        file operations but uses no space)
db_failure         pod-network-loss to DESTINATION_HOSTS =              NetworkChaos loss, externalTargets =
                   database_hosts, loss = db_fail_rate x 100            database_hosts, direction to
db_latency         pod-network-latency to DESTINATION_HOSTS,            NetworkChaos delay, externalTargets,
                   NETWORK_LATENCY = db_latency_ms                      direction to

The database faults act on the network: the target's database calls time out or are slow; the database
never answers with an error. They need `database_hosts`. Litmus selects the pods by TARGET_PODS (the
resolved names, comma-separated; PODS_AFFECTED_PERC is not used); Chaos Mesh by `mode: all` and
`selector.pods: {<namespace>: [names]}`, so exactly the resolved pods are hit.

Records: every object carries the labels `app.kubernetes.io/managed-by: gamesre-chaos`, `gamesre.io/run-id`,
`gamesre.io/experiment`, `gamesre.io/service` (label-safe forms) and the annotations `gamesre.io/run-id`,
`gamesre.io/experiment`, `gamesre.io/service`, `gamesre.io/fault` (the FaultSpec as JSON), `gamesre.io/targets`
and `gamesre.io/injected-at`, so `injected()` rebuilds the Injection from the object alone. The name is derived
from run id + experiment (`gamesre-<experiment>-<hash>`, at most 40 characters, so that Litmus's ChaosResult
`<engine>-<experiment>` and its `name` label stay within 63), so a retried inject reads the existing object
(GET first; a 409 on create reads it too) and returns the same Injection.

Abort: Litmus = JSON merge patch `{"spec":{"engineState":"stop"}}` on the ChaosEngine (the operator deletes
the experiment pods, whose abort handler reverts the fault); Chaos Mesh = merge patch of the annotation
`experiment.chaos-mesh.org/pause: "true"` (the controller recovers every target). Both read the object
first and write nothing when it is already stopped or gone.

Recovery is confirmed from the status the operators write:
- Litmus: the ChaosEngine's `status.engineStatus` is `stopped` or `completed` (the operator sets `stopped`
  only after the experiment pods are gone) and the ChaosResult `<engine>-<experiment>`, if it exists, has
  `status.experimentStatus.phase` Completed / Stopped (Aborted in old versions) and no target whose
  `status.history.targets[].chaosStatus` (or whose annotation, before the operator moves it) is `injected`;
- Chaos Mesh: `status.experiment.desiredPhase` is `Stop` and every `status.experiment.containerRecords[].phase`
  is exactly `Not Injected` (`Not Injected/Wait` and `Injected/...` are still moving).
The objects (ChaosEngine + ChaosResult / the Chaos Mesh object) are deleted only after that; a recovery not
confirmed within `recover_timeout` returns recovered=False with what is still injected and deletes nothing.
An object already gone counts as recovered (for Litmus, unless its ChaosResult still says injected).
`injected()` lists the managed objects of the configured engine's kinds: an object that still exists counts
as injected until recover() has confirmed and deleted it.

Prerequisites at the site (not checked here): the engine's operator and CRDs; for Litmus the ChaosExperiment
resources of the experiments above in `namespace` (their defaults set CONTAINER_RUNTIME and SOCKET_PATH)
and the service account `chaos_service_account` with Litmus's RBAC.

Tested only against the fake API server in tests/fakes/kube_api.py, with the operators played by the tests;
never against a real cluster, LitmusChaos or Chaos Mesh.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from kubernetes import client

from gamesre.chaos.faults import (
    FAULT_BACKENDS,
    FAULT_KINDS,
    ChaosBackend,
    ChaosBackendError,
    FaultSpec,
    Injection,
    Recovery,
)
from gamesre.integrations.kubernetes import json_call

if TYPE_CHECKING:
    from gamesre.core.services import ServiceSpec
    from gamesre.integrations.connections import Connections

log = logging.getLogger(__name__)

Engine = Literal["litmus", "chaos-mesh"]
ENGINES: tuple[str, ...] = ("litmus", "chaos-mesh")
MERGE_PATCH = "application/merge-patch+json"

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "gamesre-chaos"
RUN_ID_KEY = "gamesre.io/run-id"
EXPERIMENT_KEY = "gamesre.io/experiment"
SERVICE_KEY = "gamesre.io/service"
FAULT_ANNOTATION = "gamesre.io/fault"
TARGETS_ANNOTATION = "gamesre.io/targets"
INJECTED_AT_ANNOTATION = "gamesre.io/injected-at"
PAUSE_ANNOTATION = "experiment.chaos-mesh.org/pause"

LITMUS_GROUP, CHAOS_MESH_GROUP, VERSION = "litmuschaos.io", "chaos-mesh.org", "v1alpha1"
LITMUS_STOPPED = ("stopped", "completed")  # status.engineStatus once the operator has stopped the experiment
LITMUS_RESULT_DONE = ("Completed", "Stopped", "Aborted")  # status.experimentStatus.phase (prefix for Completed*)
CHAOS_MESH_RECOVERED = "Not Injected"
NAME_MAX = 40  # <engine>-pod-network-partition (the ChaosResult and its `name` label) stays within 63
LABEL_MAX = 63


@dataclass(frozen=True)
class _Kind:
    group: str
    kind: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{VERSION}"


CHAOS_ENGINE = _Kind(LITMUS_GROUP, "ChaosEngine", "chaosengines")
CHAOS_RESULT = _Kind(LITMUS_GROUP, "ChaosResult", "chaosresults")
POD_CHAOS = _Kind(CHAOS_MESH_GROUP, "PodChaos", "podchaos")
STRESS_CHAOS = _Kind(CHAOS_MESH_GROUP, "StressChaos", "stresschaos")
NETWORK_CHAOS = _Kind(CHAOS_MESH_GROUP, "NetworkChaos", "networkchaos")
KINDS_OF_ENGINE: dict[str, tuple[_Kind, ...]] = {
    "litmus": (CHAOS_ENGINE,),
    "chaos-mesh": (POD_CHAOS, STRESS_CHAOS, NETWORK_CHAOS),
}
KIND_BY_NAME = {k.kind: k for k in (CHAOS_ENGINE, POD_CHAOS, STRESS_CHAOS, NETWORK_CHAOS)}

LITMUS_EXPERIMENT = {
    "pod_delete": "pod-delete", "cpu_hog": "pod-cpu-hog", "memory_hog": "pod-memory-hog",
    "network_latency": "pod-network-latency", "network_loss": "pod-network-loss",
    "network_partition": "pod-network-partition", "disk_fill": "disk-fill",
    "db_failure": "pod-network-loss", "db_latency": "pod-network-latency",
}


class KubernetesChaosError(ChaosBackendError):
    """The Kubernetes API refused or failed a request of the chaos backend (status None: not reachable)."""

    def __init__(self, engine: str, action: str, status: int | None, reason: str, message: str):
        code = f"HTTP {status} " if status is not None else ""
        super().__init__(f"kubernetes chaos ({engine}): {action} failed: {code}{reason}: {message}")
        self.engine, self.action, self.status, self.reason, self.message = engine, action, status, reason, message


def chaos_call(engine: str, action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run one generated-client call and return the JSON the API answered; errors name `action`."""
    return json_call(lambda status, reason, message: KubernetesChaosError(engine, action, status, reason, message),
                     fn, *args, **kwargs)


# --- names and labels ------------------------------------------------------------------------------------


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def object_name(run_id: str, experiment: str) -> str:
    """`gamesre-<experiment slug>-<hash of run id + experiment>`: DNS-1123, at most NAME_MAX characters."""
    digest = _digest(run_id, experiment)[:10]
    slug = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", experiment.lower())).strip("-")
    room = NAME_MAX - len("gamesre--") - len(digest)
    slug = slug[:room].strip("-")
    return f"gamesre-{slug}-{digest}" if slug else f"gamesre-{digest}"


def label_value(value: str) -> str:
    """A label-safe form of value (<= 63 characters of [A-Za-z0-9._-], alphanumeric at both ends); long or
    unsafe values keep a readable prefix and get a hash suffix. The exact value lives in an annotation."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", value).strip("-_.")
    if safe == value and len(value) <= LABEL_MAX:
        return value
    digest = _digest(value)[:10]
    prefix = safe[:LABEL_MAX - len(digest) - 1].strip("-_.")
    return f"{prefix}-{digest}" if prefix else digest


def _selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def describe(fault: FaultSpec) -> str:
    """`network_latency latency_ms=400`: a fault in a few words, for people."""
    params = " ".join(f"{k}={v}" for k, v in sorted(fault.params.items()))
    return f"{fault.kind} {params}".strip()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- the backend -----------------------------------------------------------------------------------------


class KubernetesChaosBackend(ChaosBackend):
    """Faults on one service's pods in one namespace, through LitmusChaos or Chaos Mesh."""

    kind = "kubernetes"

    def __init__(self, api_client: client.ApiClient, *, namespace: str, service: str,
                 selector_labels: Mapping[str, str], engine: Engine, poll_interval: float = 2.0,
                 recover_timeout: float = 120.0, database_hosts: Sequence[str] = (),
                 chaos_service_account: str = "litmus-admin", sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`selector_labels`: the pod labels of the service's Deployment ({"app": "game-server"}); every target
        carries them. `database_hosts`: the hosts the db_* faults act on. `chaos_service_account`: the
        ChaosEngine's service account (Litmus). `sleep` and `clock` are replaceable for tests."""
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if not selector_labels:
            raise ValueError("selector_labels must name the service's pod labels; an empty selector would match "
                             "every pod in the namespace")
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.service = service
        self.selector_labels = dict(selector_labels)
        self.engine: str = engine
        self.poll_interval = poll_interval
        self.recover_timeout = recover_timeout
        self.database_hosts = tuple(database_hosts)
        self.chaos_service_account = chaos_service_account
        self._sleep = sleep
        self._clock = clock

    # --- plumbing ------------------------------------------------------------------------------------------
    def _call(self, action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        return chaos_call(self.engine, action, fn, *args, **kwargs)

    def _fail(self, message: str) -> ChaosBackendError:
        return ChaosBackendError(f"kubernetes chaos ({self.engine}): {message}")

    def _where(self, kind: _Kind, name: str) -> str:
        return f"{kind.kind.lower()} {self.namespace}/{name}"

    def _get(self, kind: _Kind, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self._call(f"reading {self._where(kind, name)}", self.custom.get_namespaced_custom_object,
                              kind.group, VERSION, self.namespace, kind.plural, name)
        except KubernetesChaosError as exc:
            if exc.status == 404:
                return None
            raise

    def _patch(self, kind: _Kind, name: str, body: dict[str, Any], what: str) -> bool:
        """Merge-patch the object; False when it is gone."""
        try:
            self._call(f"patching {self._where(kind, name)} ({what})", self.custom.patch_namespaced_custom_object,
                       kind.group, VERSION, self.namespace, kind.plural, name, body, _content_type=MERGE_PATCH)
        except KubernetesChaosError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def _delete(self, kind: _Kind, name: str) -> None:
        """Delete the object; one already gone is fine."""
        try:
            self._call(f"deleting {self._where(kind, name)}", self.custom.delete_namespaced_custom_object,
                       kind.group, VERSION, self.namespace, kind.plural, name)
        except KubernetesChaosError as exc:
            if exc.status != 404:
                raise

    # --- targets -------------------------------------------------------------------------------------------
    def targets(self, selector: Mapping[str, str]) -> list[str]:
        clashes = {k: v for k, v in selector.items() if k in self.selector_labels and self.selector_labels[k] != v}
        if clashes:
            raise self._fail(f"the selector {_selector(clashes)} contradicts the pod labels of {self.service} "
                             f"({_selector(self.selector_labels)})")
        labels = {**self.selector_labels, **selector}
        listed = self._call(f"listing the pods {_selector(labels)} in {self.namespace}",
                            self.core.list_namespaced_pod, self.namespace, label_selector=_selector(labels))
        names = []
        for pod in listed.get("items") or []:
            meta = pod.get("metadata") or {}
            if (pod.get("status") or {}).get("phase") == "Running" and not meta.get("deletionTimestamp"):
                names.append(str(meta["name"]))
        return sorted(names)

    # --- inject --------------------------------------------------------------------------------------------
    def _kind_for(self, fault: FaultSpec) -> _Kind:
        if self.engine == "litmus":
            return CHAOS_ENGINE
        if fault.kind == "pod_delete":
            return POD_CHAOS
        if fault.kind in ("cpu_hog", "memory_hog"):
            return STRESS_CHAOS
        if fault.kind == "disk_fill":
            raise self._fail("Chaos Mesh has no disk-fill fault (StressChaos stresses cpu and memory only; IOChaos "
                             "delays or fails file operations but fills no space); run disk_fill with the litmus "
                             "engine")
        return NETWORK_CHAOS

    def inject(self, run_id: str, experiment: str, fault: FaultSpec, targets: list[str]) -> Injection:
        if fault.kind not in FAULT_KINDS:
            raise self._fail(f"unknown fault kind {fault.kind!r} (known: {', '.join(FAULT_KINDS)})")
        kind = self._kind_for(fault)
        name = object_name(run_id, experiment)
        existing = self._get(kind, name)
        if existing is not None:
            return self._same_injection(existing, run_id, experiment, fault)
        wanted = sorted(set(targets))
        if not wanted:
            raise self._fail(f"{experiment}: no targets to inject {fault.kind} into")
        body = self._object(kind, name, run_id, experiment, fault, wanted)  # checks the parameters first
        running = self.targets({})
        strangers = [t for t in wanted if t not in running]
        if strangers:
            raise self._fail(f"{experiment}: {', '.join(strangers)} is not a running pod of {self.service} "
                             f"({_selector(self.selector_labels)}) in {self.namespace}; not injecting")
        if self.engine == "litmus" and fault.kind == "network_partition" and wanted != running:
            raise self._fail(f"{experiment}: Litmus's pod-network-partition ignores TARGET_PODS and partitions every "
                             f"pod labelled {_selector(self.selector_labels)} ({len(running)} running); the targets "
                             f"are {len(wanted)} of them. Target all of them, or use the chaos-mesh engine")
        log.info("%s: creating %s for %s on %s", experiment, self._where(kind, name), describe(fault),
                 ", ".join(wanted))
        try:
            created = self._call(f"creating {self._where(kind, name)}", self.custom.create_namespaced_custom_object,
                                 kind.group, VERSION, self.namespace, kind.plural, body)
        except KubernetesChaosError as exc:
            if exc.status != 409:
                raise
            again = self._get(kind, name)  # created concurrently by another try of the same task
            if again is None:
                raise
            return self._same_injection(again, run_id, experiment, fault)
        return self._injection(created)

    def _same_injection(self, obj: Mapping[str, Any], run_id: str, experiment: str, fault: FaultSpec) -> Injection:
        found = self._injection(obj)
        if (found.run_id, found.experiment, found.fault) != (run_id, experiment, fault):
            raise self._fail(f"{self._where(KIND_BY_NAME[str(obj.get('kind'))], found.handles['name'])} exists for "
                             f"run {found.run_id!r}, experiment {found.experiment!r} with {describe(found.fault)}, "
                             f"not {describe(fault)}; recover it first")
        return found

    def _metadata(self, name: str, run_id: str, experiment: str, fault: FaultSpec,
                  targets: list[str]) -> dict[str, Any]:
        return {
            "name": name, "namespace": self.namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, RUN_ID_KEY: label_value(run_id),
                       EXPERIMENT_KEY: label_value(experiment), SERVICE_KEY: label_value(self.service)},
            "annotations": {RUN_ID_KEY: run_id, EXPERIMENT_KEY: experiment, SERVICE_KEY: self.service,
                            FAULT_ANNOTATION: json.dumps(fault.to_dict(), sort_keys=True),
                            TARGETS_ANNOTATION: json.dumps(targets), INJECTED_AT_ANNOTATION: _now()},
        }

    def _object(self, kind: _Kind, name: str, run_id: str, experiment: str, fault: FaultSpec,
                targets: list[str]) -> dict[str, Any]:
        spec = self._litmus_spec(fault, targets) if kind == CHAOS_ENGINE else self._chaos_mesh_spec(fault, targets)
        return {"apiVersion": kind.api_version, "kind": kind.kind,
                "metadata": self._metadata(name, run_id, experiment, fault, targets), "spec": spec}

    def _hosts(self, fault: FaultSpec) -> list[str]:
        if not self.database_hosts:
            raise self._fail(f"{fault.kind} needs the database hosts of {self.service} (database_hosts)")
        return list(self.database_hosts)

    def _litmus_spec(self, fault: FaultSpec, targets: list[str]) -> dict[str, Any]:
        seconds = _seconds(fault)
        env: list[tuple[str, str]] = [("TOTAL_CHAOS_DURATION", str(seconds))]
        if fault.kind != "network_partition":  # the partition experiment does not read TARGET_PODS
            env.append(("TARGET_PODS", ",".join(targets)))
        kind = fault.kind
        if kind == "pod_delete":
            env += [("CHAOS_INTERVAL", str(seconds)), ("FORCE", "false")]
        elif kind == "cpu_hog":
            env += [("CPU_CORES", str(_whole(fault, "cpu_cores", 1, minimum=1))),
                    ("CPU_LOAD", str(round(100 * _param(fault, "cpu_load", 0.9, minimum=0, maximum=1))))]
        elif kind == "memory_hog":
            env.append(("MEMORY_CONSUMPTION", str(_whole(fault, "memory_mb", None, minimum=1))))
        elif kind == "network_latency":
            env += [("NETWORK_LATENCY", str(_whole(fault, "latency_ms", None, minimum=1))),
                    ("JITTER", str(_whole(fault, "jitter_ms", 0, minimum=0)))]
        elif kind == "network_loss":
            env.append(("NETWORK_PACKET_LOSS_PERCENTAGE", str(round(_param(fault, "loss_percent", None, minimum=0,
                                                                           maximum=100)))))
        elif kind == "network_partition":
            env.append(("POLICY_TYPES", "ingress"))
        elif kind == "disk_fill":
            env.append(("EPHEMERAL_STORAGE_MEBIBYTES", str(_whole(fault, "disk_fill_mb", None, minimum=1))))
        elif kind == "db_failure":
            rate = _param(fault, "db_fail_rate", 1.0, minimum=0, maximum=1)
            env += [("NETWORK_PACKET_LOSS_PERCENTAGE", str(round(100 * rate))),
                    ("DESTINATION_HOSTS", ",".join(self._hosts(fault)))]
        elif kind == "db_latency":
            env += [("NETWORK_LATENCY", str(_whole(fault, "db_latency_ms", None, minimum=1))),
                    ("DESTINATION_HOSTS", ",".join(self._hosts(fault)))]
        return {
            "engineState": "active",
            "appinfo": {"appns": self.namespace, "applabel": _selector(self.selector_labels), "appkind": "deployment"},
            "chaosServiceAccount": self.chaos_service_account,
            "jobCleanUpPolicy": "delete",
            "experiments": [{"name": LITMUS_EXPERIMENT[kind],
                             "spec": {"components": {"env": [{"name": k, "value": v} for k, v in env]}}}],
        }

    def _chaos_mesh_spec(self, fault: FaultSpec, targets: list[str]) -> dict[str, Any]:
        spec: dict[str, Any] = {"mode": "all", "selector": {"pods": {self.namespace: list(targets)}}}
        kind = fault.kind
        if kind == "pod_delete":
            return {"action": "pod-kill", **spec}  # one-shot: Chaos Mesh ignores a duration for pod-kill
        if kind == "cpu_hog":
            spec["stressors"] = {"cpu": {"workers": _whole(fault, "cpu_cores", 1, minimum=1),
                                         "load": round(100 * _param(fault, "cpu_load", 0.9, minimum=0, maximum=1))}}
        elif kind == "memory_hog":
            spec["stressors"] = {"memory": {"workers": 1, "size": f"{_whole(fault, 'memory_mb', None, minimum=1)}MB"}}
        elif kind in ("network_latency", "db_latency"):
            latency = _whole(fault, "latency_ms" if kind == "network_latency" else "db_latency_ms", None, minimum=1)
            jitter = _whole(fault, "jitter_ms", 0, minimum=0) if kind == "network_latency" else 0
            spec.update(action="delay", direction="to", delay={"latency": f"{latency}ms", "jitter": f"{jitter}ms"})
        elif kind in ("network_loss", "db_failure"):
            if kind == "network_loss":
                percent = _param(fault, "loss_percent", None, minimum=0, maximum=100)
            else:
                percent = 100 * _param(fault, "db_fail_rate", 1.0, minimum=0, maximum=1)
            spec.update(action="loss", direction="to", loss={"loss": f"{percent:g}"})
        elif kind == "network_partition":
            spec.update(action="partition", direction="from")
        if kind in ("db_failure", "db_latency"):
            spec["externalTargets"] = self._hosts(fault)
        spec["duration"] = f"{_seconds(fault)}s"
        return spec

    # --- reading objects back ------------------------------------------------------------------------------
    def _injection(self, obj: Mapping[str, Any]) -> Injection:
        meta = obj.get("metadata") or {}
        kind = KIND_BY_NAME.get(str(obj.get("kind")))
        name = str(meta.get("name"))
        annotations = meta.get("annotations") or {}
        where = f"{str(obj.get('kind')).lower()} {self.namespace}/{name}"
        try:
            if kind is None:
                raise KeyError("kind")
            fault = FaultSpec.from_dict(json.loads(annotations[FAULT_ANNOTATION]))
            targets = tuple(str(t) for t in json.loads(annotations[TARGETS_ANNOTATION]))
            run_id, experiment = str(annotations[RUN_ID_KEY]), str(annotations[EXPERIMENT_KEY])
            service, injected_at = str(annotations[SERVICE_KEY]), str(annotations[INJECTED_AT_ANNOTATION])
        except (KeyError, ValueError, TypeError) as exc:
            raise self._fail(f"{where} is labelled {MANAGED_BY_LABEL}={MANAGED_BY} but its annotations are not what "
                             f"gamesre writes ({exc!s}); inspect it by hand") from None
        handles: dict[str, Any] = {"engine": self.engine, "namespace": self.namespace, "apiVersion": kind.api_version,
                                   "kind": kind.kind, "plural": kind.plural, "name": name}
        if kind == CHAOS_ENGINE:
            experiments = (obj.get("spec") or {}).get("experiments") or [{}]
            litmus_experiment = str(experiments[0].get("name") or LITMUS_EXPERIMENT.get(fault.kind, ""))
            handles.update(experiment=litmus_experiment, result=f"{name}-{litmus_experiment}")
        return Injection(run_id=run_id, experiment=experiment, backend=self.kind, service=service, fault=fault,
                         targets=targets, injected_at=injected_at, handles=handles)

    def _handle(self, injection: Injection) -> tuple[_Kind, str]:
        handles = injection.handles
        if injection.backend != self.kind or handles.get("engine") != self.engine:
            raise self._fail(f"{injection.experiment}: the injection was made by {injection.backend}/"
                             f"{handles.get('engine')}, not kubernetes/{self.engine}")
        if handles.get("namespace", self.namespace) != self.namespace:
            raise self._fail(f"{injection.experiment}: the injection is in namespace {handles.get('namespace')}, "
                             f"this backend works in {self.namespace}")
        kind = KIND_BY_NAME.get(str(handles.get("kind")))
        if kind is None or kind not in KINDS_OF_ENGINE[self.engine] or not handles.get("name"):
            raise self._fail(f"{injection.experiment}: the injection names no {self.engine} object ({dict(handles)})")
        return kind, str(handles["name"])

    # --- abort ---------------------------------------------------------------------------------------------
    def _stopped(self, kind: _Kind, obj: Mapping[str, Any]) -> bool:
        if kind == CHAOS_ENGINE:
            return (obj.get("spec") or {}).get("engineState") == "stop"
        return ((obj.get("metadata") or {}).get("annotations") or {}).get(PAUSE_ANNOTATION) == "true"

    def _stop(self, kind: _Kind, name: str) -> None:
        if kind == CHAOS_ENGINE:
            self._patch(kind, name, {"spec": {"engineState": "stop"}}, "engineState: stop")
        else:
            self._patch(kind, name, {"metadata": {"annotations": {PAUSE_ANNOTATION: "true"}}}, "pause")

    def abort(self, injection: Injection) -> None:
        kind, name = self._handle(injection)
        obj = self._get(kind, name)
        if obj is None or self._stopped(kind, obj):
            return
        log.warning("%s: aborting %s", injection.experiment, self._where(kind, name))
        self._stop(kind, name)

    # --- recover -------------------------------------------------------------------------------------------
    def recover(self, injection: Injection) -> Recovery:
        kind, name = self._handle(injection)
        where = self._where(kind, name)
        obj = self._get(kind, name)
        if obj is None:
            return self._recover_gone(injection, kind, name)
        confirmed, remaining, detail = self._confirmation(injection, kind, obj)
        if not confirmed and not self._stopped(kind, obj):
            log.warning("%s: stopping %s to recover it", injection.experiment, where)
            self._stop(kind, name)
        deadline = self._clock() + self.recover_timeout
        while not confirmed:
            if self._clock() >= deadline:
                return Recovery(False, remaining, f"{where}: recovery not confirmed within {self.recover_timeout:g}s "
                                                  f"({detail}); left in place, nothing deleted")
            self._sleep(self.poll_interval)
            current = self._get(kind, name)
            if current is None:
                return self._recover_gone(injection, kind, name)
            confirmed, remaining, detail = self._confirmation(injection, kind, current)
        self._delete(kind, name)
        if kind == CHAOS_ENGINE:
            self._delete(CHAOS_RESULT, _result_name(injection, name))
        return Recovery(True, (), f"{where}: {detail}; deleted")

    def _recover_gone(self, injection: Injection, kind: _Kind, name: str) -> Recovery:
        where = self._where(kind, name)
        if kind != CHAOS_ENGINE:
            return Recovery(True, (), f"{where} is gone: nothing injected")
        result_name = _result_name(injection, name)
        result = self._get(CHAOS_RESULT, result_name)
        if result is None:
            return Recovery(True, (), f"{where} is gone: nothing injected")
        done, remaining, detail = self._litmus_result(injection, result_name, result)
        if not done:
            return Recovery(False, remaining, f"{where} is gone but {detail}; left in place, nothing deleted")
        self._delete(CHAOS_RESULT, result_name)
        return Recovery(True, (), f"{where} is gone and {detail}; deleted the chaosresult")

    def _confirmation(self, injection: Injection, kind: _Kind,
                      obj: Mapping[str, Any]) -> tuple[bool, tuple[str, ...], str]:
        """(recovery confirmed, what is still injected, what the status says)."""
        everything = tuple(f"{t}: {describe(injection.fault)}" for t in injection.targets)
        status = dict(obj.get("status") or {})
        if kind == CHAOS_ENGINE:
            engine_status = str(status.get("engineStatus") or "")
            if engine_status not in LITMUS_STOPPED:
                return False, everything, f"engineStatus {engine_status or 'not set'}, not stopped or completed"
            result_name = _result_name(injection, str(injection.handles["name"]))
            result = self._get(CHAOS_RESULT, result_name)
            if result is None:
                return True, (), f"engineStatus {engine_status}, no chaosresult {result_name} (nothing was injected)"
            done, remaining, detail = self._litmus_result(injection, result_name, result)
            return done, remaining, f"engineStatus {engine_status}, {detail}"
        experiment = dict(status.get("experiment") or {})
        desired = str(experiment.get("desiredPhase") or "")
        records = [dict(r) for r in experiment.get("containerRecords") or []]
        moving = [r for r in records if r.get("phase") != CHAOS_MESH_RECOVERED]
        if desired != "Stop":
            return False, everything, f"desiredPhase {desired or 'not set'}, not Stop"
        if moving:
            remaining = tuple(f"{_pod_of(str(r.get('id')))}: {describe(injection.fault)} ({r.get('phase')})"
                              for r in moving)
            return False, remaining, (f"desiredPhase Stop, {len(moving)} of {len(records)} records not "
                                      f"{CHAOS_MESH_RECOVERED}")
        return True, (), f"desiredPhase Stop, all {len(records)} records {CHAOS_MESH_RECOVERED}"

    def _litmus_result(self, injection: Injection, result_name: str,
                       result: Mapping[str, Any]) -> tuple[bool, tuple[str, ...], str]:
        status = dict(result.get("status") or {})
        phase = str((status.get("experimentStatus") or {}).get("phase") or "")
        verdict = str((status.get("experimentStatus") or {}).get("verdict") or "")
        injected = sorted({str(t.get("name")) for t in (status.get("history") or {}).get("targets") or []
                           if str(t.get("chaosStatus", "")).lower() == "injected"}
                          | {key.split("/", 1)[-1] for key, value in
                             ((result.get("metadata") or {}).get("annotations") or {}).items()
                             if str(value).lower() == "injected"})
        detail = f"chaosresult {result_name} phase {phase or 'not set'}" + (f", verdict {verdict}" if verdict else "")
        if injected:
            return (False, tuple(f"{t}: {describe(injection.fault)}" for t in injected),
                    f"{detail}, still injected: {', '.join(injected)}")
        if not (phase.startswith("Completed") or phase in LITMUS_RESULT_DONE):
            return False, tuple(f"{t}: {describe(injection.fault)}" for t in injection.targets), detail
        return True, (), detail

    # --- injected ------------------------------------------------------------------------------------------
    def injected(self, service: str | None = None) -> list[Injection]:
        labels = {MANAGED_BY_LABEL: MANAGED_BY}
        if service is not None:
            labels[SERVICE_KEY] = label_value(service)
        found: list[Injection] = []
        for kind in KINDS_OF_ENGINE[self.engine]:
            listed = self._call(f"listing the {kind.plural} of gamesre in {self.namespace}",
                                self.custom.list_namespaced_custom_object, kind.group, VERSION, self.namespace,
                                kind.plural, label_selector=_selector(labels))
            for item in listed.get("items") or []:
                item = {"kind": kind.kind, **dict(item)}  # list items may omit kind
                injection = self._injection(item)
                if service is None or injection.service == service:
                    found.append(injection)
        return sorted(found, key=lambda i: (i.injected_at, i.run_id, i.experiment))


def _result_name(injection: Injection, engine_name: str) -> str:
    """Litmus names the ChaosResult `<engine>-<experiment>`."""
    experiment = injection.handles.get("experiment") or LITMUS_EXPERIMENT.get(injection.fault.kind, "")
    return str(injection.handles.get("result") or f"{engine_name}-{experiment}")


def _pod_of(record_id: str) -> str:
    """A Chaos Mesh record id is `<namespace>/<pod>[/<container>]`."""
    parts = record_id.split("/")
    return parts[1] if len(parts) >= 2 else record_id


def _seconds(fault: FaultSpec) -> int:
    if not isinstance(fault.duration_s, int | float) or not math.isfinite(fault.duration_s) or fault.duration_s <= 0:
        raise ChaosBackendError(f"{fault.kind}: duration_s must be a positive number of seconds, "
                                f"got {fault.duration_s!r}")
    return max(1, math.ceil(fault.duration_s))


def _param(fault: FaultSpec, key: str, default: float | None, *, minimum: float | None = None,
           maximum: float | None = None) -> float:
    value = fault.params.get(key, default)
    if value is None:
        raise ChaosBackendError(f"{fault.kind} needs the parameter {key}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ChaosBackendError(f"{fault.kind}: {key} must be a number, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"{minimum if minimum is not None else '-inf'}..{maximum if maximum is not None else 'inf'}"
        raise ChaosBackendError(f"{fault.kind}: {key} must be within {bounds}, got {value!r}")
    return float(value)


def _whole(fault: FaultSpec, key: str, default: int | None, *, minimum: int) -> int:
    value = _param(fault, key, default, minimum=minimum)
    if value != int(value):
        raise ChaosBackendError(f"{fault.kind}: {key} must be a whole number, got {value!r}")
    return int(value)


def for_service(service: ServiceSpec, connections: Connections) -> KubernetesChaosBackend:
    """The registered factory: the pods of the service's Deployment (services.yaml `kubernetes`), through the
    engine and database hosts of its `chaos` settings."""
    coordinates = service.kubernetes
    if coordinates is None or not coordinates.deployment:  # services.yaml requires them for this backend
        raise ChaosBackendError(f"kubernetes backend: {service.name} has no kubernetes.deployment in services.yaml")
    return KubernetesChaosBackend(connections.kubernetes(), namespace=coordinates.namespace, service=service.name,
                                  selector_labels={"app": coordinates.deployment}, engine=service.chaos.engine,
                                  database_hosts=list(service.chaos.database_hosts))


FAULT_BACKENDS.register(KubernetesChaosBackend.kind, for_service)
