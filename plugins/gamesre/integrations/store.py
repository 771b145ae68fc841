"""The SRE store: the SLO ledger, snapshots and published policy states (SQLAlchemy; SQLite or PostgreSQL).

Schema changes are numbered migrations applied on first use, so a new database and an old one converge.
Times are stored in UTC: ledger minutes as epoch seconds, everything else as timezone-aware timestamps.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

SLICE_SECONDS = 60

metadata = sa.MetaData()

store_meta = sa.Table(
    "store_meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

# One row per SLO per one-minute slice: the minute (t-60s, t] is keyed by its start t-60s.
slo_ledger = sa.Table(
    "slo_ledger", metadata,
    sa.Column("slo", sa.String(128), primary_key=True),
    sa.Column("minute", sa.BigInteger, primary_key=True),  # slice start, epoch seconds UTC, minute-aligned
    sa.Column("good", sa.Float, nullable=False),
    sa.Column("total", sa.Float, nullable=False),
    sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
)

slo_snapshot = sa.Table(
    "slo_snapshot", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("slo", sa.String(128), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("window", sa.String(32), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.UniqueConstraint("slo", "at", "window", name="uq_snapshot_slo_at_window"),
)

# The latest published policy state per scope ("slo" or "service") and name; gates read this table.
policy_state = sa.Table(
    "policy_state", metadata,
    sa.Column("scope", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
)

policy_state_history = sa.Table(
    "policy_state_history", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Index("ix_policy_history_name_time", "scope", "name", "computed_at"),
)


def _migration_1(conn: Connection) -> None:
    for table in (slo_ledger, slo_snapshot, policy_state, policy_state_history):
        table.create(conn, checkfirst=True)


# Append only: a migration, once released, never changes.
MIGRATIONS: list[Callable[[Connection], None]] = [_migration_1]


class StoreError(RuntimeError):
    """The store cannot be reached or used; the message names the database (without its password)."""


@dataclass(frozen=True)
class LedgerSlices:
    """Ledger rows of one SLO as arrays, sorted by minute (the input of the budget math)."""

    minutes: np.ndarray  # int64 slice starts, epoch seconds
    good: np.ndarray  # float64
    total: np.ndarray  # float64

    def __len__(self) -> int:
        return int(self.minutes.size)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; everything stored is UTC, so make that explicit again."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class SREStore:
    """Typed access to the store; create with a SQLAlchemy URL. Thread-safe; migrates on first use."""

    _lock = threading.Lock()

    def __init__(self, url: str, *, engine: Engine | None = None):
        self.url = url
        self.engine = engine or sa.create_engine(url, future=True, pool_pre_ping=True)
        self.dialect = self.engine.dialect.name
        self._ensure_schema()

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def _ensure_schema(self) -> None:
        with self._lock:
            try:
                with self.engine.begin() as conn:
                    store_meta.create(conn, checkfirst=True)
                    row = conn.execute(sa.select(store_meta.c.value).where(store_meta.c.key == "schema_version")).first()
                    version = int(row[0]) if row else 0
                    for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                        migration(conn)
                        self._set_meta(conn, "schema_version", str(number))
            except sa.exc.OperationalError as exc:
                raise StoreError(f"cannot open the SRE store {self.safe_url}: {exc.orig}") from exc

    def _set_meta(self, conn: Connection, key: str, value: str) -> None:
        self._upsert(conn, store_meta, [{"key": key, "value": value}], ["key"], ["value"])

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(store_meta.c.value).where(store_meta.c.key == "schema_version")).first()
        return int(row[0]) if row else 0

    def _upsert(
        self, conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]], keys: list[str], update: list[str]
    ) -> None:
        if not rows:
            return
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(table)
        elif self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(table)  # type: ignore[assignment]
        else:
            raise StoreError(f"the SRE store supports SQLite and PostgreSQL, not {self.dialect}")
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update})
        for start in range(0, len(rows), 5000):
            conn.execute(stmt, list(rows[start : start + 5000]))

    # --- ledger -----------------------------------------------------------------------------------------------

    def upsert_ledger(self, slo: str, slices: Iterable[tuple[int, float, float]]) -> int:
        """Write (minute, good, total) slices of one SLO; a re-run of the same minutes overwrites them."""
        now = _utcnow()
        rows = []
        for minute, good, total in slices:
            if minute % SLICE_SECONDS:
                raise ValueError(f"ledger slice {minute} of {slo!r} is not minute-aligned")
            if not (np.isfinite(good) and np.isfinite(total)) or good < 0 or total < 0 or good > total:
                raise ValueError(f"ledger slice {minute} of {slo!r} has invalid counts good={good} total={total}")
            rows.append({"slo": slo, "minute": int(minute), "good": float(good), "total": float(total), "ingested_at": now})
        with self.engine.begin() as conn:
            self._upsert(conn, slo_ledger, rows, ["slo", "minute"], ["good", "total", "ingested_at"])
        return len(rows)

    def ledger(self, slo: str, start: int | None = None, end: int | None = None) -> LedgerSlices:
        """Slices of one SLO with start <= minute < end, as arrays."""
        q = sa.select(slo_ledger.c.minute, slo_ledger.c.good, slo_ledger.c.total).where(slo_ledger.c.slo == slo)
        if start is not None:
            q = q.where(slo_ledger.c.minute >= start)
        if end is not None:
            q = q.where(slo_ledger.c.minute < end)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(slo_ledger.c.minute)).all()
        if not rows:
            empty = np.array([], dtype=np.float64)
            return LedgerSlices(np.array([], dtype=np.int64), empty, empty.copy())
        arr = np.asarray(rows, dtype=np.float64)
        return LedgerSlices(arr[:, 0].astype(np.int64), arr[:, 1].copy(), arr[:, 2].copy())

    def ledger_extent(self, slo: str) -> tuple[int, int] | None:
        """(first minute, last minute) in the ledger for an SLO, or None when it has no slices."""
        q = sa.select(sa.func.min(slo_ledger.c.minute), sa.func.max(slo_ledger.c.minute)).where(slo_ledger.c.slo == slo)
        with self.engine.connect() as conn:
            lo, hi = conn.execute(q).one()
        return None if lo is None else (int(lo), int(hi))

    # --- snapshots and policy state -----------------------------------------------------------------------------

    def save_snapshot(self, slo: str, at: datetime, window: str, state: str, payload: dict[str, Any]) -> None:
        row = {"slo": slo, "at": at, "window": window, "state": state, "payload": _json_safe(payload)}
        with self.engine.begin() as conn:
            self._upsert(conn, slo_snapshot, [row], ["slo", "at", "window"], ["state", "payload"])

    def snapshots(self, slo: str, since: datetime | None = None) -> list[dict[str, Any]]:
        q = sa.select(slo_snapshot).where(slo_snapshot.c.slo == slo)
        if since is not None:
            q = q.where(slo_snapshot.c.at >= since)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(slo_snapshot.c.at)).mappings().all()
        return [{**r, "at": _aware(r["at"])} for r in rows]

    def publish_state(
        self, scope: str, name: str, state: str, computed_at: datetime, reasons: list[Any], details: dict[str, Any]
    ) -> None:
        row = {"scope": scope, "name": name, "state": state, "computed_at": computed_at,
               "reasons": _json_safe(reasons), "details": _json_safe(details)}
        with self.engine.begin() as conn:
            self._upsert(conn, policy_state, [row], ["scope", "name"], ["state", "computed_at", "reasons", "details"])
            conn.execute(sa.insert(policy_state_history), [{k: row[k] for k in
                         ("scope", "name", "state", "computed_at", "reasons")}])

    def current_state(self, scope: str, name: str) -> dict[str, Any] | None:
        q = sa.select(policy_state).where(policy_state.c.scope == scope, policy_state.c.name == name)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return None if row is None else {**row, "computed_at": _aware(row["computed_at"])}

    def state_history(self, scope: str, name: str, since: datetime | None = None) -> list[dict[str, Any]]:
        q = sa.select(policy_state_history).where(
            policy_state_history.c.scope == scope, policy_state_history.c.name == name
        )
        if since is not None:
            q = q.where(policy_state_history.c.computed_at >= since)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(policy_state_history.c.computed_at)).mappings().all()
        return [{**r, "computed_at": _aware(r["computed_at"])} for r in rows]


def _json_safe(value: Any) -> Any:
    """Round-trip through JSON so numpy scalars and datetimes are stored the same on every database."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")
