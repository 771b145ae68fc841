"""The store's schema under Alembic, on SQLite and PostgreSQL: a new store gets exactly database.py's tables; a
store of the hand-written migrations is taken over in place with its data; a newer schema is refused; 0002 is
undone only without loss; two processes upgrading one store at once apply each revision once between them."""
from __future__ import annotations

import importlib
import io
import logging
import multiprocessing
import os
import subprocess
import sys
import time
from contextlib import redirect_stdout
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from gamesre import cli
from gamesre.integrations.store import SREStore, StoreError, metadata, policy_state, schema

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, minute-aligned
HEAD = schema.head()

# The tables each hand-written migration created, in order: how the releases before Alembic built a store.
LEGACY_TABLES = {
    1: ("slo_ledger", "slo_ledger_day", "slo_snapshot", "policy_state", "policy_state_history", "maintenance_window"),
    2: ("deployment", "deploy_verdict", "deploy_lock"),
    3: ("chaos_run", "chaos_gameday", "chaos_lock", "incident"),
    4: ("checklist_run", "checklist_result"),
}

LEGACY_4 = importlib.import_module("gamesre.integrations.store.migrations.versions.0001_schema_of_legacy_version_4"
                                   ).legacy_4


def build_legacy_store(url: str, version: int) -> None:
    """A store as the hand-written migrations left it at `version` (1-5), with a ledger row, its packed day and a
    published state: before 5, the ledger's two tables as migration 1 created them, without `span`; the other
    tables of migrations 1..version as revision 0001 defines them (the schema of version 4); store_meta with the
    version."""
    old = sa.MetaData()
    store_meta = sa.Table("store_meta", old, sa.Column("key", sa.String(64), primary_key=True),
                          sa.Column("value", sa.String(256), nullable=False))
    if version < 5:
        sa.Table("slo_ledger", old, sa.Column("slo", sa.String(128), primary_key=True),
                 sa.Column("minute", sa.BigInteger, primary_key=True), sa.Column("good", sa.Float, nullable=False),
                 sa.Column("total", sa.Float, nullable=False),
                 sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False))
        sa.Table("slo_ledger_day", old, sa.Column("slo", sa.String(128), primary_key=True),
                 sa.Column("day", sa.BigInteger, primary_key=True),
                 sa.Column("minutes", sa.LargeBinary, nullable=False),
                 sa.Column("good", sa.LargeBinary, nullable=False), sa.Column("total", sa.LargeBinary, nullable=False))
    for migration in range(1, min(version, 4) + 1):
        for name in LEGACY_TABLES[migration]:
            if name not in old.tables:
                # version 5 is version 4 with `span` on the ledger's two tables, as 0002 (and database.py) add it
                (metadata if name.startswith("slo_ledger") else LEGACY_4).tables[name].to_metadata(old)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        old.create_all(conn)
        conn.execute(sa.insert(store_meta).values(key="schema_version", value=str(version)))
        conn.execute(sa.text("INSERT INTO slo_ledger (slo, minute, good, total, ingested_at) "
                             "VALUES ('availability', :m, 9, 10, '2026-01-01')"), {"m": T0})
        conn.execute(sa.text("INSERT INTO slo_ledger_day (slo, day, minutes, good, total) "
                             "VALUES ('availability', :d, :m, :g, :t)"),
                     {"d": T0 - T0 % 86400, "m": np.array([T0], "<i8").tobytes(),
                      "g": np.array([9.0], "<f8").tobytes(), "t": np.array([10.0], "<f8").tobytes()})
        conn.execute(sa.insert(policy_state).values(scope="service", name="game-server", state="deploy_freeze",
                                                    computed_at=sa.func.now(), reasons=[], details={}))
    engine.dispose()


def schema_differences(engine: sa.Engine) -> list[Any]:
    """What Alembic's autogenerate finds between the database and database.py's tables ([]: the same tables,
    columns, types, nullability, indexes and constraints; the version table aside)."""
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def versions(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def test_the_revisions_form_one_line_from_0001_to_head() -> None:
    scripts = ScriptDirectory.from_config(schema.alembic_config())
    assert scripts.get_bases() == ["0001"] and scripts.get_heads() == [HEAD]
    for older, newer in pairwise(schema.revisions()):
        assert scripts.get_revision(newer.id).down_revision == older.id
    assert all(r.message for r in schema.revisions())  # `db history` shows each one's first docstring paragraph


def test_a_new_store_gets_exactly_the_tables_of_database_py_at_head(store_url: str) -> None:
    store = SREStore(store_url)
    assert schema.read_state(store.engine) == schema.SchemaState(HEAD)
    assert versions(store.engine) == [HEAD]
    assert tables(store.engine) == {*metadata.tables, "alembic_version"}
    assert schema_differences(store.engine) == []
    assert schema.upgrade(SREStore(store_url).engine) == schema.Change(HEAD)  # again: nothing to do


@pytest.mark.parametrize("version, stamped, applied", [
    (1, None, ["0001", "0002", "0003", "0004", "0005"]), (2, None, ["0001", "0002", "0003", "0004", "0005"]),
    (3, None, ["0001", "0002", "0003", "0004", "0005"]), (4, "0001", ["0002", "0003", "0004", "0005"]),
    (5, "0002", ["0003", "0004", "0005"]),
])
def test_a_store_of_the_hand_written_migrations_is_taken_over_in_place_with_its_data(
        store_url: str, version: int, stamped: str | None, applied: list[str]) -> None:
    build_legacy_store(store_url, version)
    engine = sa.create_engine(store_url)
    assert schema.read_state(engine) == schema.SchemaState(None, legacy_version=version)
    assert schema.LEGACY_REVISIONS[version] == stamped
    change = schema.upgrade(engine)
    assert change.revision == HEAD and change.legacy_version == version
    assert [r.id for r in change.applied] == applied  # the revisions after the stamped one, and only those
    assert versions(engine) == [HEAD]
    assert "store_meta" not in tables(engine)
    assert schema_differences(engine) == []  # the same schema as a new store's
    store = SREStore(store_url)
    ledger = store.ledger("availability")
    assert (ledger.minutes.tolist(), ledger.good.tolist(), ledger.span.tolist()) == ([T0], [9.0], [1])
    state = store.current_state("service", "game-server")
    assert state is not None and state["state"] == "deploy_freeze"
    engine.dispose()


def test_a_version_4_store_upgrades_on_first_use_and_its_rows_cover_their_own_minute(store_url: str) -> None:
    build_legacy_store(store_url, 4)
    store = SREStore(store_url)
    assert schema.read_state(store.engine) == schema.SchemaState(HEAD)
    assert store.ledger("availability").span.tolist() == [1]
    store.upsert_ledger("availability", [(T0 + 600, 90.0, 100.0, 10)])
    assert store.ledger("availability").span.tolist() == [1, 10]


def test_a_version_4_store_that_migration_5_left_half_way_is_taken_over(store_url: str) -> None:
    """On SQLite the hand-written migrations' DDL was not transactional: migration 5 could stop after adding
    `span` to the ledger, before adding it to the packed days and recording version 5."""
    build_legacy_store(store_url, 4)
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE slo_ledger ADD COLUMN span INTEGER DEFAULT 1 NOT NULL"))
    assert [r.id for r in schema.upgrade(engine).applied] == ["0002", "0003", "0004", "0005"]
    assert schema_differences(engine) == []
    assert SREStore(store_url).ledger("availability").span.tolist() == [1]
    engine.dispose()


def test_a_store_at_a_revision_this_code_does_not_know_is_refused_naming_both(store_url: str) -> None:
    url = sa.make_url(store_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(password="s3cret")  # trust authentication ignores it; the message must not show it
    SREStore(url.render_as_string(hide_password=False))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))  # as a newer release would
    for attempt in (lambda: SREStore(url.render_as_string(hide_password=False)), lambda: schema.upgrade(engine),
                    lambda: schema.read_state(engine)):
        with pytest.raises(StoreError) as refused:
            attempt()
        message = str(refused.value)
        assert f"the SRE store {url.render_as_string(hide_password=True)} is at schema revision '0099'" in message
        assert "s3cret" not in message
        assert f"its newest is '{HEAD}'" in message
        assert f"Run that release, or undo its revisions first with that release's `python -m gamesre db " \
               f"downgrade --to {HEAD}`" in message
    assert versions(engine) == ["0099"]  # refused before anything was changed
    engine.dispose()


def test_undoing_0002_refuses_while_a_row_covers_more_than_one_minute_and_keeps_the_ledger(store_url: str) -> None:
    store = SREStore(store_url)
    store.upsert_ledger("availability", [(T0, 9.0, 10.0), (T0 + 600, 90.0, 100.0, 10)])
    with pytest.raises(StoreError, match="cannot undo revision 0002: 1 ledger rows cover more than one minute"):
        schema.downgrade(store.engine, "0001")
    assert versions(store.engine) == [HEAD] and schema_differences(store.engine) == []  # nothing half done
    store.upsert_ledger("availability", [(T0 + 600, 90.0, 100.0, 1)])  # that minute re-ingested on its own
    assert schema.downgrade(store.engine, "0001") == schema.Change("0001", schema.revisions()[:0:-1])  # newest first
    assert "span" not in {c["name"] for c in sa.inspect(store.engine).get_columns("slo_ledger")}
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT minute, good, total FROM slo_ledger ORDER BY minute")).all()
    assert [tuple(r) for r in rows] == [(T0, 9.0, 10.0), (T0 + 600, 90.0, 100.0)]
    assert [r.id for r in schema.upgrade(store.engine).applied] == ["0002", "0003", "0004", "0005"]
    assert store.ledger("availability").span.tolist() == [1, 1]


def test_undoing_0003_refuses_while_an_incident_is_recorded_and_then_drops_its_tables(store_url: str) -> None:
    store = SREStore(store_url)
    store.upsert_incident({"id": "INC-20261207-001", "severity": "sev1", "title": "game-server down",
                           "services": ["game-server"], "opened_at": datetime(2026, 12, 7, tzinfo=UTC)})
    with pytest.raises(StoreError, match=r"cannot undo revision 0003: the store holds 1 incident record\(s\)"):
        schema.downgrade(store.engine, "0002")
    assert versions(store.engine) == [HEAD] and schema_differences(store.engine) == []  # nothing half done
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM incident"))
    schema.downgrade(store.engine, "0002")
    assert not {"incident_intake", "incident_alert", "incident_event", "incident_role", "incident_notice"} \
        & tables(store.engine)
    assert "team" not in {c["name"] for c in sa.inspect(store.engine).get_columns("incident")}
    assert [r.id for r in schema.upgrade(store.engine).applied] == ["0003", "0004", "0005"]
    assert schema_differences(store.engine) == []


def test_undoing_0004_refuses_while_a_rollback_is_recorded(store_url: str) -> None:
    store = SREStore(store_url)
    store.upsert_deployment({"id": "rollback-1", "service": "game-server", "version": "1.5.0", "image": "",
                             "strategy": "canary", "stages": ["prod"], "backend": "local", "change_ticket": "CHG-1",
                             "requested_by": "kim", "dry_run": False, "forced": False, "outcome": "promoted",
                             "requested_at": datetime(2026, 12, 7, tzinfo=UTC), "kind": "rollback",
                             "rollback_of": "deploy-1"})
    with pytest.raises(StoreError, match=r"revision 0004: the store holds 1 rollback record\(s\) and 0 budget-policy"):
        schema.downgrade(store.engine, "0003")
    assert versions(store.engine) == [HEAD] and schema_differences(store.engine) == []
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE deployment SET kind = 'deploy'"))
    schema.downgrade(store.engine, "0003")
    assert "rollback_of" not in {c["name"] for c in sa.inspect(store.engine).get_columns("deployment")}
    assert [r.id for r in schema.upgrade(store.engine).applied] == ["0004", "0005"]
    assert store.deployment("rollback-1")["kind"] == "deploy" and schema_differences(store.engine) == []
    episode = datetime(2026, 12, 7, 1, tzinfo=UTC)
    decision = {"service": "game-server", "episode_start": episode, "action": "page", "state": "rollback",
                "decided_at": episode, "reason": "no change to roll back"}
    assert store.record_policy_action(decision) and not store.record_policy_action({**decision, "action": "rollback"})
    assert [(a["action"], a["episode_start"]) for a in store.policy_actions("game-server")] == [("page", episode)]
    with pytest.raises(StoreError, match=r"0 rollback record\(s\) and 1 budget-policy decision"):
        schema.downgrade(store.engine, "0003")


def test_undoing_0005_refuses_while_a_deploy_control_request_is_recorded(store_url: str) -> None:
    store = SREStore(store_url)
    store.add_deploy_control("deploy-1", "abort", "kim", "wrong build")
    with pytest.raises(StoreError, match=r"cannot undo revision 0005: the store holds 1 deploy control request"):
        schema.downgrade(store.engine, "0004")
    assert versions(store.engine) == [HEAD] and schema_differences(store.engine) == []
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM deploy_control"))
    schema.downgrade(store.engine, "0004")
    assert "deploy_control" not in tables(store.engine)
    assert [r.id for r in schema.upgrade(store.engine).applied] == ["0005"]
    assert schema_differences(store.engine) == []


def test_the_first_revision_is_not_undone(store_url: str) -> None:
    engine = SREStore(store_url).engine
    schema.downgrade(engine, "0001")
    with pytest.raises(StoreError, match="revision 0001 is the first"), engine.connect() as conn, conn.begin():
        command.downgrade(schema.alembic_config(conn), "base")
    assert versions(engine) == ["0001"] and "slo_ledger" in tables(engine)


def test_an_upgrade_that_fails_half_way_leaves_nothing_behind_and_the_next_one_completes(store_url: str) -> None:
    """The revisions run in one transaction (on SQLite too: the schema lock is an explicit BEGIN EXCLUSIVE)."""
    engine = sa.create_engine(store_url)

    def fail_at_the_deploy_tables(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith("CREATE TABLE deployment"):
            raise RuntimeError("the machine went away")

    sa.event.listen(engine, "before_cursor_execute", fail_at_the_deploy_tables)
    with pytest.raises(RuntimeError, match="went away"):
        SREStore(store_url, engine=engine)
    assert tables(engine) == set()  # not the ledger's tables created before it, nor a version table
    sa.event.remove(engine, "before_cursor_execute", fail_at_the_deploy_tables)
    assert [r.id for r in schema.upgrade(engine).applied] == ["0001", "0002", "0003", "0004", "0005"]
    assert schema_differences(engine) == []
    engine.dispose()


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def upgrade_when_all_are_ready(how: str, url: str, ready: Any, results: Any, hold_s: float, after_s: float) -> None:
    """In a process of its own: wait at the barrier with the others, `after_s` more, then upgrade the store, by
    `SREStore(url)` ("store") or `python -m gamesre db upgrade` ("cli"); hold the schema lock `hold_s` longer once
    taken, so the others surely come while it is held. Puts (exit status or the exception, stdout, the log)."""
    lines = Lines()
    for name in ("gamesre.integrations.store.schema", "alembic.runtime.migration"):
        logging.getLogger(name).addHandler(lines)
        logging.getLogger(name).setLevel(logging.INFO)

    def hold_the_lock(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "pg_advisory_xact_lock" in statement or "BEGIN EXCLUSIVE" in statement:
            time.sleep(hold_s)

    sa.event.listen(sa.Engine, "after_cursor_execute", hold_the_lock)
    out = io.StringIO()
    try:
        ready.wait(timeout=60)
        time.sleep(after_s)
        with redirect_stdout(out):
            status = cli.main(["db", "upgrade", "--store", url]) if how == "cli" else SREStore(url) and 0
        results.put((status, out.getvalue(), lines.lines))
    except BaseException as exc:
        results.put((repr(exc), out.getvalue(), lines.lines))


@pytest.mark.parametrize("how", ["store", "cli"])
def test_two_processes_upgrading_a_new_store_at_once_apply_each_revision_once(store_url: str, how: str) -> None:
    processes, hold_s, stagger_s = 2, 1.5, 0.0  # both race for the lock
    if how == "store" and store_url.startswith("sqlite"):
        # the second comes once the first holds the lock, longer than SQLite's usual 5 s busy wait: its first read
        # waits it out (the exclusive lock keeps readers out too), then finds the store at head
        hold_s, stagger_s = 6.0, 0.5
    forked = multiprocessing.get_context("fork")
    ready, results = forked.Barrier(processes), forked.Queue()
    workers = [forked.Process(target=upgrade_when_all_are_ready,
                              args=(how, store_url, ready, results, hold_s, i * stagger_s)) for i in range(processes)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert [status for status, _, _ in outcomes] == [0] * processes, outcomes
    ran = [line.split(",")[0] for _, _, log in outcomes for line in log if line.startswith("Running upgrade")]
    assert sorted(ran) == ["Running upgrade  -> 0001", "Running upgrade 0001 -> 0002",
                           "Running upgrade 0002 -> 0003", "Running upgrade 0003 -> 0004",
                           "Running upgrade 0004 -> 0005"]  # once each, in all
    appliers = [out for _, out, log in outcomes if any(line.startswith("Running upgrade") for line in log)]
    assert len(appliers) == 1  # both by one process
    others = [(out, log) for _, out, log in outcomes if not any(line.startswith("Running upgrade") for line in log)]
    if sa.make_url(store_url).get_backend_name() == "postgresql":  # SQLite's reader may instead wait for the commit
        assert any("waited for the schema lock" in line for line in others[0][1])
    if how == "cli":
        assert "applied 0001: " in appliers[0] and "applied 0002: " in appliers[0]
        assert others[0][0].endswith(f": {HEAD} (head), nothing to do\n")
    engine = sa.create_engine(store_url)
    assert versions(engine) == [HEAD]
    assert tables(engine) == {*metadata.tables, "alembic_version"} and schema_differences(engine) == []
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_db_upgrade_and_current_take_over_a_version_4_store_on_postgresql(store_url: str) -> None:
    build_legacy_store(store_url, 4)

    def gamesre(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
        return subprocess.run([sys.executable, "-m", "gamesre", *args, "--store", store_url], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=120)

    current = gamesre("db", "current")
    assert (current.returncode, current.stderr) == (0, "")
    assert current.stdout == (f"{store_url}: the hand-written migrations' schema_version 4, not yet under Alembic: "
                              "`python -m gamesre db upgrade` takes it over\n")
    upgraded = gamesre("db", "upgrade")
    assert (upgraded.returncode, upgraded.stderr) == (0, "")
    assert upgraded.stdout.splitlines() == [
        "took over the hand-written migrations' schema_version 4: stamped 0001, store_meta dropped",
        f"applied 0002: {schema.revisions()[1].message}",
        f"applied 0003: {schema.revisions()[2].message}",
        f"applied 0004: {schema.revisions()[3].message}",
        f"applied 0005: {schema.revisions()[4].message}",
        f"{store_url}: {HEAD} (head)"]
    assert gamesre("db", "current").stdout == f"{store_url}: {HEAD} (head)\n"
    assert SREStore(store_url).ledger("availability").span.tolist() == [1]
