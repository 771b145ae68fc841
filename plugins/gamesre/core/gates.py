"""A gate's result: every gate (deploy, chaos) decides from gathered facts and explains itself."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from gamesre.core.time import as_utc

PAGE_SEVERITIES = frozenset({"page", "critical"})


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    reason: str
    bypassed: bool = False  # passed only because of force
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AlertsRead:
    """Alertmanager's alerts as gathered for a gate ({labels, state, starts_at}), or why they could not be read."""

    alerts: tuple[Mapping[str, Any], ...] = ()
    error: str | None = None


def page_alerts_gate(read: AlertsRead, *, scope: str = "", refusal: str = "blocked") -> GateResult:
    """Only active (not silenced, not inhibited) page alerts refuse. `scope` names whose alerts were read
    ("the service"); alerts that cannot be read refuse too (fail safe), the reason saying so with `refusal`."""
    if read.error is not None:
        return GateResult("page_alerts", False, f"cannot read the firing alerts (fail safe: {refusal}): {read.error}")
    firing = [a for a in read.alerts if a.get("state") == "active"
              and str(a.get("labels", {}).get("severity", "")).lower() in PAGE_SEVERITIES]
    if not firing:
        return GateResult("page_alerts", True, f"no page alert{' of ' + scope if scope else ''} is firing",
                          evidence={"firing": []})
    names = ", ".join(sorted({str(a["labels"].get("alertname", "?")) for a in firing}))
    return GateResult("page_alerts", False, f"page alert(s) firing{' for ' + scope if scope else ''}: {names}",
                      evidence={"firing": [json_safe(a) for a in firing]})


def json_safe(value: Any) -> Any:
    """Gate evidence as JSON: instants as ISO strings, mappings and sequences recursively."""
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
