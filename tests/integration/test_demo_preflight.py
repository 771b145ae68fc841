"""`make demo` refuses a broken configuration or a busy port with one clear line, before starting anything."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from demo.procs import free_port

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def run_demo(env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_extra}
    for name in ("GAMESRE_AIRFLOW_PORT", "GAMESRE_PROMETHEUS_PORT", "GAMESRE_ALERTMANAGER_PORT",
                 "GAMESRE_SLACK_SINK_PORT", "GAMESRE_HAPROXY_PORT", "GAMESRE_HAPROXY_STATS_PORT",
                 "GAMESRE_HAPROXY_ADMIN_PORT"):
        env.setdefault(name, str(free_port()))
    env.setdefault("GAMESRE_FLEET_BASE_PORT", str(free_port()))
    return subprocess.run([sys.executable, "-m", "demo.run", "--no-airflow", "--history-days", "0"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def test_a_broken_slo_spec_is_one_line_naming_file_slo_and_field(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "include", repo / "include")
    slos = repo / "include" / "config" / "slos.yaml"
    slos.write_text(slos.read_text().replace("target: 0.999\n", "target: 1.5\n", 1))
    result = run_demo({"GAMESRE_REPO": str(repo)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("demo: invalid configuration:"), result.stderr
    assert "slos.yaml" in lines[0] and "availability" in lines[0] and "target" in lines[0]


def test_a_port_in_use_is_one_line_saying_what_to_do() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_demo({"GAMESRE_PROMETHEUS_PORT": str(port)})
    assert result.returncode == 2
    assert result.stderr.strip() == (f"demo: port {port} for prometheus is already in use: stop what holds it or "
                                     "set GAMESRE_PROMETHEUS_PORT to another port")
