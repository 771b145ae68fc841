"""`python -m gamesre`: the command line for error budgets, the ledger, the generated monitoring files and the
SRE store's schema.

The store defaults to $GAMESRE_STORE_URL, else the demo's SQLite file (.airflow/sre.db); Prometheus to
$GAMESRE_PROMETHEUS_URL, else the demo's Prometheus (http://127.0.0.1:19090).

Exit status: 0 done; 1 a --check found a stale file, or the store or Prometheus failed; 2 bad input: an
unknown command or option, a bad option value, an unknown SLO or revision, or a schema revision on the other
side of the store's (one line on stderr names it), or an invalid spec (each problem on a line).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from gamesre.core.paths import REPO_ROOT

if TYPE_CHECKING:
    from gamesre.integrations.store.schema import Change

WINDOWS = {"30d": "rolling-30d", "28d": "rolling-28d", "month": "calendar-month"}
PROG = "python -m gamesre"


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line naming the problem, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def default_store_url() -> str:
    return os.environ.get("GAMESRE_STORE_URL") or f"sqlite:///{REPO_ROOT / '.airflow' / 'sre.db'}"


def default_prometheus_url() -> str:
    return os.environ.get("GAMESRE_PROMETHEUS_URL", "http://127.0.0.1:19090")


def parse_instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time (e.g. 2026-11-26T09:00+09:00)") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset; add one, e.g. +09:00 or Z")
    return value


def parse_store_url(text: str) -> str:
    """A database URL SQLAlchemy can open with an installed driver; the message leaves the URL out (it may hold
    a password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(text).get_dialect().import_dbapi()
    except ArgumentError as exc:
        raise argparse.ArgumentTypeError(
            f"not a database URL SQLAlchemy can use ({exc}), e.g. sqlite:///path/to/sre.db") from None
    except ImportError as exc:
        raise argparse.ArgumentTypeError(f"its database driver is not installed ({exc})") from None
    return text


def parse_http_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL (e.g. http://127.0.0.1:19090)")
    return text


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: {'not a file' if path.exists() else 'no such file'}")
    return path


def directory(text: str) -> Path:
    """A directory to write into: it need not exist yet, but it cannot be a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: not a directory")
    return path


def revision_id(text: str) -> str:
    """A revision of the store's schema this code knows, or `head`."""
    from gamesre.integrations.store import schema

    if text != schema.HEAD:
        try:
            schema.position(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def budget_json(snapshot: Any, state: str) -> dict[str, Any]:
    return {
        "name": snapshot.name,
        "target": snapshot.target,
        "window": snapshot.window,
        "method": snapshot.method,
        "sli": snapshot.sli,
        "sli_adjusted": snapshot.sli_adjusted,
        "budget_consumed": snapshot.budget_consumed,
        "budget_remaining": snapshot.budget_remaining,
        "budget_consumed_adjusted": snapshot.budget_consumed_adjusted,
        "budget_remaining_adjusted": snapshot.budget_remaining_adjusted,
        "burn_rates": dict(snapshot.burn_rates),
        "state": state,
        "coverage": snapshot.coverage,
        "status": snapshot.status,
        "reasons": list(snapshot.reasons),
    }


def chosen_slos(catalog: Any, names: list[str] | None) -> list[Any] | None:
    """The SLOs named with --slo (all without one); None, after saying which, when a name is unknown."""
    unknown = sorted(set(names or ()) - set(catalog.names()))
    if unknown:
        print(f"unknown SLO(s): {', '.join(unknown)}; known: {', '.join(catalog.names())}", file=sys.stderr)
        return None
    return [catalog[n] for n in names] if names else list(catalog)


def cmd_budget(args: argparse.Namespace) -> int:
    from gamesre.integrations.store import SREStore
    from gamesre.reports.budget_report import slo_table
    from gamesre.slo.evaluation import evaluate_slos
    from gamesre.slo.spec import load_policies, load_slos

    policy = load_policies()
    slos = chosen_slos(load_slos(), args.slo)
    if slos is None:
        return 2
    at = args.at or datetime.now(UTC)
    store = SREStore(args.store)
    evaluated = evaluate_slos(slos, policy, store, at, WINDOWS[args.window] if args.window else None)
    if args.json:
        print(json.dumps([budget_json(ev.snapshot, ev.state.state) for ev in evaluated], indent=2))
    else:
        print(slo_table([(ev.snapshot, ev.state.state) for ev in evaluated]))
        for ev in evaluated:
            for reason in ev.state.reasons:
                print(f"  {ev.slo.name}: {reason.to_dict().get('message', reason)}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from gamesre.integrations.prometheus import PrometheusClient
    from gamesre.integrations.store import SREStore
    from gamesre.slo.ingest import IngestError, align_down, ingest_all
    from gamesre.slo.spec import load_slos

    slos = chosen_slos(load_slos(), args.slo)
    if slos is None:
        return 2
    start, end = align_down(args.start.timestamp()), align_down(args.end.timestamp())
    if end <= start:
        print("--end must be at least a minute after --start", file=sys.stderr)
        return 2
    try:
        results = ingest_all(slos, PrometheusClient(args.prometheus), SREStore(args.store), start, end)
    except IngestError as exc:
        for r in exc.results:
            print(r.describe())
        for r in exc.failed:
            print(f"error: {r.describe()}", file=sys.stderr)
        print("Re-run the same command to write the rest (rows already written are rewritten identically).",
              file=sys.stderr)
        return 1
    for r in results:
        print(r.describe())
    return 0


def cmd_rules(args: argparse.Namespace) -> int:
    from gamesre.core.config import display_path
    from gamesre.slo.rules import RULES_FILE, generate_from_files

    text = generate_from_files(args.slos, args.policies)
    target = args.out / RULES_FILE
    if args.check:
        current = target.read_text() if target.exists() else None
        if current != text:
            state = "missing" if current is None else "out of date"
            print(f"{display_path(target)} is {state}: run `PYTHONPATH=plugins {PROG} rules`", file=sys.stderr)
            return 1
        print(f"{display_path(target)} is up to date")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(f"wrote {display_path(target)}")
    return 0


def cmd_observability(args: argparse.Namespace) -> int:
    from gamesre.core.config import SpecError
    from gamesre.core.contract import ContractError
    from gamesre.observability.generate import GenerationError, generated_files, stale, write_changed

    try:
        files = generated_files()
    except (SpecError, ContractError, GenerationError, ValueError) as exc:
        print(f"cannot generate: {exc}", file=sys.stderr)
        return 2
    if args.check:
        problems = stale(files, REPO_ROOT)
        for line in problems:
            print(f"{line}: run `{PROG} observability`", file=sys.stderr)
        return 1 if problems else 0
    for path in write_changed(files, REPO_ROOT):
        print(f"wrote {path}")
    return 0


def describe_revision(revision: str | None) -> str:
    from gamesre.integrations.store import schema

    if revision is None:
        return "no revision (an empty database)"
    return f"{revision} (head)" if revision == schema.head() else f"{revision} (not head: {schema.head()} is)"


def print_change(store: str, change: Change, verb: str) -> None:
    from gamesre.integrations.store import schema

    if change.legacy_version is not None:
        stamped = schema.LEGACY_REVISIONS[change.legacy_version]
        print(f"took over the hand-written migrations' schema_version {change.legacy_version}: "
              f"{f'stamped {stamped}' if stamped else 'at no revision yet'}, store_meta dropped")
    for revision in change.applied:
        print(f"{verb} {revision.id}: {revision.message}")
    done = "" if change.applied or change.legacy_version is not None else ", nothing to do"
    print(f"{store}: {describe_revision(change.revision)}{done}")


def cmd_db_change(args: argparse.Namespace) -> int:
    """`db upgrade` and `db downgrade`: the same steps, one way or the other."""
    import sqlalchemy as sa

    from gamesre.integrations.store import schema

    engine = sa.create_engine(args.store)
    change, verb = (schema.upgrade, "applied") if args.db_command == "upgrade" else (schema.downgrade, "undid")
    try:
        done = change(engine, args.to)
    except schema.WrongDirection as exc:
        print(exc, file=sys.stderr)
        return 2
    print_change(schema.store_name(engine), done, verb)
    return 0


def cmd_db_current(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from gamesre.integrations.store import schema

    engine = sa.create_engine(args.store)
    state = schema.read_state(engine)
    if state.legacy_version is not None:
        where = (f"the hand-written migrations' schema_version {state.legacy_version}, not yet under Alembic: "
                 f"`{PROG} db upgrade` takes it over")
    elif state.revision != schema.head():
        where = f"{describe_revision(state.revision)}: `{PROG} db upgrade` brings it to head"
    else:
        where = describe_revision(state.revision)
    print(f"{schema.store_name(engine)}: {where}")
    return 0


def cmd_db_history(args: argparse.Namespace) -> int:
    from gamesre.integrations.store import schema

    for revision in schema.revisions():
        print(f"{revision.id}{' (head)' if revision.id == schema.head() else ''}: {revision.message}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from gamesre.core.config import display_path
    from gamesre.core.paths import PROMETHEUS_DIR
    from gamesre.slo.rules import RULES_FILE
    from gamesre.slo.spec import POLICIES_PATH, SLOS_PATH

    summary, details = (__doc__ or "").split("\n\n", 1)
    parser = OneLineErrorParser(prog=PROG, description=summary, epilog=details,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(title="commands (each has --help)", dest="command", metavar="COMMAND",
                                required=True)
    store_help = "SQLAlchemy URL of the SRE store (default: $GAMESRE_STORE_URL, else the demo's .airflow/sre.db)"

    about = "Error budgets, burn rates and policy state per SLO, from the ledger: the numbers the reports show."
    b = sub.add_parser("budget", help="error budgets, burn rates and policy state per SLO", description=about)
    b.add_argument("--slo", action="append", metavar="NAME", help="only this SLO (repeatable)")
    b.add_argument("--window", choices=sorted(WINDOWS), help="override each SLO's own window")
    b.add_argument("--at", type=parse_instant, metavar="ISO_TIME", help="evaluate at this instant (default: now)")
    b.add_argument("--json", action="store_true", help="print JSON instead of a table")
    b.add_argument("--store", type=parse_store_url, default=default_store_url(), metavar="URL", help=store_help)
    b.set_defaults(func=cmd_budget)

    about = ("(Re)fill the ledger from Prometheus for [--start, --end), both rounded down to the minute; rows "
             "already written are rewritten identically. Exit 1 when an SLO could not be written in full: "
             "the same command again writes the rest.")
    i = sub.add_parser("ingest", help="(re)fill the ledger from Prometheus for [--start, --end)", description=about)
    i.add_argument("--start", type=parse_instant, required=True, metavar="ISO_TIME", help="first minute (included)")
    i.add_argument("--end", type=parse_instant, required=True, metavar="ISO_TIME", help="end (excluded)")
    i.add_argument("--slo", action="append", metavar="NAME", help="only this SLO (repeatable)")
    i.add_argument("--prometheus", type=parse_http_url, default=default_prometheus_url(), metavar="URL",
                   help="Prometheus base URL (default: $GAMESRE_PROMETHEUS_URL, else http://127.0.0.1:19090)")
    i.add_argument("--store", type=parse_store_url, default=default_store_url(), metavar="URL", help=store_help)
    i.set_defaults(func=cmd_ingest)

    about = (f"Generate the Prometheus SLO recording rules and multiwindow multi-burn-rate alerts ({RULES_FILE}) "
             "from the SLO specs and the error-budget policy.")
    r = sub.add_parser("rules", help=f"generate or check the Prometheus SLO rules ({RULES_FILE})", description=about)
    r.add_argument("--out", type=directory, default=PROMETHEUS_DIR, metavar="DIR",
                   help=f"directory of {RULES_FILE} (default: {display_path(PROMETHEUS_DIR)})")
    r.add_argument("--check", action="store_true",
                   help=f"write nothing; exit 1 if DIR/{RULES_FILE} is missing or differs from a fresh generation")
    r.add_argument("--slos", type=existing_file, default=SLOS_PATH, metavar="FILE",
                   help=f"SLO specs (default: {display_path(SLOS_PATH)})")
    r.add_argument("--policies", type=existing_file, default=POLICIES_PATH, metavar="FILE",
                   help=f"error-budget policy (default: {display_path(POLICIES_PATH)})")
    r.set_defaults(func=cmd_rules)

    about = ("Generate the Prometheus scrape configuration and alert rules, the Alertmanager configuration and the "
             "Grafana dashboards from include/config/ (SLO specs, metric contract, alerting.yaml); only files "
             f"whose text changes are written. The SLO rules are `{PROG} rules`.")
    o = sub.add_parser("observability", description=about,
                       help="generate or check the scrape configuration, alert rules, Alertmanager configuration "
                            "and Grafana dashboards")
    o.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 naming each file missing or differing from a fresh generation")
    o.set_defaults(func=cmd_observability)

    about = ("The SRE store's schema, as Alembic revisions (plugins/gamesre/integrations/store/migrations/). Every "
             "process that opens the store upgrades it on first use, so `upgrade` is for doing it once, ahead of "
             "a release; either way it runs once, under a database lock (a PostgreSQL advisory lock, SQLite's "
             "exclusive transaction), and a process that waited on the lock finds the work done. A store of the "
             "hand-written migrations before Alembic (store_meta.schema_version) is taken over in place.")
    d = sub.add_parser("db", help="upgrade, downgrade and inspect the SRE store's schema", description=about)
    db = d.add_subparsers(title="commands (each has --help)", dest="db_command", metavar="DB_COMMAND", required=True)
    about = ("Upgrade the store's schema to the newest revision, or to --to, with its data; print the revisions "
             "applied. Nothing to do when another process got there first.")
    u = db.add_parser("upgrade", help="upgrade the schema (to the newest revision by default)", description=about)
    u.add_argument("--to", type=revision_id, default="head", metavar="REVISION",
                   help="stop at this revision (default: head, the newest)")
    u.set_defaults(func=cmd_db_change)
    about = ("Undo the revisions after --to, newest first, where they can be undone (each revision's docstring "
             "says; `db history` lists them). For going back to an older release: run this with the newer one.")
    g = db.add_parser("downgrade", help="undo the revisions after --to", description=about)
    g.add_argument("--to", type=revision_id, required=True, metavar="REVISION", help="the revision to go back to")
    g.set_defaults(func=cmd_db_change)
    c = db.add_parser("current", help="the store's revision and whether it is head",
                      description="Print the store's schema revision and whether it is head (the newest this code "
                                  "knows). Exit 1 naming both when the store is at a revision this code does not know.")
    c.set_defaults(func=cmd_db_current)
    for command in (u, g, c):
        command.add_argument("--store", type=parse_store_url, default=default_store_url(), metavar="URL",
                             help=store_help)
    h = db.add_parser("history", help="the revisions this code knows, oldest first, with their messages",
                      description="List the schema revisions this code knows, oldest first, with their messages.")
    h.set_defaults(func=cmd_db_history)

    for command in [*sub.choices.values(), *db.choices.values()]:  # for main: argparse names the top parser for a
        command.set_defaults(command_parser=command)               # command's extra words otherwise
    return parser


def main(argv: list[str] | None = None) -> int:
    from gamesre.core.config import SpecError
    from gamesre.core.errors import OutsideSystemError

    args, extra = build_parser().parse_known_args(argv)
    if extra:
        args.command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args))
    except SpecError as exc:
        print(f"invalid spec:\n{exc}", file=sys.stderr)
        return 2
    except OutsideSystemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
