"""Kubernetes operations of the reliability workflows, on a `kubernetes.client.ApiClient` passed in.

The Airflow layer builds the ApiClient from the cncf-kubernetes provider's `KubernetesHook(...).get_conn()`;
this module does not import Airflow. Event scaling works on the HorizontalPodAutoscaler (autoscaling/v2):

- `set_hpa_min_replicas` raises spec.minReplicas (and spec.maxReplicas when the new minimum exceeds it) with
  a JSON merge patch (RFC 7386, `application/merge-patch+json`, guarded by the resourceVersion just read).
  With an `event_id` the previous bounds are written into the annotation `gamesre.io/event-scaling` in the
  same patch, so a retry finds the original values instead of the raised ones, and the scale-back restores
  exactly what was there before;
- `restore_hpa` puts those bounds back and removes the annotation; both are no-ops when already done.

Errors: every API failure raises `KubernetesError` with the HTTP status, the reason and the API's message.
The content type is always given explicitly: for a dict body the generated client would otherwise send
`application/json-patch+json`, which the API server refuses.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from gamesre.calendar.occurrence import ServiceScaling
from gamesre.calendar.scaling import EVENT_SCALERS, EventScaler, ScaleChange
from gamesre.core.errors import OutsideSystemError
from gamesre.core.services import ServiceCatalog

SCALING_ANNOTATION = "gamesre.io/event-scaling"
MERGE_PATCH = "application/merge-patch+json"


class KubernetesError(OutsideSystemError):
    """The Kubernetes API refused or failed a request (or could not be reached: status None)."""

    def __init__(self, action: str, status: int | None, reason: str, message: str):
        code = f"HTTP {status} " if status is not None else ""
        super().__init__(f"Kubernetes: {action} failed: {code}{reason}: {message}")
        self.action = action
        self.status = status
        self.reason = reason
        self.message = message


class HpaScalingConflict(RuntimeError):
    """The HPA is already scaled for another event; restore it before scaling it for a new one."""


@dataclass(frozen=True)
class HpaBounds:
    min_replicas: int
    max_replicas: int

    def to_json(self) -> dict[str, int]:
        return {"minReplicas": self.min_replicas, "maxReplicas": self.max_replicas}


@dataclass(frozen=True)
class ScalingRecord:
    """What the annotation says: which event scaled the HPA and the bounds it had before."""

    event_id: str
    previous: HpaBounds


@dataclass(frozen=True)
class HpaState:
    namespace: str
    name: str
    bounds: HpaBounds
    current_replicas: int | None
    desired_replicas: int | None
    resource_version: str
    record: ScalingRecord | None


@dataclass(frozen=True)
class HpaChange:
    """The outcome of a scale-up or a scale-back; `previous` is what to restore later."""

    namespace: str
    name: str
    previous: HpaBounds
    target: HpaBounds
    changed: bool
    raised_max: bool
    message: str


ErrorFactory = Callable[[int | None, str, str], Exception]  # (HTTP status or None, reason, message)


def json_call(error: ErrorFactory, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run one generated-client call and return the JSON object the API answered with.

    Every failure is raised as `error(status, reason, message)`: the API's refusal (its Status document's
    reason and message), an unreachable server (status None, "Unreachable") or an answer that is not a JSON
    object ("BadResponse"). The backends pass a factory that names themselves and the action.
    """
    try:
        response = fn(*args, _preload_content=False, **kwargs)
    except ApiException as exc:
        message, reason = exc.body or "", exc.reason or ""
        try:
            doc = json.loads(exc.body) if exc.body else {}
            if isinstance(doc, dict):
                message = str(doc.get("message", message))
                reason = str(doc.get("reason") or reason)
        except ValueError:
            pass
        raise error(exc.status, reason, message.strip() or "no message") from None
    except Urllib3Error as exc:
        raise error(None, "Unreachable", str(exc)) from None
    try:
        doc = json.loads(response.data)
    except (ValueError, TypeError):
        doc = None
    if not isinstance(doc, dict):
        raise error(response.status, "BadResponse", "the answer is not a JSON object") from None
    return doc


def _call(action: str, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return json_call(lambda status, reason, message: KubernetesError(action, status, reason, message),
                     fn, *args, **kwargs)


def _record(annotations: dict[str, str] | None, where: str) -> ScalingRecord | None:
    raw = (annotations or {}).get(SCALING_ANNOTATION)
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
        return ScalingRecord(str(doc["event"]), HpaBounds(int(doc["minReplicas"]), int(doc["maxReplicas"])))
    except (ValueError, KeyError, TypeError):
        raise KubernetesError(f"reading {where}", None, "BadAnnotation",
                              f"annotation {SCALING_ANNOTATION} is not what gamesre writes: {raw!r}") from None


def get_hpa(api_client: client.ApiClient, namespace: str, name: str) -> HpaState:
    """The HPA's replica bounds, its current and desired replicas and the scaling record, if any."""
    where = f"horizontalpodautoscaler {namespace}/{name}"
    doc = _call(f"reading {where}", client.AutoscalingV2Api(api_client).read_namespaced_horizontal_pod_autoscaler,
                name, namespace)
    spec, status, meta = doc.get("spec") or {}, doc.get("status") or {}, doc.get("metadata") or {}
    return HpaState(
        namespace=namespace, name=name,
        bounds=HpaBounds(int(spec.get("minReplicas", 1)), int(spec["maxReplicas"])),
        current_replicas=status.get("currentReplicas"), desired_replicas=status.get("desiredReplicas"),
        resource_version=str(meta.get("resourceVersion", "")),
        record=_record(meta.get("annotations"), where),
    )


def _patch_hpa(api_client: client.ApiClient, namespace: str, name: str, body: dict[str, Any]) -> HpaState:
    where = f"horizontalpodautoscaler {namespace}/{name}"
    _call(f"patching {where}", client.AutoscalingV2Api(api_client).patch_namespaced_horizontal_pod_autoscaler,
          name, namespace, body, _content_type=MERGE_PATCH)
    return get_hpa(api_client, namespace, name)


def set_hpa_min_replicas(api_client: client.ApiClient, namespace: str, name: str, min_replicas: int, *,
                         event_id: str | None = None) -> HpaChange:
    """Raise (or set) the HPA's minReplicas; returns the bounds to restore afterwards.

    maxReplicas is raised to min_replicas when it would be below it (the API refuses min > max). With an
    event_id the previous bounds are recorded on the HPA, so a retry reports the original bounds.
    """
    if isinstance(min_replicas, bool) or not isinstance(min_replicas, int) or min_replicas < 1:
        raise ValueError(f"min_replicas must be a whole number >= 1, got {min_replicas!r}")
    state = get_hpa(api_client, namespace, name)
    if state.record is not None and event_id is not None and state.record.event_id != event_id:
        raise HpaScalingConflict(
            f"horizontalpodautoscaler {namespace}/{name} is scaled for event {state.record.event_id!r} "
            f"(previous bounds {state.record.previous.to_json()}); restore it before scaling for {event_id!r}")
    previous = state.record.previous if state.record is not None else state.bounds
    target = HpaBounds(min_replicas, max(previous.max_replicas, min_replicas))
    raised_max = target.max_replicas > previous.max_replicas
    recorded = event_id is None or state.record is not None
    if state.bounds == target and recorded:
        return HpaChange(namespace, name, previous, target, False, raised_max,
                         f"{namespace}/{name} already has minReplicas={target.min_replicas} "
                         f"maxReplicas={target.max_replicas}; nothing to do")
    spec: dict[str, Any] = {"minReplicas": target.min_replicas}
    if target.max_replicas != state.bounds.max_replicas:
        spec["maxReplicas"] = target.max_replicas
    body: dict[str, Any] = {"metadata": {"resourceVersion": state.resource_version}, "spec": spec}
    if event_id is not None:
        record = json.dumps({"event": event_id, **previous.to_json()}, sort_keys=True)
        body["metadata"]["annotations"] = {SCALING_ANNOTATION: record}
    _patch_hpa(api_client, namespace, name, body)
    message = (f"{namespace}/{name}: minReplicas {previous.min_replicas} -> {target.min_replicas}"
               + (f"; maxReplicas raised {previous.max_replicas} -> {target.max_replicas} because the new minimum "
                  "exceeded it" if raised_max else ""))
    return HpaChange(namespace, name, previous, target, True, raised_max, message)


def restore_hpa(api_client: client.ApiClient, namespace: str, name: str, *, previous: HpaBounds | None = None,
                event_id: str | None = None) -> HpaChange:
    """Put the HPA's bounds back: `previous` if given, else those recorded for `event_id` (or any event).

    Removes the scaling record. A no-op when there is nothing recorded and the bounds already match.
    """
    state = get_hpa(api_client, namespace, name)
    record = state.record
    if record is not None and event_id is not None and record.event_id != event_id:
        raise HpaScalingConflict(f"horizontalpodautoscaler {namespace}/{name} is scaled for event "
                                 f"{record.event_id!r}, not {event_id!r}; not restoring it")
    target = previous or (record.previous if record is not None else None)
    if target is None:
        return HpaChange(namespace, name, state.bounds, state.bounds, False, False,
                         f"{namespace}/{name}: no scale-up recorded"
                         + (f" for event {event_id!r}" if event_id else "") + "; nothing to restore")
    if state.bounds == target and record is None:
        return HpaChange(namespace, name, state.bounds, target, False, False,
                         f"{namespace}/{name} already has minReplicas={target.min_replicas} "
                         f"maxReplicas={target.max_replicas}; nothing to do")
    spec = {k: v for k, v in target.to_json().items() if v != state.bounds.to_json()[k]}
    body: dict[str, Any] = {"metadata": {"resourceVersion": state.resource_version}}
    if spec:
        body["spec"] = spec
    if record is not None:
        body["metadata"]["annotations"] = {SCALING_ANNOTATION: None}
    _patch_hpa(api_client, namespace, name, body)
    return HpaChange(namespace, name, state.bounds, target, True, False,
                     f"{namespace}/{name}: restored minReplicas {state.bounds.min_replicas} -> {target.min_replicas}, "
                     f"maxReplicas {state.bounds.max_replicas} -> {target.max_replicas}")


class HpaEventScaler(EventScaler):
    """Event scaling on Kubernetes: the service's HPA minReplicas raised for the event, then restored."""

    def __init__(self, services: ServiceCatalog, api_client: client.ApiClient):
        self.services = services
        self.api_client = api_client

    def _hpa(self, service: str) -> tuple[str, str]:
        coords = self.services.get(service).kubernetes
        assert coords is not None and coords.hpa is not None  # services.yaml validation guarantees both
        return coords.namespace, coords.hpa

    def scale_up(self, event_id: str, scaling: ServiceScaling) -> ScaleChange:
        change = set_hpa_min_replicas(self.api_client, *self._hpa(scaling.service), scaling.min_replicas,
                                      event_id=event_id)
        return ScaleChange(change.changed, change.message)

    def scale_back(self, event_id: str, scaling: ServiceScaling) -> ScaleChange:
        change = restore_hpa(self.api_client, *self._hpa(scaling.service), event_id=event_id)
        return ScaleChange(change.changed, change.message)


EVENT_SCALERS.register("kubernetes", lambda services, connections: HpaEventScaler(services,
                                                                                  connections.kubernetes()))
