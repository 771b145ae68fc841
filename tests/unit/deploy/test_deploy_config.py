"""deploy.yaml: the shipped file loads, and every bad input is refused naming the file and the field."""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gamesre.core.durations import parse_seconds
from gamesre.deploy.config import DEPLOY_PATH, DeployConfigError, load_deploy_config, parse_deploy_config

SOURCE = "include/config/deploy.yaml"


def shipped() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(DEPLOY_PATH.read_text()))


def errors(raw: object) -> list[str]:
    with pytest.raises(DeployConfigError) as info:
        parse_deploy_config(raw, SOURCE)
    return str(info.value).splitlines()


def test_the_shipped_deploy_config_loads() -> None:
    config = load_deploy_config()
    assert config.stage_order == ("dev", "staging", "prod")
    assert config.stages["dev"].gates == ["lock"]
    assert config.stages["prod"].gates == ["lock", "page_alerts", "budget", "calendar", "incident"]
    assert [name for name, stage in config.stages.items() if stage.strictest] == ["prod"]
    assert config.strategies.canary.steps == [10, 25, 50, 100]
    assert config.strategies.blue_green.scale_down_delay_s == 60
    assert config.strategies.rolling.batches == [50, 100]
    assert config.peak == "stricter"
    a = config.analysis
    assert (a.interval_s, a.min_duration_s, a.max_duration_s, a.synthetic_traffic_s) == (5, 30, 240, 90)
    assert (a.min_samples, a.alpha, a.beta, a.regression_burn, a.fast_abort_burn) == (40, 0.01, 0.05, 6, 14.4)


def test_errors_of_a_loaded_file_name_that_file(tmp_path: Path) -> None:
    raw = shipped()
    raw["analysis"]["alpha"] = 0.5
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(raw))
    expected = rf"^{re.escape(str(path))}: analysis\.alpha: Input should be less than 0\.5$"
    with pytest.raises(DeployConfigError, match=expected):
        load_deploy_config(path)


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text("version: 1\nstages: [dev\n")
    with pytest.raises(DeployConfigError, match=rf"^{re.escape(str(path))}: line \d+, column \d+: YAML syntax error"):
        load_deploy_config(path)


def test_a_missing_file_is_a_deploy_config_error(tmp_path: Path) -> None:
    with pytest.raises(DeployConfigError, match=r"deploy\.yaml: cannot read"):
        load_deploy_config(tmp_path / "deploy.yaml")


def test_the_top_level_must_be_a_mapping() -> None:
    assert errors(["version", 1]) == [f"{SOURCE}: expected a mapping at the top level"]


def test_an_unknown_field_is_named() -> None:
    raw = shipped()
    raw["rollback"] = True
    raw["analysis"]["confidence"] = 0.99
    msg = errors(raw)
    assert f"{SOURCE}: rollback: unknown field" in msg
    assert f"{SOURCE}: analysis.confidence: unknown field" in msg


@pytest.mark.parametrize("version", [2, None, "1"])
def test_only_version_1_is_read(version: object) -> None:
    raw = shipped()
    raw["version"] = version
    assert errors(raw) == [f"{SOURCE}: version: must be 1, got {version!r}"]


def test_the_version_problem_is_reported_with_the_field_problems() -> None:
    raw = shipped()
    raw["version"] = 2
    raw["peak"] = "ignore"
    msg = errors(raw)
    assert msg[0] == f"{SOURCE}: version: must be 1, got 2"
    assert msg[1].startswith(f"{SOURCE}: peak: Input should be 'stricter' or 'block'")


def test_every_stage_needs_the_lock_gate_once() -> None:
    raw = shipped()
    raw["stages"]["staging"]["gates"] = ["page_alerts"]
    raw["stages"]["prod"]["gates"] = ["lock", "budget", "lock"]
    raw["stages"]["dev"]["gates"] = ["lock", "vibes"]
    msg = errors(raw)
    assert f"{SOURCE}: stages.staging.gates: every stage needs the lock gate (one deploy per service at a time)" in msg
    assert f"{SOURCE}: stages.prod.gates: a gate is listed twice: ['lock', 'budget', 'lock']" in msg
    assert any(line.startswith(f"{SOURCE}: stages.dev.gates[1]: Input should be 'lock'") for line in msg)


def test_canary_steps_and_rolling_batches_must_end_at_100() -> None:
    raw = shipped()
    raw["strategies"]["canary"]["steps"] = [10, 50]
    raw["strategies"]["rolling"]["batches"] = [50, 50, 100]
    msg = errors(raw)
    # the field is named once, as the file spells it
    assert f"{SOURCE}: strategies.canary.steps: the last step must be 100, got 50" in msg
    assert f"{SOURCE}: strategies.rolling.batches: steps must strictly increase, got [50, 50, 100]" in msg


def test_min_duration_must_be_shorter_than_max_duration() -> None:
    raw = shipped()
    raw["analysis"]["min_duration"] = "4m"  # equal to max_duration
    assert errors(raw) == [f"{SOURCE}: analysis.max_duration: must be longer than min_duration"]
    raw["analysis"]["min_duration"] = "1h"
    raw["analysis"]["interval"] = "2h"
    assert errors(raw) == [f"{SOURCE}: analysis.interval: must not be longer than min_duration"]


@pytest.mark.parametrize("text", ["5 s", "0s", "5", "1d", "1.5m", "05s", 5])
def test_a_bad_duration_is_named(text: object) -> None:
    raw = shipped()
    raw["analysis"]["interval"] = text
    msg = errors(raw)
    assert len(msg) == 1 and msg[0].startswith(f"{SOURCE}: analysis.interval: ")
    raw = shipped()
    raw["strategies"]["blue-green"]["scale_down_delay"] = text
    assert errors(raw)[0].startswith(f"{SOURCE}: strategies.blue-green.scale_down_delay: ")


def test_analysis_numbers_out_of_range_are_named() -> None:
    raw = shipped()
    raw["analysis"].update(min_samples=0, beta=0.0, regression_burn=1, fast_abort_burn="14.4")
    msg = errors(raw)
    assert f"{SOURCE}: analysis.min_samples: Input should be greater than or equal to 1" in msg
    assert f"{SOURCE}: analysis.beta: Input should be greater than 0" in msg
    assert f"{SOURCE}: analysis.regression_burn: Input should be greater than 1" in msg
    assert any(line.startswith(f"{SOURCE}: analysis.fast_abort_burn: ") for line in msg)


def test_stages_must_not_be_empty_and_names_are_slugs() -> None:
    raw = shipped()
    raw["stages"] = {}
    assert errors(raw) == [f"{SOURCE}: stages: Dictionary should have at least 1 item after validation, not 0"]
    raw["stages"] = {"Prod": {"gates": ["lock"]}}
    assert errors(raw)[0].startswith(f"{SOURCE}: stages.Prod.[key]: String should match pattern")


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("4m", 240), ("1h", 3600), ("90s", 90)])
def test_parse_seconds(text: str, seconds: int) -> None:
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "1d", "1 m", "m", 30, None])
def test_parse_seconds_refuses_other_text(text: object) -> None:
    with pytest.raises(ValueError, match="is not a duration like 30s, 4m or 1h"):
        parse_seconds(text)


def test_a_stage_review_needs_its_reviewers_and_a_reviewer_entry_needs_someone() -> None:
    raw = shipped()
    del raw["approvals"]["reviewers"]["security"]
    assert any("stages.prod.approvals: no reviewers for security under approvals.reviewers" in e for e in errors(raw))
    raw = shipped()
    raw["approvals"]["reviewers"]["business"] = {"users": [], "roles": []}
    assert any("approvals.reviewers.business" in e and "name at least one user or role" in e for e in errors(raw))
    raw = shipped()
    raw["stages"]["prod"]["approvals"] = ["technical", "technical"]
    assert any("a review is listed twice" in e for e in errors(raw))
    raw = shipped()
    raw["stages"]["prod"]["approvals"] = ["legal"]
    assert any("stages.prod.approvals" in e for e in errors(raw))


def test_prod_needs_three_reviews_and_a_service_may_set_its_own() -> None:
    from gamesre.deploy.approvals import required_reviews

    config = load_deploy_config()
    assert required_reviews(config, "prod", None) == ("technical", "security", "business")
    assert required_reviews(config, "staging", None) == ()
    assert required_reviews(config, "prod", ["technical"]) == ("technical",)
    assert required_reviews(config, "prod", []) == ()
    assert config.approvals is not None and config.approvals.timeout_s == 4 * 3600
