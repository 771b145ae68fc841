"""A gate's result: every gate (deploy, chaos) decides from gathered facts and explains itself."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    reason: str
    bypassed: bool = False  # passed only because of force
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
