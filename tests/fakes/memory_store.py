"""The SRE store on an in-memory SQLite database: the use cases' store port for unit tests, with the real schema
and queries (one connection shared, so every part of a test sees the same data)."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from gamesre.integrations.store import SREStore


def memory_store() -> SREStore:
    engine = sa.create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    return SREStore("sqlite://", engine=engine)
