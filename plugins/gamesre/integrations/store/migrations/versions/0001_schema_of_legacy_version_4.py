"""The schema as the hand-written migrations 1-4 left it: every table, the ledger without its span.

Revision ID: 0001
Revises: (none: the first revision)

A store those migrations left at version 1, 2 or 3 (or half way to the next: their DDL was not transactional on
SQLite) already has some of these tables, as defined here: only the missing ones are created. A store at version
4 or 5 is stamped at this revision or the next instead (schema.py).

The tables are written out as they were, not imported from database.py: a revision never changes once released,
while database.py always describes the newest schema. What the columns mean is said there.

No downgrade: below this revision there is no schema to go back to, only an empty database, and dropping every
table would drop every record. To start over, drop the database.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gamesre.integrations.store.errors import StoreError

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

legacy_4 = sa.MetaData()

# The hand-written migration 1: the SLO ledger, its packed days, snapshots, policy states and maintenance windows.
sa.Table(
    "slo_ledger", legacy_4,
    sa.Column("slo", sa.String(length=128), nullable=False),
    sa.Column("minute", sa.BigInteger(), nullable=False),
    sa.Column("good", sa.Float(), nullable=False),
    sa.Column("total", sa.Float(), nullable=False),
    sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("slo", "minute"),
)

sa.Table(
    "slo_ledger_day", legacy_4,
    sa.Column("slo", sa.String(length=128), nullable=False),
    sa.Column("day", sa.BigInteger(), nullable=False),
    sa.Column("minutes", sa.LargeBinary(), nullable=False),
    sa.Column("good", sa.LargeBinary(), nullable=False),
    sa.Column("total", sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint("slo", "day"),
)

sa.Table(
    "slo_snapshot", legacy_4,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("slo", sa.String(length=128), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("window", sa.String(length=32), nullable=False),
    sa.Column("state", sa.String(length=32), nullable=False),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("slo", "at", "window", name="uq_snapshot_slo_at_window"),
    sa.Index("ix_slo_snapshot_at", "at"),
    sa.Index("ix_slo_snapshot_slo", "slo"),
)

sa.Table(
    "policy_state", legacy_4,
    sa.Column("scope", sa.String(length=16), nullable=False),
    sa.Column("name", sa.String(length=128), nullable=False),
    sa.Column("state", sa.String(length=32), nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reasons", sa.JSON(), nullable=False),
    sa.Column("details", sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint("scope", "name"),
)

sa.Table(
    "policy_state_history", legacy_4,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("scope", sa.String(length=16), nullable=False),
    sa.Column("name", sa.String(length=128), nullable=False),
    sa.Column("state", sa.String(length=32), nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reasons", sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_policy_history_name_time", "scope", "name", "computed_at"),
)

sa.Table(
    "maintenance_window", legacy_4,
    sa.Column("id", sa.String(length=128), nullable=False),
    sa.Column("kind", sa.String(length=16), nullable=False),
    sa.Column("start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("services", sa.JSON(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("owner", sa.String(length=128), nullable=False),
    sa.Column("ticket", sa.String(length=128), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("excludes_budget", sa.Boolean(), nullable=False),
    sa.Column("silence_ids", sa.JSON(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(length=128), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("cancelled_by", sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_maintenance_window_end", "end"),
    sa.Index("ix_maintenance_window_start", "start"),
)

# The hand-written migration 2: deploys.
sa.Table(
    "deployment", legacy_4,
    sa.Column("id", sa.String(length=250), nullable=False),
    sa.Column("service", sa.String(length=128), nullable=False),
    sa.Column("version", sa.String(length=128), nullable=False),
    sa.Column("image", sa.String(length=512), nullable=False),
    sa.Column("previous_version", sa.String(length=128), nullable=True),
    sa.Column("strategy", sa.String(length=32), nullable=False),
    sa.Column("stages", sa.JSON(), nullable=False),
    sa.Column("backend", sa.String(length=32), nullable=False),
    sa.Column("change_ticket", sa.String(length=128), nullable=False),
    sa.Column("requested_by", sa.String(length=128), nullable=False),
    sa.Column("dry_run", sa.Boolean(), nullable=False),
    sa.Column("forced", sa.Boolean(), nullable=False),
    sa.Column("force_reason", sa.Text(), nullable=False),
    sa.Column("outcome", sa.String(length=32), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("stage_log", sa.JSON(), nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("rolled_back_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("run_url", sa.String(length=1024), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_deployment_requested_at", "requested_at"),
    sa.Index("ix_deployment_service", "service"),
)

sa.Table(
    "deploy_verdict", legacy_4,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("deployment_id", sa.String(length=250), nullable=False),
    sa.Column("stage", sa.String(length=32), nullable=False),
    sa.Column("step", sa.Integer(), nullable=False),
    sa.Column("step_label", sa.String(length=64), nullable=False),
    sa.Column("decision", sa.String(length=16), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("evidence", sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("deployment_id", "stage", "step", name="uq_verdict_step"),
    sa.Index("ix_deploy_verdict_deployment_id", "deployment_id"),
)

sa.Table(
    "deploy_lock", legacy_4,
    sa.Column("service", sa.String(length=128), nullable=False),
    sa.Column("run_id", sa.String(length=250), nullable=False),
    sa.Column("version", sa.String(length=128), nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("service"),
)

# The hand-written migration 3: chaos game-days and incidents.
sa.Table(
    "chaos_run", legacy_4,
    sa.Column("id", sa.String(length=250), nullable=False),
    sa.Column("experiment", sa.String(length=128), nullable=False),
    sa.Column("title", sa.String(length=256), nullable=False),
    sa.Column("service", sa.String(length=128), nullable=False),
    sa.Column("backend", sa.String(length=32), nullable=False),
    sa.Column("environment", sa.String(length=16), nullable=False),
    sa.Column("gameday_id", sa.String(length=250), nullable=True),
    sa.Column("fault", sa.JSON(), nullable=False),
    sa.Column("targets", sa.JSON(), nullable=False),
    sa.Column("blast_radius", sa.JSON(), nullable=False),
    sa.Column("dry_run", sa.Boolean(), nullable=False),
    sa.Column("requested_by", sa.String(length=128), nullable=False),
    sa.Column("verdict", sa.String(length=16), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("score", sa.Float(), nullable=True),
    sa.Column("weight", sa.Float(), nullable=False),
    sa.Column("gates", sa.JSON(), nullable=False),
    sa.Column("steady_before", sa.JSON(), nullable=True),
    sa.Column("steady_after", sa.JSON(), nullable=True),
    sa.Column("probes", sa.JSON(), nullable=False),
    sa.Column("abort", sa.JSON(), nullable=True),
    sa.Column("injection", sa.JSON(), nullable=True),
    sa.Column("recovery", sa.JSON(), nullable=True),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("injected_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("aborted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("recovered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("run_url", sa.String(length=1024), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_chaos_run_experiment", "experiment"),
    sa.Index("ix_chaos_run_gameday_id", "gameday_id"),
    sa.Index("ix_chaos_run_requested_at", "requested_at"),
    sa.Index("ix_chaos_run_service", "service"),
)

sa.Table(
    "chaos_gameday", legacy_4,
    sa.Column("id", sa.String(length=250), nullable=False),
    sa.Column("suite", sa.String(length=128), nullable=False),
    sa.Column("experiments", sa.JSON(), nullable=False),
    sa.Column("verdict", sa.String(length=16), nullable=False),
    sa.Column("score", sa.Float(), nullable=True),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("run_url", sa.String(length=1024), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_chaos_gameday_started_at", "started_at"),
)

sa.Table(
    "chaos_lock", legacy_4,
    sa.Column("name", sa.String(length=32), nullable=False),
    sa.Column("run_id", sa.String(length=250), nullable=False),
    sa.Column("experiment", sa.String(length=128), nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("name"),
)

sa.Table(
    "incident", legacy_4,
    sa.Column("id", sa.String(length=128), nullable=False),
    sa.Column("severity", sa.String(length=8), nullable=False),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("services", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("details", sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_incident_status", "status"),
)

# The hand-written migration 4: SLO checklists.
sa.Table(
    "checklist_run", legacy_4,
    sa.Column("id", sa.String(length=250), nullable=False),
    sa.Column("cadence", sa.String(length=16), nullable=False),
    sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("counts", sa.JSON(), nullable=False),
    sa.Column("report", sa.JSON(), nullable=False),
    sa.Column("run_url", sa.String(length=1024), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_checklist_run_at", "at"),
    sa.Index("ix_checklist_run_cadence", "cadence"),
)

sa.Table(
    "checklist_result", legacy_4,
    sa.Column("run_id", sa.String(length=250), nullable=False),
    sa.Column("item_id", sa.String(length=128), nullable=False),
    sa.Column("title", sa.String(length=256), nullable=False),
    sa.Column("cadence", sa.String(length=16), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("summary", sa.Text(), nullable=False),
    sa.Column("evidence", sa.JSON(), nullable=False),
    sa.Column("owner", sa.String(length=128), nullable=False),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("run_id", "item_id"),
    sa.Index("ix_checklist_result_status", "status"),
)


def upgrade() -> None:
    legacy_4.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    raise StoreError("revision 0001 is the first: undoing it would drop every table of the SRE store and every "
                     "record in them; to start over, drop the database")
