"""The generated SLO rules under the real promtool: they load, and each alert fires exactly when it should.

Each scenario is a `promtool test rules` file written to a temp dir against include/prometheus/slo_rules.yml.
Expected labels and annotations are read from the generated rules, so a scenario states only when an
alert fires for which SLO. promtool's clock starts at 1970-01-01 00:00 UTC (a Thursday in a 31-day
January), so 09:00-13:00 on that clock is the 18:00-22:00 KST evening peak.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gamesre.slo import rules

pytestmark = pytest.mark.integration

PROMTOOL = shutil.which("promtool")
RULES = rules.RULES_PATH
GAME = {
    "service": "game-server",
    "version": "1.4.2",
    "track": "stable",
    "job": "game-server",
    "instance": "gs-stable-1",
}


def series(metric: str, values: str, **labels: str) -> dict[str, str]:
    merged = {**GAME, **labels}
    body = ",".join(f'{k}="{v}"' for k, v in sorted(merged.items()))
    return {"series": f"{metric}{{{body}}}", "values": values}


def requests(good_per_minute: float, bad_per_minute: float, minutes: int, start: int = 0) -> list[dict[str, str]]:
    """Game actions per minute, scraped every minute from `start` (earlier minutes have no samples)."""
    gap = f"_x{start} " if start else ""
    out = [series("game_action_requests_total", f"{gap}0+{good_per_minute}x{minutes}", action="move", code="200")]
    if bad_per_minute:
        out.append(
            series("game_action_requests_total", f"{gap}0+{bad_per_minute}x{minutes}", action="move", code="500")
        )
    return out


def expected(alertname: str, *slos: str) -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    found = []
    for slo in slos:
        rule = next(
            r for g in doc["groups"] for r in g["rules"] if r.get("alert") == alertname and r["labels"]["slo"] == slo
        )
        found.append({"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]})
    return found


def check(eval_time: str, alertname: str, *slos: str) -> dict[str, Any]:
    return {"eval_time": eval_time, "alertname": alertname, "exp_alerts": expected(alertname, *slos)}


ALL = ("availability", "latency", "error-rate", "concurrent-sessions", "matchmaking-success", "data-save-success")

# name -> (input series, alert checks[, evaluation interval])
SCENARIOS: dict[str, tuple[Any, ...]] = {
    "15x burn pages through the 14.4x tier": (
        requests(985, 15, 120),  # 1.5% errors on a 0.1% budget
        [check("10m", "SloBurnPageFast", "availability"), check("90m", "SloBurnPageFast", "availability")],
    ),
    "13x burn stays quiet on the 14.4x tier (the 6x tier pages)": (
        requests(987, 13, 180),
        [
            check("30m", "SloBurnPageFast"),
            check("120m", "SloBurnPageFast"),
            check("120m", "SloBurnPageSlow", "availability"),
        ],
    ),
    "low traffic cannot page even at 50% errors": (
        requests(0.5, 0.5, 180),  # one event a minute: 60 in an hour, under the guard of 100
        [
            check("30m", "SloBurnPageFast"),
            check("120m", "SloBurnPageFast"),  # 60 events in the last hour
            check("90m", "SloBurnPageSlow"),  # 90 events in the last 6 hours
            check("110m", "SloBurnPageSlow", "availability"),  # 110 events: enough to judge a 6-hour window
        ],
    ),
    "the same error ratio with enough traffic pages": (
        requests(2.5, 2.5, 180),  # five events a minute: 150 in the first half hour
        [check("40m", "SloBurnPageFast", "availability")],
    ),
    "13x pages only in the evening peak (09:00-13:00 UTC)": (
        requests(987, 13, 300, start=480),  # from 08:00 UTC
        [
            check("530m", "SloBurnPageFast"),  # 08:50 UTC, 17:50 KST: 13 < 14.4
            check("550m", "SloBurnPageFast", "availability"),  # 09:10 UTC, 18:10 KST: 13 >= 14.4 / 1.2
            check("770m", "SloBurnPageFast", "availability"),  # 12:50 UTC
            check("790m", "SloBurnPageFast"),  # 13:10 UTC, 22:10 KST
        ],
        "5m",  # 13 hours of promtool clock: evaluate every 5 minutes to keep the test fast
    ),
    "absent data alerts when the series vanish": (
        requests(1000, 0, 60),  # game actions stop being scraped at 60m
        [
            check("30m", "SloDataAbsent", "latency", "concurrent-sessions", "matchmaking-success", "data-save-success"),
            check("72m", "SloDataAbsent", "latency", "concurrent-sessions", "matchmaking-success", "data-save-success"),
            check("80m", "SloDataAbsent", *ALL),
        ],
    ),
    "capacity: minutes over 100,000 sessions page": (
        [
            series("game_sessions_active", "60000+0x90", instance="gs-stable-1"),
            series("game_sessions_active", "60000+0x90", instance="gs-stable-2"),
            series("game_session_admissions_total", "0+100x90", admission_result="accepted"),
        ],
        [check("45m", "SloBurnPageFast", "concurrent-sessions")],
    ),
    "capacity: 80,000 sessions and no rejections stay quiet": (
        [
            series("game_sessions_active", "40000+0x90", instance="gs-stable-1"),
            series("game_sessions_active", "40000+0x90", instance="gs-stable-2"),
            series("game_session_admissions_total", "0+100x90", admission_result="accepted"),
        ],
        [check("45m", "SloBurnPageFast"), check("45m", "SloBurnPageSlow")],
    ),
    "capacity: 1% of admissions rejected pages": (
        [
            series("game_sessions_active", "40000+0x90"),
            series("game_session_admissions_total", "0+99x90", admission_result="accepted"),
            series("game_session_admissions_total", "0+1x90", admission_result="rejected"),
        ],
        [check("45m", "SloBurnPageFast", "concurrent-sessions")],
    ),
    "error-rate: the calendar month's own length sets the factor (31 days: 14.88x)": (
        [
            series("game_action_requests_total", "0+1000x100", action="move", code="200"),
            series("game_action_errors_total", "0+14.6x100", action="move", error_type="internal"),
            series("game_action_errors_total", "0+50x100", action="move", error_type="overload"),  # not counted
        ],
        [check("45m", "SloBurnPageFast")],  # 14.6x: would page in a 30-day month, not in January
    ),
    "error-rate: 15.2x pages in January": (
        [
            series("game_action_requests_total", "0+1000x100", action="move", code="200"),
            series("game_action_errors_total", "0+15.2x100", action="move", error_type="database"),
        ],
        [check("45m", "SloBurnPageFast", "error-rate")],
    ),
}


@pytest.fixture(scope="module")
def promtool() -> str:
    if PROMTOOL is None:
        pytest.skip("promtool is not installed")
    return PROMTOOL


def test_generated_rules_are_current_and_pass_promtool_check(promtool: str) -> None:
    assert RULES.read_text() == rules.generate_from_files(), "run: PYTHONPATH=plugins python -m gamesre rules"
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_alerts_under_promtool(promtool: str, tmp_path: Path, name: str) -> None:
    input_series, checks, *rest = SCENARIOS[name]
    evaluation_interval = rest[0] if rest else "1m"
    test_file = tmp_path / "slo_rules_test.yml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(RULES)],
                "evaluation_interval": evaluation_interval,
                "tests": [{"name": name, "interval": "1m", "input_series": input_series, "alert_rule_test": checks}],
            },
            sort_keys=False,
            width=10_000,
        )
    )
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"


# --- the game, infrastructure and pipeline alerts (include/prometheus/{game,infra,escalation}_rules.yml) ----------

ALERT_RULE_FILES = sorted(str(p) for p in rules.PROMETHEUS_DIR.glob("*_rules.yml") if p.name != rules.RULES_FILE)
PROMTOOL_TESTS = sorted((rules.PROMETHEUS_DIR / "tests").glob("*_test.yml"))


@pytest.mark.parametrize("path", ALERT_RULE_FILES, ids=lambda p: Path(p).name)
def test_alert_rules_pass_promtool_check(promtool: str, path: str) -> None:
    result = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", PROMTOOL_TESTS, ids=lambda p: p.name)
def test_alert_rule_unit_tests(promtool: str, test_file: Path) -> None:
    """include/prometheus/tests/: each alert fires past its threshold and not at it; escalation; maintenance."""
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for test_file in PROMTOOL_TESTS:
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            for check in case["alert_rule_test"]:
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {r["alert"] for p in ALERT_RULE_FILES for g in yaml.safe_load(Path(p).read_text())["groups"]
              for r in g["rules"]}
    assert alerts <= fired, f"never seen firing: {sorted(alerts - fired)}"
    assert alerts - {"Watchdog"} <= quiet, f"never seen quiet: {sorted(alerts - quiet - {'Watchdog'})}"


def test_prometheus_configs_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    """The compose stack's committed configuration (with every rule file next to it) and the demo's."""
    from demo.services import ScrapeTarget, render_prometheus_config

    committed = rules.PROMETHEUS_DIR / "prometheus.yml"
    demo = tmp_path / "prometheus.yml"
    demo.write_text(render_prometheus_config(
        [ScrapeTarget("game-server", "gs-stable-1", "127.0.0.1:18101")], alertmanager="127.0.0.1:19093",
        rule_files=sorted(rules.PROMETHEUS_DIR.glob("*_rules.yml")),
        extra_jobs={"node": "127.0.0.1:19100", "kubelet": "127.0.0.1:19105/metrics/cadvisor"}))
    for config in (committed, demo):
        result = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        found = f"{len(list(rules.PROMETHEUS_DIR.glob('*_rules.yml')))} rule files found"
        assert found in result.stdout + result.stderr, result.stdout
