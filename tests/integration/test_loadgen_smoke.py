"""Smoke traffic straight at one fleet instance: the load generator with --service, as a deploy's preview gets it.

Starts one game-server (demo/fleet.py) on a free loopback port, no HAProxy in front, and runs the command
line of demo/services.py: smoke_command against it.
"""
from __future__ import annotations

import functools
import json
import subprocess
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from demo.fleet import build_command
from demo.procs import ManagedProcess, free_port, http_ok
from demo.services import smoke_command
from demo.topology import by_name

pytestmark = pytest.mark.integration


def metric(port: int, family: str) -> float:
    """Sum of a family's counter or gauge samples on one fleet instance."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) if f.name == family.removesuffix("_total")
               for s in f.samples if s.name == family)


def test_smoke_traffic_reaches_one_game_server_with_game_requests_only(tmp_path: Path) -> None:
    port = free_port()
    fleet = ManagedProcess("gs-canary-1", build_command(by_name("gs-canary-1"), port, seed=21), tmp_path / "fleet.log")
    try:
        fleet.start().wait_ready(functools.partial(http_ok, f"http://127.0.0.1:{port}/ready"), timeout=30)
        before = metric(port, "game_action_requests_total")
        result = subprocess.run([*smoke_command(f"http://127.0.0.1:{port}", "game-server", 3, 20), "--seed", "3"],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["final"] is True
        assert 30 <= summary["sent"] <= 95  # Poisson at 20/s for 3 s: 60 expected, standard deviation 7.7
        assert summary["shed"] == 0
        assert set(summary["by_kind"]) <= {"action", "login", "logout", "save"} and "action" in summary["by_kind"]
        assert "404" not in summary["by_status"]  # nothing sent that a game-server does not serve (matchmaking)
        assert summary["ok"] >= summary["sent"] - 2
        # Every action and every login is one game_action_requests_total (login is an action value).
        grew = metric(port, "game_action_requests_total") - before
        assert grew == summary["by_kind"]["action"] + summary["by_kind"].get("login", 0)
        # Logins and logouts carry one player each: the instance's sessions stay near where they were (0).
        assert metric(port, "game_sessions_active") <= summary["by_kind"].get("login", 0)
    finally:
        fleet.stop()
