"""Rollbacks and the budget policy's decisions: a deployment's kind, what it undoes and what asked for it.

One decision of the budget policy per service and policy episode (table policy_action).

Revision ID: 0004
Revises: 0003

Records written before this revision are deploys (`kind` defaults to `deploy`). `rollback_of` is indexed: an
incident or the budget policy asks "was this deployment rolled back, and by which run?". The new table
`policy_action` is described in database.py and docs/slo.md.

Downgrade: refuses while a rollback or a policy decision is recorded (the code before this revision would read a
rollback as a deploy of the old version, which it is not, and would forget which episodes were decided).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gamesre.integrations.store.errors import StoreError

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployment") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=32), server_default="deploy", nullable=False))
        batch.add_column(sa.Column("rollback_of", sa.String(length=250), nullable=True))
        batch.add_column(sa.Column("cause", sa.JSON(), nullable=True))
        batch.create_index("ix_deployment_rollback_of", ["rollback_of"])
    op.create_table(
        "policy_action",
        sa.Column("service", sa.String(length=128), nullable=False),
        sa.Column("episode_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("deployment_id", sa.String(length=250), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("service", "episode_start"),
    )


def downgrade() -> None:
    bind = op.get_bind()
    rollbacks = bind.execute(sa.text("SELECT count(*) FROM deployment WHERE kind <> 'deploy'")).scalar_one()
    decisions = bind.execute(sa.text("SELECT count(*) FROM policy_action")).scalar_one()
    if rollbacks or decisions:
        raise StoreError(f"cannot undo revision 0004: the store holds {rollbacks} rollback record(s) and {decisions} "
                         "budget-policy decision(s), which the schema before it cannot tell apart from deploys or "
                         "keep; delete them first")
    op.drop_table("policy_action")
    with op.batch_alter_table("deployment") as batch:
        batch.drop_index("ix_deployment_rollback_of")
        batch.drop_column("cause")
        batch.drop_column("rollback_of")
        batch.drop_column("kind")
