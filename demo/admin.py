"""The fleet's admin API documents (runtime faults and build labels), validated all-or-nothing.

Pure: no I/O. The fleet applies a validated document; a bad field anywhere rejects the whole request with
`AdminValidationError`, whose message is `"<field>: <reason>"` (the HTTP 400 body's `error`).
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


class AdminValidationError(ValueError):
    """A field of an admin request is unknown, of the wrong type or out of range."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Faults:
    """The faults currently injected into one instance (all off by default)."""

    error_rate: float = 0.0  # share of player requests that fail (0..1)
    latency_ms: float = 0.0  # added to every action and matchmaking wait
    not_ready: bool = False  # /ready answers 503, so HAProxy routes around the instance; traffic still served
    crash: bool = False  # the game stops serving players: every player request 503, /healthz and /ready 503
    killed: bool = False  # the process is gone for players: connections closed unanswered (a deleted pod)
    db_fail_rate: float = 0.0  # share of database calls (saves, logins) that fail
    db_latency_ms: float = 0.0  # added to every database call
    cpu_load: float = 0.0  # fraction of one core burned by a thread
    memory_mb: int = 0  # memory allocated and held
    disk_fill_mb: int = 0  # bytes written to a temp file

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Rule:
    kind: str  # "fraction" | "number" | "integer" | "boolean"
    low: float = 0.0
    high: float = 0.0
    fault_labels: tuple[str, ...] = ()  # game_fault_active{fault=...} values this field turns on


FAULT_RULES: dict[str, _Rule] = {
    "error_rate": _Rule("fraction", 0.0, 1.0, ("error_rate",)),
    "latency_ms": _Rule("number", 0.0, 60000.0, ("latency",)),
    "not_ready": _Rule("boolean", fault_labels=("not_ready",)),
    # The contract has no "crash" fault value: a crash shows as what it does, not ready and failing.
    "crash": _Rule("boolean", fault_labels=("not_ready", "error_rate")),
    # Nor a "killed" one: a killed instance is not ready, and its unanswered requests fail nowhere it counts.
    "killed": _Rule("boolean", fault_labels=("not_ready",)),
    "db_fail_rate": _Rule("fraction", 0.0, 1.0, ("db_fail",)),
    "db_latency_ms": _Rule("number", 0.0, 60000.0, ("db_slow",)),
    "cpu_load": _Rule("fraction", 0.0, 1.0, ("cpu",)),
    "memory_mb": _Rule("integer", 0, 1024, ("memory",)),
    "disk_fill_mb": _Rule("integer", 0, 512, ("disk",)),
}
assert set(FAULT_RULES) == {f.name for f in fields(Faults)}, "every fault field needs a validation rule"


def _check_value(name: str, rule: _Rule, value: object) -> object:
    if rule.kind == "boolean":
        if not isinstance(value, bool):
            raise AdminValidationError(name, f"expected true or false, got {type(value).__name__}")
        return value
    # bool is an int in Python; a JSON true is not a number here.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AdminValidationError(name, f"expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise AdminValidationError(name, "must be a finite number")
    if rule.kind == "integer":
        if isinstance(value, float) and not value.is_integer():
            raise AdminValidationError(name, f"expected a whole number of MB, got {value}")
        value = int(value)
    if not rule.low <= value <= rule.high:
        raise AdminValidationError(name, f"{value} is outside {_fmt(rule.low)}..{_fmt(rule.high)}")
    return float(value) if rule.kind in ("fraction", "number") else value


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _require_object(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise AdminValidationError("body", f"expected a JSON object, got {type(body).__name__}")
    return body


def parse_fault_update(current: Faults, body: object) -> Faults:
    """The faults after a partial update (PUT /admin/faults); nothing changes when any field is bad."""
    doc = _require_object(body)
    for name in doc:
        if name not in FAULT_RULES:
            raise AdminValidationError(name, f"unknown field (known: {', '.join(FAULT_RULES)})")
    changes: dict[str, Any] = {name: _check_value(name, FAULT_RULES[name], value) for name, value in doc.items()}
    return replace(current, **changes)


def active_fault_labels(faults: Faults) -> set[str]:
    """The contract `fault` label values that are active for these faults."""
    active: set[str] = set()
    for f in fields(Faults):
        if getattr(faults, f.name):
            active.update(FAULT_RULES[f.name].fault_labels)
    return active


@dataclass(frozen=True)
class Build:
    """The running build, exposed as the version and track labels of every series."""

    version: str
    track: str


_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")


def parse_build_update(current: Build, body: object, tracks: tuple[str, ...]) -> Build:
    """The build after a partial update (PUT /admin/build); nothing changes when any field is bad."""
    doc = _require_object(body)
    changes: dict[str, str] = {}
    for name, value in doc.items():
        if name == "version":
            if not isinstance(value, str) or not _VERSION.match(value):
                raise AdminValidationError(
                    name, "expected a version string of letters, digits and . + _ - (at most 64 characters)")
        elif name == "track":
            if value not in tracks:
                raise AdminValidationError(name, f"expected one of {', '.join(tracks)}, got {value!r}")
        else:
            raise AdminValidationError(name, "unknown field (known: version, track)")
        changes[name] = value
    return replace(current, **changes)
