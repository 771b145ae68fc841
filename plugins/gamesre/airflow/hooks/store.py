"""SREStoreHook: the SRE store from an Airflow connection (default `sre_store`).

The connection carries a SQLAlchemy URL in its extra (`sqlalchemy_url`), or is a postgres/sqlite connection
whose URI is used as is (with the psycopg2 driver for PostgreSQL).
"""
from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from gamesre.integrations.store import SREStore


def store_url(conn: Any) -> str:
    """The SQLAlchemy URL of an SRE store connection (sync or async lookups alike)."""
    extra = conn.extra_dejson
    if extra.get("sqlalchemy_url"):
        return str(extra["sqlalchemy_url"])
    if conn.conn_type in ("postgres", "postgresql"):
        auth = f"{conn.login}:{conn.password}@" if conn.password else (f"{conn.login}@" if conn.login else "")
        return f"postgresql+psycopg2://{auth}{conn.host}:{conn.port or 5432}/{conn.schema}"
    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    raise ValueError(f"connection {conn.conn_id!r} needs extra.sqlalchemy_url, or type postgres or sqlite")


class SREStoreHook(BaseHook):
    conn_name_attr = "sre_store_conn_id"
    default_conn_name = "sre_store"
    conn_type = "generic"
    hook_name = "SRE store"

    def __init__(self, sre_store_conn_id: str = default_conn_name):
        super().__init__()
        self.sre_store_conn_id = sre_store_conn_id

    @property
    def sqlalchemy_url(self) -> str:
        return store_url(self.get_connection(self.sre_store_conn_id))

    def get_conn(self) -> SREStore:
        return SREStore(self.sqlalchemy_url)
