"""People steering deploys: the log of control requests and reviewers' answers (table deploy_control).

Revision ID: 0005
Revises: 0004

One row per request: the deployment, the action, who asked and why, when, and where it took effect (`applied`,
written by the deploy run; empty while pending). A review's answer (approve, reject) is a row applied at once.

Downgrade: refuses while a request is recorded (the code before this revision would forget who steered a deploy).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gamesre.integrations.store.errors import StoreError

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deploy_control",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment_id", sa.String(length=250), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied", sa.Text(), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_deploy_control_deployment_id", "deploy_control", ["deployment_id"])


def downgrade() -> None:
    requests = op.get_bind().execute(sa.text("SELECT count(*) FROM deploy_control")).scalar_one()
    if requests:
        raise StoreError(f"cannot undo revision 0005: the store holds {requests} deploy control request(s), which "
                         "the schema before it cannot keep; delete them first")
    op.drop_index("ix_deploy_control_deployment_id", table_name="deploy_control")
    op.drop_table("deploy_control")
