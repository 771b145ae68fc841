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
DAY_SECONDS = 86_400

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

# A packed copy of each SLO's ledger per UTC day, rebuilt from slo_ledger in the same transaction as every
# upsert: reports read ~31 rows per SLO for a 30-day window instead of 43,200 (see benchmarks/README.md).
slo_ledger_day = sa.Table(
    "slo_ledger_day", metadata,
    sa.Column("slo", sa.String(128), primary_key=True),
    sa.Column("day", sa.BigInteger, primary_key=True),  # epoch seconds of the UTC day's start
    sa.Column("minutes", sa.LargeBinary, nullable=False),  # int64 slice starts
    sa.Column("good", sa.LargeBinary, nullable=False),  # float64
    sa.Column("total", sa.LargeBinary, nullable=False),  # float64
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


# Maintenance windows, live-ops events and game-days: the record of planned work. Windows with
# excludes_budget are subtracted from the SLO budgets of their services (raw figures are kept too).
maintenance_window = sa.Table(
    "maintenance_window", metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # recurring | one-off | adhoc | event | gameday
    sa.Column("start", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("end", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("services", sa.JSON, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("ticket", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # scheduled | active | completed | cancelled
    sa.Column("excludes_budget", sa.Boolean, nullable=False),
    sa.Column("silence_ids", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("cancelled_by", sa.String(128), nullable=True),
)


def _migration_1(conn: Connection) -> None:
    for table in (slo_ledger, slo_ledger_day, slo_snapshot, policy_state, policy_state_history, maintenance_window):
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
                    version_q = sa.select(store_meta.c.value).where(store_meta.c.key == "schema_version")
                    row = conn.execute(version_q).first()
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
            rows.append({"slo": slo, "minute": int(minute), "good": float(good), "total": float(total),
                         "ingested_at": now})
        with self.engine.begin() as conn:
            self._upsert(conn, slo_ledger, rows, ["slo", "minute"], ["good", "total", "ingested_at"])
            self._repack_days(conn, slo, {int(m) - int(m) % DAY_SECONDS for m, _, _ in slices_seen(rows)})
        return len(rows)

    def _repack_days(self, conn: Connection, slo: str, days: set[int]) -> None:
        for day in sorted(days):
            q = (sa.select(slo_ledger.c.minute, slo_ledger.c.good, slo_ledger.c.total)
                 .where(slo_ledger.c.slo == slo, slo_ledger.c.minute >= day, slo_ledger.c.minute < day + DAY_SECONDS)
                 .order_by(slo_ledger.c.minute))
            arr = np.asarray(conn.execute(q).all(), dtype=np.float64).reshape(-1, 3)
            packed = {"slo": slo, "day": day, "minutes": arr[:, 0].astype("<i8").tobytes(),
                      "good": arr[:, 1].astype("<f8").tobytes(), "total": arr[:, 2].astype("<f8").tobytes()}
            self._upsert(conn, slo_ledger_day, [packed], ["slo", "day"], ["minutes", "good", "total"])

    def ledger(self, slo: str, start: int | None = None, end: int | None = None) -> LedgerSlices:
        """Slices of one SLO with start <= minute < end, as arrays (read from the packed days)."""
        q = sa.select(slo_ledger_day.c.minutes, slo_ledger_day.c.good, slo_ledger_day.c.total).where(
            slo_ledger_day.c.slo == slo)
        if start is not None:
            q = q.where(slo_ledger_day.c.day > start - DAY_SECONDS)
        if end is not None:
            q = q.where(slo_ledger_day.c.day < end)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(slo_ledger_day.c.day)).all()
        minutes = np.concatenate([np.frombuffer(r[0], "<i8") for r in rows]) if rows else np.zeros(0, np.int64)
        good = np.concatenate([np.frombuffer(r[1], "<f8") for r in rows]) if rows else np.zeros(0)
        total = np.concatenate([np.frombuffer(r[2], "<f8") for r in rows]) if rows else np.zeros(0)
        keep = np.ones(minutes.size, dtype=bool)
        if start is not None:
            keep &= minutes >= start
        if end is not None:
            keep &= minutes < end
        return LedgerSlices(minutes[keep].astype(np.int64), good[keep].astype(np.float64),
                            total[keep].astype(np.float64))

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


    # --- maintenance windows ------------------------------------------------------------------------------------

    def upsert_window(self, window: dict[str, Any]) -> None:
        """Insert a window record, or update the fields given in `window` of an existing one (by id).

        Fields not given keep their stored values (e.g. the silence ids a previous run recorded).
        """
        now = _utcnow()
        insert = {"silence_ids": [], "cancelled_at": None, "cancelled_by": None, "created_at": now,
                  "created_by": window.get("owner", "unknown"), **window, "updated_at": now}
        if "services" in insert:
            insert["services"] = sorted(insert["services"])
        update = [c for c in window if c not in ("id", "created_at", "created_by")] + ["updated_at"]
        with self.engine.begin() as conn:
            self._upsert(conn, maintenance_window, [_json_safe_row(insert)], ["id"], update)

    def update_window(self, window_id: str, **fields: Any) -> None:
        """Change some fields of an existing window (status, silence ids, cancellation); KeyError if unknown."""
        values = {**_json_safe_row(fields), "updated_at": _utcnow()}
        with self.engine.begin() as conn:
            result = conn.execute(sa.update(maintenance_window).where(maintenance_window.c.id == window_id)
                                  .values(**values))
        if result.rowcount == 0:
            raise KeyError(f"no maintenance window {window_id!r} in the SRE store")

    def window(self, window_id: str) -> dict[str, Any] | None:
        rows = [w for w in self.windows(include_cancelled=True, ids=[window_id])]
        return rows[0] if rows else None

    def windows(self, start: datetime | None = None, end: datetime | None = None,
                *, include_cancelled: bool = False, ids: Sequence[str] | None = None,
                kinds: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Windows overlapping [start, end), oldest first."""
        q = sa.select(maintenance_window)
        if ids is not None:
            q = q.where(maintenance_window.c.id.in_(list(ids)))
        if kinds is not None:
            q = q.where(maintenance_window.c.kind.in_(list(kinds)))
        if start is not None:
            q = q.where(maintenance_window.c.end > start)
        if end is not None:
            q = q.where(maintenance_window.c.start < end)
        if not include_cancelled:
            q = q.where(maintenance_window.c.status != "cancelled")
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(maintenance_window.c.start)).mappings().all()
        return [{**r, **{k: _aware(r[k]) for k in ("start", "end", "created_at", "updated_at") if r[k]},
                 "cancelled_at": _aware(r["cancelled_at"]) if r["cancelled_at"] else None} for r in rows]

    def exclusions(self, service: str, start: datetime, end: datetime) -> list[tuple[int, int]]:
        """[start, end) epoch intervals to leave out of a service's SLO budgets."""
        return [(int(w["start"].timestamp()), int(w["end"].timestamp())) for w in self.windows(start, end)
                if w["excludes_budget"] and service in w["services"]]


def slices_seen(rows: list[dict[str, Any]]) -> list[tuple[int, float, float]]:
    return [(int(r["minute"]), float(r["good"]), float(r["total"])) for r in rows]


def _json_safe_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (_json_safe(v) if isinstance(v, list | dict) else v) for k, v in row.items()}


def _json_safe(value: Any) -> Any:
    """Round-trip through JSON so numpy scalars and datetimes are stored the same on every database."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")
