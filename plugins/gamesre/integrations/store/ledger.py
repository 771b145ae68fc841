"""The SLO ledger in the store: minute rows (with the span they cover) and their packed UTC days."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gamesre.integrations.store.database import StoreDatabase, slo_ledger, slo_ledger_day, utcnow

SLICE_SECONDS = 60
DAY_SECONDS = 86_400


@dataclass(frozen=True)
class LedgerSlices:
    """Ledger rows of one SLO as arrays, sorted by minute (the input of the budget math)."""

    minutes: np.ndarray  # int64 slice starts, epoch seconds
    good: np.ndarray  # float64
    total: np.ndarray  # float64
    span: np.ndarray  # int64 minutes each row covers (>= 1)

    def __len__(self) -> int:
        return int(self.minutes.size)


class LedgerStore(StoreDatabase):
    """Writes and reads the SLO ledger; every upsert repacks the days it touched in the same transaction."""

    def upsert_ledger(self, slo: str, slices: Iterable[tuple[int, float, float] | tuple[int, float, float, int]]
                      ) -> int:
        """Write (minute, good, total[, span]) slices of one SLO; a re-run of the same minutes overwrites them.

        `span` (default 1) is the number of minutes the row covers: its own and the gap's before it.
        """
        now = utcnow()
        rows, days = [], set()
        for item in slices:
            minute, good, total = item[:3]
            span = item[3] if len(item) > 3 else 1
            if minute % SLICE_SECONDS:
                raise ValueError(f"ledger slice {minute} of {slo!r} is not minute-aligned")
            if not (np.isfinite(good) and np.isfinite(total)) or good < 0 or total < 0 or good > total:
                raise ValueError(f"ledger slice {minute} of {slo!r} has invalid counts good={good} total={total}")
            if int(span) != span or span < 1:
                raise ValueError(f"ledger slice {minute} of {slo!r} has an invalid span {span} (whole minutes >= 1)")
            rows.append({"slo": slo, "minute": int(minute), "good": float(good), "total": float(total),
                         "span": int(span), "ingested_at": now})
            days.add(int(minute) - int(minute) % DAY_SECONDS)
        with self.engine.begin() as conn:
            self._upsert(conn, slo_ledger, rows, ["slo", "minute"], ["good", "total", "span", "ingested_at"])
            self._repack_days(conn, slo, days)
        return len(rows)

    def _repack_days(self, conn: Connection, slo: str, days: set[int]) -> None:
        for day in sorted(days):
            q = (sa.select(slo_ledger.c.minute, slo_ledger.c.good, slo_ledger.c.total, slo_ledger.c.span)
                 .where(slo_ledger.c.slo == slo, slo_ledger.c.minute >= day, slo_ledger.c.minute < day + DAY_SECONDS)
                 .order_by(slo_ledger.c.minute))
            arr = np.asarray(conn.execute(q).all(), dtype=np.float64).reshape(-1, 4)
            packed = {"slo": slo, "day": day, "minutes": arr[:, 0].astype("<i8").tobytes(),
                      "good": arr[:, 1].astype("<f8").tobytes(), "total": arr[:, 2].astype("<f8").tobytes(),
                      "span": arr[:, 3].astype("<i8").tobytes()}
            self._upsert(conn, slo_ledger_day, [packed], ["slo", "day"], ["minutes", "good", "total", "span"])

    def ledger(self, slo: str, start: int | None = None, end: int | None = None) -> LedgerSlices:
        """Slices of one SLO with start <= minute < end, as arrays (read from the packed days)."""
        day = slo_ledger_day.c
        q = sa.select(day.minutes, day.good, day.total, day.span).where(day.slo == slo)
        if start is not None:
            q = q.where(day.day > start - DAY_SECONDS)
        if end is not None:
            q = q.where(day.day < end)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(day.day)).all()
        minutes = [np.frombuffer(r[0], "<i8") for r in rows]
        good = [np.frombuffer(r[1], "<f8") for r in rows]
        total = [np.frombuffer(r[2], "<f8") for r in rows]
        span = [np.frombuffer(r[3], "<i8") if r[3] is not None else np.ones(len(r[0]) // 8, np.int64) for r in rows]
        arrays = [np.concatenate(a) if a else np.zeros(0) for a in (minutes, good, total, span)]
        keep = np.ones(arrays[0].size, dtype=bool)
        if start is not None:
            keep &= arrays[0] >= start
        if end is not None:
            keep &= arrays[0] < end
        return LedgerSlices(arrays[0][keep].astype(np.int64), arrays[1][keep].astype(np.float64),
                            arrays[2][keep].astype(np.float64), arrays[3][keep].astype(np.int64))

    def ledger_row_before(self, slo: str, minute: int) -> int | None:
        """The newest minute of the SLO's ledger before `minute`, or None (where a gap before it began)."""
        q = sa.select(sa.func.max(slo_ledger.c.minute)).where(slo_ledger.c.slo == slo, slo_ledger.c.minute < minute)
        with self.engine.connect() as conn:
            found = conn.execute(q).scalar()
        return None if found is None else int(found)

    def ledger_extent(self, slo: str) -> tuple[int, int] | None:
        """(first minute, last minute) in the ledger for an SLO, or None when it has no slices."""
        q = sa.select(sa.func.min(slo_ledger.c.minute), sa.func.max(slo_ledger.c.minute)).where(slo_ledger.c.slo == slo)
        with self.engine.connect() as conn:
            lo, hi = conn.execute(q).one()
        return None if lo is None else (int(lo), int(hi))
