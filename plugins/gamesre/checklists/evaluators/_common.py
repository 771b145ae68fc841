"""Helpers the evaluators share: reading the common inputs, and writing numbers and times for people."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from gamesre.checklists.analytics import ledger_frame
from gamesre.checklists.registry import CheckContext, CheckError
from gamesre.core.time import KST, iso
from gamesre.slo.budget import Exclusion
from gamesre.slo.spec import Slo

# Evidence lists are capped so a stored result stays small; the totals are always given.
MAX_ROWS = 50


def slo_specs(ctx: CheckContext) -> list[Slo]:
    slos = ctx.data("slos")
    try:
        specs = list(slos)
    except TypeError:
        raise CheckError(f"input 'slos' should be the SLO catalog, got {type(slos).__name__}") from None
    if not all(isinstance(s, Slo) for s in specs):
        raise CheckError("input 'slos' should hold gamesre.slo.spec.Slo objects")
    return specs


def ledger_of(ctx: CheckContext, slo: str) -> pd.DataFrame:
    """The SLO's ledger rows; an SLO with no ledger is an empty one (no data, judged as such)."""
    ledgers: Mapping[str, Any] = ctx.data("ledgers")
    return ledger_frame(ledgers.get(slo, []))


def exclusions_of(ctx: CheckContext, service: str) -> Sequence[Exclusion]:
    exclusions: Mapping[str, Any] = ctx.data("exclusions")
    return list(exclusions.get(service, []))


def pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def duration_text(seconds: float | None) -> str:
    """`45s`, `12m`, `2h 05m`, `3d 4h`."""
    if seconds is None or seconds != seconds:
        return "n/a"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m" + (f" {s % 60:02d}s" if s % 60 and s < 600 else "")
    if s < 86_400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86_400}d {s % 86_400 // 3600}h"


def kst_text(epoch: float | None) -> str:
    if epoch is None or epoch != epoch:
        return "n/a"
    return f"{datetime.fromtimestamp(epoch, KST):%Y-%m-%d %H:%M} KST"


def iso_or_none(epoch: float | None) -> str | None:
    return None if epoch is None or epoch != epoch else iso(int(epoch))


def records(frame: pd.DataFrame, columns: Iterable[str], *, times: Iterable[str] = (),
            limit: int = MAX_ROWS) -> list[dict[str, Any]]:
    """The first `limit` rows as dicts of the given columns, epoch-second `times` as ISO UTC strings."""
    time_columns = set(times)
    out = []
    for _, row in frame.head(limit).iterrows():
        item: dict[str, Any] = {}
        for column in columns:
            value = row[column] if column in row.index else None
            item[column] = iso_or_none(value) if column in time_columns else value
        out.append(item)
    return out


def listing(names: Sequence[str], limit: int = 5) -> str:
    """`a, b, c` or `a, b, c, d, e and 3 more`."""
    head = ", ".join(names[:limit])
    return head + (f" and {len(names) - limit} more" if len(names) > limit else "")


__all__ = ["MAX_ROWS", "duration_text", "exclusions_of", "iso_or_none", "kst_text", "ledger_of", "listing", "pct",
           "records", "slo_specs"]
