"""The SRE store's database: the engine and the tables, and what every part shares.

Every part of the store (ledger, policy, maintenance, deploys, chaos, incidents, checklists) stands on
`StoreDatabase`: one engine, the schema brought up to date on first use, the upsert per dialect, lock rows, and
values stored the same on SQLite and PostgreSQL (UTC datetimes, JSON-safe documents).

The tables here are the newest schema. A change to them is also an Alembic revision in migrations/versions/,
applied once under a database lock by schema.py on first use or by `python -m gamesre db upgrade`; a test checks
that the revisions build exactly these tables. Times are stored in UTC: ledger minutes as epoch seconds,
everything else as timezone-aware timestamps.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from gamesre.integrations.store import schema
from gamesre.integrations.store.errors import StoreError

metadata = sa.MetaData()

# One row per SLO per one-minute slice: the minute (t-60s, t] is keyed by its start t-60s. A row after a scrape
# gap carries the gap's events and covers the gap's minutes too: `span` minutes in all (docs/slo.md).
slo_ledger = sa.Table(
    "slo_ledger", metadata,
    sa.Column("slo", sa.String(128), primary_key=True),
    sa.Column("minute", sa.BigInteger, primary_key=True),  # slice start, epoch seconds UTC, minute-aligned
    sa.Column("good", sa.Float, nullable=False),
    sa.Column("total", sa.Float, nullable=False),
    sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("span", sa.Integer, nullable=False, server_default="1"),  # revision 0002
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
    sa.Column("span", sa.LargeBinary, nullable=True),  # int64; revision 0002 (days packed before it: all 1)
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
    # running | promoted | rolled_back | blocked | timed_out | invalid | failed | dry_run | rejected | aborted
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("stage_log", sa.JSON, nullable=False),  # per stage: gates, started/finished, steps, outcome
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),  # first change to the service
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("rolled_back_at", sa.DateTime(timezone=True), nullable=True),  # traffic back on stable
    sa.Column("run_url", sa.String(1024), nullable=False),
    # revision 0004: deploy | rollback | automatic-rollback (the request kind), the deployment a rollback undoes,
    # and what asked for it (the budget policy's decision with its evidence)
    sa.Column("kind", sa.String(32), nullable=False, server_default="deploy"),
    sa.Column("rollback_of", sa.String(250), nullable=True, index=True),
    sa.Column("cause", sa.JSON, nullable=True),
)

# Revision 0004: what the budget policy decided for a service, once per policy episode (gamesre.slo.enforcement):
# the rollback it started (or proposed, or the page it sent) with the reason and the evidence.
policy_action = sa.Table(
    "policy_action", metadata,
    sa.Column("service", sa.String(128), primary_key=True),
    sa.Column("episode_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("action", sa.String(16), nullable=False),  # rollback | propose | notify | page
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("deployment_id", sa.String(250), nullable=True),  # the rollback run asked for
    sa.Column("details", sa.JSON, nullable=False),  # the suspect and the evidence
)

# Revision 0005: people steering a deploy (gamesre.deploy.control) and reviewers' answers, one row per request;
# `applied` says where it took effect (empty while pending, or why it never did).
deploy_control = sa.Table(
    "deploy_control", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("deployment_id", sa.String(250), nullable=False, index=True),
    # pause | resume | promote | promote_full | abort, and a review's answer: approve | reject
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("applied", sa.Text, nullable=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
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
# per game-day, the lock that keeps one game-day at a time. Then incidents, written by the incident intake and the
# incident_response workflow, read by the chaos and deploy gates.
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
    sa.Column("team", sa.String(64), nullable=False, server_default="sre"),  # revision 0003: the owning team
    sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),  # revision 0003
    sa.Column("acknowledged_by", sa.String(128), nullable=True),  # revision 0003
)

# Revision 0003, incident response (docs/incidents.md). Every Alertmanager notification the intake accepted, once
# per distinct body (sha256) with how often it came: nothing received is lost, a repeat changes nothing else.
incident_intake = sa.Table(
    "incident_intake", metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("group_key", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # the notification's: firing | resolved
    sa.Column("first_received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("times", sa.Integer, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # open | join | ignore
    sa.Column("incident_id", sa.String(128), nullable=True),
    sa.Column("why", sa.Text, nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Index("ix_incident_intake_received", "last_received_at"),
)

# The alerts of an incident, by Alertmanager's fingerprint, with the alert group that brought them.
incident_alert = sa.Table(
    "incident_alert", metadata,
    sa.Column("incident_id", sa.String(128), primary_key=True),
    sa.Column("fingerprint", sa.String(16), primary_key=True),
    sa.Column("group_key", sa.Text, nullable=False),
    sa.Column("alertname", sa.String(256), nullable=False),
    sa.Column("service", sa.String(128), nullable=False),  # the label as written ('' when missing)
    sa.Column("status", sa.String(16), nullable=False),  # firing | resolved
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("annotations", sa.JSON, nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_incident_alert_group", "group_key"),
)

# The timeline: everything that happened to an incident, when, by whom (a person, or `gamesre` for the workflow).
incident_event = sa.Table(
    "incident_event", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.String(128), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Index("ix_incident_event_incident_at", "incident_id", "at"),
)

# Who holds which role of an incident (incident_commander, operations_lead, communications_lead, scribe) and the
# on-call levels paged, as assigned; a hand-over replaces the row and leaves a timeline entry.
incident_role = sa.Table(
    "incident_role", metadata,
    sa.Column("incident_id", sa.String(128), primary_key=True),
    sa.Column("role", sa.String(32), primary_key=True),
    sa.Column("person", sa.String(128), nullable=False),
    sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("assigned_by", sa.String(128), nullable=False),
    sa.Column("why", sa.Text, nullable=False),
)

# Every notification an incident sent or tried to send (Slack, PagerDuty, status page), delivered or not.
incident_notice = sa.Table(
    "incident_notice", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.String(128), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),  # slack | pagerduty | statuspage
    sa.Column("target", sa.Text, nullable=False),  # a Slack channel, a PagerDuty dedup key, a status page component
    sa.Column("purpose", sa.String(64), nullable=False),  # declared, escalation-secondary, update, resolved, ...
    sa.Column("delivered", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Index("ix_incident_notice_incident", "incident_id", "at"),
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


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; everything stored is UTC, so make that explicit again."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def with_utc(row: RowMapping, *names: str) -> dict[str, Any]:
    """The row as a dict, its datetime fields `names` made aware (None where they are empty)."""
    return {**row, **{k: aware(row[k]) if row[k] else None for k in names}}


def parse_time(value: datetime | str) -> datetime:
    if isinstance(value, datetime):
        return aware(value)
    return aware(datetime.fromisoformat(value.replace("Z", "+00:00")))


def json_safe_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (json_safe(v) if isinstance(v, list | dict) else v) for k, v in row.items()}


def json_safe(value: Any) -> Any:
    """Round-trip through JSON so numpy scalars and datetimes are stored the same on every database."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


class StoreDatabase:
    """The one engine under every part of the store; create with a SQLAlchemy URL. Upgrades the schema on first
    use (schema.upgrade: once, under a database lock; a schema newer than this code knows is a StoreError)."""

    def __init__(self, url: str, *, engine: Engine | None = None):
        self.url = url
        self.engine = engine or sa.create_engine(url, future=True, pool_pre_ping=True)
        self.dialect = self.engine.dialect.name
        schema.upgrade(self.engine)

    @property
    def safe_url(self) -> str:
        return schema.store_name(self.engine)

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

    def _upsert_record(self, table: sa.Table, record: dict[str, Any], defaults: dict[str, Any]) -> None:
        """Insert a whole record, or replace the fields it gives of the row with its id.

        `defaults` fill the fields a new record does not give; they never overwrite a stored row.
        """
        update = [c for c in record if c != "id"]
        with self.engine.begin() as conn:
            self._upsert(conn, table, [json_safe_row({**defaults, **record})], ["id"], update)

    def _update_record(self, table: sa.Table, record_id: str, fields: dict[str, Any], what: str) -> None:
        """Change some fields of the row with this id; KeyError naming `what` if there is none."""
        with self.engine.begin() as conn:
            result = conn.execute(sa.update(table).where(table.c.id == record_id).values(**json_safe_row(fields)))
        if result.rowcount == 0:
            raise KeyError(f"no {what} {record_id!r} in the SRE store")

    # --- lock rows (deploys, game-days) ------------------------------------------------------------------------

    def _take_lock(self, table: sa.Table, key: sa.ColumnElement[bool], row: dict[str, Any],
                   stale_after_s: float) -> dict[str, Any] | None:
        """Insert the lock row (one INSERT: two racing runs cannot both win); None when taken, else the holder.

        The holder's row is taken over when it is older than `stale_after_s` (its run crashed).
        """
        for _attempt in range(2):
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.insert(table), [row])
                return None
            except sa.exc.IntegrityError:
                current = self._lock_holder(table, key)
                if current is None:
                    continue  # released in between: try again
                if current["run_id"] == row["run_id"]:
                    return None
                if (row["acquired_at"] - current["acquired_at"]).total_seconds() <= stale_after_s:
                    return current
                with self.engine.begin() as conn:  # stale: take it over only if it is still that stale row
                    conn.execute(sa.delete(table).where(key, table.c.run_id == current["run_id"]))
        return self._lock_holder(table, key)

    def _lock_holder(self, table: sa.Table, key: sa.ColumnElement[bool]) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(key)).mappings().first()
        return None if row is None else with_utc(row, "acquired_at")

    def _release_lock(self, table: sa.Table, key: sa.ColumnElement[bool], run_id: str) -> bool:
        """Delete the lock row if this run holds it; True when it did."""
        with self.engine.begin() as conn:
            result = conn.execute(sa.delete(table).where(key, table.c.run_id == run_id))
        return bool(result.rowcount)
