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

from gamesre.core.errors import OutsideSystemError

SLICE_SECONDS = 60
DAY_SECONDS = 86_400

metadata = sa.MetaData()

store_meta = sa.Table(
    "store_meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

# One row per SLO per one-minute slice: the minute (t-60s, t] is keyed by its start t-60s. A row after a scrape
# gap carries the gap's events and covers the gap's minutes too: `span` minutes in all (docs/slo.md).
slo_ledger = sa.Table(
    "slo_ledger", metadata,
    sa.Column("slo", sa.String(128), primary_key=True),
    sa.Column("minute", sa.BigInteger, primary_key=True),  # slice start, epoch seconds UTC, minute-aligned
    sa.Column("good", sa.Float, nullable=False),
    sa.Column("total", sa.Float, nullable=False),
    sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("span", sa.Integer, nullable=False, server_default="1"),  # migration 5
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
    sa.Column("span", sa.LargeBinary, nullable=True),  # int64; migration 5 (days packed before it: all 1)
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


# Deploys: one row per game_service_deploy run (the source of DORA metrics and of incident timelines), the
# verdict of every analysis step, and the lock that keeps one deploy per service at a time.
deployment = sa.Table(
    "deployment", metadata,
    sa.Column("id", sa.String(250), primary_key=True),  # the DAG run id
    sa.Column("service", sa.String(128), nullable=False, index=True),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("image", sa.String(512), nullable=False),
    sa.Column("previous_version", sa.String(128), nullable=True),
    sa.Column("strategy", sa.String(32), nullable=False),
    sa.Column("stages", sa.JSON, nullable=False),  # requested stages, in order
    sa.Column("backend", sa.String(32), nullable=False),
    sa.Column("change_ticket", sa.String(128), nullable=False),
    sa.Column("requested_by", sa.String(128), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("forced", sa.Boolean, nullable=False),
    sa.Column("force_reason", sa.Text, nullable=False),
    # running | promoted | rolled_back | blocked | timed_out | invalid | failed | dry_run
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("stage_log", sa.JSON, nullable=False),  # per stage: gates, started/finished, steps, outcome
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),  # first change to the service
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("rolled_back_at", sa.DateTime(timezone=True), nullable=True),  # traffic back on stable
    sa.Column("run_url", sa.String(1024), nullable=False),
)

deploy_verdict = sa.Table(
    "deploy_verdict", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("deployment_id", sa.String(250), nullable=False, index=True),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("step_label", sa.String(64), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),  # pass | fail | timed_out | error
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),  # queries, values, statistics, thresholds per SLI
    sa.UniqueConstraint("deployment_id", "stage", "step", name="uq_verdict_step"),
)

deploy_lock = sa.Table(
    "deploy_lock", metadata,
    sa.Column("service", sa.String(128), primary_key=True),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
)


# Chaos game-days: one row per experiment run (refused, dry and skipped runs too: a refusal records why), one
# per game-day, the lock that keeps one game-day at a time, and open incidents (read by the chaos gate; the
# incident workflow will write them).
chaos_run = sa.Table(
    "chaos_run", metadata,
    sa.Column("id", sa.String(250), primary_key=True),  # the experiment run id (a DAG run id, or <gameday>/<n>)
    sa.Column("experiment", sa.String(128), nullable=False, index=True),
    sa.Column("title", sa.String(256), nullable=False),
    sa.Column("service", sa.String(128), nullable=False, index=True),
    sa.Column("backend", sa.String(32), nullable=False),
    sa.Column("environment", sa.String(16), nullable=False),
    sa.Column("gameday_id", sa.String(250), nullable=True, index=True),
    sa.Column("fault", sa.JSON, nullable=False),
    sa.Column("targets", sa.JSON, nullable=False),
    sa.Column("blast_radius", sa.JSON, nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("requested_by", sa.String(128), nullable=False),
    # running | pass | fail | aborted | error | invalid | refused | skipped | dry_run
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("weight", sa.Float, nullable=False),
    sa.Column("gates", sa.JSON, nullable=False),
    sa.Column("steady_before", sa.JSON, nullable=True),
    sa.Column("steady_after", sa.JSON, nullable=True),
    sa.Column("probes", sa.JSON, nullable=False),  # per probe: query, tolerance, samples, success %
    sa.Column("abort", sa.JSON, nullable=True),
    sa.Column("injection", sa.JSON, nullable=True),  # the backend's Injection (what to undo), once injected
    sa.Column("recovery", sa.JSON, nullable=True),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("injected_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("aborted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("recovered_at", sa.DateTime(timezone=True), nullable=True),  # recovery confirmed
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("run_url", sa.String(1024), nullable=False),
)

chaos_gameday = sa.Table(
    "chaos_gameday", metadata,
    sa.Column("id", sa.String(250), primary_key=True),  # the chaos_gameday DAG run id
    sa.Column("suite", sa.String(128), nullable=False),
    sa.Column("experiments", sa.JSON, nullable=False),  # the suite's experiment ids, in order
    sa.Column("verdict", sa.String(16), nullable=False),  # running | pass | fail | refused | error
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("run_url", sa.String(1024), nullable=False),
)

chaos_lock = sa.Table(
    "chaos_lock", metadata,
    sa.Column("name", sa.String(32), primary_key=True),  # always "gameday": one game-day at a time
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("experiment", sa.String(128), nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
)

incident = sa.Table(
    "incident", metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("severity", sa.String(8), nullable=False),  # sev0 | sev1 | sev2 | sev3
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("services", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # open | mitigated | resolved
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("details", sa.JSON, nullable=False),
)


# SLO checklists: one row per checklist run (daily, weekly, monthly) and one per item result with its evidence.
checklist_run = sa.Table(
    "checklist_run", metadata,
    sa.Column("id", sa.String(250), primary_key=True),  # the DAG run id
    sa.Column("cadence", sa.String(16), nullable=False, index=True),  # daily | weekly | monthly
    sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),  # the instant judged
    sa.Column("status", sa.String(16), nullable=False),  # the worst item status, or running
    sa.Column("counts", sa.JSON, nullable=False),  # status -> number of items
    sa.Column("report", sa.JSON, nullable=False),  # where the report went: files, Slack delivery
    sa.Column("run_url", sa.String(1024), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
)

checklist_result = sa.Table(
    "checklist_result", metadata,
    sa.Column("run_id", sa.String(250), primary_key=True),
    sa.Column("item_id", sa.String(128), primary_key=True),
    sa.Column("title", sa.String(256), nullable=False),
    sa.Column("cadence", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
)


def _migration_1(conn: Connection) -> None:
    for table in (slo_ledger, slo_ledger_day, slo_snapshot, policy_state, policy_state_history, maintenance_window):
        table.create(conn, checkfirst=True)


def _migration_2(conn: Connection) -> None:
    for table in (deployment, deploy_verdict, deploy_lock):
        table.create(conn, checkfirst=True)


def _migration_3(conn: Connection) -> None:
    for table in (chaos_run, chaos_gameday, chaos_lock, incident):
        table.create(conn, checkfirst=True)


def _migration_4(conn: Connection) -> None:
    for table in (checklist_run, checklist_result):
        table.create(conn, checkfirst=True)


def _add_column(conn: Connection, table: sa.Table, name: str) -> None:
    """Add a column of the table's current definition, unless migration 1 just created the table with it."""
    if name in {c["name"] for c in sa.inspect(conn).get_columns(table.name)}:
        return
    column = table.c[name]
    ddl = f"ALTER TABLE {table.name} ADD COLUMN {name} {column.type.compile(dialect=conn.dialect)}"
    if column.server_default is not None:
        ddl += f" DEFAULT {column.server_default.arg}"  # type: ignore[attr-defined]
    if not column.nullable:
        ddl += " NOT NULL"
    conn.execute(sa.text(ddl))


def _migration_5(conn: Connection) -> None:
    """Ledger rows carry the minutes they cover (`span`); existing rows cover their own minute."""
    _add_column(conn, slo_ledger, "span")
    _add_column(conn, slo_ledger_day, "span")


# Append only: a migration, once released, never changes.
MIGRATIONS: list[Callable[[Connection], None]] = [_migration_1, _migration_2, _migration_3, _migration_4,
                                                   _migration_5]


class StoreError(OutsideSystemError):
    """The store cannot be reached or used; the message names the database (without its password)."""


@dataclass(frozen=True)
class LedgerSlices:
    """Ledger rows of one SLO as arrays, sorted by minute (the input of the budget math)."""

    minutes: np.ndarray  # int64 slice starts, epoch seconds
    good: np.ndarray  # float64
    total: np.ndarray  # float64
    span: np.ndarray  # int64 minutes each row covers (>= 1)

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

    def upsert_ledger(self, slo: str, slices: Iterable[tuple[int, float, float] | tuple[int, float, float, int]]
                      ) -> int:
        """Write (minute, good, total[, span]) slices of one SLO; a re-run of the same minutes overwrites them.

        `span` (default 1) is the number of minutes the row covers: its own and the gap's before it.
        """
        now = _utcnow()
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

    def exclusions(self, service: str, start: datetime, end: datetime, *,
                   include_gamedays: bool = False) -> list[tuple[int, int]]:
        """[start, end) epoch intervals to leave out of a service's SLO budgets.

        Windows marked excludes_budget; with include_gamedays also the game-day windows (kind `gameday`, for
        SLOs with count_gamedays_against_budget: false).
        """
        return [(int(w["start"].timestamp()), int(w["end"].timestamp())) for w in self.windows(start, end)
                if service in w["services"] and (w["excludes_budget"] or (include_gamedays and w["kind"] == "gameday"))]


    # --- deploys --------------------------------------------------------------------------------------------

    def acquire_deploy_lock(self, service: str, run_id: str, version: str, *,
                            stale_after_s: float) -> dict[str, Any] | None:
        """Take the service's deploy lock for the run; the other holder's row when someone else has it.

        Taking it is one INSERT, so two runs racing cannot both win. A lock older than `stale_after_s` (its
        run crashed without releasing it) is taken over.
        """
        row = {"service": service, "run_id": run_id, "version": version, "acquired_at": _utcnow()}
        return self._take_lock(deploy_lock, deploy_lock.c.service == service, row,
                               lambda: self.deploy_lock(service), stale_after_s)

    def _take_lock(self, table: sa.Table, key: Any, row: dict[str, Any],
                   holder: Callable[[], dict[str, Any] | None], stale_after_s: float) -> dict[str, Any] | None:
        """Insert the lock row (one INSERT: two racing runs cannot both win); None when taken, else the holder.

        The holder's row is taken over when it is older than `stale_after_s` (its run crashed).
        """
        for _attempt in range(2):
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.insert(table), [row])
                return None
            except sa.exc.IntegrityError:
                current = holder()
                if current is None:
                    continue  # released in between: try again
                if current["run_id"] == row["run_id"]:
                    return None
                if (row["acquired_at"] - current["acquired_at"]).total_seconds() <= stale_after_s:
                    return current
                with self.engine.begin() as conn:  # stale: take it over only if it is still that stale row
                    conn.execute(sa.delete(table).where(key, table.c.run_id == current["run_id"]))
        return holder()

    def release_deploy_lock(self, service: str, run_id: str) -> bool:
        """Release the lock if this run holds it; True when it did."""
        with self.engine.begin() as conn:
            result = conn.execute(sa.delete(deploy_lock).where(deploy_lock.c.service == service,
                                                               deploy_lock.c.run_id == run_id))
        return bool(result.rowcount)

    def deploy_lock(self, service: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(deploy_lock).where(deploy_lock.c.service == service)).mappings().first()
        return None if row is None else {**row, "acquired_at": _aware(row["acquired_at"])}

    def upsert_deployment(self, record: dict[str, Any]) -> None:
        """Insert a whole deployment record, or replace the fields it gives of the one with its id."""
        defaults: dict[str, Any] = {"previous_version": None, "stage_log": [], "started_at": None, "finished_at": None,
                                    "rolled_back_at": None, "reason": "", "force_reason": "", "run_url": ""}
        insert = {**defaults, **record}
        update = [c for c in record if c != "id"]
        with self.engine.begin() as conn:
            self._upsert(conn, deployment, [_json_safe_row(insert)], ["id"], update)

    def update_deployment(self, deployment_id: str, **fields: Any) -> None:
        """Change some fields of an existing deployment record; KeyError if there is none."""
        with self.engine.begin() as conn:
            result = conn.execute(sa.update(deployment).where(deployment.c.id == deployment_id)
                                  .values(**_json_safe_row(fields)))
        if result.rowcount == 0:
            raise KeyError(f"no deployment {deployment_id!r} in the SRE store")

    def deployment(self, deployment_id: str) -> dict[str, Any] | None:
        rows = self.deployments(ids=[deployment_id])
        return rows[0] if rows else None

    def deployments(self, service: str | None = None, since: datetime | None = None,
                    ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Deployment records, oldest request first."""
        q = sa.select(deployment)
        if service is not None:
            q = q.where(deployment.c.service == service)
        if since is not None:
            q = q.where(deployment.c.requested_at >= since)
        if ids is not None:
            q = q.where(deployment.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(deployment.c.requested_at)).mappings().all()
        times = ("requested_at", "started_at", "finished_at", "rolled_back_at")
        return [{**r, **{k: _aware(r[k]) if r[k] else None for k in times}} for r in rows]

    def record_verdict(self, deployment_id: str, stage: str, step: int, step_label: str, decision: str,
                       reason: str, evidence: dict[str, Any], decided_at: datetime | None = None) -> None:
        """Store the verdict of one analysis step (a re-run of the step replaces it)."""
        row = {"deployment_id": deployment_id, "stage": stage, "step": step, "step_label": step_label,
               "decision": decision, "reason": reason, "decided_at": decided_at or _utcnow(),
               "evidence": _json_safe(evidence)}
        with self.engine.begin() as conn:
            self._upsert(conn, deploy_verdict, [row], ["deployment_id", "stage", "step"],
                         ["step_label", "decision", "reason", "decided_at", "evidence"])

    def verdicts(self, deployment_id: str) -> list[dict[str, Any]]:
        q = sa.select(deploy_verdict).where(deploy_verdict.c.deployment_id == deployment_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(deploy_verdict.c.decided_at, deploy_verdict.c.id)).mappings().all()
        return [{**r, "decided_at": _aware(r["decided_at"])} for r in rows]


    # --- chaos game-days -------------------------------------------------------------------------------------

    def acquire_chaos_lock(self, run_id: str, experiment: str, *, stale_after_s: float) -> dict[str, Any] | None:
        """Take the one game-day lock for the run; the holder's row when another run has it (see the deploy lock)."""
        row = {"name": "gameday", "run_id": run_id, "experiment": experiment, "acquired_at": _utcnow()}
        return self._take_lock(chaos_lock, chaos_lock.c.name == "gameday", row, self.chaos_lock, stale_after_s)

    def release_chaos_lock(self, run_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(sa.delete(chaos_lock).where(chaos_lock.c.name == "gameday",
                                                              chaos_lock.c.run_id == run_id))
        return bool(result.rowcount)

    def chaos_lock(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(chaos_lock).where(chaos_lock.c.name == "gameday")).mappings().first()
        return None if row is None else {**row, "acquired_at": _aware(row["acquired_at"])}

    def upsert_chaos_run(self, record: dict[str, Any]) -> None:
        """Insert a whole chaos run record, or replace the fields it gives of the one with its id."""
        defaults: dict[str, Any] = {
            "gameday_id": None, "targets": [], "blast_radius": {}, "dry_run": False, "requested_by": "",
            "verdict": "running", "reason": "", "score": None, "weight": 1.0, "gates": [], "steady_before": None,
            "steady_after": None, "probes": [], "abort": None, "injection": None, "recovery": None,
            "injected_at": None, "aborted_at": None, "recovered_at": None, "finished_at": None, "run_url": ""}
        insert = {**defaults, **record}
        update = [c for c in record if c != "id"]
        with self.engine.begin() as conn:
            self._upsert(conn, chaos_run, [_json_safe_row(insert)], ["id"], update)

    def update_chaos_run(self, run_id: str, **fields: Any) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(sa.update(chaos_run).where(chaos_run.c.id == run_id).values(**_json_safe_row(fields)))
        if result.rowcount == 0:
            raise KeyError(f"no chaos run {run_id!r} in the SRE store")

    def chaos_runs(self, *, ids: Sequence[str] | None = None, gameday_id: str | None = None,
                   experiment: str | None = None, since: datetime | None = None,
                   verdicts: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Chaos run records, oldest request first."""
        q = sa.select(chaos_run)
        if ids is not None:
            q = q.where(chaos_run.c.id.in_(list(ids)))
        if gameday_id is not None:
            q = q.where(chaos_run.c.gameday_id == gameday_id)
        if experiment is not None:
            q = q.where(chaos_run.c.experiment == experiment)
        if since is not None:
            q = q.where(chaos_run.c.requested_at >= since)
        if verdicts is not None:
            q = q.where(chaos_run.c.verdict.in_(list(verdicts)))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(chaos_run.c.requested_at, chaos_run.c.id)).mappings().all()
        times = ("requested_at", "injected_at", "aborted_at", "recovered_at", "finished_at")
        return [{**r, **{k: _aware(r[k]) if r[k] else None for k in times}} for r in rows]

    def chaos_run(self, run_id: str) -> dict[str, Any] | None:
        rows = self.chaos_runs(ids=[run_id])
        return rows[0] if rows else None

    def unrecovered_chaos_runs(self) -> list[dict[str, Any]]:
        """Runs that injected a fault whose recovery is not confirmed (the reaper's and the gates' view)."""
        q = sa.select(chaos_run.c.id).where(chaos_run.c.injected_at.is_not(None), chaos_run.c.recovered_at.is_(None))
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(q)]
        return self.chaos_runs(ids=ids) if ids else []

    def upsert_gameday(self, record: dict[str, Any]) -> None:
        defaults: dict[str, Any] = {"verdict": "running", "score": None, "reason": "", "finished_at": None,
                                    "run_url": "", "experiments": []}
        insert = {**defaults, **record}
        update = [c for c in record if c != "id"]
        with self.engine.begin() as conn:
            self._upsert(conn, chaos_gameday, [_json_safe_row(insert)], ["id"], update)

    def update_gameday(self, gameday_id: str, **fields: Any) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(sa.update(chaos_gameday).where(chaos_gameday.c.id == gameday_id)
                                  .values(**_json_safe_row(fields)))
        if result.rowcount == 0:
            raise KeyError(f"no game-day {gameday_id!r} in the SRE store")

    def gamedays(self, since: datetime | None = None, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        q = sa.select(chaos_gameday)
        if since is not None:
            q = q.where(chaos_gameday.c.started_at >= since)
        if ids is not None:
            q = q.where(chaos_gameday.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(chaos_gameday.c.started_at)).mappings().all()
        return [{**r, "started_at": _aware(r["started_at"]),
                 "finished_at": _aware(r["finished_at"]) if r["finished_at"] else None} for r in rows]

    # --- incidents (read by the chaos gate; written by the incident workflow) --------------------------------

    def upsert_incident(self, record: dict[str, Any]) -> None:
        defaults: dict[str, Any] = {"services": [], "status": "open", "resolved_at": None, "details": {}}
        insert = {**defaults, **record}
        update = [c for c in record if c != "id"]
        with self.engine.begin() as conn:
            self._upsert(conn, incident, [_json_safe_row(insert)], ["id"], update)

    def open_incidents(self) -> list[dict[str, Any]]:
        """Incidents not resolved yet (open or mitigated), oldest first."""
        q = sa.select(incident).where(incident.c.status != "resolved").order_by(incident.c.opened_at)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [{**r, "opened_at": _aware(r["opened_at"])} for r in rows]


    # --- SLO checklists --------------------------------------------------------------------------------------

    def upsert_checklist_run(self, record: dict[str, Any]) -> None:
        """Insert a whole checklist run record, or replace the fields it gives of the one with its id."""
        insert = {"status": "running", "counts": {}, "report": {}, "run_url": "", "finished_at": None, **record}
        update = [c for c in record if c != "id"]
        with self.engine.begin() as conn:
            self._upsert(conn, checklist_run, [_json_safe_row(insert)], ["id"], update)

    def update_checklist_run(self, run_id: str, **fields: Any) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(sa.update(checklist_run).where(checklist_run.c.id == run_id)
                                  .values(**_json_safe_row(fields)))
        if result.rowcount == 0:
            raise KeyError(f"no checklist run {run_id!r} in the SRE store")

    def save_checklist_results(self, run_id: str, results: Iterable[dict[str, Any]]) -> int:
        """Store item results (ItemResult.to_dict() shapes) of a run; a re-run of the run replaces them."""
        rows = [{"run_id": run_id, **{k: r[k] for k in ("item_id", "title", "cadence", "status", "summary",
                                                         "evidence", "owner")},
                 "evidence": _json_safe(r["evidence"]), "checked_at": _parse_time(r["checked_at"])} for r in results]
        with self.engine.begin() as conn:
            self._upsert(conn, checklist_result, rows, ["run_id", "item_id"],
                         ["title", "cadence", "status", "summary", "evidence", "owner", "checked_at"])
        return len(rows)

    def checklist_runs(self, cadence: str | None = None, since: datetime | None = None,
                       ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        q = sa.select(checklist_run)
        if cadence is not None:
            q = q.where(checklist_run.c.cadence == cadence)
        if since is not None:
            q = q.where(checklist_run.c.at >= since)
        if ids is not None:
            q = q.where(checklist_run.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(checklist_run.c.at)).mappings().all()
        times = ("period_start", "period_end", "at", "finished_at")
        return [{**r, **{k: _aware(r[k]) if r[k] else None for k in times}} for r in rows]

    def checklist_results(self, run_id: str) -> list[dict[str, Any]]:
        q = sa.select(checklist_result).where(checklist_result.c.run_id == run_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(checklist_result.c.item_id)).mappings().all()
        return [{**r, "checked_at": _aware(r["checked_at"])} for r in rows]


def _parse_time(value: datetime | str) -> datetime:
    if isinstance(value, datetime):
        return _aware(value)
    return _aware(datetime.fromisoformat(value.replace("Z", "+00:00")))


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
