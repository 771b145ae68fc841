"""The SRE store's schema: the Alembic revisions in migrations/versions/, applied once under a database lock.

Every upgrade, `SREStore(url)` on first use as much as `python -m gamesre db upgrade`, goes the same way:

1. Read the revision without a lock. At the target (the common case) there is nothing to do and nothing is
   locked. A revision this code does not know, written by a newer release, is refused (StoreError naming the
   database, both revisions and what to do).
2. Otherwise open a transaction holding the database's schema lock, read the revision again (another process may
   have upgraded while this one waited: then there is nothing left to do), take over a store the hand-written
   migrations made, run the revisions, commit. The lock ends with the transaction.

The lock:
- PostgreSQL: `pg_advisory_xact_lock(SCHEMA_LOCK_KEY)`, the first statement of the transaction that then runs
  every revision (PostgreSQL's DDL is transactional: all of them or none). Transaction level rather than session
  level because its life is exactly the change's: the commit or rollback releases it, also when the process dies
  (its connection closes), and it cannot stay held on a pooled connection after an error the way a session lock
  whose unlock was skipped does. Advisory locks belong to one database, so stores in other databases of the same
  server do not wait for each other. A waiter reads the revision only once it holds the lock, and under READ
  COMMITTED that read sees what the holder committed.
- SQLite: `BEGIN EXCLUSIVE`, which takes the file's write lock and keeps readers out until the commit; the
  revisions run inside that transaction (SQLite's DDL is transactional in an open transaction).
Either waits up to LOCK_WAIT_S for another process's upgrade, then fails with a StoreError saying so (on SQLite
the first, unlocked read waits as long: the exclusive lock keeps readers out too).

Taking over a store of the hand-written migrations (they recorded `store_meta.schema_version`, 1 to 5): in the
same locked transaction, a store at version 4 is stamped at revision 0001 and one at 5 at 0002 (they match those
versions exactly); one at 1, 2 or 3 is left at no revision, and revision 0001 creates the tables it lacks. The
store_meta table is then dropped: alembic_version is the one record of the schema from then on, a frozen number
beside it would mislead whoever reads it later, and a converted store ends with the same tables as a new one.
The upgrade then continues to the target like any other.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine

from gamesre.integrations.store.errors import StoreError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = sa.table("alembic_version", sa.column("version_num", sa.String))  # Alembic's default name
SCHEMA_LOCK_KEY = int.from_bytes(b"SREstore", "big")  # PostgreSQL advisory lock key: the bytes of "SREstore"
LOCK_WAIT_S = 600
HEAD = "head"  # what a --to takes for the newest revision

# The hand-written migrations' store_meta.schema_version -> the revision that matches it. Versions 0 to 3 have
# none: they are taken over at no revision, and revision 0001 creates the tables they lack.
LEGACY_REVISIONS = {0: None, 1: None, 2: None, 3: None, 4: "0001", 5: "0002"}
LEGACY_TABLE = sa.table("store_meta", sa.column("key", sa.String), sa.column("value", sa.String))


class WrongDirection(StoreError):
    """The target revision is on the other side of the store's: an upgrade that would go back, or the reverse."""


@dataclass(frozen=True)
class Revision:
    id: str
    message: str


@dataclass(frozen=True)
class SchemaState:
    """Where a store's schema is: its revision, or, not yet taken over, the hand-written migrations' version."""

    revision: str | None  # None: no revision recorded (an empty database, or a legacy store)
    legacy_version: int | None = None  # store_meta.schema_version of a store not taken over yet


@dataclass(frozen=True)
class Change:
    """What an upgrade or a downgrade did."""

    revision: str | None  # where the store is now
    applied: tuple[Revision, ...] = ()  # the revisions run (undone, for a downgrade), in that order
    legacy_version: int | None = None  # the hand-written migrations' version this change took the store over from


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without an alembic.ini: the revisions of this package, run on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


@functools.cache
def revisions() -> tuple[Revision, ...]:
    """Every revision this code knows, oldest first (the history is one line: a test checks it)."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return tuple(Revision(s.revision, s.doc) for s in reversed(list(scripts.walk_revisions())))


def head() -> str:
    return revisions()[-1].id


def store_name(engine: Engine) -> str:
    """The database's URL without its password, for messages."""
    return engine.url.render_as_string(hide_password=True)


def read_state(engine: Engine) -> SchemaState:
    """The store's schema as it is now (after any upgrade under way); StoreError when its revision is newer than
    this code knows."""
    with _store_errors(engine), engine.connect() as conn, _patient(conn):
        return _state(conn, engine)


def upgrade(engine: Engine, to: str = HEAD) -> Change:
    """Bring the store up to revision `to` (default: the newest), once, under the database's schema lock."""
    return _change(engine, to, upgrading=True)


def downgrade(engine: Engine, to: str) -> Change:
    """Undo the revisions after `to`, under the database's schema lock (where a revision can be undone)."""
    return _change(engine, to, upgrading=False)


def _change(engine: Engine, to: str, *, upgrading: bool) -> Change:
    target = head() if to == HEAD else to
    position(target)  # an unknown target is refused before anything is read or locked
    before = read_state(engine)
    with _store_errors(engine):
        if before.legacy_version is None and not _needs_change(engine, before.revision, target, upgrading):
            return Change(before.revision)
        with _schema_lock(engine) as conn:
            found = _state(conn, engine)
            current = found.revision
            if found.legacy_version is not None:
                current = _take_over(conn, engine, found.legacy_version)
            if _needs_change(engine, current, target, upgrading):
                (command.upgrade if upgrading else command.downgrade)(alembic_config(conn), target)
                after = _state(conn, engine).revision
            else:
                after = current
                if found.legacy_version is None:
                    log.info("the SRE store %s is at %s already: another process changed it while this one "
                             "waited for the schema lock", store_name(engine), target)
    low, high = sorted((position(current), position(after)))
    applied = revisions()[low + 1 : high + 1]
    return Change(after, applied if upgrading else applied[::-1], found.legacy_version)


def position(revision: str | None) -> int:
    """The revision's place in the history (-1: none yet); ValueError naming the known ones when it is unknown."""
    if revision is None:
        return -1
    ids = [r.id for r in revisions()]
    if revision not in ids:
        raise ValueError(f"unknown revision {revision!r} (known: {', '.join(ids)}, {HEAD})")
    return ids.index(revision)


def _needs_change(engine: Engine, current: str | None, target: str, upgrading: bool) -> bool:
    """Whether the store at `current` must change to reach `target`; WrongDirection if only the other command can."""
    here, there = position(current), position(target)
    if upgrading and there < here:
        raise WrongDirection(f"the SRE store {store_name(engine)} is at {current}, after {target}: an upgrade "
                             f"does not go back; `python -m gamesre db downgrade --to {target}` does")
    if not upgrading and there > here:
        raise WrongDirection(f"the SRE store {store_name(engine)} is at {current or 'no revision'}, before "
                             f"{target}: a downgrade does not go forward; `python -m gamesre db upgrade --to "
                             f"{target}` does")
    return here != there


def _state(conn: Connection, engine: Engine) -> SchemaState:
    inspector = sa.inspect(conn)
    if inspector.has_table(VERSION_TABLE.name):
        rows: list[str] = list(conn.execute(sa.select(VERSION_TABLE.c.version_num)).scalars())
        if len(rows) > 1:
            raise StoreError(f"the SRE store {store_name(engine)} records several revisions ({', '.join(rows)}); "
                             "its revisions form one line, so something else wrote them")
        if rows and rows[0] not in {r.id for r in revisions()}:
            raise StoreError(
                f"the SRE store {store_name(engine)} is at schema revision {rows[0]!r}, which this gamesre does not "
                f"know (its newest is {head()!r}): a newer release upgraded it. Run that release, or undo its "
                f"revisions first with that release's `python -m gamesre db downgrade --to {head()}`")
        if rows:
            return SchemaState(rows[0])
    if not inspector.has_table(LEGACY_TABLE.name):
        return SchemaState(None)
    value = conn.execute(sa.select(LEGACY_TABLE.c.value).where(LEGACY_TABLE.c.key == "schema_version")).scalar()
    version = 0 if value is None else int(value) if value.isdigit() else None
    if version not in LEGACY_REVISIONS:
        raise StoreError(f"the SRE store {store_name(engine)} has store_meta.schema_version {value!r}, which no "
                         f"release of gamesre wrote (the hand-written migrations went up to {max(LEGACY_REVISIONS)})")
    return SchemaState(None, version)


def _take_over(conn: Connection, engine: Engine, legacy_version: int) -> str | None:
    """Record the revision matching the hand-written migrations' version, drop their store_meta; that revision."""
    revision = LEGACY_REVISIONS[legacy_version]
    if revision is not None:
        command.stamp(alembic_config(conn), revision)
    conn.execute(sa.text(f"DROP TABLE {LEGACY_TABLE.name}"))
    log.info("took over the SRE store %s from the hand-written migrations at version %d: %s, store_meta dropped",
             store_name(engine), legacy_version, f"stamped {revision}" if revision else "no revision yet")
    return revision


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the database's schema lock until it ends (module docstring)."""
    with engine.connect() as conn, conn.begin():
        log.info("taking the schema lock of the SRE store %s", store_name(engine))
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'")
            with _lock_wait_errors(engine):
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            yield conn
        elif conn.dialect.name == "sqlite":
            with _patient(conn):
                with _lock_wait_errors(engine):
                    conn.exec_driver_sql("BEGIN EXCLUSIVE")
                yield conn
        else:
            raise StoreError(f"the SRE store supports SQLite and PostgreSQL, not {conn.dialect.name}")


@contextmanager
def _patient(conn: Connection) -> Iterator[None]:
    """On SQLite, wait up to LOCK_WAIT_S rather than the driver's 5 s for another connection's lock: an upgrade in
    another process keeps the file's exclusive lock until it is done (readers included)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    usual = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    conn.exec_driver_sql(f"PRAGMA busy_timeout = {LOCK_WAIT_S * 1000}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {usual}")


@contextmanager
def _lock_wait_errors(engine: Engine) -> Iterator[None]:
    try:
        yield
    except sa.exc.OperationalError as exc:
        raise StoreError(f"could not take the schema lock of the SRE store {store_name(engine)} within "
                         f"{LOCK_WAIT_S} s (another process upgrading it all that time?): {exc.orig}") from exc


@contextmanager
def _store_errors(engine: Engine) -> Iterator[None]:
    try:
        yield
    except sa.exc.OperationalError as exc:
        raise StoreError(f"cannot open the SRE store {store_name(engine)}: {exc.orig}") from exc
    except CommandError as exc:
        raise StoreError(f"the SRE store {store_name(engine)}: {exc}") from exc
