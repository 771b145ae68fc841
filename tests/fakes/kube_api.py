"""A small stateful fake of the Kubernetes API server for tests: the real REST paths and documented semantics.

No Kubernetes API server can run on these machines (DESIGN.md, decision 5), so the Kubernetes backends are
tested at the HTTP level: the real kubernetes client (directly or through the cncf-kubernetes provider's
hooks) talks to this server, which keeps objects in memory and records every request so a test can assert
exact paths, patch types and bodies.

Served (namespaced; the fake accepts any namespace without creating it first):
- core/v1 pods, services, configmaps            /api/v1/namespaces/{ns}/{plural}[/{name}[/status]]
- apps/v1 deployments and replicasets (+ scale, status)  /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale
  (no controller runs: a test seeds the ReplicaSets and statuses a controller would write)
- autoscaling/v2 horizontalpodautoscalers (+ status)
- custom resources (status subresource; scale for Argo Rollouts) /apis/{group}/{version}/namespaces/{ns}/{plural}
  registered by default: argoproj.io/v1alpha1 rollouts, litmuschaos.io/v1alpha1 chaosengines and chaosresults,
  chaos-mesh.org/v1alpha1 podchaos, networkchaos, stresschaos, iochaos. Others: pass `resources=`.
- cluster-wide lists /api/v1/{plural} and /apis/{group}/{version}/{plural}, and /version.

Semantics (as the Kubernetes API documents them):
- GET, LIST (labelSelector: k=v, k!=v, k, !k), POST (create; 409 AlreadyExists; generateName), PUT (update;
  409 Conflict when metadata.resourceVersion is stale), DELETE, PATCH with
  `application/merge-patch+json` (RFC 7386), `application/json-patch+json` (RFC 6902) and
  `application/strategic-merge-patch+json` (built-in kinds; lists of containers, env, volumes, ports, ...
  merge by their key, other lists replace). Custom resources answer a strategic merge patch with 415, as
  the real API server does; unsupported types (including server-side apply) get 415 too.
- Errors are `Status` objects with code, reason, message and details, worded like the API server's.
- resourceVersion is one counter for the whole store, bumped on every write; metadata.generation grows when
  anything but metadata and status changes.
- For kinds with a status subresource: writes to the main resource (create, update, patch) ignore `.status`;
  writes to `/status` change only `.status`.
- DELETE answers with a `Status` (Success) for built-in kinds and with the deleted object for custom ones.
"""
from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.kube_patch import PatchError, json_patch, merge_patch, strategic_merge_patch

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class ResourceType:
    """One REST resource the fake serves."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    builtin: bool = True  # built-in kinds accept strategic merge patches; custom resources do not
    status_subresource: bool = True
    scale_subresource: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How the API server names the resource in messages: `deployments.apps`, `pods`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def base_path(self, namespace: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{root}/namespaces/{namespace}/{self.plural}" if namespace is not None else f"{root}/{self.plural}"


BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "pods", "Pod"),
    ResourceType("", "v1", "services", "Service"),
    ResourceType("", "v1", "configmaps", "ConfigMap", status_subresource=False),
    ResourceType("apps", "v1", "deployments", "Deployment", scale_subresource=True),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", scale_subresource=True),
    ResourceType("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
)
CUSTOM_RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("argoproj.io", "v1alpha1", "rollouts", "Rollout", builtin=False, scale_subresource=True),
    ResourceType("litmuschaos.io", "v1alpha1", "chaosengines", "ChaosEngine", builtin=False),
    ResourceType("litmuschaos.io", "v1alpha1", "chaosresults", "ChaosResult", builtin=False),
    ResourceType("chaos-mesh.org", "v1alpha1", "podchaos", "PodChaos", builtin=False),
    ResourceType("chaos-mesh.org", "v1alpha1", "networkchaos", "NetworkChaos", builtin=False),
    ResourceType("chaos-mesh.org", "v1alpha1", "stresschaos", "StressChaos", builtin=False),
    ResourceType("chaos-mesh.org", "v1alpha1", "iochaos", "IOChaos", builtin=False),
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str | None  # without parameters such as charset
    body: Any  # parsed JSON, the raw text when it was not JSON, None without a body
    status: int = 0  # the HTTP status the fake answered with


class ApiError(Exception):
    """An error answer: becomes a `Status` object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            doc["details"] = self.details
        return doc


def _details(rt: ResourceType, name: str) -> dict[str, Any]:
    return {"name": name, "group": rt.group, "kind": rt.plural} if rt.group else {"name": name, "kind": rt.plural}


def _not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))


def _unsupported_media(rt: ResourceType) -> ApiError:
    accepted = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
    if rt.builtin:
        accepted.insert(2, STRATEGIC_MERGE_PATCH)
    return ApiError(415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"{', '.join(accepted)}")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = re.split("==?", term, maxsplit=1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


class FakeKubeAPI:
    """The fake API server; use as a context manager: `with FakeKubeAPI() as kube: ... kube.url ...`."""

    def __init__(self, resources: tuple[ResourceType, ...] = BUILTIN_RESOURCES + CUSTOM_RESOURCES):
        self.resources = {(r.group, r.version, r.plural): r for r in resources}
        self._objects: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
        self._revision = 100
        self._lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> FakeKubeAPI:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-kube-api",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeKubeAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake API server is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        """A kubeconfig (as a dict) that points a client at this fake."""
        return {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
        }

    # --- direct access for tests (not recorded, no API rules) ----------------------------------------------
    def resource_type(self, api_version: str, plural: str) -> ResourceType:
        group, _, version = api_version.rpartition("/")
        try:
            return self.resources[(group, version, plural)]
        except KeyError:
            raise KeyError(f"the fake does not serve {plural} in {api_version}") from None

    def _type_for_kind(self, api_version: str, kind: str) -> ResourceType:
        for rt in self.resources.values():
            if rt.api_version == api_version and rt.kind == kind:
                return rt
        raise KeyError(f"the fake does not serve kind {kind} in {api_version}")

    def seed(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object as a controller or a previous run left it, status included."""
        obj = copy.deepcopy(obj)
        rt = self._type_for_kind(obj["apiVersion"], obj["kind"])
        meta = obj.setdefault("metadata", {})
        namespace = meta.setdefault("namespace", "default")
        with self._lock:
            self._stamp_new(obj)
            self._objects[(rt.group, rt.version, rt.plural, namespace, meta["name"])] = obj
        return copy.deepcopy(obj)

    def get(self, api_version: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        rt = self.resource_type(api_version, plural)
        with self._lock:
            obj = self._objects.get((rt.group, rt.version, rt.plural, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests for exactly this path (and method)."""
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def writes(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]

    def clear_requests(self) -> None:
        self.requests.clear()

    # --- the store -----------------------------------------------------------------------------------------
    def _next_revision(self) -> str:
        self._revision += 1
        return str(self._revision)

    def _stamp_new(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = self._next_revision()

    def _key(self, rt: ResourceType, namespace: str, name: str) -> tuple[str, str, str, str, str]:
        return (rt.group, rt.version, rt.plural, namespace, name)

    def _current(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self._objects.get(self._key(rt, namespace, name))
        if obj is None:
            raise _not_found(rt, name)
        return obj

    def list(self, rt: ResourceType, namespace: str | None, selector: str | None) -> dict[str, Any]:
        with self._lock:
            items = [copy.deepcopy(o) for (g, v, p, ns, _), o in sorted(self._objects.items())
                     if (g, v, p) == (rt.group, rt.version, rt.plural) and namespace in (None, ns)
                     and (not selector or _selector_matches(selector, o["metadata"].get("labels") or {}))]
            return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": str(self._revision)}, "items": items}

    def read(self, rt: ResourceType, namespace: str, name: str, sub: str | None) -> dict[str, Any]:
        with self._lock:
            obj = copy.deepcopy(self._current(rt, namespace, name))
        return self._scale_view(rt, obj) if sub == "scale" else obj

    def create(self, rt: ResourceType, namespace: str, body: Any) -> dict[str, Any]:
        obj = self._check_body(rt, namespace, body, name=None)
        meta = obj["metadata"]
        with self._lock:
            if not meta.get("name"):
                if not meta.get("generateName"):
                    raise ApiError(422, "Invalid", f"{rt.kind} \"\" is invalid: metadata.name: Required value: "
                                   "name or generateName is required",
                                   {"kind": rt.plural, **({"group": rt.group} if rt.group else {})})
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            name = meta["name"]
            if self._key(rt, namespace, name) in self._objects:
                raise ApiError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', _details(rt, name))
            for generated in ("uid", "creationTimestamp", "resourceVersion", "generation"):
                meta.pop(generated, None)
            if rt.status_subresource:
                obj.pop("status", None)  # create ignores the status when the kind has a status subresource
            if rt.kind == "Deployment":
                obj.setdefault("spec", {}).setdefault("replicas", 1)
            self._stamp_new(obj)
            self._objects[self._key(rt, namespace, name)] = obj
            return copy.deepcopy(obj)

    def replace(self, rt: ResourceType, namespace: str, name: str, sub: str | None, body: Any) -> dict[str, Any]:
        with self._lock:
            current = self._current(rt, namespace, name)
            if sub == "scale":
                new_scale = self._check_scale_body(rt, name, body)
                self._precondition(rt, name, current, new_scale.get("metadata", {}).get("resourceVersion"))
                return self._write_scale(rt, namespace, name, current, new_scale)
            obj = self._check_body(rt, namespace, body, name=name)
            self._precondition(rt, name, current, obj["metadata"].get("resourceVersion"))
            return self._write(rt, namespace, name, current, obj, sub)

    def patch(self, rt: ResourceType, namespace: str, name: str, sub: str | None, content_type: str | None,
              body: Any) -> dict[str, Any]:
        if content_type == STRATEGIC_MERGE_PATCH and not rt.builtin:
            raise _unsupported_media(rt)
        if content_type not in (MERGE_PATCH, JSON_PATCH, STRATEGIC_MERGE_PATCH):
            raise _unsupported_media(rt)
        with self._lock:
            current = self._current(rt, namespace, name)
            base = self._scale_view(rt, copy.deepcopy(current)) if sub == "scale" else copy.deepcopy(current)
            try:
                if content_type == MERGE_PATCH:
                    patched = merge_patch(base, body)
                elif content_type == JSON_PATCH:
                    patched = json_patch(base, body)
                else:
                    patched = strategic_merge_patch(base, body)
            except PatchError as exc:
                reason = "BadRequest" if exc.status == 400 else "Invalid"
                raise ApiError(exc.status, reason, str(exc), _details(rt, name)) from None
            if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
                raise ApiError(422, "Invalid", f"{rt.kind} \"{name}\" is invalid: the patch removed the metadata",
                               _details(rt, name))
            # A resourceVersion in the patch is a precondition; one left unchanged by the patch is not.
            self._precondition(rt, name, current, patched["metadata"].get("resourceVersion"))
            if patched["metadata"].get("name", name) != name:
                raise ApiError(400, "BadRequest", f"the name of the object ({patched['metadata']['name']}) does "
                               f"not match the name on the URL ({name})")
            if sub == "scale":
                return self._write_scale(rt, namespace, name, current, patched)
            return self._write(rt, namespace, name, current, patched, sub)

    def delete(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            obj = self._current(rt, namespace, name)
            del self._objects[self._key(rt, namespace, name)]
            self._next_revision()
        if not rt.builtin:
            return copy.deepcopy(obj)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {**_details(rt, name), "uid": obj["metadata"]["uid"]}}

    # --- write rules ---------------------------------------------------------------------------------------
    def _check_body(self, rt: ResourceType, namespace: str, body: Any, name: str | None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", f"the body of a {rt.kind} must be a JSON object")
        obj = copy.deepcopy(body)
        if obj.setdefault("apiVersion", rt.api_version) != rt.api_version:
            raise ApiError(400, "BadRequest", f"the API version in the data ({obj['apiVersion']}) does not match "
                                              f"the expected API version ({rt.api_version})")
        if obj.setdefault("kind", rt.kind) != rt.kind:
            raise ApiError(400, "BadRequest", f"the kind in the data ({obj['kind']}) does not match the expected "
                                              f"kind ({rt.kind})")
        meta = obj.setdefault("metadata", {})
        if meta.setdefault("namespace", namespace) != namespace:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                                              "sent on the request")
        if name is not None and meta.get("name") != name:
            raise ApiError(400, "BadRequest", f"the name of the object ({meta.get('name')}) does not match the name "
                                              f"on the URL ({name})")
        return obj

    def _precondition(self, rt: ResourceType, name: str, current: dict[str, Any], wanted: str | None) -> None:
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object '
                                            "has been modified; please apply your changes to the latest version and "
                                            "try again", _details(rt, name))

    def _write(self, rt: ResourceType, namespace: str, name: str, current: dict[str, Any], new: dict[str, Any],
               sub: str | None) -> dict[str, Any]:
        if sub == "status":
            if not rt.status_subresource:
                raise _not_found(rt, name)
            stored = copy.deepcopy(current)
            if "status" in new:
                stored["status"] = new["status"]
            else:
                stored.pop("status", None)
        else:
            stored = copy.deepcopy(new)
            if rt.status_subresource:  # the main resource ignores status changes
                if "status" in current:
                    stored["status"] = copy.deepcopy(current["status"])
                else:
                    stored.pop("status", None)
            # Fields the server owns cannot be changed by a client.
            for owned in ("uid", "creationTimestamp", "generation", "namespace", "name"):
                stored["metadata"][owned] = current["metadata"][owned]
            if _spec_part(stored) != _spec_part(current):
                stored["metadata"]["generation"] = current["metadata"]["generation"] + 1
        stored["metadata"]["resourceVersion"] = self._next_revision()
        self._objects[self._key(rt, namespace, name)] = stored
        return copy.deepcopy(stored)

    # --- the scale subresource -----------------------------------------------------------------------------
    def _scale_view(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        if not rt.scale_subresource:
            raise _not_found(rt, obj["metadata"]["name"])
        meta = obj["metadata"]
        selector = (obj.get("status") or {}).get("selector")
        if selector is None:
            labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
                "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": selector}}

    def _check_scale_body(self, rt: ResourceType, name: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or body.get("kind", "Scale") != "Scale":
            raise ApiError(400, "BadRequest", "the body of a scale update must be a Scale object")
        return body

    def _write_scale(self, rt: ResourceType, namespace: str, name: str, current: dict[str, Any],
                     scale: dict[str, Any]) -> dict[str, Any]:
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                                           f"{replicas!r}: must be greater than or equal to 0", _details(rt, name))
        stored = copy.deepcopy(current)
        stored.setdefault("spec", {})["replicas"] = replicas
        if _spec_part(stored) != _spec_part(current):
            stored["metadata"]["generation"] = current["metadata"]["generation"] + 1
        stored["metadata"]["resourceVersion"] = self._next_revision()
        self._objects[self._key(rt, namespace, name)] = stored
        return self._scale_view(rt, copy.deepcopy(stored))

    # --- routing -------------------------------------------------------------------------------------------
    def route(self, path: str) -> tuple[ResourceType, str | None, str | None, str | None]:
        """(resource type, namespace, name, subresource) of a request path; 404 for anything else."""
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        namespace = None
        if len(rest) >= 2 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3 or (namespace is None and len(rest) > 1):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        rt = self.resources.get((group, version, rest[0]))
        if rt is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) == 3 else None
        if sub is not None and not ((sub == "status" and rt.status_subresource)
                                    or (sub == "scale" and rt.scale_subresource)):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        return rt, namespace, name, sub

    def handle(self, method: str, path: str, query: dict[str, list[str]], content_type: str | None,
               body: Any) -> tuple[int, dict[str, Any]]:
        if path.rstrip("/") == "/version" and method == "GET":
            return 200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-gamesre-fake", "gitCommit": "fake",
                         "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.22",
                         "compiler": "gc", "platform": "linux/amd64"}
        rt, namespace, name, sub = self.route(path)
        if name is None:
            if method == "GET":
                return 200, self.list(rt, namespace, (query.get("labelSelector") or [None])[0])
            if method == "POST" and namespace is not None:
                return 201, self.create(rt, namespace, body)
        elif namespace is not None:
            if method == "GET":
                return 200, self.read(rt, namespace, name, sub)
            if method == "PUT":
                return 200, self.replace(rt, namespace, name, sub, body)
            if method == "PATCH":
                return 200, self.patch(rt, namespace, name, sub, content_type, body)
            if method == "DELETE" and sub is None:
                return 200, self.delete(rt, namespace, name)
        raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource "
                                                f"({method} {path})", {})


def _make_handler(api: FakeKubeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            raw_type = self.headers.get("Content-Type")
            content_type = raw_type.split(";")[0].strip().lower() if raw_type else None
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            status: int
            try:
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = raw.decode(errors="replace")
                        raise ApiError(400, "BadRequest", f"the body of the request is not valid JSON: "
                                                          f"{body[:80]!r}") from None
                status, doc = api.handle(method, parts.path, query, content_type, body)
            except ApiError as exc:
                status, doc = exc.code, exc.status()
            api.requests.append(RecordedRequest(method, parts.path, query, content_type, body, status))
            payload = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

    return Handler


def fake_kube_api() -> Iterator[FakeKubeAPI]:
    """Generator for a pytest fixture: `kube_api = pytest.fixture(fake_kube_api)` in a test module."""
    with FakeKubeAPI() as api:
        yield api
