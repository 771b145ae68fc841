"""PostgreSQL for the tests: is it there, and a database of its own that is dropped afterwards."""
from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

POSTGRES_ADMIN_URL = os.environ.get("GAMESRE_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def postgres_reachable() -> bool:
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A database of its own on the local PostgreSQL, dropped afterwards (its URL, psycopg2 driver)."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            terminate = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
            conn.execute(sa.text(terminate), {"n": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
