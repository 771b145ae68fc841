"""The demo fleet's default topology as data: which game instances run, with which build, behind which backend."""
from __future__ import annotations

from dataclasses import dataclass

from gamesre.core.contract import Contract, load_contract

# HAProxy weights at start: stable instances share the traffic, canaries wait at 0 until a deploy shifts it.
STABLE_WEIGHT = 100
CANARY_WEIGHT = 0


@dataclass(frozen=True)
class Instance:
    """One fleet process: its logical name is the Prometheus `instance` label and the HAProxy server name."""

    name: str
    service: str  # a service of the metric contract
    track: str  # a `track` label value of the metric contract (stable | canary)
    version: str
    weight: int  # HAProxy weight at start

    def job(self, contract: Contract | None = None) -> str:
        """The Prometheus job of this instance's service, as the metric contract names it."""
        return (contract or load_contract()).services[self.service].job


DEFAULT_TOPOLOGY: tuple[Instance, ...] = (
    Instance("gs-stable-1", "game-server", "stable", "1.4.2", STABLE_WEIGHT),
    Instance("gs-stable-2", "game-server", "stable", "1.4.2", STABLE_WEIGHT),
    Instance("gs-canary-1", "game-server", "canary", "1.5.0", CANARY_WEIGHT),
    Instance("mm-stable-1", "matchmaking", "stable", "2.3.1", STABLE_WEIGHT),
    Instance("mm-canary-1", "matchmaking", "canary", "2.4.0", CANARY_WEIGHT),
)


def haproxy_names(instance: Instance, contract: Contract | None = None) -> tuple[str, str]:
    """(backend, server) of an instance in the HAProxy configuration: the backend is named after the job."""
    return instance.job(contract), instance.name


def by_name(name: str, topology: tuple[Instance, ...] = DEFAULT_TOPOLOGY) -> Instance:
    for instance in topology:
        if instance.name == name:
            return instance
    known = ", ".join(i.name for i in topology)
    raise KeyError(f"no instance {name!r} in the topology (known: {known})")


def session_capacity(service: str, topology: tuple[Instance, ...] = DEFAULT_TOPOLOGY,
                     contract: Contract | None = None) -> int:
    """Sessions one game-server instance holds: the stable instances together hold the contract's capacity.

    A canary reports the same per-instance capacity; it is extra headroom while it runs, so the service
    capacity is `sum(game_sessions_capacity{track="stable"})` (100,000 in the default topology).
    Services without sessions (matchmaking) hold none.
    """
    contract = contract or load_contract()
    if not any(m.name == "game_sessions_capacity" and m.service == service for m in contract.metrics.values()):
        return 0
    stable = [i for i in topology if i.service == service and i.track == "stable"]
    if not stable:
        raise ValueError(f"the topology has no stable {service} instance to carry the session capacity")
    return contract.max_concurrent_sessions // len(stable)


def validate_topology(topology: tuple[Instance, ...], contract: Contract | None = None) -> None:
    """Every instance names a contract service and track, and names are unique (they are label values)."""
    contract = contract or load_contract()
    names = [i.name for i in topology]
    if len(set(names)) != len(names):
        raise ValueError(f"instance names must be unique: {names}")
    for i in topology:
        if i.service not in contract.services:
            raise ValueError(f"{i.name}: service {i.service!r} is not in the metric contract")
        if i.track not in contract.label_values["track"]:
            raise ValueError(f"{i.name}: track {i.track!r} is not one of {contract.label_values['track']}")
        if not 0 <= i.weight <= 256:
            raise ValueError(f"{i.name}: HAProxy weight {i.weight} is outside 0..256")
