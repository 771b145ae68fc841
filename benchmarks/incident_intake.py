"""Benchmark: the incident intake's latency from Alertmanager's notification and its correctness under concurrency.

Serves the intake (gamesre.airflow.incident_intake.create_app, the app the Airflow API server mounts) with uvicorn
on a free loopback port, over a fresh SRE store (PostgreSQL at 127.0.0.1:5432 when it answers, else SQLite), with
the product's include/config. The incident_response run is not created here (a recorder stands in for Airflow):
the time the run then takes to post the declaration is the scheduler's, measured end to end by
tests/e2e/test_incident_response.py.

1. latency: a real Alertmanager (the Debian package) routes each page to the intake with its bearer token;
   `--pages` pages of distinct unknown services (each opens its own incident) are posted to its API one after
   the other; measured from the post to Alertmanager to the incident in the store (polled every 5 ms): an upper
   bound of notification -> incident, since it includes Alertmanager's dispatch. Alertmanager's group_wait (30 s
   in production, 0 here) comes before the notification and is not the intake's. Then the intake's own answer
   time, notifications posted to it directly.
2. concurrency: `--groups` alert groups at once (unknown services, so no join), each notified `--repeats` times,
   from 32 connections in random order: the incidents opened must be exactly one per group, and every
   notification must be counted.

    .venv/bin/python benchmarks/incident_intake.py [--pages 20] [--groups 100] [--repeats 5]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

import requests  # noqa: E402
import uvicorn  # noqa: E402

from demo.procs import ProcessGroup, free_port  # noqa: E402
from demo.services import start_alertmanager  # noqa: E402
from gamesre.airflow.incident_intake import INTAKE_PATH, create_app, read_token  # noqa: E402
from gamesre.app.incidents import IncidentConfig  # noqa: E402
from gamesre.integrations.store import SREStore  # noqa: E402
from tests.databases import postgres_database, postgres_reachable  # noqa: E402
from tests.fakes.alertmanager_webhook import alert, body  # noqa: E402

TOKEN = "bench-" + "0" * 26


def serve(store: SREStore, token_file: Path) -> tuple[str, uvicorn.Server]:
    config = IncidentConfig()
    app = create_app(store=lambda: store, config=lambda: config, token=lambda: read_token(str(token_file)),
                     trigger=lambda incident_id: "created")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           limit_concurrency=2000))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}{INTAKE_PATH}", server


def latency(url: str, token_file: Path, store: SREStore, work: Path, pages: int) -> list[float]:
    """Seconds from posting each page to Alertmanager (group_wait 0 s) to its incident in the store."""
    port = free_port()
    config = f"""
route: {{receiver: intake, group_by: [alertname, service], group_wait: 0s, group_interval: 1m, repeat_interval: 1h}}
receivers:
  - name: intake
    webhook_configs:
      - {{url: "{url}", send_resolved: true, max_alerts: 0,
          http_config: {{authorization: {{type: Bearer, credentials_file: "{token_file}"}}}}}}
"""
    am = f"http://127.0.0.1:{port}"
    seconds = []
    group = ProcessGroup()
    with group.running():
        group.add(start_alertmanager(work / "alertmanager", port, config))
        for n in range(pages):
            page = alert("BenchPage", service=f"bench-latency-{n:03d}", slo=None)
            before = len(store.incidents())
            posted = time.monotonic()
            requests.post(f"{am}/api/v2/alerts", json=[{"labels": page["labels"],
                                                         "annotations": page["annotations"]}], timeout=10)
            while len(store.incidents()) == before:
                time.sleep(0.005)
            seconds.append(time.monotonic() - posted)
    return seconds


def handling(url: str, posts: int) -> list[float]:
    """Seconds the intake takes to answer one notification that opens an incident (the request alone)."""
    seconds = []
    for n in range(posts):
        payload = body(alert("BenchDirect", service=f"bench-direct-{n:03d}", slo=None))
        started = time.monotonic()
        requests.post(url, json=payload, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).raise_for_status()
        seconds.append(time.monotonic() - started)
    return seconds


def concurrency(url: str, store: SREStore, groups: int, repeats: int) -> tuple[float, int, int, list[int]]:
    jobs = [g for g in range(groups) for _ in range(repeats)]
    random.Random(7).shuffle(jobs)

    def notify(g: int) -> int:
        payload = body(alert("BenchFlood", service=f"bench-group-{g:03d}", slo=None))
        return requests.post(url, json=payload, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60).status_code

    before = len(store.incidents())
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(notify, jobs))
    elapsed = time.monotonic() - started
    opened = len(store.incidents()) - before
    counted = sum(r["times"] for r in store.intake_log() if r["group_key"].count("bench-group-"))
    return elapsed, opened, counted, statuses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20, help="pages timed one after the other (default 20)")
    parser.add_argument("--groups", type=int, default=100, help="alert groups notified at once (default 100)")
    parser.add_argument("--repeats", type=int, default=5, help="notifications per group (default 5)")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if postgres_reachable():
            url = stack.enter_context(postgres_database("gamesre_bench_intake"))
        else:
            url = f"sqlite:///{work / 'sre.db'}"
        store = SREStore(url)
        token_file = work / "token"
        token_file.write_text(TOKEN)
        intake, server = serve(store, token_file)
        print(f"store: {store.safe_url}")
        seconds = latency(intake, token_file, store, work, args.pages)
        print(f"page posted to Alertmanager -> incident recorded, {len(seconds)} pages: "
              f"median {statistics.median(seconds):.3f} s, max {max(seconds):.3f} s")
        direct = handling(intake, args.pages)
        print(f"the intake answering one notification that opens an incident, {len(direct)} requests: "
              f"median {statistics.median(direct):.3f} s, max {max(direct):.3f} s")
        elapsed, opened, counted, statuses = concurrency(intake, store, args.groups, args.repeats)
        total = args.groups * args.repeats
        print(f"concurrency: {total} notifications of {args.groups} groups in {elapsed:.1f} s "
              f"({total / elapsed:.0f}/s); incidents opened {opened} (want {args.groups}); counted {counted} "
              f"(want {total}); answers {sorted(set(statuses))}")
        server.should_exit = True
        store.engine.dispose()
        ok = opened == args.groups and counted == total and set(statuses) == {200}
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
