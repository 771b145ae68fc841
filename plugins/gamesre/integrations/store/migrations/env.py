"""Alembic's environment for the SRE store: runs the revisions on the connection that
gamesre.integrations.store.schema hands over, in its transaction and under its lock.

There is no alembic.ini and no URL here on purpose: every upgrade goes through `python -m gamesre db upgrade` or
`SREStore(url)`, which take the database lock first (schema.py says how).
"""
from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the SRE store's revisions run through `python -m gamesre db upgrade`, which locks the "
                       "database first; there is no alembic.ini to run them by")
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
