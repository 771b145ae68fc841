"""docker-compose.yaml: no engine runs here, so its structure is checked as data (the full stack is issue 8)."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def load() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def test_airflow_components_and_database_are_defined_with_health_checks() -> None:
    services = load()["services"]
    for name in ("postgres", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert name in services, name
        assert "healthcheck" in services[name], f"{name} has no health check"
    assert services["airflow-init"]["restart"] == "no"


def test_image_matches_the_pinned_airflow() -> None:
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert pinned
    assert f"apache/airflow:{pinned.group(1)}-python3.11" in (REPO / "Dockerfile").read_text()


def test_no_secret_has_a_default_in_git() -> None:
    text = (REPO / "docker-compose.yaml").read_text()
    for var in ("POSTGRES_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"):
        uses = re.findall(r"\$\{" + var + r"(:[?-][^}]*)?\}", text)
        assert uses, var
        assert all(u == "" or u.startswith(":?") for u in uses), f"{var} has a default value"
    example = dict(line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert all(v == "" for k, v in example.items() if "PASSWORD" in k or "SECRET" in k or "KEY" in k)
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()


def test_the_sre_store_database_is_created_by_postgres_itself() -> None:
    postgres = load()["services"]["postgres"]
    mount = next(v for v in postgres["volumes"] if "docker-entrypoint-initdb.d" in v)
    init_dir = REPO / mount.split(":")[0]
    sql = "".join(p.read_text() for p in sorted(init_dir.glob("*.sql")))
    assert "CREATE DATABASE sre" in sql
    assert "/sre" in load()["x-airflow-common"]["environment"]["AIRFLOW_CONN_SRE_STORE"]
