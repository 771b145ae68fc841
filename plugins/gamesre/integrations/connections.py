"""The outside systems' clients a backend factory may ask for, each built on demand by the caller.

A backend registered by kind (gamesre.core.registry) is created from its service's settings and this object;
a factory asks only for the clients its kind needs, so a `local` backend never needs a Kubernetes connection.
The Airflow layer (gamesre.airflow.deps) builds them from its hooks and connections.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from gamesre.integrations.haproxy import HAProxyRuntime


class Connections(Protocol):
    def haproxy(self) -> HAProxyRuntime:
        """The HAProxy runtime API in front of the demo fleet."""
        ...

    def kubernetes(self) -> ApiClient:
        """A Kubernetes API client for the cluster the services run in."""
        ...
