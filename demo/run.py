"""`make demo`: the whole demo stack in the foreground until Ctrl-C, which stops every process it started.

The stack: the demo game fleet behind HAProxy, the player-load generator, a Prometheus scraping every 5 s with
35 days of backfilled history, an Alertmanager, the local Slack sink, and Airflow 3 `standalone` with this
repository's DAGs and connections pointing at all of it. Ports are fixed so URLs stay the same between runs;
each can be moved with an environment variable (see PORTS below, or `python -m demo.run --help`).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from demo.airflow_env import (
    AIRFLOW_USER,
    REVIEWERS,
    Endpoints,
    airflow_env,
    ensure_password,
    ensure_passwords,
    ensure_pools,
)
from demo.infra import start_kube_metrics, start_node_exporter
from demo.procs import (
    ManagedProcess,
    ProcessGroup,
    StackError,
    ensure_port_free,
    http_ok,
    require_binary,
)
from demo.services import (
    ScrapeTarget,
    render_alertmanager_config,
    render_prometheus_config,
    start_alertmanager,
    start_fleet,
    start_haproxy,
    start_loadgen,
    start_prometheus,
    start_slack_sink,
    write_alertmanager_secrets,
)

REPO = Path(__file__).resolve().parents[1]
RUN_DIR = REPO / ".demo"
AIRFLOW_HOME = REPO / ".airflow"
HISTORY_SEED = 20261126

# (what, environment variable, default port)
PORTS = {
    "airflow": ("GAMESRE_AIRFLOW_PORT", 8080),
    "prometheus": ("GAMESRE_PROMETHEUS_PORT", 19090),
    "alertmanager": ("GAMESRE_ALERTMANAGER_PORT", 19093),
    "slack_sink": ("GAMESRE_SLACK_SINK_PORT", 18090),
    "haproxy_players": ("GAMESRE_HAPROXY_PORT", 18000),
    "haproxy_stats": ("GAMESRE_HAPROXY_STATS_PORT", 18404),
    "haproxy_admin": ("GAMESRE_HAPROXY_ADMIN_PORT", 18405),
    "fleet_base": ("GAMESRE_FLEET_BASE_PORT", 18101),
    "node_exporter": ("GAMESRE_NODE_EXPORTER_PORT", 19100),
    "kube_metrics": ("GAMESRE_KUBE_METRICS_PORT", 19105),
}


@dataclass(frozen=True)
class Ports:
    values: dict[str, int]

    def __getitem__(self, key: str) -> int:
        return self.values[key]


def resolve_ports(n_instances: int) -> Ports:
    values = {}
    for key, (env, default) in PORTS.items():
        raw = os.environ.get(env, str(default))
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            raise StackError(f"{env}={raw!r} is not a port number")
        values[key] = int(raw)
    for key, (env, _) in PORTS.items():
        if key == "fleet_base":
            for i in range(n_instances):
                ensure_port_free(values[key] + i, f"fleet instance {i + 1}", env)
        else:
            ensure_port_free(values[key], key.replace("_", " "), env)
    return Ports(values)


def validate_configs() -> None:
    """Every declarative file loads and the generated files are current; else one line naming the problem."""
    from gamesre.calendar import load_calendar
    from gamesre.core.config import SpecError
    from gamesre.core.contract import ContractError, load_contract
    from gamesre.core.services import load_services
    from gamesre.observability.generate import generated_files, stale
    from gamesre.slo.rules import generate_from_files
    from gamesre.slo.spec import load_policies, load_slos

    try:
        load_contract()
        load_slos()
        load_policies()
        load_calendar(services=load_services())
        rules = REPO / "include" / "prometheus" / "slo_rules.yml"
        if generate_from_files() != rules.read_text():
            raise StackError(f"{rules} is out of date with include/config/slos.yaml: run "
                             "`PYTHONPATH=plugins .venv/bin/python -m gamesre rules` and try again")
        outdated = stale(generated_files())
        if outdated:
            raise StackError(f"generated observability files are not current ({'; '.join(outdated)}): run "
                             "`PYTHONPATH=plugins .venv/bin/python -m gamesre observability` and try again")
    except (SpecError, ContractError, ValueError) as exc:
        problems = str(exc).strip().splitlines()
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise StackError(f"invalid configuration: {problems[0]}{more}") from exc


def announce(ports: Ports) -> None:
    """A first message in the Slack sink, so its page shows what the stack sends from the start."""
    text = (f":video_game: The gamesre demo stack is up: Airflow http://127.0.0.1:{ports['airflow']}, "
            f"Prometheus http://127.0.0.1:{ports['prometheus']}. Alerts, maintenance notices and reports appear here.")
    req = urllib.request.Request(f"http://127.0.0.1:{ports['slack_sink']}/services/T0DEMO/B0DEMO/demo",
                                 data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5):  # noqa: S310 (loopback)
        pass


def log(message: str) -> None:
    print(f"[demo {datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def fleet_ports(ports: Ports) -> dict[str, int]:
    from demo.topology import DEFAULT_TOPOLOGY

    return {instance.name: ports["fleet_base"] + i for i, instance in enumerate(DEFAULT_TOPOLOGY)}


def fleet_description(ports: Ports) -> dict[str, object]:
    """What Airflow's local backends need to reach the fleet (written to .demo/fleet.json)."""
    from demo.topology import DEFAULT_TOPOLOGY

    instances = {}
    for instance in DEFAULT_TOPOLOGY:
        port = fleet_ports(ports)[instance.name]
        instances[instance.name] = {"service": instance.service, "track": instance.track, "version": instance.version,
                                    "job": instance.job(), "port": port, "url": f"http://127.0.0.1:{port}"}
    return {
        "instances": instances,
        "haproxy": {"players": f"http://127.0.0.1:{ports['haproxy_players']}",
                    "stats": f"http://127.0.0.1:{ports['haproxy_stats']}", "admin_port": ports["haproxy_admin"]},
    }


def backfill_history(data_dir: Path, days: int) -> None:
    from demo.history import BackfillError, backfill

    end = datetime.now(UTC).replace(second=0, microsecond=0)
    try:
        result = backfill(data_dir, end=end, days=days, seed=HISTORY_SEED)
    except BackfillError as exc:
        raise StackError(str(exc)) from exc
    log(f"history: {result.blocks} TSDB blocks in {result.seconds:.0f} s")


def rule_files() -> list[Path]:
    return sorted((REPO / "include" / "prometheus").glob("*_rules.yml"))


def start_airflow(group: ProcessGroup, ports: Ports, fleet_file: Path,
                  intake_token_file: Path) -> tuple[ManagedProcess, str]:
    ep = Endpoints(
        prometheus_port=ports["prometheus"], alertmanager_port=ports["alertmanager"],
        slack_sink_port=ports["slack_sink"], sre_store_url=f"sqlite:///{AIRFLOW_HOME / 'sre.db'}",
        haproxy_runtime_port=ports["haproxy_admin"], fleet_file=fleet_file,
        incident_intake_token_file=intake_token_file,
    )
    password = ensure_password(AIRFLOW_HOME)
    env = airflow_env(AIRFLOW_HOME, ep, ports["airflow"])
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    airflow = shutil.which("airflow", path=env["PATH"])
    if airflow is None:
        raise StackError("the `airflow` command is missing from the virtualenv: run `make venv`")
    process = group.add(ManagedProcess("airflow", [airflow, "standalone"], RUN_DIR / "logs" / "airflow.log",
                                       env=env).start())
    return process, password


def airflow_token(port: int, password: str) -> str:
    body = json.dumps({"username": AIRFLOW_USER, "password": password}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/auth/token", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback)
        return str(json.loads(resp.read())["access_token"])


def airflow_get(port: int, token: str, path: str) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/{path}",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback)
        return dict(json.loads(resp.read()))


def wait_for_dags(port: int, password: str, timeout: float = 180) -> tuple[list[str], list[dict]]:
    """Wait until the dag-processor has parsed every DAG file; returns (dag ids, import errors)."""
    expected = {p.name for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_")}
    deadline = time.monotonic() + timeout
    dags: list[str] = []
    errors: list[dict] = []
    while time.monotonic() < deadline:
        try:
            token = airflow_token(port, password)
            listed = airflow_get(port, token, "dags?limit=100")["dags"]
            errors = airflow_get(port, token, "importErrors?limit=100")["import_errors"]
            dags = sorted(d["dag_id"] for d in listed)
            seen = {Path(d["fileloc"]).name for d in listed} | {Path(e["filename"]).name for e in errors}
            if expected <= seen:
                return dags, errors
        except OSError:
            pass
        time.sleep(2)
    return dags, errors


def banner(ports: Ports, password: str, dags: list[str]) -> str:
    af = f"http://127.0.0.1:{ports['airflow']}"
    passwords = ensure_passwords(AIRFLOW_HOME)
    reviewers = ", ".join(f"{user} / {passwords[user]}" for user in REVIEWERS)
    example_dag = "slo_ingest" if "slo_ingest" in dags else (dags[0] if dags else "<dag_id>")
    return f"""
================================ the demo stack is up ================================
  Airflow UI        {af}          login: {AIRFLOW_USER} / {password}
                    deploy reviewers (deploy.yaml approvals): {reviewers}
  Prometheus        http://127.0.0.1:{ports['prometheus']}   (35 days of history, scraping every 5 s)
  Alertmanager      http://127.0.0.1:{ports['alertmanager']}
  Slack sink        http://127.0.0.1:{ports['slack_sink']}   (every Slack message the stack sends; PagerDuty
                    events at /v2/events)
  Players (HAProxy) http://127.0.0.1:{ports['haproxy_players']}   stats: http://127.0.0.1:{ports['haproxy_stats']}/stats
  Infrastructure    node-exporter http://127.0.0.1:{ports['node_exporter']}/metrics, Kubernetes stand-in
                    http://127.0.0.1:{ports['kube_metrics']}/metrics (kube-state) and /metrics/cadvisor
  DAGs              {', '.join(dags) or '(none yet)'}
  Logs              {RUN_DIR / 'logs'}

  Trigger a DAG over the REST API:
    TOKEN=$(curl -s -X POST {af}/auth/token -H 'Content-Type: application/json' \\
      -d '{{"username": "{AIRFLOW_USER}", "password": "{password}"}}' \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    curl -s -X PATCH {af}/api/v2/dags/{example_dag} -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' -d '{{"is_paused": false}}'
    curl -s -X POST {af}/api/v2/dags/{example_dag}/dagRuns -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' -d '{{"logical_date": null, "conf": {{}}}}'

  Ctrl-C stops everything.
======================================================================================
"""


def run(args: argparse.Namespace) -> int:
    from demo.topology import DEFAULT_TOPOLOGY

    for binary in ("prometheus", "promtool", "prometheus-alertmanager", "amtool", "haproxy",
                   "prometheus-node-exporter"):
        require_binary(binary)
    validate_configs()
    ports = resolve_ports(len(DEFAULT_TOPOLOGY))
    started = time.monotonic()
    if (RUN_DIR / "prometheus").exists():
        shutil.rmtree(RUN_DIR / "prometheus")  # history is regenerated to end now
    (RUN_DIR / "logs").mkdir(parents=True, exist_ok=True)

    group = ProcessGroup()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with group.running():
        log("starting the Slack sink, the game fleet and HAProxy")
        logs = RUN_DIR / "logs"
        group.add(start_slack_sink(RUN_DIR / "slack-sink", ports["slack_sink"]))
        fleet_processes = dict(zip(fleet_ports(ports), start_fleet(logs, fleet_ports(ports)), strict=True))
        for process in fleet_processes.values():
            group.add(process)
        log("starting node-exporter and the Kubernetes stand-in (cAdvisor, kube-state-metrics)")
        group.add(start_node_exporter(RUN_DIR / "node-exporter", ports["node_exporter"]))
        group.add(start_kube_metrics(RUN_DIR / "kube-metrics", ports["kube_metrics"], fleet_processes,
                                     fleet_ports(ports)))
        group.add(start_haproxy(RUN_DIR / "haproxy", fleet_ports(ports), player_port=ports["haproxy_players"],
                                stats_port=ports["haproxy_stats"], admin_port=ports["haproxy_admin"]))
        fleet = fleet_description(ports)
        fleet_file = RUN_DIR / "fleet.json"
        fleet_file.write_text(json.dumps(fleet, indent=2))
        airflow = None
        password = ""
        # Alertmanager's secrets in files as in production; the incident intake's token is shared with Airflow
        webhook = f"http://127.0.0.1:{ports['slack_sink']}/services/T0DEMO/B0DEMO/alerts"
        secrets_dir = RUN_DIR / "alertmanager" / "secrets"
        secret_files = write_alertmanager_secrets(secrets_dir, webhook)
        if not args.no_airflow:
            log("starting Airflow standalone (first start migrates its database)")
            airflow, password = start_airflow(group, ports, fleet_file, secret_files["incident-intake-token"])
        data_dir = RUN_DIR / "prometheus" / "data"
        if args.history_days > 0:
            log(f"backfilling {args.history_days} days of history into Prometheus' storage")
            backfill_history(data_dir, args.history_days)
        log("starting Alertmanager and Prometheus")
        # the routing tree of include/alertmanager/alertmanager.yml: Slack and PagerDuty delivered to the sink, pages
        # to the incident intake on Airflow's API server too
        intake = None if args.no_airflow else f"http://127.0.0.1:{ports['airflow']}/gamesre/incidents/alertmanager"
        group.add(start_alertmanager(RUN_DIR / "alertmanager", ports["alertmanager"],
                                     render_alertmanager_config(webhook, secrets_dir=secrets_dir,
                                                                incident_intake_url=intake)))
        instances: dict[str, dict[str, object]] = fleet["instances"]  # type: ignore[assignment]
        targets = [ScrapeTarget(str(i["job"]), name, f"127.0.0.1:{i['port']}") for name, i in instances.items()]
        group.add(start_prometheus(
            RUN_DIR / "prometheus", ports["prometheus"],
            render_prometheus_config(targets, alertmanager=f"127.0.0.1:{ports['alertmanager']}",
                                     rule_files=rule_files(),
                                     extra_jobs={"haproxy": f"127.0.0.1:{ports['haproxy_stats']}",
                                                 "alertmanager": f"127.0.0.1:{ports['alertmanager']}",
                                                 "prometheus": f"127.0.0.1:{ports['prometheus']}",
                                                 "node": f"127.0.0.1:{ports['node_exporter']}",
                                                 "kube-state-metrics": f"127.0.0.1:{ports['kube_metrics']}",
                                                 "kubelet": f"127.0.0.1:{ports['kube_metrics']}"}),
            data_dir=data_dir, timeout=120))
        log("starting the player-load generator")
        group.add(start_loadgen(logs, f"http://127.0.0.1:{ports['haproxy_players']}"))
        dags: list[str] = []
        if airflow is not None:
            airflow.wait_ready(lambda: http_ok(f"http://127.0.0.1:{ports['airflow']}/api/v2/monitor/health"),
                               timeout=300)
            ensure_pools(f"http://127.0.0.1:{ports['airflow']}", airflow_token(ports["airflow"], password))
            log("Airflow answers (pools created); waiting for the dag-processor to parse the DAGs")
            dags, errors = wait_for_dags(ports["airflow"], password)
            for e in errors:
                log(f"IMPORT ERROR in {e['filename']}: {e['stack_trace'].strip().splitlines()[-1]}")
        announce(ports)
        print(banner(ports, password, dags), flush=True)
        log(f"up in {time.monotonic() - started:.0f} s")
        try:
            while not stop.is_set():
                dead = [p for p in group.processes if not p.running]
                if dead:
                    for p in dead:
                        log(f"{p.name} stopped unexpectedly: {p.log_tail(3)} (log: {p.log_path})")
                    return 1
                stop.wait(2)
        except KeyboardInterrupt:
            pass
        log("stopping every process of the stack")
    log("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demo.run", description=__doc__.split("\n\n")[0],
        epilog="ports (environment variable=default): "
        + ", ".join(f"{env}={port}" for env, port in PORTS.values()),
    )
    parser.add_argument("--history-days", type=int, default=35, help="days of backfilled history (0: none)")
    parser.add_argument("--no-airflow", action="store_true", help="run the stack without Airflow")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except StackError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
