"""Which faults crashed runs left behind, decided over what the store and the backends show. Pure.

A fault is left behind when its run is not the one holding the (fresh) game-day lock: either the store says it was
injected and never confirmed recovered, or a backend still shows a fault of ours. The lock holder's faults belong
to a game-day in progress and are left alone, like those of the run that asks (its own reaper task).
"""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from gamesre.chaos.faults import Injection


def lock_in_use(holder: Mapping[str, Any] | None, now: datetime, stale_after_s: float) -> str | None:
    """The run id holding the game-day lock, or None when nobody holds it or the lock is stale (its run crashed)."""
    if holder is not None and (now - holder["acquired_at"]).total_seconds() <= stale_after_s:
        return str(holder["run_id"])
    return None


def left_behind(shown: Mapping[str, Sequence[Injection]], unrecovered: Sequence[Mapping[str, Any]],
                spared: Collection[str | None]) -> dict[str, list[Injection]]:
    """Per service, the faults to recover: what each service's backend shows (`shown`) and what the store's
    unrecovered runs recorded (once per run), except those of the runs in `spared`."""
    found: dict[str, list[Injection]] = {}
    for service, injections in shown.items():
        for injection in injections:
            if injection.run_id not in spared:
                found.setdefault(service, []).append(injection)
    for row in unrecovered:
        if row["id"] in spared or not row.get("injection"):
            continue
        injection = Injection.from_dict(row["injection"])
        if not any(i.run_id == injection.run_id for i in found.get(injection.service, [])):
            found.setdefault(injection.service, []).append(injection)
    return found
