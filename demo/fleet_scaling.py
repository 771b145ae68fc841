"""Event scaling of the demo fleet (the `local` backend): extra fleet processes added behind HAProxy, and removed.

Scale-up starts N extra instances of a service (`demo/fleet.py`, named `<prefix>-<n>` such as gs-event-1, on
free loopback ports), waits until each answers /ready, adds it to the service's HAProxy backend through the
runtime API (add server, enable health check, enable server) and waits until HAProxy reports it UP.
Scale-back drains each instance in HAProxy, deletes the server, stops the process group and forgets it.

Every instance is written to a JSON state file before its process starts, so a later task (or a retry
after a crash) finds and stops what an earlier one started. Both operations reconcile towards the wanted
state and are idempotent: a second scale-up for the same event starts nothing more; a dead instance is
started again; a second scale-back finds nothing to do. The processes run in their own sessions, so they
outlive the Airflow task that started them. Needs the repository root on sys.path (it drives `demo/`).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

from demo.fleet import build_command
from demo.procs import free_port
from demo.topology import DEFAULT_TOPOLOGY, STABLE_WEIGHT, Instance
from gamesre.core.contract import Contract, load_contract
from gamesre.core.errors import OutsideSystemError
from gamesre.integrations.haproxy import HAProxyConnectionError, HAProxyError, HAProxyRuntime, StatRow

STATE_VERSION = 1


class FleetScalingError(OutsideSystemError):
    """An extra instance could not be started, added, drained or stopped; the message says which and why."""


@dataclass
class EventInstance:
    """One extra fleet process started for an event, as recorded in the state file."""

    name: str
    service: str
    backend: str  # the HAProxy backend (the service's job)
    host: str
    port: int
    version: str
    log: str
    pid: int | None = None
    started_at: str = ""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class ScaleUpResult:
    event_id: str
    service: str
    started: tuple[str, ...]  # instances whose process was started by this call (new or restarted)
    added: tuple[str, ...]  # instances added to HAProxy by this call
    removed: tuple[str, ...]  # instances above the wanted count, removed by this call
    instances: tuple[EventInstance, ...]  # every instance of the event and service after the call
    message: str


@dataclass(frozen=True)
class ScaleBackResult:
    event_id: str
    removed: tuple[str, ...]  # removed from HAProxy
    stopped: tuple[str, ...]  # processes stopped
    message: str


@dataclass
class _State:
    events: dict[str, dict[str, list[EventInstance]]] = field(default_factory=dict)

    def all_instances(self) -> Iterator[EventInstance]:
        for services in self.events.values():
            for instances in services.values():
                yield from instances


def _process_state(pid: int) -> str | None:
    """The kernel's one-letter state of a process (R, S, Z, ...), or None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def instance_alive(pid: int | None, name: str) -> bool:
    """The pid still runs the fleet process of this instance (not a process that reused the pid)."""
    if not pid:
        return False
    state = _process_state(pid)
    if state is None:
        return False
    if state == "Z":  # our own exited child: reap it
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"--name" in argv and name.encode() in argv and any(a.endswith(b"fleet.py") for a in argv)


class LocalFleetScaler:
    """Scales one demo fleet (behind one HAProxy) for live-ops events."""

    def __init__(self, state_file: Path, haproxy: HAProxyRuntime, *, log_dir: Path | None = None,
                 host: str = "127.0.0.1", contract: Contract | None = None, weight: int = STABLE_WEIGHT,
                 ready_timeout: float = 30.0, drain_timeout: float = 30.0):
        self.state_file = Path(state_file)
        self.haproxy = haproxy
        self.log_dir = Path(log_dir) if log_dir is not None else self.state_file.parent / "event-instances"
        self.host = host
        self.contract = contract or load_contract()
        self.weight = weight
        self.ready_timeout = ready_timeout
        self.drain_timeout = drain_timeout

    # --- state file ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked_state(self) -> Iterator[_State]:
        """The state, under an exclusive lock (two tasks never scale at once); saved on the way out."""
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.state_file.with_name(self.state_file.name + ".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._read()
            try:
                yield state
            finally:
                self._save(state)

    def _read(self) -> _State:
        if not self.state_file.exists():
            return _State()
        try:
            doc = json.loads(self.state_file.read_text())
            if doc.get("version") != STATE_VERSION:
                raise ValueError(f"version {doc.get('version')!r}, expected {STATE_VERSION}")
            return _State({event: {service: [EventInstance(**i) for i in items] for service, items in services.items()}
                           for event, services in doc["events"].items()})
        except (ValueError, KeyError, TypeError) as exc:
            raise FleetScalingError(f"the scaling state file {self.state_file} is unreadable ({exc}); fix or "
                                    "remove it after stopping the event instances it lists by hand") from None

    def _save(self, state: _State) -> None:
        events = {e: {s: [asdict(i) for i in items] for s, items in services.items() if items}
                  for e, services in state.events.items()}
        events = {e: services for e, services in events.items() if services}
        if not events:
            self.state_file.unlink(missing_ok=True)
            return
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps({"version": STATE_VERSION, "events": events}, indent=2, sort_keys=True))
        os.replace(tmp, self.state_file)

    def instances(self, event_id: str | None = None) -> list[EventInstance]:
        """The recorded instances (of one event or all), without checking them."""
        state = self._read()
        return [i for e, services in state.events.items() if event_id in (None, e)
                for items in services.values() for i in items]

    # --- scale up ------------------------------------------------------------------------------------------
    def scale_up(self, event_id: str, service: str, extra_instances: int, *, prefix: str) -> ScaleUpResult:
        """Have exactly `extra_instances` healthy extra instances of the service in HAProxy for the event."""
        if service not in self.contract.services:
            raise FleetScalingError(f"unknown service {service!r} (known: {', '.join(self.contract.services)})")
        if extra_instances < 0:
            raise ValueError(f"extra_instances must be >= 0, got {extra_instances}")
        backend = self.contract.services[service].job
        started: list[str] = []
        added: list[str] = []
        removed: list[str] = []
        with self._locked_state() as state:
            entries = state.events.setdefault(event_id, {}).setdefault(service, [])
            while len(entries) > extra_instances:  # the wanted count went down: remove the newest
                surplus = entries[-1]
                self._remove(surplus)
                entries.pop()
                removed.append(surplus.name)
            version: str | None = None  # asked only when an instance has to be started

            def serving() -> str:
                nonlocal version
                version = version or self._serving_version(service, backend)
                return version

            for instance in entries:
                if not instance_alive(instance.pid, instance.name):
                    instance.version = serving()
                    self._start(instance, state)
                    started.append(instance.name)
            used = {i.name for i in state.all_instances()}
            while len(entries) < extra_instances:
                name = next(f"{prefix}-{n}" for n in range(1, 1000) if f"{prefix}-{n}" not in used)
                used.add(name)
                instance = EventInstance(name=name, service=service, backend=backend, host=self.host, port=0,
                                         version=serving(), log=str(self.log_dir / f"{name}.log"))
                entries.append(instance)
                self._start(instance, state)
                started.append(instance.name)
            for instance in entries:
                if self._ensure_in_haproxy(instance):
                    added.append(instance.name)
            for instance in entries:
                self._wait_up(instance)
            result = tuple(EventInstance(**asdict(i)) for i in entries)
        parts = [f"{len(result)} extra {service} instance(s) for {event_id} in backend {backend}"]
        if started:
            parts.append(f"started {', '.join(started)}")
        if removed:
            parts.append(f"removed {', '.join(removed)}")
        if not started and not added and not removed:
            parts.append("nothing to do")
        return ScaleUpResult(event_id, service, tuple(started), tuple(added), tuple(removed), result,
                             "; ".join(parts))

    def _serving_version(self, service: str, backend: str) -> str:
        """The version the stable instances serve now (asked from them), else the topology's stable one."""
        try:
            rows = self.haproxy.show_servers(backend)
        except HAProxyError:
            rows = []
        for row in rows:
            if not row.status.startswith("UP") or row.weight == 0 or not row.address:
                continue
            try:
                build = requests.get(f"http://{row.address}/admin/build", timeout=2).json()
            except (requests.RequestException, ValueError):
                continue
            if isinstance(build, dict) and build.get("track") == "stable" and build.get("version"):
                return str(build["version"])
        for instance in DEFAULT_TOPOLOGY:
            if instance.service == service and instance.track == "stable":
                return instance.version
        raise FleetScalingError(f"no stable {service} instance to copy the version from")

    def _start(self, instance: EventInstance, state: _State) -> None:
        """Start the process on a free port and wait for /ready; the state file knows it before it runs."""
        instance.port = free_port()
        instance.pid = None
        instance.started_at = datetime.now(UTC).isoformat()
        self._save(state)
        cmd = build_command(Instance(instance.name, instance.service, "stable", instance.version, self.weight),
                            instance.port, host=instance.host)
        log_path = Path(instance.log)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        instance.pid = process.pid
        self._save(state)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise FleetScalingError(f"{instance.name} exited with code {process.returncode} while starting "
                                        f"(log: {instance.log})")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{instance.url}/ready", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise FleetScalingError(f"{instance.name} did not answer /ready on {instance.url} within "
                                f"{self.ready_timeout:.0f}s (log: {instance.log})")

    def _find_server(self, instance: EventInstance) -> StatRow | None:
        """The instance's row in HAProxy, or None when the backend has no such server (unreachable: raises)."""
        try:
            return self.haproxy.server(instance.backend, instance.name)
        except HAProxyConnectionError:
            raise
        except HAProxyError:
            return None

    def _ensure_in_haproxy(self, instance: EventInstance) -> bool:
        """Add the instance to its backend unless it is there with the right address; True when added."""
        address = f"{instance.host}:{instance.port}"
        row = self._find_server(instance)
        if row is not None and row.address == address and not row.status.startswith("MAINT"):
            return False
        if row is not None:  # an old address (restarted on a new port) or left in maintenance
            self.haproxy.del_server(instance.backend, instance.name, wait=self.drain_timeout)
        self.haproxy.add_server(instance.backend, instance.name, instance.host, instance.port, weight=self.weight)
        return True

    def _wait_up(self, instance: EventInstance) -> None:
        deadline = time.monotonic() + self.ready_timeout
        status = ""
        while time.monotonic() < deadline:
            status = self.haproxy.server(instance.backend, instance.name).status
            if status.startswith("UP"):
                return
            time.sleep(0.25)
        raise FleetScalingError(f"HAProxy did not report {instance.backend}/{instance.name} UP within "
                                f"{self.ready_timeout:.0f}s (status {status!r}; log: {instance.log})")

    # --- scale back ----------------------------------------------------------------------------------------
    def scale_back(self, event_id: str, service: str | None = None) -> ScaleBackResult:
        """Drain, remove from HAProxy and stop every extra instance of the event (of one service, or all)."""
        removed: list[str] = []
        stopped: list[str] = []
        with self._locked_state() as state:
            services = state.events.get(event_id, {})
            for name in [s for s in services if service in (None, s)]:
                entries = services[name]
                while entries:
                    instance = entries[-1]
                    was_in_haproxy, was_running = self._remove(instance)
                    if was_in_haproxy:
                        removed.append(instance.name)
                    if was_running:
                        stopped.append(instance.name)
                    entries.pop()
                    self._save(state)
                del services[name]
            if not services:
                state.events.pop(event_id, None)
        message = (f"{event_id}: removed {', '.join(removed) or 'nothing'} from HAProxy, "
                   f"stopped {', '.join(stopped) or 'nothing'}")
        return ScaleBackResult(event_id, tuple(removed), tuple(stopped), message)

    def _remove(self, instance: EventInstance) -> tuple[bool, bool]:
        """(removed from HAProxy, process stopped) for one instance; missing parts are skipped."""
        in_haproxy = self._find_server(instance) is not None
        if in_haproxy:
            self.haproxy.set_server_state(instance.backend, instance.name, "drain")
            self._wait_drained(instance)
            self.haproxy.del_server(instance.backend, instance.name, wait=self.drain_timeout)
        running = instance_alive(instance.pid, instance.name)
        if running and instance.pid:
            self._stop(instance.pid, instance.name)
        return in_haproxy, running

    def _wait_drained(self, instance: EventInstance) -> None:
        deadline = time.monotonic() + self.drain_timeout
        while time.monotonic() < deadline:
            if self.haproxy.server(instance.backend, instance.name).current_sessions == 0:
                return
            time.sleep(0.2)
        # Still busy after the drain timeout: del_server puts it in maintenance and waits once more.

    def _stop(self, pid: int, name: str, grace: float = 10.0) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not instance_alive(pid, name):
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and instance_alive(pid, name):
            time.sleep(0.1)
        if instance_alive(pid, name):
            raise FleetScalingError(f"{name} (pid {pid}) did not stop after SIGTERM and SIGKILL")

