"""Alertmanager's alerts from a list, for use-case tests; or Alertmanager down (its client's own error)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gamesre.core.services import Matcher
from gamesre.integrations.alertmanager import AlertmanagerUnreachable


@dataclass(frozen=True)
class ListedAlert:
    labels: Mapping[str, str]
    state: str = "active"  # active | suppressed | unprocessed
    starts_at: datetime = datetime(2026, 11, 25, 4, 50, tzinfo=UTC)


@dataclass
class ListedAlertmanager:
    listed: list[ListedAlert] = field(default_factory=list)
    down: bool = False

    def alerts(self, filter: Sequence[Matcher] = ()) -> Sequence[ListedAlert]:
        if self.down:
            raise AlertmanagerUnreachable("connection refused", url="http://127.0.0.1:9093")
        return list(self.listed)


def page(alertname: str, **labels: str) -> ListedAlert:
    """An active page-severity alert."""
    return ListedAlert({"alertname": alertname, "severity": "page", **labels})
