"""Where the repository's declarative files live, overridable by GAMESRE_REPO for installed copies."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(os.environ.get("GAMESRE_REPO", Path(__file__).resolve().parents[2]))
CONFIG_DIR = REPO_ROOT / "include" / "config"
PROMETHEUS_DIR = REPO_ROOT / "include" / "prometheus"
ALERTMANAGER_DIR = REPO_ROOT / "include" / "alertmanager"
HAPROXY_DIR = REPO_ROOT / "include" / "haproxy"
METRICS_CONTRACT = CONFIG_DIR / "metrics.yaml"
