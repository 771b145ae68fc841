"""Facts several workflows gather before their gates judge: read once, from one outside system each."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from gamesre.core.errors import OutsideSystemError
from gamesre.core.gates import AlertsRead
from gamesre.core.services import Matcher


class AlertLike(Protocol):
    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def state(self) -> str: ...

    @property
    def starts_at(self) -> datetime: ...


class AlertsPort(Protocol):
    def alerts(self, filter: Sequence[Matcher] = ()) -> Sequence[AlertLike]: ...


def read_alerts(alertmanager: AlertsPort, matchers: Sequence[Matcher] = ()) -> AlertsRead:
    """Alertmanager's alerts (of the services `matchers` select, else all), or why they could not be read."""
    try:
        alerts = alertmanager.alerts(matchers)
    except OutsideSystemError as exc:
        return AlertsRead(error=str(exc))
    return AlertsRead(tuple({"labels": dict(a.labels), "state": a.state, "starts_at": a.starts_at.isoformat()}
                            for a in alerts))
