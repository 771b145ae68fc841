"""DAG integrity: every DAG imports, is documented and owned, retries, and parses fast without I/O."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ALLOWED_TAGS = {"slo", "error-budget", "reports", "checklist", "maintenance", "chaos", "deploy", "ingest", "gamesre",
                "incidents"}


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'never-created.db'}",
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
    }
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "dag_parse_probe.py"), str(REPO / "dags")],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_no_import_errors(parsed: dict) -> None:
    assert parsed["import_errors"] == {}


def test_the_dags_folder_defines_dags(parsed: dict) -> None:
    dag_files = sorted(p.name for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))
    defining = sorted({Path(d["fileloc"]).name for d in parsed["dags"].values()})
    assert dag_files and defining == dag_files


def test_every_dag_is_documented_owned_tagged_and_retries(parsed: dict) -> None:
    for dag_id, dag in parsed["dags"].items():
        assert dag["doc_md"], f"{dag_id}: no doc_md"
        assert dag["owners"] and "airflow" not in dag["owners"], f"{dag_id}: owners {dag['owners']}"
        assert dag["tags"] and set(dag["tags"]) <= ALLOWED_TAGS, f"{dag_id}: tags {dag['tags']}"
        assert dag["n_tasks"] > 0


def test_every_task_retries_except_where_a_retry_would_be_wrong(parsed: dict) -> None:
    for dag_id, dag in parsed["dags"].items():
        assert max(dag["retries"]) >= 1, f"{dag_id}: no task retries"


def test_every_task_of_every_dag_tells_its_owners_when_it_fails(parsed: dict) -> None:
    """default_args on_failure_callback: a TaskFailureNotifier (gamesre.airflow.failure_notifier) on every task."""
    assert len(parsed["dags"]) == 15
    for dag_id, dag in parsed["dags"].items():
        assert dag["tasks_without_failure_notifier"] == [], dag_id


def test_each_file_parses_in_under_a_second(parsed: dict) -> None:
    slow = {f: d for f, d in parsed["file_durations"].items() if d >= 1.0}
    assert not slow, f"DAG files slower than 1 s to parse: {slow}"
