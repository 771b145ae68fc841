"""Ledger rows carry the minutes they cover (span): a row after a scrape gap covers the gap's minutes too.

Revision ID: 0002
Revises: 0001

The hand-written migration 5. Rows already written cover their own minute (span 1); days packed before this
revision have no span blob (NULL: all 1, see ledger.py). A column the hand-written migration already added (half
way through it on SQLite, where its DDL was not transactional) is left as it is.

Downgrade: only while every ledger row covers one minute. A wider row would be read as one minute by the code
before this revision, silently changing coverage and budgets, so the downgrade refuses and names how many.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from gamesre.integrations.store.errors import StoreError

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def span_columns() -> dict[str, sa.Column[Any]]:
    """Made afresh for each run: a column object belongs to the one table it was added to."""
    return {"slo_ledger": sa.Column("span", sa.Integer(), server_default="1", nullable=False),
            "slo_ledger_day": sa.Column("span", sa.LargeBinary(), nullable=True)}  # int64 per minute; NULL: all 1


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, column in span_columns().items():
        if column.name not in {c["name"] for c in inspector.get_columns(table)}:
            op.add_column(table, column)


def downgrade() -> None:
    wide = op.get_bind().execute(sa.text("SELECT count(*) FROM slo_ledger WHERE span <> 1")).scalar_one()
    if wide:
        raise StoreError(f"cannot undo revision 0002: {wide} ledger rows cover more than one minute (rows after "
                         "scrape gaps), which the schema before it cannot tell from one-minute rows; delete or "
                         "re-ingest those minutes first")
    for table in span_columns():
        with op.batch_alter_table(table) as batch:
            batch.drop_column("span")
