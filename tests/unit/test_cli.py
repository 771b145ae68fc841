"""`python -m gamesre`: the budget JSON the issue specifies, one-line errors for bad input, rules and observability
(write, --check, exit codes), the store's schema (db upgrade, downgrade, current, history), and --help at every
level."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from gamesre import cli
from gamesre.cli import main
from gamesre.integrations.store import SREStore, schema
from gamesre.observability import generate
from gamesre.slo import rules

AT = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def store_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'sre.db'}"
    store = SREStore(url)
    minutes = np.arange(int((AT - timedelta(days=2)).timestamp()), int(AT.timestamp()), 60)
    store.upsert_ledger("availability", [(int(m), 999.0, 1000.0) for m in minutes])  # 0.1% bad: burn rate 1
    return url


def test_budget_json_has_the_fields_per_slo(store_url: str, capsys) -> None:
    assert main(["budget", "--store", store_url, "--at", AT.isoformat(), "--json", "--slo", "availability",
                 "--slo", "latency"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["name"] for o in out] == ["availability", "latency"]
    fields = {"name", "target", "window", "method", "sli", "budget_consumed", "budget_remaining",
              "budget_remaining_adjusted", "burn_rates", "state", "coverage"}
    assert all(fields <= set(o) for o in out)
    a = out[0]
    assert a["sli"] == pytest.approx(0.999) and a["burn_rates"]["1d"] == pytest.approx(1.0)
    assert set(a["burn_rates"]) == {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}
    assert out[1]["sli"] is None and out[1]["state"] == "no_data"  # no traffic: explicit, never NaN


def test_window_override_and_table_output(store_url: str, capsys) -> None:
    assert main(["budget", "--store", store_url, "--at", AT.isoformat(), "--window", "month",
                 "--slo", "availability"]) == 0
    text = capsys.readouterr().out
    assert "| availability |" in text and "calendar-month" in text


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of `python -m gamesre ARGS`, whether argparse exits or main returns."""
    try:
        code = main(args)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


INGEST = ["ingest", "--start", "2026-11-26T08:00Z", "--end", "2026-11-26T09:00Z"]


@pytest.mark.parametrize("args, message", [
    ([], "python -m gamesre: error: the following arguments are required: COMMAND"),
    (["nope"], "argument COMMAND: invalid choice: 'nope'"),
    (["budget", "--slo", "nope"], "unknown SLO(s): nope"),
    (["budget", "--at", "yesterday"], "not an ISO 8601 time"),
    (["budget", "--at", "2026-11-26T09:00"], "has no UTC offset"),
    (["budget", "--window", "1y"], "python -m gamesre budget: error: argument --window: invalid choice: '1y'"),
    (["budget", "--store", "not-a-url"], "argument --store: not a database URL"),
    (["budget", "--store", "nosuchdb://host/db"], "argument --store: not a database URL"),
    (["budget", "--bogus"], "python -m gamesre budget: error: unrecognized arguments: --bogus"),
    ([*INGEST, "--slo", "nope"], "unknown SLO(s): nope"),
    ([*INGEST, "--prometheus", "localhost:9090"], "argument --prometheus: 'localhost:9090' is not an http(s) URL"),
    (["ingest", "--start", "2026-11-26T08:00Z"], "the following arguments are required: --end"),
    (["rules", "--slos", "no/such/slos.yaml"], "python -m gamesre rules: error: argument --slos: no/such/slos.yaml: "
                                               "no such file"),
    (["rules", "--out", str(rules.RULES_PATH)], f"argument --out: {rules.RULES_PATH}: not a directory"),
    (["rules", "--bogus"], "python -m gamesre rules: error: unrecognized arguments: --bogus"),
    (["observability", "extra"], "python -m gamesre observability: error: unrecognized arguments: extra"),
    (["db"], "python -m gamesre db: error: the following arguments are required: DB_COMMAND"),
    (["db", "nope"], "python -m gamesre db: error: argument DB_COMMAND: invalid choice: 'nope'"),
    (["db", "upgrade", "--to", "9999"], "python -m gamesre db upgrade: error: argument --to: unknown revision "
                                        "'9999' (known: 0001, 0002, 0003, 0004, 0005, head)"),
    (["db", "upgrade", "--bogus"], "python -m gamesre db upgrade: error: unrecognized arguments: --bogus"),
    (["db", "upgrade", "--store", "not-a-url"], "argument --store: not a database URL"),
    (["db", "downgrade"], "python -m gamesre db downgrade: error: the following arguments are required: --to"),
    (["db", "current", "extra"], "python -m gamesre db current: error: unrecognized arguments: extra"),
    (["db", "history", "--store", "sqlite://"], "python -m gamesre db history: error: unrecognized arguments: "
                                                "--store sqlite://"),
])
def test_bad_input_is_one_line_naming_it_and_exit_2(capsys, args: list[str], message: str) -> None:
    code, out, err = run(args, capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out


def test_rules_check_passes_on_the_committed_rules(capsys) -> None:
    assert main(["rules", "--check"]) == 0
    assert capsys.readouterr().out == "include/prometheus/slo_rules.yml is up to date\n"


def test_rules_check_fails_on_a_stale_or_missing_file_and_out_writes_it(tmp_path: Path, capsys) -> None:
    assert main(["rules", "--check", "--out", str(tmp_path)]) == 1
    assert "missing: run `PYTHONPATH=plugins python -m gamesre rules`" in capsys.readouterr().err
    assert main(["rules", "--out", str(tmp_path)]) == 0
    assert (tmp_path / rules.RULES_FILE).read_text() == rules.generate_from_files()
    assert main(["rules", "--check", "--out", str(tmp_path)]) == 0
    (tmp_path / rules.RULES_FILE).write_text((tmp_path / rules.RULES_FILE).read_text() + "# edited\n")
    assert main(["rules", "--check", "--out", str(tmp_path)]) == 1
    assert "out of date" in capsys.readouterr().err


def test_rules_with_an_invalid_spec_exits_2_naming_the_field(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "slos.yaml"
    bad.write_text(rules.SLOS_PATH.read_text().replace('code: "200"', 'code: "201"'))
    assert main(["rules", "--slos", str(bad), "--out", str(tmp_path)]) == 2
    assert "slo 'availability': sli.good[0].matchers.code: value '201' not in contract" in capsys.readouterr().err
    assert not (tmp_path / rules.RULES_FILE).exists()


def test_observability_check_passes_on_the_committed_files(capsys) -> None:
    assert run(["observability", "--check"], capsys) == (0, "", "")


def test_observability_writes_what_is_missing_or_changed_and_check_names_each_stale_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(cli, "REPO_ROOT", tmp_path)
    files = sorted(str(path) for path in generate.generated_files())
    code, _, err = run(["observability", "--check"], capsys)
    assert code == 1
    assert err.splitlines() == [f"{path}: missing: run `python -m gamesre observability`" for path in files]
    assert run(["observability"], capsys) == (0, "".join(f"wrote {path}\n" for path in files), "")
    assert run(["observability", "--check"], capsys) == (0, "", "")
    edited = tmp_path / files[0]
    edited.write_text(edited.read_text() + "# edited\n")
    code, _, err = run(["observability", "--check"], capsys)
    assert (code, err) == (1, f"{files[0]}: out of date: run `python -m gamesre observability`\n")
    assert run(["observability"], capsys) == (0, f"wrote {files[0]}\n", "")  # only the changed file


def test_observability_that_cannot_generate_exits_2_saying_why(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def clash() -> dict[Path, str]:
        raise generate.GenerationError("include/prometheus/x.yml is generated by both alerts and scrape")

    monkeypatch.setattr(generate, "generated_files", clash)
    assert run(["observability"], capsys) == (
        2, "", "cannot generate: include/prometheus/x.yml is generated by both alerts and scrape\n")


@pytest.mark.parametrize("command, options", [
    ([], ["budget", "ingest", "rules", "observability", "db", "Exit status"]),
    (["budget"], ["--slo NAME", "--window {28d,30d,month}", "--at ISO_TIME", "--json", "--store URL"]),
    (["ingest"], ["--start ISO_TIME", "--end ISO_TIME", "--slo NAME", "--prometheus URL", "--store URL"]),
    (["rules"], ["--out DIR", "--check", "--slos FILE", "--policies FILE", "include/prometheus"]),
    (["observability"], ["--check"]),
    (["db"], ["upgrade", "downgrade", "current", "history", "advisory", "hand-written"]),
    (["db", "upgrade"], ["--to REVISION", "--store URL"]),
    (["db", "downgrade"], ["--to REVISION", "--store URL"]),
    (["db", "current"], ["--store URL"]),
    (["db", "history"], ["oldest first"]),
])
def test_help_at_every_level_names_the_command_and_its_options(
        capsys, command: list[str], options: list[str]) -> None:
    code, out, _ = run([*command, "--help"], capsys)
    assert code == 0
    assert out.startswith(f"usage: {' '.join(['python -m gamesre', *command])} [-h]")
    assert all(option in out for option in options), out


HEAD = schema.head()
AFTER_0001 = [f"{r.id}: {r.message}" for r in schema.revisions()[1:]]  # what `upgrade` from 0001 applies


def test_db_history_lists_the_revisions_oldest_first_with_their_messages(capsys) -> None:
    lines = [f"{r.id}{' (head)' if r.id == HEAD else ''}: {r.message}" for r in schema.revisions()]
    assert run(["db", "history"], capsys) == (0, "\n".join(lines) + "\n", "")
    assert [r.id for r in schema.revisions()] == ["0001", "0002", "0003", "0004", "0005"]
    assert schema.revisions()[0].message.startswith("The schema as the hand-written migrations 1-4 left it")


def test_db_upgrade_step_by_step_current_at_each_step_and_downgrade(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    store = ["--store", url]
    assert run(["db", "current", *store], capsys) == (
        0, f"{url}: no revision (an empty database): `python -m gamesre db upgrade` brings it to head\n", "")
    assert run(["db", "upgrade", "--to", "0001", *store], capsys) == (
        0, f"applied 0001: {schema.revisions()[0].message}\n{url}: 0001 (not head: {HEAD} is)\n", "")
    assert run(["db", "current", *store], capsys) == (
        0, f"{url}: 0001 (not head: {HEAD} is): `python -m gamesre db upgrade` brings it to head\n", "")
    applied = "".join(f"applied {line}\n" for line in AFTER_0001)
    assert run(["db", "upgrade", *store], capsys) == (0, f"{applied}{url}: {HEAD} (head)\n", "")
    assert run(["db", "upgrade", *store], capsys) == (0, f"{url}: {HEAD} (head), nothing to do\n", "")
    assert run(["db", "current", *store], capsys) == (0, f"{url}: {HEAD} (head)\n", "")
    undone = "".join(f"undid {line}\n" for line in reversed(AFTER_0001))
    assert run(["db", "downgrade", "--to", "0001", *store], capsys) == (
        0, f"{undone}{url}: 0001 (not head: {HEAD} is)\n", "")
    assert run(["db", "upgrade", "--to", "head", *store], capsys) == (0, f"{applied}{url}: {HEAD} (head)\n", "")


def test_db_commands_the_other_way_than_the_store_is_bad_input_exit_2(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'sre.db'}"
    SREStore(url)
    assert run(["db", "upgrade", "--to", "0001", "--store", url], capsys) == (
        2, "", f"the SRE store {url} is at {HEAD}, after 0001: an upgrade does not go back; "
               "`python -m gamesre db downgrade --to 0001` does\n")
    assert run(["db", "downgrade", "--to", HEAD, "--store", url], capsys) == (
        0, f"{url}: {HEAD} (head), nothing to do\n", "")
    assert run(["db", "downgrade", "--to", "0001", "--store", url], capsys)[0] == 0
    assert run(["db", "downgrade", "--to", HEAD, "--store", url], capsys) == (
        2, "", f"the SRE store {url} is at 0001, before {HEAD}: a downgrade does not go forward; "
               f"`python -m gamesre db upgrade --to {HEAD}` does\n")


def test_db_commands_refuse_a_store_newer_than_they_know_exit_1_naming_both_revisions(tmp_path: Path, capsys) -> None:
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'sre.db'}"
    engine = SREStore(url).engine
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00d'"))
    for command in (["db", "current"], ["db", "upgrade"], ["budget", "--slo", "availability"]):
        code, out, err = run([*command, "--store", url], capsys)
        assert (code, out) == (1, ""), command
        assert err.startswith(f"error: the SRE store {url} is at schema revision 'f00d', which this gamesre does "
                              f"not know (its newest is '{HEAD}')"), err
        assert len(err.splitlines()) == 1


def test_db_upgrade_takes_over_a_store_of_the_hand_written_migrations(tmp_path: Path, capsys) -> None:
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    schema.upgrade(engine, "0002")  # revision 0002 is exactly the hand-written migrations' version 5
    with engine.begin() as conn:  # as the last release before Alembic left it: its tables and store_meta at 5
        conn.execute(sa.text("DROP TABLE alembic_version"))
        conn.execute(sa.text("CREATE TABLE store_meta (key VARCHAR(64) PRIMARY KEY, value VARCHAR(256) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO store_meta VALUES ('schema_version', '5')"))
    assert run(["db", "current", "--store", url], capsys) == (
        0, f"{url}: the hand-written migrations' schema_version 5, not yet under Alembic: `python -m gamesre db "
           "upgrade` takes it over\n", "")
    assert run(["db", "upgrade", "--store", url], capsys) == (
        0, "took over the hand-written migrations' schema_version 5: stamped 0002, store_meta dropped\n"
           + "".join(f"applied {line}\n" for line in AFTER_0001[1:]) + f"{url}: {HEAD} (head)\n", "")
    assert run(["db", "current", "--store", url], capsys) == (0, f"{url}: {HEAD} (head)\n", "")
