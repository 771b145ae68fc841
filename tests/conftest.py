"""Shared fixtures: real services on free loopback ports in temp folders, always stopped afterwards."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from demo.procs import ManagedProcess, ProcessGroup, free_port
from demo.services import WebConfig, render_alertmanager_config, start_alertmanager, start_slack_sink
from tests.databases import postgres_database, postgres_reachable

# `make test` runs two pytest workers (pytest-xdist, --dist loadgroup). The end-to-end tests run as two groups, each
# on one worker, one test after the other as they would run alone (they share one Airflow per package and wait on
# real clocks): tests/e2e/deploy/ (its own Airflow on a live fleet) and the rest of tests/e2e/; the unit and
# integration tests fill in around them. Serially the two groups took 26 minutes, over the suite's half hour.
# Each worker picks ports from its own slice.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw") and _worker[2:].isdigit():
    os.environ["GAMESRE_PORT_SLICE"] = f"{_worker[2:]}/{os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1')}"


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """--dist loadgroup with the tests under tests/e2e/deploy/ in one group and the other tests under tests/e2e/ in
    another. (pytest-xdist 3.8 groups by renaming the test's `_nodeid`, which pytest 9.2 no longer reads: an
    `xdist_group` mark would be silently ignored.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class EndToEndOnOneWorker(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/e2e/deploy/"):
                return "e2e-deploy"
            return "e2e" if nodeid.startswith("tests/e2e/") else super()._split_scope(nodeid)

    return EndToEndOnOneWorker(config, log)


@pytest.fixture(scope="session")
def services() -> Iterator[ProcessGroup]:
    """Every session-wide process registers here and is stopped at the end, also after failures."""
    group = ProcessGroup()
    with group.running():
        yield group


class SlackSink:
    """demo/slack_sink.py as the tests see it: a webhook URL (it posts to the sink's default webhook channel, #sre),
    the messages each with the `channel` (id) it reached, and the PagerDuty events."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.webhook_url = f"{self.url}/services/T0TEST/B0TEST/sink"

    def messages(self, channel: str | None = None) -> list[dict]:
        """Every message, or those that reached `channel` (an id, or a webhook's channel name)."""
        import requests

        found = list(requests.get(f"{self.url}/messages", timeout=5).json())
        return [m for m in found if channel is None or m["channel"] == channel]

    def events(self) -> list[dict]:
        """The PagerDuty Events v2 events the stand-in accepted."""
        import requests

        return list(requests.get(f"{self.url}/v2/events", timeout=5).json())

    def clear(self) -> None:
        import requests

        requests.delete(f"{self.url}/messages", timeout=5).raise_for_status()


@pytest.fixture(scope="session")
def slack_sink(services: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> SlackSink:
    port = free_port()
    services.add(start_slack_sink(tmp_path_factory.mktemp("slack-sink"), port))
    return SlackSink(port)


@pytest.fixture(scope="session")
def alertmanager_url(services: ProcessGroup, slack_sink: SlackSink, tmp_path_factory: pytest.TempPathFactory) -> str:
    port = free_port()
    config = render_alertmanager_config(slack_sink.webhook_url)
    services.add(start_alertmanager(tmp_path_factory.mktemp("alertmanager"), port, config))
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own on the local PostgreSQL, created for the session and dropped after it."""
    if not postgres_reachable():
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")
    with postgres_database("gamesre_test") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An SRE store URL: a fresh SQLite file, and (where it answers) a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sre.db'}"
    base = request.getfixturevalue("postgres_url")
    import sqlalchemy as sa

    engine = sa.create_engine(base)
    with engine.begin() as conn:  # each test gets an empty schema in the session database
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return str(base)


class HistoryPrometheus:
    """A real Prometheus holding `days` of the demo's backfilled history, ending at `end` (no live scrapes)."""

    def __init__(self, url: str, end: datetime, days: int, start: Callable[[], ManagedProcess] | None = None):
        self.url = url
        self.end = end
        self.days = days
        self._start = start
        self.process = start() if start is not None else None

    @contextmanager
    def down(self) -> Iterator[None]:
        """Stop this Prometheus for the block (to see how workflows cope), then start it again on its data."""
        assert self.process is not None and self._start is not None
        self.process.stop()
        try:
            yield
        finally:
            self.process = self._start()

    def incident(self, name: str):  # -> demo.history.Incident
        from demo.history import plan_incidents

        return next(i for i in plan_incidents(self.end, self.days) if i.name == name)


HISTORY_DAYS = 8  # long enough to hold the planted outage (6 days back) and matchmaking degradation


def start_history_prometheus(services: ProcessGroup, workdir: Path, end: datetime, days: int, *,
                             web: WebConfig | None = None, ready: Callable[[str], bool] | None = None,
                             ) -> HistoryPrometheus:
    """A real Prometheus on `days` of the demo's history (seed 7) ending at `end`, registered with `services`;
    with `web`, behind TLS and basic auth (`ready` then probes /-/ready with the credentials it takes)."""
    from demo.history import backfill
    from demo.procs import http_ok
    from demo.services import render_prometheus_config, start_prometheus

    backfill(workdir / "data", end=end, days=days, seed=7)
    port = free_port()

    def start() -> ManagedProcess:
        return services.add(start_prometheus(workdir, port, render_prometheus_config([]), data_dir=workdir / "data",
                                             timeout=120, web=web, ready=ready or http_ok))

    return HistoryPrometheus(f"{web.scheme if web else 'http'}://127.0.0.1:{port}", end, days, start)


@pytest.fixture(scope="session")
def history_prometheus(services: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> HistoryPrometheus:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return start_history_prometheus(services, tmp_path_factory.mktemp("history-prometheus"), end, HISTORY_DAYS)


class LiveStack:
    """The demo fleet behind HAProxy with load, scraped every 5 s by a real Prometheus."""

    def __init__(self, fleet_ports: dict[str, int], players_url: str, admin_port: int, stats_port: int,
                 prometheus_url: str):
        self.fleet_ports = fleet_ports
        self.players_url = players_url
        self.haproxy_admin_port = admin_port
        self.haproxy_stats_port = stats_port
        self.prometheus_url = prometheus_url

    def admin_url(self, instance: str) -> str:
        return f"http://127.0.0.1:{self.fleet_ports[instance]}/admin"


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """Per module: its load generator and fleet stop as soon as the module's tests are done."""
    workdir = tmp_path_factory.mktemp("live-stack")
    services = ProcessGroup()
    with services.running():
        yield _start_live_stack(services, workdir)


def _start_live_stack(services: ProcessGroup, workdir: Path, *, peak_rps: float = 15) -> LiveStack:
    from demo.services import (
        ScrapeTarget,
        render_prometheus_config,
        start_fleet,
        start_haproxy,
        start_loadgen,
        start_prometheus,
    )
    from demo.topology import DEFAULT_TOPOLOGY

    ports = {i.name: free_port() for i in DEFAULT_TOPOLOGY}
    for process in start_fleet(workdir, ports, seed=11):
        services.add(process)
    players, stats, admin = free_port(), free_port(), free_port()
    services.add(start_haproxy(workdir / "haproxy", ports, player_port=players, stats_port=stats, admin_port=admin))
    players_url = f"http://127.0.0.1:{players}"
    # the evening peak's shape, by default at a rate the shared test machine carries easily
    services.add(start_loadgen(workdir, players_url, "--fixed-hour", "20", "--peak-rps", f"{peak_rps:g}", "--seed",
                               "5", "--duration", "1800"))
    targets = [ScrapeTarget(i.job(), i.name, f"127.0.0.1:{ports[i.name]}") for i in DEFAULT_TOPOLOGY]
    prom_port = free_port()
    services.add(start_prometheus(workdir / "prometheus", prom_port,
                                  render_prometheus_config(targets, extra_jobs={"haproxy": f"127.0.0.1:{stats}"})))
    return LiveStack(ports, players_url, admin, stats, f"http://127.0.0.1:{prom_port}")


def fleet_document(live: LiveStack) -> dict:
    """What `make demo` writes to .demo/fleet.json (demo/run.py fleet_description), for the live stack's ports."""
    from demo.topology import DEFAULT_TOPOLOGY

    instances = {i.name: {"service": i.service, "track": i.track, "version": i.version, "job": i.job(),
                          "port": live.fleet_ports[i.name], "url": f"http://127.0.0.1:{live.fleet_ports[i.name]}"}
                 for i in DEFAULT_TOPOLOGY}
    return {"instances": instances, "haproxy": {"players": live.players_url, "admin_port": live.haproxy_admin_port}}
