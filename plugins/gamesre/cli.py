"""`python -m gamesre ...`: the SRE workflows' numbers at a terminal, the same numbers the reports show.

Commands:
  budget   error budgets, burn rates and policy state per SLO, from the ledger
  ingest   (re)fill the ledger from Prometheus for a time range
  rules    generate or check the Prometheus rules from the SLO spec
  observability
           generate or check the scrape configuration, alert rules, Alertmanager routing and Grafana dashboards

The store defaults to $GAMESRE_STORE_URL, else the demo's SQLite file (.airflow/sre.db); Prometheus to
$GAMESRE_PROMETHEUS_URL, else the demo's Prometheus (http://127.0.0.1:19090).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

from gamesre.core.paths import REPO_ROOT

WINDOWS = {"30d": "rolling-30d", "28d": "rolling-28d", "month": "calendar-month"}


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gamesre", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("budget", help="error budgets, burn rates and policy state per SLO")
    b.add_argument("--slo", action="append", metavar="NAME", help="only this SLO (repeatable)")
    b.add_argument("--window", choices=sorted(WINDOWS), help="override each SLO's own window")
    b.add_argument("--at", type=parse_instant, metavar="ISO_TIME", help="evaluate at this instant (default: now)")
    b.add_argument("--json", action="store_true", help="print JSON instead of a table")
    b.add_argument("--store", default=default_store_url(), help="SQLAlchemy URL of the SRE store")
    b.set_defaults(func=cmd_budget)

    i = sub.add_parser("ingest", help="(re)fill the ledger from Prometheus for [--start, --end)")
    i.add_argument("--start", type=parse_instant, required=True, metavar="ISO_TIME")
    i.add_argument("--end", type=parse_instant, required=True, metavar="ISO_TIME")
    i.add_argument("--slo", action="append", metavar="NAME", help="only this SLO (repeatable)")
    i.add_argument("--prometheus", default=default_prometheus_url(), help="Prometheus base URL")
    i.add_argument("--store", default=default_store_url(), help="SQLAlchemy URL of the SRE store")
    i.set_defaults(func=cmd_ingest)

    # `rules` hands its arguments to the generator (python -m gamesre.slo.rules); listed here for --help
    sub.add_parser("rules", help="generate or check the Prometheus rules (python -m gamesre rules --help)",
                   add_help=False)
    sub.add_parser("observability", add_help=False,
                   help="generate or check the scrape configuration, alert rules, Alertmanager configuration and "
                        "Grafana dashboards (python -m gamesre observability --help)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from gamesre.core.config import SpecError
    from gamesre.integrations.prometheus import PrometheusError
    from gamesre.integrations.store import StoreError
    from gamesre.slo.ingest import IngestError

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["rules"]:
        from gamesre.slo import rules

        return int(rules.main(argv[1:]) or 0)
    if argv[:1] == ["observability"]:
        from gamesre.observability import generate

        return generate.main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (SpecError, StoreError, PrometheusError, IngestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
