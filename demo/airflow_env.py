"""The environment Airflow runs with in the demo and the end-to-end tests: folders, connections, login.

Connections come from the environment (AIRFLOW_CONN_*), never from the metadata database, so the demo and the
tests point Airflow at whatever ports their stack uses. Nothing here imports Airflow.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_USER = "admin"
# The reviewers include/config/deploy.yaml names (approvals.reviewers), as users of the demo's simple auth manager
# with the role `user` (they may answer Required actions assigned to them, trigger and read DAGs).
REVIEWERS = ("sre-lead", "security-lead", "product-owner")


@dataclass(frozen=True)
class Endpoints:
    """Where the stack's parts listen; every field is a loopback port or a path."""

    prometheus_port: int
    alertmanager_port: int
    slack_sink_port: int
    sre_store_url: str  # an SQLAlchemy URL, e.g. sqlite:////abs/path/sre.db
    haproxy_runtime_port: int | None = None
    fleet_file: Path | None = None  # JSON description of the running fleet (ports, admin URLs)
    incident_intake_token_file: Path | None = None  # the bearer token Alertmanager sends to the incident intake


def _http_conn(port: int, conn_type: str = "http", **fields: str) -> str:
    return json.dumps({"conn_type": conn_type, "host": "127.0.0.1", "port": port, "schema": "http", **fields})


def pagerduty_routing_key() -> str:
    """The Events v2 routing key Airflow pages with: the demo's made-up key of the `primary` PagerDuty service, the
    one Alertmanager's pages go to (include/config/alerting.yaml routing)."""
    from gamesre.observability.alertmanager import demo_routing_key

    return demo_routing_key("primary")


def connections(ep: Endpoints) -> dict[str, str]:
    """AIRFLOW_CONN_* variables for the stack (JSON form, as Airflow 3 reads them)."""
    sink = f"http://127.0.0.1:{ep.slack_sink_port}"
    conns = {
        "AIRFLOW_CONN_PROMETHEUS_DEFAULT": _http_conn(ep.prometheus_port),
        "AIRFLOW_CONN_ALERTMANAGER_DEFAULT": _http_conn(ep.alertmanager_port),
        # The Slack provider's webhook hook defaults to `slack_default` (its one fixed channel); the Web API hook
        # (messages and files to a channel by id) to `slack_api_default`. Both point at the local sink.
        "AIRFLOW_CONN_SLACK_DEFAULT": json.dumps(
            {"conn_type": "slackwebhook", "host": f"{sink}/services", "password": "T0DEMO/B0DEMO/sink"}
        ),
        "AIRFLOW_CONN_SLACK_API_DEFAULT": json.dumps(
            {"conn_type": "slack", "password": "xoxb-demo-token", "extra": {"base_url": f"{sink}/api/"}}
        ),
        # PagerDuty Events v2 (failure pages): the sink's stand-in at /v2/enqueue; the password is the routing key
        "AIRFLOW_CONN_PAGERDUTY_DEFAULT": _http_conn(ep.slack_sink_port, password=pagerduty_routing_key()),
        # the status page players read: the sink's Statuspage stand-in at /v1/pages/<page>/incidents
        "AIRFLOW_CONN_STATUSPAGE_DEFAULT": json.dumps({"conn_type": "http", "host": "127.0.0.1",
                                                       "port": ep.slack_sink_port, "schema": "http",
                                                       "password": "demo-statuspage-key",
                                                       "extra": {"page_id": "gamestatus"}}),
        "AIRFLOW_CONN_SRE_STORE": json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": ep.sre_store_url}}),
    }
    if ep.haproxy_runtime_port is not None:
        conns["AIRFLOW_CONN_HAPROXY_DEFAULT"] = json.dumps(
            {"conn_type": "generic", "host": "127.0.0.1", "port": ep.haproxy_runtime_port}
        )
    return conns


def airflow_pools() -> list[dict[str, object]]:
    """The pools the DAGs use (created over the REST API once Airflow answers): the one-slot chaos pool, named in
    include/config/chaos/policy.yaml, counts deferred tasks so a watched experiment keeps its slot."""
    import yaml

    config_dir = Path(os.environ.get("GAMESRE_CONFIG_DIR") or REPO_ROOT / "include" / "config")
    policy = (yaml.safe_load((config_dir / "chaos" / "policy.yaml").read_text()) or {}).get("policy") or {}
    return [{"name": str(policy.get("pool") or "chaos_gameday"), "slots": 1, "include_deferred": True,
             "description": "One chaos game-day at a time (include/config/chaos/policy.yaml)"}]


def ensure_pools(api_base_url: str, token: str) -> None:
    """Create or update airflow_pools() through Airflow's REST API (idempotent)."""
    import urllib.error
    import urllib.request

    for pool in airflow_pools():
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        body = json.dumps(pool).encode()
        url = f"{api_base_url}/api/v2/pools"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            urllib.request.urlopen(request, timeout=10).close()  # noqa: S310 (the local Airflow)
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise
            request = urllib.request.Request(f"{url}/{pool['name']}", data=body, headers=headers,  # noqa: S310
                                             method="PATCH")
            urllib.request.urlopen(request, timeout=10).close()  # noqa: S310 (the local Airflow)


def ensure_passwords(airflow_home: Path) -> dict[str, str]:
    """Every demo user's password (the admin and the reviewers), generated once per AIRFLOW_HOME and kept in the
    simple auth manager's file."""
    airflow_home.mkdir(parents=True, exist_ok=True)
    path = airflow_home / "simple_auth_manager_passwords.json.generated"
    stored = json.loads(path.read_text() or "{}") if path.exists() else {}
    wanted = {user: str(stored.get(user) or secrets.token_urlsafe(12)) for user in (AIRFLOW_USER, *REVIEWERS)}
    if wanted != stored:
        path.write_text(json.dumps(wanted))
    return wanted


def ensure_password(airflow_home: Path) -> str:
    """The admin password (see ensure_passwords)."""
    return ensure_passwords(airflow_home)[AIRFLOW_USER]


def airflow_env(
    airflow_home: Path, ep: Endpoints, api_port: int, *, base: dict[str, str] | None = None
) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(connections(ep))
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Seoul",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join([f"{AIRFLOW_USER}:admin",
                                                                  *(f"{user}:user" for user in REVIEWERS)]),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(
                airflow_home / "simple_auth_manager_passwords.json.generated"
            ),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "15",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "GAMESRE_REPO": str(REPO_ROOT),
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "plugins"), str(REPO_ROOT)]),
            # the demo's local backend pieces (fleet processes for event scaling, smoke traffic), by kind
            "GAMESRE_EXTENSIONS": "demo.backends",
            "NO_PROXY": "*",
        }
    )
    if ep.fleet_file is not None:
        env["GAMESRE_DEMO_FLEET"] = str(ep.fleet_file)
    if ep.incident_intake_token_file is not None:
        env["GAMESRE_INCIDENT_INTAKE_TOKEN_FILE"] = str(ep.incident_intake_token_file)
    return env
