"""The connections a backend factory may need, provided by the Airflow layer (hooks) or by a test.

Typed loosely on purpose: the domain that owns a backend interface must not import the clients themselves.
"""
from __future__ import annotations

from typing import Any, Protocol


class Connections(Protocol):
    def haproxy(self) -> Any:
        """The HAProxy runtime API client (gamesre.integrations.haproxy.HAProxyRuntime)."""

    def kubernetes(self) -> Any:
        """A Kubernetes API client (kubernetes.client.ApiClient)."""
