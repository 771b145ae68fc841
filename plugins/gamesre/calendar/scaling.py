"""Event scaling: the interface every scaling backend implements, and their registry.

A live-ops event adds capacity to a service for its span and takes it back afterwards (services.yaml
`scaling`, calendar.yaml events). The maintenance workflow (gamesre.app.maintenance) calls `scale_up` when
the event's scale-up time comes and `scale_back` after it; both are idempotent, reading the current state
first. Kinds: `kubernetes` (the service's HPA minReplicas, gamesre.integrations.kubernetes) and `local` (extra
demo fleet processes behind HAProxy, which the demo registers: demo/backends.py).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from gamesre.calendar.occurrence import ServiceScaling
from gamesre.core.registry import Registry


@dataclass(frozen=True)
class ScaleChange:
    """What a scaling call did: whether anything changed, and one line for people."""

    changed: bool
    message: str


class EventScaler(ABC):
    """Adds one service's capacity for an event, and takes it back."""

    @abstractmethod
    def scale_up(self, event_id: str, scaling: ServiceScaling) -> ScaleChange:
        """Bring the service to the event's capacity (nothing changes when it is there already)."""

    @abstractmethod
    def scale_back(self, event_id: str, scaling: ServiceScaling) -> ScaleChange:
        """Give back what the event added (nothing changes when nothing is left)."""


# factory(services catalog, connections) -> EventScaler, by the scaling's backend kind
EVENT_SCALERS: Registry[EventScaler] = Registry("event scaling")
