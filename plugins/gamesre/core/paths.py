"""Where the repository's declarative files live, overridable by GAMESRE_REPO for installed copies.

GAMESRE_CONFIG_DIR points at another copy of include/config (the end-to-end tests use one whose evening
peak and maintenance windows are away from the hour they run in).
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(os.environ.get("GAMESRE_REPO", Path(__file__).resolve().parents[3]))
CONFIG_DIR = Path(os.environ.get("GAMESRE_CONFIG_DIR") or REPO_ROOT / "include" / "config")
PROMETHEUS_DIR = REPO_ROOT / "include" / "prometheus"
ALERTMANAGER_DIR = REPO_ROOT / "include" / "alertmanager"
HAPROXY_DIR = REPO_ROOT / "include" / "haproxy"
METRICS_CONTRACT = CONFIG_DIR / "metrics.yaml"


def report_root() -> Path:
    """Where the workflows write their reports: GAMESRE_REPORT_DIR, else $AIRFLOW_HOME/reports."""
    return Path(os.environ.get("GAMESRE_REPORT_DIR") or Path(os.environ.get("AIRFLOW_HOME", ".")) / "reports")
