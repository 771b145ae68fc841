"""Incident response: an incident's team and acknowledgement; its intake log, alerts, timeline, roles, notices.

Revision ID: 0003
Revises: 0002

The incident table existed since the hand-written migration 3 but nothing wrote it; it gains `team`,
`acknowledged_at` and `acknowledged_by`. The new tables are described in database.py and docs/incidents.md.

Downgrade: drops the new tables and columns, so it refuses while any incident record exists (the code before this
revision cannot read them, and dropping them would lose the incidents' timelines).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gamesre.integrations.store.errors import StoreError

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NEW_TABLES = ("incident_intake", "incident_alert", "incident_event", "incident_role", "incident_notice")


def upgrade() -> None:
    with op.batch_alter_table("incident") as batch:
        batch.add_column(sa.Column("team", sa.String(length=64), server_default="sre", nullable=False))
        batch.add_column(sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("acknowledged_by", sa.String(length=128), nullable=True))
    op.create_table(
        "incident_intake",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("first_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("times", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("incident_id", sa.String(length=128), nullable=True),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_index("ix_incident_intake_received", "incident_intake", ["last_received_at"])
    op.create_table(
        "incident_alert",
        sa.Column("incident_id", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=16), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("alertname", sa.String(length=256), nullable=False),
        sa.Column("service", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "fingerprint"),
    )
    op.create_index("ix_incident_alert_group", "incident_alert", ["group_key"])
    op.create_table(
        "incident_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incident_event_incident_at", "incident_event", ["incident_id", "at"])
    op.create_table(
        "incident_role",
        sa.Column("incident_id", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("person", sa.String(length=128), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_by", sa.String(length=128), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "role"),
    )
    op.create_table(
        "incident_notice",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incident_notice_incident", "incident_notice", ["incident_id", "at"])


def downgrade() -> None:
    incidents = op.get_bind().execute(sa.text("SELECT count(*) FROM incident")).scalar_one()
    if incidents:
        raise StoreError(f"cannot undo revision 0003: the store holds {incidents} incident record(s) whose alerts, "
                         "timelines and roles live in the tables this revision made; export or delete them first")
    for table in reversed(NEW_TABLES):
        op.drop_table(table)
    with op.batch_alter_table("incident") as batch:
        batch.drop_column("acknowledged_by")
        batch.drop_column("acknowledged_at")
        batch.drop_column("team")
