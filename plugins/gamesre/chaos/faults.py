"""The faults of the chaos domain and the one interface every fault-injection backend implements, by kind.

What a fault is (FaultSpec, FAULT_KINDS), what injecting it leaves behind (Injection) and what removing it
confirms (Recovery) belong to the game-day workflow (gamesre.app.chaos), which drives a backend and judges;
a backend only applies and removes faults. Every method is idempotent and reads the backend's state first:

    targets(selector)            -> the names (instances / pods) the selector matches now, sorted
    inject(run_id, fault, names) -> an Injection: what was changed, with what it takes to undo it exactly
    abort(injection)             -> stop the fault now (Litmus engineState: stop, Chaos Mesh pause annotation,
                                    local: clear it); the recovery still has to be confirmed by recover()
    recover(injection)           -> remove the fault and confirm it is gone: Recovery(recovered, remaining, ...);
                                    Kubernetes objects are deleted only after recovery is confirmed
    injected(service)            -> every fault of ours that is still injected, as the backend sees it (the
                                    reaper's view: it finds faults left behind by a crashed run)

Before changing anything, `inject` records its intent where `injected()` finds it (a state file beside the
demo fleet, labels on the Kubernetes objects), so a run that crashes half-way still leaves a trace.

Backends register their kind (services.yaml `chaos.backend`) in FAULT_BACKENDS with a factory
`factory(service: ServiceSpec, connections: gamesre.integrations.connections.Connections) -> ChaosBackend`:
`local` (gamesre.integrations.chaos.local) and `kubernetes` (gamesre.integrations.chaos.kubernetes), both
registered by importing gamesre.integrations.backends.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from gamesre.core.errors import OutsideSystemError
from gamesre.core.registry import Registry

# The faults of the catalog (include/config/chaos/*.yaml). Parameters per kind (all optional unless noted):
#   pod_delete         -                                   (kill the instance / delete the pod)
#   cpu_hog            cpu_load (0..1 of a core, local) / cpu_cores (kubernetes), default 0.9
#   memory_hog         memory_mb (required)
#   network_latency    latency_ms (required), jitter_ms
#   network_loss       loss_percent (required, 0..100)
#   network_partition  -                                   (the target cannot be reached by its callers)
#   disk_fill          disk_fill_mb (required)
#   db_failure         db_fail_rate (0..1, default 1.0)    (the target's database calls fail)
#   db_latency         db_latency_ms (required)            (the target's database calls are slow)
FAULT_KINDS = ("pod_delete", "cpu_hog", "memory_hog", "network_latency", "network_loss", "network_partition",
               "disk_fill", "db_failure", "db_latency")


class ChaosBackendError(OutsideSystemError):
    """The backend could not do what was asked; the message names the backend, the object and the cause."""


@dataclass(frozen=True)
class FaultSpec:
    """One fault to apply: its kind, its parameters and how long it lasts."""

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float = 60.0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": dict(self.params), "duration_s": self.duration_s}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> FaultSpec:
        return cls(kind=str(doc["kind"]), params=dict(doc.get("params") or {}),
                   duration_s=float(doc.get("duration_s", 60.0)))


@dataclass(frozen=True)
class Injection:
    """A fault as injected: JSON-safe, kept in XCom and the store, enough for any later task to undo it."""

    run_id: str  # the experiment run (one chaos_experiment DAG run, or one entry of a game-day)
    experiment: str
    backend: str  # local | kubernetes
    service: str
    fault: FaultSpec
    targets: tuple[str, ...]  # instance or pod names
    injected_at: str  # ISO time, UTC
    handles: Mapping[str, Any] = field(default_factory=dict)  # backend specifics: previous values, object names

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["fault"] = self.fault.to_dict()
        out["targets"] = list(self.targets)
        out["handles"] = dict(self.handles)
        return out

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Injection:
        return cls(run_id=str(doc["run_id"]), experiment=str(doc["experiment"]), backend=str(doc["backend"]),
                   service=str(doc["service"]), fault=FaultSpec.from_dict(doc["fault"]),
                   targets=tuple(doc.get("targets") or ()), injected_at=str(doc["injected_at"]),
                   handles=dict(doc.get("handles") or {}))


@dataclass(frozen=True)
class Recovery:
    """The outcome of recover(): recovered only when the backend confirmed the fault is gone everywhere."""

    recovered: bool
    remaining: tuple[str, ...] = ()  # what is still injected, for people ("gs-stable-1: latency_ms=400")
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"recovered": self.recovered, "remaining": list(self.remaining), "detail": self.detail}


class ChaosBackend(ABC):
    """Applies and removes faults on one service's instances or pods."""

    kind: str = ""  # local | kubernetes

    @abstractmethod
    def targets(self, selector: Mapping[str, str]) -> list[str]:
        """The names the selector matches now (labels; local: `track`, `instance`), sorted; [] when none."""

    @abstractmethod
    def inject(self, run_id: str, experiment: str, fault: FaultSpec, targets: list[str]) -> Injection:
        """Apply the fault to these targets; a retry with the same run_id returns the existing injection."""

    @abstractmethod
    def abort(self, injection: Injection) -> None:
        """Stop the fault now (idempotent)."""

    @abstractmethod
    def recover(self, injection: Injection) -> Recovery:
        """Remove the fault and confirm it is gone (idempotent); ChaosBackendError when the backend fails."""

    @abstractmethod
    def injected(self, service: str | None = None) -> list[Injection]:
        """Every fault of ours still injected (optionally of one service), as the backend sees it."""


FAULT_BACKENDS = Registry[ChaosBackend]("chaos")
