"""A notifier that keeps what it was asked to send, for use-case unit tests."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RecordingNotifier:
    messages: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    accept: bool = True  # False: Slack refuses everything (a notification failure must not fail the workflow)

    def message(self, text: str, *, channel_id: str) -> bool:
        self.messages.append({"text": text, "channel_id": channel_id})
        return self.accept

    def file(self, path: Path, *, channel_id: str, title: str, comment: str | None = None) -> bool:
        self.files.append({"name": path.name, "content": path.read_bytes(), "channel_id": channel_id,
                           "title": title, "comment": comment})
        return self.accept
