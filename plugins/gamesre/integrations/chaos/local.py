"""The `local` chaos backend: faults in the demo fleet through its admin API, partitions through HAProxy.

The fleet (`make demo`, described in .demo/fleet.json) lets each instance take runtime faults with
`PUT /admin/faults`, a partial update: a fault sets only its own fields, so faults other experiments (or
people) injected into the same instance stay. Per fault kind of the catalog (gamesre.chaos.faults):

    pod_delete         killed: true, a deleted pod: player connections are closed unanswered (HAProxy retries
                       them on another server), /healthz and /ready 503, and HAProxy takes the server out
                       after two failed checks. The process keeps running so the fault can be taken back.
    cpu_hog            cpu_load = cpu_load (share of one core, default 0.9; Kubernetes' cpu_cores is ignored)
    memory_hog         memory_mb = memory_mb
    network_latency    latency_ms = latency_ms on every action and matchmaking wait; jitter_ms is ignored
                       (the fleet adds a fixed delay)
    network_loss       error_rate = loss_percent / 100: that share of player requests is dropped (fails)
    network_partition  not_ready: true, and the target's HAProxy server set to `maint`: the load balancer
                       cannot reach it. Recovery puts back the admin state it had (ready) and not_ready
    disk_fill          disk_fill_mb = disk_fill_mb
    db_failure         db_fail_rate = db_fail_rate (default 1.0)
    db_latency         db_latency_ms = db_latency_ms

`duration_s` is the Airflow layer's to keep: the fleet has no timer, and a fault left behind by a crashed
run is found by `injected()` (the reaper's view).

Targets are the service's instances in fleet.json, selected by `track` (stable | canary) and `instance`.
The idle canary (HAProxy weight 0) matches `track: canary` like any other: a fault there reaches no player
until a deploy shifts traffic to it.

State, written ahead: before anything changes, `inject` writes the intent to `chaos/chaos-<run id>.json`
beside fleet.json: the Injection as JSON, whose handles hold the targets' previous values of the fields the
fault sets (`previous`) and, for a partition, each server's HAProxy admin state and weight before it
(`haproxy`; the weight is recorded for people, `maint` leaves it alone, so only the state is put back).
A retried inject with the same run id re-applies the recorded fault and returns the recorded Injection.
Recovery writes the previous values back (not DELETE: other faults stay), then confirms within
`recover_timeout` that every target shows them, and for pod_delete / partition that `/ready` answers 200
and HAProxy reports the server UP again (when nothing else keeps it out). Only a confirmed recovery
deletes the state file. `injected()` lists every state file, also those whose targets no longer show the
fault: recovery was not confirmed there, so the reaper must still run it; what the fleet shows now is
added to the handles as `observed`.

Two runs may not hold the same field of the same instance at once (inject refuses): the second run's
"previous" value would be the first run's fault, and recovering them out of order would bring it back.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from gamesre.chaos.faults import (
    FAULT_BACKENDS,
    FAULT_KINDS,
    ChaosBackend,
    ChaosBackendError,
    FaultSpec,
    Injection,
    Recovery,
)
from gamesre.deploy.backend import DeployBackendError
from gamesre.integrations.deploy.local import load_fleet
from gamesre.integrations.haproxy import HAProxyError, HAProxyRuntime

if TYPE_CHECKING:
    from gamesre.core.services import ServiceSpec
    from gamesre.integrations.connections import Connections

# The fields of the fleet's injected faults (demo/admin.py) each fault kind sets.
FAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "pod_delete": ("killed",),
    "cpu_hog": ("cpu_load",),
    "memory_hog": ("memory_mb",),
    "network_latency": ("latency_ms",),
    "network_loss": ("error_rate",),
    "network_partition": ("not_ready",),
    "disk_fill": ("disk_fill_mb",),
    "db_failure": ("db_fail_rate",),
    "db_latency": ("db_latency_ms",),
}
assert set(FAULT_FIELDS) == set(FAULT_KINDS), "every fault kind needs its fields"
READINESS_FAULTS = ("pod_delete", "network_partition")  # recovery also waits for /ready and HAProxy UP
SELECTOR_KEYS = ("instance", "track")
ADMIN_ATTEMPTS = 3  # a transient HTTP error (connection, 5xx) is retried this many times in all
CONFIRM_INTERVAL_S = 0.5
# `show servers state` srv_admin_state bits that `set server state` controls (HAProxy's SRV_ADMF_*).
_FORCED_MAINT = 0x01
_FORCED_DRAIN = 0x08


class _Rejected(ChaosBackendError):
    """The fleet refused the request (4xx): nothing was applied on that instance."""


def _number(fault: FaultSpec, name: str, default: float | None = None, *, high: float = math.inf,
            whole: bool = False) -> float | int:
    value = fault.params.get(name, default)
    if value is None:
        raise ChaosBackendError(f"local backend: the {fault.kind} fault needs the parameter {name}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ChaosBackendError(f"local backend: {fault.kind} parameter {name} must be a number, got {value!r}")
    if not 0 <= value <= high:
        raise ChaosBackendError(f"local backend: {fault.kind} parameter {name}={value} is outside 0..{high:g}")
    if whole:
        if not float(value).is_integer():
            raise ChaosBackendError(f"local backend: {fault.kind} parameter {name} must be whole, got {value}")
        return int(value)
    return float(value)


def fault_values(fault: FaultSpec) -> dict[str, Any]:
    """The fleet's fault fields this fault sets, with their values; ChaosBackendError for a bad fault."""
    kind = fault.kind
    if kind == "pod_delete":
        return {"killed": True}
    if kind == "cpu_hog":
        return {"cpu_load": _number(fault, "cpu_load", 0.9, high=1.0)}
    if kind == "memory_hog":
        return {"memory_mb": _number(fault, "memory_mb", whole=True)}
    if kind == "network_latency":
        return {"latency_ms": _number(fault, "latency_ms")}
    if kind == "network_loss":
        return {"error_rate": _number(fault, "loss_percent", high=100.0) / 100.0}
    if kind == "network_partition":
        return {"not_ready": True}
    if kind == "disk_fill":
        return {"disk_fill_mb": _number(fault, "disk_fill_mb", whole=True)}
    if kind == "db_failure":
        return {"db_fail_rate": _number(fault, "db_fail_rate", 1.0, high=1.0)}
    if kind == "db_latency":
        return {"db_latency_ms": _number(fault, "db_latency_ms")}
    raise ChaosBackendError(f"local backend: unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")


def state_file_name(run_id: str) -> str:
    """`chaos-<run id>.json`; a run id with characters unfit for a file name gets a hash to stay unique."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)
    if safe != run_id or len(safe) > 100:
        safe = f"{safe[:80]}-{hashlib.sha256(run_id.encode()).hexdigest()[:10]}"
    return f"chaos-{safe}.json"


class LocalChaosBackend(ChaosBackend):
    kind = "local"

    def __init__(self, fleet: dict[str, Any], haproxy: HAProxyRuntime, service: str, *, fleet_file: Path,
                 timeout: float = 10.0, recover_timeout: float = 30.0) -> None:
        self.service = service
        self.haproxy = haproxy
        self.timeout = timeout
        self.recover_timeout = recover_timeout
        self.fleet_instances: dict[str, dict[str, Any]] = {n: dict(i) for n, i in fleet.get("instances", {}).items()}
        self.instances = {n: i for n, i in self.fleet_instances.items() if i.get("service") == service}
        if not self.instances:
            raise ChaosBackendError(f"local backend: the demo fleet in {fleet_file} has no instance of {service}")
        self.state_dir = fleet_file.parent / "chaos"

    @classmethod
    def from_fleet_file(cls, haproxy: HAProxyRuntime, service: str, path: str | Path | None = None,
                        **kwargs: Any) -> LocalChaosBackend:
        """The backend for the fleet described in `path` (default: GAMESRE_DEMO_FLEET, set by `make demo`)."""
        try:
            fleet, fleet_file = load_fleet(path)
        except DeployBackendError as exc:
            raise ChaosBackendError(str(exc)) from None
        return cls(fleet, haproxy, service, fleet_file=fleet_file, **kwargs)

    # --- the fleet's admin API -------------------------------------------------------------------------------
    def _url(self, instance: str) -> str:
        known = self.fleet_instances.get(instance)
        if known is None:
            raise ChaosBackendError(f"local backend: {instance} is not in the demo fleet (known: "
                                    f"{', '.join(sorted(self.fleet_instances))})")
        return str(known["url"])

    def _admin(self, method: str, instance: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self._url(instance)}{path}"
        problem = ""
        for attempt in range(ADMIN_ATTEMPTS):
            if attempt:
                time.sleep(0.5 * attempt)
            try:
                response = requests.request(method, url, json=None if body is None else dict(body),
                                            timeout=self.timeout)
            except requests.RequestException as exc:
                problem = f"{instance} at {url} is unreachable: {exc}"
                continue
            if response.status_code >= 500:
                problem = f"{method} {url} ({instance}) answered {response.status_code}: {response.text[:300]}"
                continue
            if response.status_code >= 400:
                raise _Rejected(f"local backend: {method} {url} ({instance}) answered {response.status_code}: "
                                f"{response.text[:300]}")
            try:
                return dict(response.json())
            except ValueError:
                problem = f"{method} {url} ({instance}) answered no JSON: {response.text[:300]}"
        raise ChaosBackendError(f"local backend: {problem} (after {ADMIN_ATTEMPTS} attempts)")

    def _faults(self, instance: str) -> dict[str, Any]:
        return self._admin("GET", instance, "/admin/faults")

    def _ready(self, instance: str) -> str | None:
        """None when /ready answers 200, else what it answered."""
        url = f"{self._url(instance)}/ready"
        try:
            status = requests.get(url, timeout=self.timeout).status_code
        except requests.RequestException as exc:
            return f"{url} is unreachable ({type(exc).__name__})"
        return None if status == 200 else f"/ready answers {status}"

    # --- HAProxy ---------------------------------------------------------------------------------------------
    def _backend_of(self, instance: str) -> str:
        self._url(instance)  # a name the fleet knows
        return str(self.fleet_instances[instance]["job"])  # the HAProxy backend is named after the job

    def _server_admin(self, instance: str) -> tuple[str, int]:
        """(admin state ready | drain | maint, user weight) of the instance's server, from `show servers state`."""
        backend = self._backend_of(instance)
        command = f"show servers state {backend}"
        try:
            answer = self.haproxy.command(command)
        except HAProxyError as exc:
            raise ChaosBackendError(f"local backend: cannot read the state of {backend}/{instance}: {exc}") from None
        lines = answer.splitlines()
        header = next((line[2:].split() for line in lines if line.startswith("# ")), None)
        if header is None:
            raise ChaosBackendError(f"local backend: HAProxy answered {command!r} with {answer.strip()[:200]!r}")
        for line in lines:
            row = dict(zip(header, line.split(), strict=False))
            if row.get("be_name") == backend and row.get("srv_name") == instance:
                admin = int(row["srv_admin_state"])
                state = "maint" if admin & _FORCED_MAINT else "drain" if admin & _FORCED_DRAIN else "ready"
                return state, int(row["srv_uweight"])
        raise ChaosBackendError(f"local backend: HAProxy has no server {backend}/{instance}")

    def _set_server_state(self, instance: str, state: str) -> None:
        backend = self._backend_of(instance)
        if self._server_admin(instance)[0] == state:
            return
        try:
            self.haproxy.set_server_state(backend, instance, state)
        except HAProxyError as exc:
            raise ChaosBackendError(f"local backend: cannot set {backend}/{instance} to {state}: {exc}") from None

    def _server_status(self, instance: str) -> str:
        backend = self._backend_of(instance)
        try:
            return self.haproxy.server(backend, instance).status
        except HAProxyError as exc:
            raise ChaosBackendError(f"local backend: cannot read the status of {backend}/{instance}: {exc}") from None

    # --- state -----------------------------------------------------------------------------------------------
    def state_file(self, run_id: str) -> Path:
        return self.state_dir / state_file_name(run_id)

    @staticmethod
    def _load(path: Path) -> Injection | None:
        try:
            return Injection.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ChaosBackendError(f"local backend: the chaos state file {path} is unreadable ({exc})") from None

    @staticmethod
    def _save(path: Path, injection: Injection) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(injection.to_dict(), indent=2, sort_keys=True))
        os.replace(tmp, path)

    def _recorded(self) -> list[Injection]:
        if not self.state_dir.is_dir():
            return []
        found = [self._load(p) for p in sorted(self.state_dir.glob("chaos-*.json"))]
        return sorted((i for i in found if i is not None), key=lambda i: (i.injected_at, i.run_id))

    # --- applying and taking back ----------------------------------------------------------------------------
    def _apply(self, injection: Injection, *, fresh: bool, path: Path) -> None:
        values = fault_values(injection.fault)
        for index, name in enumerate(injection.targets):
            try:
                self._admin("PUT", name, "/admin/faults", values)
            except _Rejected:
                if fresh and index == 0:  # the same values for every target: refused before anything changed
                    path.unlink(missing_ok=True)
                raise
            if injection.fault.kind == "network_partition":
                self._set_server_state(name, "maint")

    def _restore(self, injection: Injection) -> None:
        """Write back every target's previous values and HAProxy state; raise naming what could not be."""
        previous: Mapping[str, Mapping[str, Any]] = injection.handles.get("previous") or {}
        servers: Mapping[str, Mapping[str, Any]] = injection.handles.get("haproxy") or {}
        failures = []
        for name in injection.targets:  # every target is tried, also after one fails: never leave more behind
            try:
                if name not in previous:
                    raise ChaosBackendError(f"local backend: the injection {injection.run_id} has no previous "
                                            f"values of {name}")
                self._admin("PUT", name, "/admin/faults", previous[name])
                if name in servers:
                    self._set_server_state(name, str(servers[name]["state"]))
            except ChaosBackendError as exc:
                failures.append(str(exc).removeprefix("local backend: "))
        if failures:
            raise ChaosBackendError(f"local backend: could not take back the {injection.fault.kind} fault of run "
                                    f"{injection.run_id}: {'; '.join(failures)}")

    def _remaining(self, injection: Injection) -> list[str]:
        """What still differs from before the fault, for people; [] when the recovery is confirmed."""
        previous: Mapping[str, Mapping[str, Any]] = injection.handles.get("previous") or {}
        servers: Mapping[str, Mapping[str, Any]] = injection.handles.get("haproxy") or {}
        remaining = []
        for name in injection.targets:
            faults = self._faults(name)
            remaining += [f"{name}: {field}={faults.get(field)}" for field, value in previous.get(name, {}).items()
                          if faults.get(field) != value]
            if injection.fault.kind not in READINESS_FAULTS:
                continue
            state, _ = self._server_admin(name)
            if name in servers and state != servers[name]["state"]:
                remaining.append(f"{name}: HAProxy state {state} (was {servers[name]['state']})")
            if faults.get("crash") or faults.get("killed") or faults.get("not_ready"):
                continue  # kept out by a fault that was there before this one: nothing to wait for
            not_ready = self._ready(name)
            if not_ready:
                remaining.append(f"{name}: {not_ready}")
            status = self._server_status(name)
            if state == "ready" and status != "UP":
                remaining.append(f"{name}: HAProxy {self._backend_of(name)}/{name} is {status}")
        return remaining

    # --- the interface ---------------------------------------------------------------------------------------
    def targets(self, selector: Mapping[str, str]) -> list[str]:
        unknown = sorted(set(selector) - set(SELECTOR_KEYS))
        if unknown:
            raise ChaosBackendError(f"local backend: unknown selector key(s) {', '.join(unknown)} for {self.service} "
                                    f"(known: {', '.join(SELECTOR_KEYS)})")
        return sorted(n for n, i in self.instances.items()
                      if selector.get("instance", n) == n and selector.get("track", i.get("track")) == i.get("track"))

    def inject(self, run_id: str, experiment: str, fault: FaultSpec, targets: list[str]) -> Injection:
        fault = FaultSpec.from_dict(fault.to_dict())  # as it reads back from the state file
        values = fault_values(fault)  # a bad fault is refused before anything is written
        names = tuple(sorted(set(targets)))
        strangers = [n for n in names if n not in self.instances]
        if not names or strangers:
            raise ChaosBackendError(f"local backend: {experiment} needs targets among the {self.service} instances "
                                    f"{sorted(self.instances)}, got {list(targets)}")
        path = self.state_file(run_id)
        recorded = self._load(path)
        if recorded is not None:  # a retry: re-apply what was recorded, with the values from before the first try
            asked = (self.service, experiment, fault.to_dict(), names)
            if (recorded.service, recorded.experiment, recorded.fault.to_dict(), recorded.targets) != asked:
                raise ChaosBackendError(f"local backend: run {run_id} already injected {recorded.fault.kind} "
                                        f"({recorded.experiment}) into {list(recorded.targets)} of "
                                        f"{recorded.service}; recover it first")
            self._apply(recorded, fresh=False, path=path)
            return recorded
        for other in self._recorded():
            clash = sorted({f"{n}.{f}" for n in set(other.targets) & set(names)
                            for f in set(FAULT_FIELDS[other.fault.kind]) & set(values)})
            if clash:
                raise ChaosBackendError(f"local backend: run {other.run_id} ({other.experiment}) still holds "
                                        f"{', '.join(clash)}; recover it before injecting {fault.kind} again")
        current = {n: self._faults(n) for n in names}
        previous = {n: {f: current[n].get(f) for f in values} for n in names}
        handles: dict[str, Any] = {"previous": previous}
        if fault.kind == "network_partition":
            servers = {n: self._server_admin(n) for n in names}
            handles["haproxy"] = {n: {"backend": self._backend_of(n), "state": s, "weight": w}
                                  for n, (s, w) in servers.items()}
        injection = Injection(run_id=run_id, experiment=experiment, backend=self.kind, service=self.service,
                              fault=fault, targets=names,
                              injected_at=datetime.now(UTC).isoformat(timespec="seconds"), handles=handles)
        self._save(path, injection)  # written ahead: a crash from here on leaves a trace for the reaper
        self._apply(injection, fresh=True, path=path)
        return Injection.from_dict(injection.to_dict())

    def abort(self, injection: Injection) -> None:
        self._restore(self._load(self.state_file(injection.run_id)) or injection)

    def recover(self, injection: Injection) -> Recovery:
        if injection.service != self.service:
            raise ChaosBackendError(f"local backend: run {injection.run_id} injected into {injection.service}, "
                                    f"not {self.service}")
        path = self.state_file(injection.run_id)
        recorded = self._load(path) or injection  # the state file is the truth; without it, the caller's copy
        self._restore(recorded)
        deadline = time.monotonic() + self.recover_timeout
        while True:
            remaining = self._remaining(recorded)
            if not remaining:
                path.unlink(missing_ok=True)
                return Recovery(True, (), f"{recorded.fault.kind} taken back from {', '.join(recorded.targets)}; "
                                          "confirmed on the fleet" + (" and HAProxy" if recorded.fault.kind in
                                                                      READINESS_FAULTS else ""))
            if time.monotonic() >= deadline:
                return Recovery(False, tuple(remaining),
                                f"{recorded.fault.kind} taken back from {', '.join(recorded.targets)} but not "
                                f"confirmed within {self.recover_timeout:g}s; {path} is kept for the reaper")
            time.sleep(CONFIRM_INTERVAL_S)

    def injected(self, service: str | None = None) -> list[Injection]:
        found = []
        for injection in self._recorded():
            if service is not None and injection.service != service:
                continue
            observed: dict[str, Any] = {}
            for name in injection.targets:
                try:
                    faults = self._faults(name)
                    observed[name] = {f: faults.get(f) for f in FAULT_FIELDS.get(injection.fault.kind, ())}
                except ChaosBackendError as exc:
                    observed[name] = str(exc)
            found.append(replace(injection, handles={**injection.handles, "observed": observed}))
        return found


def for_service(service: ServiceSpec, connections: Connections) -> LocalChaosBackend:
    """The registered factory: the service's instances in the demo fleet (GAMESRE_DEMO_FLEET), through HAProxy."""
    return LocalChaosBackend.from_fleet_file(connections.haproxy(), service.name)


FAULT_BACKENDS.register(LocalChaosBackend.kind, for_service)
