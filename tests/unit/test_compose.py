"""docker-compose.yaml: validated by the real tool (`docker-compose config`, no engine needed) and checked as data
against the repository: the files it mounts, the variables of .env.example, the Celery settings, the pinned
images, and the hostnames in the generated Prometheus, Alertmanager, Grafana and HAProxy configurations."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from demo import compose

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"

# The services issue 8 names, and what each long-running one is.
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker")
SERVICES = ("airflow-init", *AIRFLOW_SERVICES, "postgres", "redis", "prometheus", "alertmanager", "grafana",
            "haproxy", "node-exporter", "fleet", "loadgen", "slack-sink")
VARIABLE_USE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)((?::?[-?+])[^}]*)?\}")  # $${X}: the container's


def raw() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


def compose_text() -> str:
    """The file without its comment lines (which may quote ${VAR:?...} to explain it)."""
    return "\n".join(line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#"))


def example_variables() -> dict[str, str]:
    lines = [line for line in ENV_EXAMPLE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def filled_values() -> dict[str, str]:
    """Every .env.example variable with a value of the right kind (a number for the uid, a folder for secrets)."""
    special = {"AIRFLOW_UID": "50000", "GAMESRE_SECRETS_DIR": "./secrets"}
    return {name: special.get(name, f"test-{name.lower().replace('_', '-')}") for name in example_variables()}


def docker_compose(env_values: dict[str, str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed: run `make debs` (Debian package docker-compose)")
    env_file = tmp_path / f"test-{len(env_values)}-{abs(hash(tuple(env_values)))}.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env_values.items()))
    # A clean environment: only the env file may supply the variables (1.29 reads --env-file, like `.env`).
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    return subprocess.run([binary, "--project-directory", str(REPO), "-f", str(COMPOSE_FILE), "--env-file",
                           str(env_file), "config", *args], capture_output=True, text=True, env=clean,
                          timeout=60, check=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The file as docker-compose resolves it with .env.example's variables set to test values."""
    result = docker_compose(filled_values(), tmp_path_factory.mktemp("compose"))
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout))


# --- the real tool --------------------------------------------------------------------------------------------

def test_docker_compose_config_accepts_the_file_with_every_variable_of_env_example(rendered) -> None:
    assert set(SERVICES) <= set(rendered["services"])


def test_docker_compose_config_fails_naming_each_missing_variable(tmp_path: Path) -> None:
    values = filled_values()

    def without(name: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        return name, docker_compose({k: v for k, v in values.items() if k != name}, tmp_path, "-q")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(pool.map(without, values))
    for name, result in results.items():
        assert result.returncode != 0, f"docker-compose config passed without {name}"
        assert f"set {name} in .env" in result.stderr, (name, result.stderr)


# --- the services -------------------------------------------------------------------------------------------

def test_every_service_of_the_issue_exists_and_the_long_running_ones_have_health_checks() -> None:
    services = raw()["services"]
    assert set(SERVICES) == set(services), set(SERVICES) ^ set(services)
    for name, service in services.items():
        if name == "airflow-init":
            assert service["restart"] == "no" and "healthcheck" not in service
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in {"CMD", "CMD-SHELL"}, f"{name} has no health check"


def test_dependencies_wait_for_health_and_for_airflow_init(rendered) -> None:
    services = rendered["services"]
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            wanted = "service_completed_successfully" if dependency == "airflow-init" else "service_healthy"
            assert how == {"condition": wanted}, (name, dependency, how)
    for name in AIRFLOW_SERVICES:
        assert {"postgres", "redis", "airflow-init"} <= set(services[name]["depends_on"]), name
    assert set(services["airflow-worker"]["depends_on"]) >= {"airflow-apiserver"}  # the execution API
    assert services["haproxy"]["depends_on"] == {"fleet": {"condition": "service_healthy"}}
    assert "haproxy" in services["loadgen"]["depends_on"]


def test_every_mounted_host_path_exists_in_the_repository() -> None:
    mounts = [(name, v) for name, s in raw()["services"].items() for v in s.get("volumes", [])]
    mounts += [("x-airflow-common", v) for v in raw()["x-airflow-common"]["volumes"]]
    named = set(raw()["volumes"])
    checked = 0
    for name, volume in mounts:
        source = volume.split(":")[0]
        if source in named:
            continue
        if source.startswith("${"):
            assert source == "${GAMESRE_SECRETS_DIR", (name, volume)  # the one mount outside git: the secrets
            continue
        assert source.startswith("./"), f"{name}: {volume} is neither a repository path nor a named volume"
        assert (REPO / source).exists(), f"{name} mounts {source}, which is not in the repository"
        checked += 1
    assert checked >= 10


def test_the_sre_store_database_is_created_by_postgres_itself(rendered) -> None:
    postgres = raw()["services"]["postgres"]
    mount = next(v for v in postgres["volumes"] if "docker-entrypoint-initdb.d" in v)
    sql = "".join(p.read_text() for p in sorted((REPO / mount.split(":")[0]).glob("*.sql")))
    assert "CREATE DATABASE sre OWNER airflow" in sql
    store = json.loads(rendered["services"]["airflow-worker"]["environment"]["AIRFLOW_CONN_SRE_STORE"])
    assert urlsplit(store["extra"]["sqlalchemy_url"]).path == "/sre"


# --- secrets and .env ---------------------------------------------------------------------------------------

def test_every_variable_is_in_env_example_and_every_example_variable_is_used() -> None:
    used = {m.group(1) for m in VARIABLE_USE.finditer(compose_text())}
    assert used == set(example_variables()), used ^ set(example_variables())


def test_no_variable_has_a_default_and_env_example_holds_no_value() -> None:
    for match in VARIABLE_USE.finditer(compose_text()):
        name, modifier = match.group(1), match.group(2) or ""
        assert modifier.startswith(":?"), f"${{{name}{modifier}}}: every variable must be required, not defaulted"
        assert modifier == f":?set {name} in .env" or modifier.startswith(f":?set {name} in .env "), modifier
    assert all(value == "" for value in example_variables().values()), "values belong in .env, not .env.example"
    for name in example_variables():  # each says how to make a value
        before = ENV_EXAMPLE.read_text().split(f"\n{name}=")[0].rstrip().splitlines()
        assert before and before[-1].startswith("#"), f"{name} has no explanation above it"
    assert {".env", "secrets/"} <= set((REPO / ".gitignore").read_text().splitlines())
    assert {".env", "secrets"} <= set((REPO / ".dockerignore").read_text().splitlines())


def test_no_password_or_key_is_written_in_the_file() -> None:
    services = raw()["services"]
    secret_names = re.compile(r"(PASSWORD|SECRET|_KEY|_AUTH)$")
    envs = [("x-airflow-env", raw()["x-airflow-env"])] + [(n, s.get("environment", {})) for n, s in services.items()]
    for name, env in envs:
        for key, value in env.items():
            if secret_names.search(key):
                assert VARIABLE_USE.fullmatch(str(value)), f"{name}: {key} is not taken from .env"
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND",
                "AIRFLOW__CELERY__BROKER_URL"):
        userinfo = re.search(r"://([^@/]*)@", raw()["x-airflow-env"][key])
        assert userinfo, key
        password = userinfo.group(1).split(":", 1)[1]
        assert VARIABLE_USE.fullmatch(password), key


def test_alertmanager_reads_its_secrets_from_the_mounted_folder_documented_in_env_example() -> None:
    config_path = REPO / "include" / "alertmanager" / "alertmanager.yml"
    if not config_path.exists():
        pytest.skip("include/alertmanager/alertmanager.yml is not generated yet")
    text = config_path.read_text()
    secret_files = set(re.findall(r"_file: (/\S+)", text))
    assert secret_files, "alertmanager.yml reads no secret from a file"
    volumes = raw()["services"]["alertmanager"]["volumes"]
    secrets_target = next(v.split("}:")[1].split(":")[0] for v in volumes if v.startswith("${GAMESRE_SECRETS_DIR"))
    for path in secret_files:
        assert Path(path).parent == Path(secrets_target), path
        assert Path(path).name in ENV_EXAMPLE.read_text(), f"{Path(path).name} is not explained in .env.example"
    assert not re.search(r"hooks\.slack\.com/services/|routing_key: ", text), "a secret written into alertmanager.yml"


# --- Airflow ------------------------------------------------------------------------------------------------

def test_airflow_runs_on_celery_with_redis_and_postgres(rendered) -> None:
    services = rendered["services"]
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
        assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379), name
        backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"])
        assert (backend.scheme, backend.hostname, backend.path) == ("db+postgresql", "postgres", "/airflow"), name
        metadata = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert (metadata.hostname, metadata.path) == ("postgres", "/airflow"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", name
    worker = services["airflow-worker"]
    assert worker["command"] in ("celery worker", ["celery", "worker"])
    # scalable with --scale: no fixed container name, no published port
    assert "container_name" not in worker and "ports" not in worker
    assert "celery_executor.app inspect ping" in " ".join(worker["healthcheck"]["test"])


def test_the_images_match_the_pinned_airflow_and_the_tools_that_check_their_configs() -> None:
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert pinned
    python = re.search(r'requires-python = ">=(\d+\.\d+)', (REPO / "pyproject.toml").read_text())
    assert python
    assert f"FROM apache/airflow:{pinned.group(1)}-python{python.group(1)}" in (REPO / "Dockerfile").read_text()
    services = raw()["services"]
    for name in (*AIRFLOW_SERVICES, "airflow-init", "fleet", "loadgen", "slack-sink"):
        assert services[name]["image"] == f"gamesre-airflow:{pinned.group(1)}" and services[name]["build"] == ".", name
    # The monitoring images are the versions of the Debian tools that validate their configurations in CI.
    for service, binary in (("prometheus", "prometheus"), ("alertmanager", "prometheus-alertmanager"),
                            ("node-exporter", "prometheus-node-exporter")):
        if shutil.which(binary) is None:
            continue
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        version = re.search(r"version (\d+\.\d+\.\d+)", out.stdout + out.stderr)
        assert version and services[service]["image"].endswith(f":v{version.group(1)}"), (service, version)
    assert services["haproxy"]["image"] == "haproxy:2.6"


def test_connections_are_the_demo_connections_with_container_hostnames(rendered) -> None:
    from demo.airflow_env import Endpoints, connections

    env = rendered["services"]["airflow-worker"]["environment"]
    store_url = json.loads(env["AIRFLOW_CONN_SRE_STORE"])["extra"]["sqlalchemy_url"]
    expected = connections(Endpoints(prometheus_port=9090, alertmanager_port=9093, slack_sink_port=8090,
                                     sre_store_url=store_url, haproxy_runtime_port=compose.HAPROXY_ADMIN_PORT))
    hosts = {9090: "prometheus", 9093: "alertmanager", 8090: "slack-sink", compose.HAPROXY_ADMIN_PORT: "haproxy"}
    for key, value in expected.items():
        text = value
        for port, host in hosts.items():
            text = text.replace(f'"host": "127.0.0.1", "port": {port}', f'"host": "{host}", "port": {port}')
            text = text.replace(f"http://127.0.0.1:{port}", f"http://{host}:{port}")
        assert "127.0.0.1" not in text, key
        assert json.loads(env[key]) == json.loads(text), key
    assert {k for k in env if k.startswith("AIRFLOW_CONN_")} == set(expected)
    assert env["GAMESRE_DEMO_FLEET"].startswith("/opt/gamesre/state/")
    # the fleet file's folder holds the backends' state: a named volume shared by every Airflow container
    for name in AIRFLOW_SERVICES:
        assert "gamesre-state:/opt/gamesre/state:rw" in rendered["services"][name]["volumes"], name


def test_airflow_init_migrates_creates_the_pools_and_writes_the_files(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    init = raw()["services"]["airflow-init"]
    script = REPO / "include" / "compose" / "airflow-init.sh"
    assert "entrypoint" not in init  # the image's: it waits for the database and sets up the user first
    assert init["command"] == ["bash", f"/opt/gamesre/{script.relative_to(REPO)}"]
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    text = script.read_text()
    for step in ("airflow db migrate", "airflow pools import", "demo.compose pools-file", "demo.compose fleet-file",
                 "demo.compose auth-file"):
        assert step in text, step
    assert init["environment"]["AIRFLOW_ADMIN_PASSWORD"].startswith("${AIRFLOW_ADMIN_PASSWORD:?")
    others = [n for n, s in raw()["services"].items() if n != "airflow-init"]
    assert not any("AIRFLOW_ADMIN_PASSWORD" in str(raw()["services"][n].get("environment", {})) for n in others)

    assert compose.main(["pools-file", str(tmp_path / "pools.json")]) == 0
    policy = yaml.safe_load((REPO / "include" / "config" / "chaos" / "policy.yaml").read_text())["policy"]
    pools = json.loads((tmp_path / "pools.json").read_text())
    assert pools == {policy["pool"]: {"slots": 1, "include_deferred": True,
                                      "description": pools[policy["pool"]]["description"]}}
    monkeypatch.delenv("AIRFLOW_ADMIN_PASSWORD", raising=False)
    assert compose.main(["auth-file", str(tmp_path / "auth.json")]) == 2  # no password: a clear refusal
    assert not (tmp_path / "auth.json").exists()


def test_the_fleet_file_is_the_demo_fleet_description_with_container_hostnames() -> None:
    from demo.run import Ports, fleet_description

    local = fleet_description(Ports({"fleet_base": compose.FLEET_BASE_PORT, "haproxy_players": 1,
                                     "haproxy_stats": 2, "haproxy_admin": 3}))
    ours = compose.fleet_description()
    assert ours["instances"].keys() == local["instances"].keys()  # type: ignore[attr-defined]
    for name, instance in ours["instances"].items():  # type: ignore[attr-defined]
        expected = dict(local["instances"][name])  # type: ignore[index]
        expected["url"] = f"http://fleet:{expected['port']}"
        assert instance == expected, name
    assert ours["haproxy"] == {"players": "http://haproxy:8000", "stats": "http://haproxy:8404", "admin_port": 8405}


# --- the generated configurations the stack mounts ----------------------------------------------------------

def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def test_the_prometheus_config_scrapes_the_compose_services_and_finds_its_rules() -> None:
    config_path = REPO / "include" / "prometheus" / "prometheus.yml"
    if not config_path.exists():
        pytest.skip("include/prometheus/prometheus.yml is not generated yet")
    config = yaml.safe_load(config_path.read_text())
    services = raw()["services"]
    prometheus = services["prometheus"]
    assert "./include/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    listening = {**{"fleet": set(compose.fleet_ports().values()) | {compose.KUBE_METRICS_PORT}},
                 "haproxy": {compose.HAPROXY_STATS_PORT}, "node-exporter": {9100}, "alertmanager": {9093},
                 "localhost": {9090}}
    targets = [(job["job_name"], t) for job in config["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]]
    assert targets
    for job, target in targets:
        host, port = _host_port(target)
        assert host in services or host == "localhost", f"job {job} scrapes {target}: no such compose service"
        assert port in listening.get(host, set()), f"job {job} scrapes {target}: nothing listens there"
    fleet_targets = {t for job, t in targets if job in {"game-server", "matchmaking"}}
    assert fleet_targets == {f"fleet:{p}" for p in compose.fleet_ports().values()}
    for am in config["alerting"]["alertmanagers"]:
        for target in am["static_configs"][0]["targets"]:
            assert _host_port(target) == ("alertmanager", 9093)
    rule_names = [p.name for p in (REPO / "include" / "prometheus").iterdir()]
    for pattern in config["rule_files"]:
        assert not pattern.startswith("/"), pattern  # relative to the config file: the mounted folder
        assert any(fnmatch(name, pattern) for name in rule_names), f"rule_files {pattern} matches no file"


def test_grafana_is_provisioned_from_the_mounted_folders_with_compose_hostnames() -> None:
    provisioning = REPO / "include" / "grafana" / "provisioning"
    if not provisioning.exists():
        pytest.skip("include/grafana/provisioning is not generated yet")
    volumes = raw()["services"]["grafana"]["volumes"]
    assert "./include/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    assert "./include/grafana/dashboards:/var/lib/grafana/dashboards:ro" in volumes
    for path in (provisioning / "datasources").glob("*.y*ml"):
        for source in yaml.safe_load(path.read_text())["datasources"]:
            assert urlsplit(source["url"]).hostname in raw()["services"], (path.name, source["url"])
    for path in (provisioning / "dashboards").glob("*.y*ml"):
        for provider in yaml.safe_load(path.read_text())["providers"]:
            assert provider["options"]["path"] == "/var/lib/grafana/dashboards", path.name
    assert list((REPO / "include" / "grafana" / "dashboards").glob("*.json"))
    env = raw()["services"]["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")


def test_the_haproxy_config_is_generated_for_the_compose_hostnames_and_valid() -> None:
    path = REPO / "include" / "haproxy" / "haproxy.cfg"
    assert path.read_text() == compose.render_haproxy_config(), (
        "include/haproxy/haproxy.cfg is out of date: run `PYTHONPATH=plugins:. .venv/bin/python -m demo.compose "
        "haproxy-config`")
    text = path.read_text()
    assert text.startswith("# Generated by `python -m demo.compose haproxy-config`")
    servers = re.findall(r"^\s+server (\S+) (\S+) ", text, re.M)
    assert {name: address for name, address in servers} == {n: f"fleet:{p}" for n, p in compose.fleet_ports().items()}
    assert "stats socket ipv4@0.0.0.0:8405 level admin" in text
    published = " ".join(raw()["services"]["haproxy"]["ports"])
    assert "8405" not in published, "the runtime API (level admin) must stay on the compose network"
    if shutil.which("haproxy"):
        from demo.haproxy_config import check

        check(path)


def test_node_exporter_runs_the_collectors_of_the_demo() -> None:
    from demo.infra import NODE_COLLECTORS

    command = raw()["services"]["node-exporter"]["command"]
    assert command == ["--collector.disable-defaults", *(f"--collector.{c}" for c in NODE_COLLECTORS)]


def test_the_demo_programs_run_the_commands_that_exist() -> None:
    services = raw()["services"]
    assert services["fleet"]["command"] == ["-m", "demo.compose", "fleet"]
    for name, script in (("loadgen", "demo/loadgen.py"), ("slack-sink", "demo/slack_sink.py")):
        assert services[name]["command"][0] == script and (REPO / script).exists(), name
    assert services["loadgen"]["command"][1:3] == ["--base-url", "http://haproxy:8000"]
    assert services["fleet"]["entrypoint"] == ["/usr/bin/dumb-init", "--", "python"]
