"""A fault backend that plays a script, for use-case tests: the instances it shows, the faults already injected
(left behind by crashed runs), and per recover() call a Recovery or an error to raise. It keeps what it was asked.

The real backends have their own integration tests (tests/integration/chaos/).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gamesre.chaos.faults import ChaosBackend, ChaosBackendError, FaultSpec, Injection, Recovery

INJECTED_AT = "2026-11-26T05:00:00+00:00"


class ScriptedBackend(ChaosBackend):
    kind = "local"

    def __init__(self, *, service: str = "game-server", instances: Sequence[str] = ("gs-stable-1", "gs-stable-2"),
                 outcomes: Sequence[Recovery | Exception] = (), leftovers: Sequence[Injection] = (),
                 unreachable: str | None = None, abort_error: str | None = None) -> None:
        self.service = service
        self.instances = list(instances)
        self.outcomes = list(outcomes)  # per recover() call; then every fault comes out
        self.leftovers = list(leftovers)  # faults injected before the test (a crashed run's, an orphan)
        self.unreachable = unreachable  # targets() and injected() fail with this
        self.abort_error = abort_error  # abort() fails with this
        self.injections: list[Injection] = []
        self.aborted: list[str] = []
        self.recovered: list[str] = []

    def targets(self, selector: Mapping[str, str]) -> list[str]:
        if self.unreachable:
            raise ChaosBackendError(self.unreachable)
        return sorted(n for n in self.instances if selector.get("instance", n) == n)

    def inject(self, run_id: str, experiment: str, fault: FaultSpec, targets: list[str]) -> Injection:
        injection = Injection(run_id, experiment, self.kind, self.service, fault, tuple(targets), INJECTED_AT,
                              {"previous": {t: 0 for t in targets}})
        self.injections.append(injection)
        return injection

    def abort(self, injection: Injection) -> None:
        if self.abort_error:
            raise ChaosBackendError(self.abort_error)
        self.aborted.append(injection.run_id)

    def recover(self, injection: Injection) -> Recovery:
        outcome = self.outcomes.pop(0) if self.outcomes else Recovery(True, (), "gone")
        if isinstance(outcome, Exception):
            raise outcome
        if outcome.recovered:
            self.recovered.append(injection.run_id)
        return outcome

    def injected(self, service: str | None = None) -> list[Injection]:
        if self.unreachable:
            raise ChaosBackendError(self.unreachable)
        return [i for i in self.leftovers + self.injections
                if service in (None, i.service) and i.run_id not in self.recovered]


def injection(run_id: str, *, experiment: str = "gs-latency", targets: Sequence[str] = ("gs-stable-1",),
              **fault: Any) -> Injection:
    """A network_latency fault of `run_id` on game-server (or the fault given as kind/params)."""
    spec = FaultSpec(fault.get("kind", "network_latency"), fault.get("params", {"latency_ms": 600}), 60)
    return Injection(run_id, experiment, "local", "game-server", spec, tuple(targets), INJECTED_AT)
