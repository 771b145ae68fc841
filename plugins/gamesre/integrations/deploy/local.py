"""The `local` deploy backend: the demo fleet behind HAProxy, with real traffic and real Prometheus.

The fleet (`make demo`, described in .demo/fleet.json) runs, per service, stable instances and one idle
canary instance (HAProxy weight 0). "Deploying" a version sets an instance's build with the fleet's admin
API (`PUT /admin/build`); the instance's series then carry the new `version` label, and a defective demo
build (demo/builds.yaml) misbehaves the way a bad image would. Traffic moves with HAProxy weights through
the runtime API. Per strategy:

canary      prepare: the canary instance runs the new version at weight 0, the stables at their starting
            weights (also when prepare is retried after a step or a switch). shift(i): weights so that the
            canary gets plan.weights[i] percent (a total of 256 split between canary and stables).
            promote: every stable instance runs the new version, weights back to the stable ones, the
            canary instance idle again. rollback: weights back at once, then every instance runs the build
            it ran before the deploy (the new version is gone).
blue-green  prepare: the canary instance ("green") runs the new version at weight 0 (the preview; smoke
            traffic via synthetic_traffic). shift(0): green gets all the traffic, the stables ("blue")
            none but keep running the old version (the scale-down delay). promote: the stables run the new
            version and take the traffic back; green idle. rollback: the stables take it all back at once.
rolling     shift(i): the first ceil(n x plan.weights[i] / 100) stable instances run the new version, each
            drained (weight 0) while its build changes, then put back. rollback: all back to the old one.

A stage whose environment has no players (`traffic: synthetic`, the demo's dev and staging) is a preview
on the canary instance, verified with smoke traffic; its promote() only ends the preview (the stables are
production and are not touched).

State: what the deploy started from (the stable version, the weights) is written to
`deploy-<service>.json` beside fleet.json before the first change, so a retry or a rollback after a crash
restores exactly that. Every method reads the fleet and HAProxy first and only changes what differs.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from gamesre.core.paths import REPO_ROOT
from gamesre.deploy.backend import (
    DEPLOY_BACKENDS,
    SMOKE_TRAFFIC,
    BackendStatus,
    Cohorts,
    DeployBackend,
    DeployBackendError,
)
from gamesre.integrations.haproxy import HAProxyError, HAProxyRuntime

if TYPE_CHECKING:
    from gamesre.core.services import ServiceSpec
    from gamesre.integrations.connections import Connections

TOTAL_WEIGHT = 256  # HAProxy's maximum server weight: the finest split of the traffic
SMOKE_RPS = 20.0


class LocalDeployBackend(DeployBackend):
    kind = "local"

    def __init__(self, fleet: dict[str, Any], haproxy: HAProxyRuntime, service: str, *, fleet_file: Path,
                 synthetic: bool = False, timeout: float = 10.0, ready_timeout: float = 30.0) -> None:
        self.service = service
        self.haproxy = haproxy
        self.synthetic = synthetic
        self.timeout = timeout
        self.ready_timeout = ready_timeout
        instances = {n: i for n, i in fleet.get("instances", {}).items() if i.get("service") == service}
        self.stables = sorted(n for n, i in instances.items() if i.get("track") == "stable")
        canaries = sorted(n for n, i in instances.items() if i.get("track") == "canary")
        if not self.stables or not canaries:
            raise DeployBackendError(f"local backend: the demo fleet in {fleet_file} has no stable and canary "
                                     f"instance of {service} (stable: {self.stables}, canary: {canaries})")
        self.canary = canaries[0]
        self.urls = {n: str(instances[n]["url"]) for n in [*self.stables, self.canary]}
        self.backend = str(instances[self.canary]["job"])
        self.state_file = fleet_file.parent / f"deploy-{service}.json"
        self.log_dir = fleet_file.parent / "logs"

    # --- the fleet's admin API -------------------------------------------------------------------------------
    def _admin(self, method: str, instance: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.urls[instance]}{path}"
        try:
            response = requests.request(method, url, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise DeployBackendError(f"local backend: {instance} at {url} is unreachable: {exc}") from None
        if response.status_code >= 400:
            raise DeployBackendError(f"local backend: {method} {url} answered {response.status_code}: "
                                     f"{response.text[:300]}")
        return dict(response.json())

    def _version(self, instance: str) -> str:
        return str(self._admin("GET", instance, "/admin/build")["version"])

    def _set_version(self, instance: str, version: str) -> None:
        if self._version(instance) != version:
            self._admin("PUT", instance, "/admin/build", {"version": version})
        self._wait_ready(instance)

    def _ready(self, instance: str) -> bool:
        try:
            return requests.get(f"{self.urls[instance]}/ready", timeout=self.timeout).status_code == 200
        except requests.RequestException:
            return False

    def _wait_ready(self, instance: str) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self._ready(instance):
                return
            if time.monotonic() > deadline:
                raise DeployBackendError(f"local backend: {instance} is not ready after {self.ready_timeout:.0f}s "
                                         f"({self.urls[instance]}/ready)")
            time.sleep(0.5)

    # --- HAProxy ---------------------------------------------------------------------------------------------
    def _weights(self) -> dict[str, int]:
        try:
            return {n: self.haproxy.get_weight(self.backend, n) for n in [*self.stables, self.canary]}
        except HAProxyError as exc:
            raise DeployBackendError(f"local backend: cannot read HAProxy weights of {self.backend}: {exc}") from None

    def _set_weights(self, wanted: dict[str, int]) -> None:
        current = self._weights()
        # Raise before lowering, so the backend is never left without weight in between.
        for name in sorted(wanted, key=lambda n: wanted[n] <= current[n]):
            if current[name] != wanted[name]:
                try:
                    self.haproxy.set_weight(self.backend, name, wanted[name])
                except HAProxyError as exc:
                    raise DeployBackendError(f"local backend: cannot set the weight of {self.backend}/{name}: "
                                             f"{exc}") from None

    def _canary_weights(self, percent: int, base: dict[str, int]) -> dict[str, int]:
        if percent >= 100:
            return {**dict.fromkeys(self.stables, 0), self.canary: TOTAL_WEIGHT}
        canary = max(1, round(TOTAL_WEIGHT * percent / 100))
        stable_total = sum(base[n] for n in self.stables) or len(self.stables)
        rest = TOTAL_WEIGHT - canary
        return {**{n: max(1, round(rest * (base[n] or 1) / stable_total)) for n in self.stables}, self.canary: canary}

    # --- state -----------------------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any] | None:
        if not self.state_file.exists():
            return None
        try:
            return dict(json.loads(self.state_file.read_text()))
        except ValueError as exc:
            raise DeployBackendError(f"local backend: {self.state_file} is unreadable ({exc})") from None

    def _save(self, state: dict[str, Any] | None) -> None:
        if state is None:
            self.state_file.unlink(missing_ok=True)
            return
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        os.replace(tmp, self.state_file)

    def _require_state(self) -> dict[str, Any]:
        state = self._state()
        if state is None:
            raise DeployBackendError(f"local backend: no deploy of {self.service} is prepared ({self.state_file} "
                                     "is missing)")
        return state

    # --- the interface ---------------------------------------------------------------------------------------
    def status(self) -> BackendStatus:
        weights = self._weights()
        versions = {n: self._version(n) for n in [*self.stables, self.canary]}
        state = self._state() or {}
        stable_version = state.get("stable_version") or versions[self.stables[0]]
        candidate = state.get("version")
        total = sum(weights.values()) or 1
        running = [n for n in weights if candidate and versions[n] == candidate
                   and (n == self.canary or state.get("strategy") == "rolling")]
        on_candidate = sum(weights[n] for n in running)
        not_ready = [n for n in running if not self._ready(n)]  # the candidate's instances failing /ready
        detail = ", ".join(f"{n} {versions[n]} w{weights[n]}" for n in [*self.stables, self.canary])
        if not_ready:
            detail += f"; not ready: {', '.join(not_ready)}"
        return BackendStatus(stable_version, candidate, round(100 * on_candidate / total), not not_ready, detail,
                             {"weights": weights, "versions": versions, "state": state})

    def prepare(self, version: str, plan: Any) -> None:
        state = self._state()
        if state is not None and state.get("version") != version:
            raise DeployBackendError(f"local backend: a deploy of {self.service} {state.get('version')} is still "
                                     f"recorded in {self.state_file}; roll it back first")
        if state is None:
            stable_versions = {self._version(n) for n in self.stables}
            if len(stable_versions) != 1:
                raise DeployBackendError(f"local backend: the stable instances of {self.service} run different "
                                         f"versions {sorted(stable_versions)}; finish or roll back that first")
            state = {"service": self.service, "version": version, "stable_version": stable_versions.pop(),
                     "strategy": plan.strategy, "weights": plan.weights, "initial_weights": self._weights(),
                     "initial_versions": {n: self._version(n) for n in [*self.stables, self.canary]},
                     "smoke_pid": None}
            self._save(state)
        if plan.strategy != "rolling":
            # The stables take their starting weights back too: a prepare retried after a blue-green switch (or
            # a canary step) must not leave the backend with no weight at all.
            stables = {n: int(state["initial_weights"][n]) for n in self.stables}
            self._set_weights({**stables, self.canary: 0})
            self._set_version(self.canary, version)

    def shift(self, step: int) -> None:
        state = self._require_state()
        percent = int(state["weights"][step])
        if state["strategy"] == "rolling":
            count = math.ceil(len(self.stables) * percent / 100)
            for name in self.stables[:count]:
                if self._version(name) == state["version"]:
                    continue
                weight = int(state["initial_weights"][name])
                self._set_weights({name: 0})
                self._set_version(name, state["version"])
                self._set_weights({name: weight})
            return
        self._set_weights(self._canary_weights(percent, state["initial_weights"]))

    def promote(self) -> None:
        state = self._require_state()
        self._stop_smoke(state)
        initial = {n: int(w) for n, w in state["initial_weights"].items()}
        if not self.synthetic:
            for name in self.stables:
                self._set_version(name, state["version"])
        self._set_weights(initial)
        # A synthetic stage only ends its preview: the canary instance runs what it ran before.
        idle = state.get("initial_versions", {}).get(self.canary, state["stable_version"])
        self._set_version(self.canary, idle if self.synthetic else state["version"])
        self._save(None)

    def rollback(self, reason: str) -> None:
        state = self._state()
        if state is None:
            return  # nothing prepared, nothing to undo
        initial = {n: int(w) for n, w in state["initial_weights"].items()}
        self._set_weights(initial)  # traffic first: players are back on stable at once
        self._stop_smoke(state)
        for name in [*self.stables, self.canary]:
            self._set_version(name, state.get("initial_versions", {}).get(name, state["stable_version"]))
        self._save(None)

    def cohorts(self) -> Cohorts:
        state = self._require_state()
        if state["strategy"] == "rolling":
            return Cohorts({"version": state["version"], "track": "stable"},
                           {"version": state["stable_version"], "track": "stable"})
        return Cohorts({"version": state["version"], "track": "canary"},
                       {"version": state["stable_version"], "track": "stable"})

    def synthetic_traffic(self, seconds: float) -> bool:
        """Smoke traffic straight at the canary instance (the demo's load generator), detached."""
        smoke_command = SMOKE_TRAFFIC.create("local")
        state = self._require_state()
        self._stop_smoke(state)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"smoke-{self.service}.log").open("ab")
        cmd = smoke_command(self.urls[self.canary], self.service, seconds, SMOKE_RPS)
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, cwd=REPO_ROOT)
        state["smoke_pid"] = process.pid
        self._save(state)
        return True

    def _stop_smoke(self, state: dict[str, Any]) -> None:
        pid = state.get("smoke_pid")
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes() if Path(f"/proc/{pid}").exists() else b""
                if b"loadgen.py" in cmdline:
                    os.killpg(pid, signal.SIGTERM)
            state["smoke_pid"] = None


def load_fleet(path: str | Path | None = None) -> tuple[dict[str, Any], Path]:
    """The demo fleet description (GAMESRE_DEMO_FLEET, written by `make demo`)."""
    path = path or os.environ.get("GAMESRE_DEMO_FLEET")
    if not path:
        raise DeployBackendError("local backend: GAMESRE_DEMO_FLEET (set by `make demo`) must name the demo "
                                 "fleet's fleet.json")
    try:
        return dict(json.loads(Path(path).read_text())), Path(path)
    except (OSError, ValueError) as exc:
        raise DeployBackendError(f"local backend: cannot read the demo fleet description {path}: {exc}") from None


def _local(spec: ServiceSpec, stage: str, connections: Connections) -> LocalDeployBackend:
    fleet, fleet_file = load_fleet()
    return LocalDeployBackend(fleet, connections.haproxy(), spec.name, fleet_file=fleet_file,
                              synthetic=spec.deploy.environments[stage].traffic == "synthetic")


DEPLOY_BACKENDS.register("local", _local)
