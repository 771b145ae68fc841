"""Deploy rollbacks: a deployment record says its kind (deploy or rollback) and which deployment a rollback undoes.

Revision ID: 0004
Revises: 0003

Records written before this revision are deploys (`kind` defaults to `deploy`). `rollback_of` is indexed: an
incident or the budget policy asks "was this deployment rolled back, and by which run?".

Downgrade: refuses while a rollback is recorded (the code before this revision would read it as a deploy of the
old version, which it is not).
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
        batch.create_index("ix_deployment_rollback_of", ["rollback_of"])


def downgrade() -> None:
    rollbacks = op.get_bind().execute(sa.text("SELECT count(*) FROM deployment WHERE kind <> 'deploy'")).scalar_one()
    if rollbacks:
        raise StoreError(f"cannot undo revision 0004: the store holds {rollbacks} rollback record(s), which the schema "
                         "before it would read as deploys; delete them first")
    with op.batch_alter_table("deployment") as batch:
        batch.drop_index("ix_deployment_rollback_of")
        batch.drop_column("rollback_of")
        batch.drop_column("kind")
