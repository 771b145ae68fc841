"""Evaluate every SLO at an instant from a ledger store: the one computation behind the report, the CLI and gates."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np

from gamesre.slo.budget import Ledger, SloSnapshot, compute_snapshot
from gamesre.slo.policy import SloState, evaluate
from gamesre.slo.spec import Policy, Slo

# Reads reach this far back: the longest window (31-day calendar month) plus the 3-day burn window.
LOOKBACK = timedelta(days=35)


class LedgerSlicesLike(Protocol):
    @property
    def minutes(self) -> np.ndarray: ...

    @property
    def good(self) -> np.ndarray: ...

    @property
    def total(self) -> np.ndarray: ...

    @property
    def span(self) -> np.ndarray: ...


class LedgerStore(Protocol):
    def ledger(self, slo: str, start: int | None = None, end: int | None = None) -> LedgerSlicesLike: ...

    def exclusions(self, service: str, start: datetime, end: datetime, *,
                   include_gamedays: bool = False) -> list[tuple[int, int]]: ...


@dataclass(frozen=True)
class Evaluated:
    slo: Slo
    ledger: Ledger
    exclusions: Sequence[tuple[int, int]]
    snapshot: SloSnapshot
    state: SloState


def evaluate_slos(slos: Iterable[Slo], policy: Policy, store: LedgerStore, at: datetime,
                  window: str | None = None) -> list[Evaluated]:
    at = at.astimezone(UTC)
    lo = at - LOOKBACK
    out = []
    for slo in slos:
        rows = store.ledger(slo.name, start=int(lo.timestamp()), end=int(at.timestamp()) + 60)
        ledger = Ledger(rows.minutes, rows.good, rows.total, rows.span)
        exclusions = store.exclusions(slo.service, lo, at, include_gamedays=not slo.count_gamedays_against_budget)
        snapshot = compute_snapshot(slo, ledger, at, exclusions, window_override=window)
        out.append(Evaluated(slo, ledger, exclusions, snapshot, evaluate(snapshot, policy)))
    return out
