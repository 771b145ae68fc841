"""Ports every use case may need besides its own: telling people (Slack) and the time. The Airflow layer
(gamesre.airflow.deps) provides the real ones; tests pass in-memory ones."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Notifier(Protocol):
    """Messages and files to people, each to a Slack channel given by its id (services.yaml `slack.channel_id`,
    e.g. C07GAMESRV1; never a #name). A notification failure never fails a workflow: both return False instead."""

    def message(self, text: str, *, channel_id: str) -> bool: ...

    def file(self, path: Path, *, channel_id: str, title: str, comment: str | None = None) -> bool: ...
