"""Links to Airflow pages for reports and notifications (the API server's base_url, else localhost:8080)."""
from __future__ import annotations

from urllib.parse import quote


def run_url(dag_id: str, run_id: str) -> str:
    """The UI page of one DAG run."""
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="") or "http://localhost:8080"
    return f"{base.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id, safe='')}"
