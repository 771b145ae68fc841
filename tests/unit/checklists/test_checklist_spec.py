"""checklists.yaml: the shipped file loads with every item of the issue, and bad input names file, item, field."""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gamesre.checklists.registry import default_registry
from gamesre.checklists.spec import CHECKLISTS_PATH, ChecklistError, ChecklistSpec, load_checklists, parse_checklists
from gamesre.core.paths import REPO_ROOT

SOURCE = "include/config/checklists.yaml"
KNOWN = {"slos": ["availability", "latency", "matchmaking-success"], "services": ["game-server", "matchmaking"]}
OWNERS = ["game-server", "matchmaking", "sre"]


def shipped() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(CHECKLISTS_PATH.read_text()))


def errors(raw: object) -> list[str]:
    with pytest.raises(ChecklistError) as info:
        parse_checklists(raw, SOURCE, owners=OWNERS, known=KNOWN)
    return str(info.value).splitlines()


def item(raw: dict[str, Any], item_id: str) -> dict[str, Any]:
    return next(i for i in raw["items"] if i["id"] == item_id)


def test_the_shipped_checklists_hold_every_item_of_the_issue(checklists: ChecklistSpec) -> None:
    assert {c: s.schedule for c, s in checklists.cadences.items()} == {
        "daily": "0 9 * * *", "weekly": "0 10 * * 1", "monthly": "0 10 1 * *"}
    assert all(s.timezone == "Asia/Seoul" for s in checklists.cadences.values())
    assert checklists.cadences["weekly"].time_of_day == "10:00"
    checks = {c: sorted({i.check for i in checklists.for_cadence(c)}) for c in ("daily", "weekly", "monthly")}
    assert checks == {
        "daily": ["alerts_now", "budget_burn", "chaos_status", "deploy_pipeline", "sample_gaps", "scrape_targets",
                  "series_freshness", "slo_attainment"],
        "weekly": ["alerts_without_slo_impact", "budget_patterns", "chaos_results", "deploy_success",
                   "incident_response", "manual", "noisy_alerts", "postmortems", "silent_alerts", "slo_attainment"],
        "monthly": ["budget_policy_review", "dora", "resilience_inputs", "runbook_freshness", "slo_target_review",
                    "stack_versions"],
    }
    noisy = checklists.get("weekly-noisy-alerts").params
    assert (noisy.min_fires, noisy.max_median_duration) == (5, "10m")  # type: ignore[attr-defined]
    assert checklists.get("monthly-runbook-freshness").params.max_age == "90d"  # type: ignore[attr-defined]
    assert checklists.get("daily-data-gaps").params.max_gap == "5m"  # type: ignore[attr-defined]
    assert {i.owner for i in checklists} == {"game-server", "matchmaking", "sre"}
    assert checklists.get("weekly-dashboard-review").check == "manual"
    assert [i.position for i in checklists] == list(range(len(checklists)))


def test_every_registered_evaluator_is_used_and_documented(checklists: ChecklistSpec) -> None:
    docs = (REPO_ROOT / "docs" / "checklists.md").read_text()
    assert {i.check for i in checklists} == set(default_registry().names())
    for name in default_registry().names():
        assert f"`{name}`" in docs, f"docs/checklists.md does not describe the evaluator {name}"
    for entry in checklists:
        assert f"`{entry.id}`" in docs, f"docs/checklists.md does not list the item {entry.id}"


def test_errors_of_a_loaded_file_name_that_file(tmp_path: Path) -> None:
    raw = shipped()
    item(raw, "weekly-noisy-alerts")["params"]["min_fires"] = 0
    path = tmp_path / "checklists.yaml"
    path.write_text(yaml.safe_dump(raw))
    expected = (rf"^{re.escape(str(path))}: item 'weekly-noisy-alerts': params\.min_fires: "
                r"Input should be greater than or equal to 1$")
    with pytest.raises(ChecklistError, match=expected):
        load_checklists(path)


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "checklists.yaml"
    path.write_text("version: 1\nitems: [a\n")
    with pytest.raises(ChecklistError, match=rf"^{re.escape(str(path))}: line \d+, column \d+: YAML syntax error"):
        load_checklists(path)


def test_a_missing_file_is_a_checklist_error(tmp_path: Path) -> None:
    with pytest.raises(ChecklistError, match=r"checklists\.yaml: cannot read"):
        load_checklists(tmp_path / "checklists.yaml")


def test_the_top_level_is_checked() -> None:
    assert errors([1]) == [f"{SOURCE}: expected a mapping with 'version', 'cadences' and 'items' at the top level"]
    raw = shipped()
    raw["version"] = 2
    raw["owners"] = ["x"]
    assert errors(raw) == [f"{SOURCE}: owners: unknown field", f"{SOURCE}: version: must be 1, got 2"]


def test_cadences_are_exactly_daily_weekly_monthly_with_matching_schedules() -> None:
    raw = shipped()
    raw["cadences"]["hourly"] = {"schedule": "0 * * * *", "timezone": "Asia/Seoul", "description": "x"}
    del raw["cadences"]["monthly"]
    raw["cadences"]["weekly"]["schedule"] = "0 10 * * *"
    raw["cadences"]["daily"]["timezone"] = "UTC"
    msg = errors(raw)
    assert f"{SOURCE}: cadences.hourly: unknown cadence (use daily, weekly, monthly)" in msg
    assert f"{SOURCE}: cadences.monthly: missing" in msg
    assert f"{SOURCE}: cadences.weekly.schedule: '0 10 * * *' is not of the form 'M H * * D' (once a week)" in msg
    assert f"{SOURCE}: cadences.daily.timezone: Input should be 'Asia/Seoul'" in msg


@pytest.mark.parametrize("schedule", ["0 25 * * *", "61 9 * * *", "0 9 * *", "*/5 9 * * *"])
def test_a_daily_schedule_runs_once_a_day_at_a_real_time(schedule: str) -> None:
    raw = shipped()
    raw["cadences"]["daily"]["schedule"] = schedule
    assert len([m for m in errors(raw) if m.startswith(f"{SOURCE}: cadences.daily.schedule: ")]) == 1


def test_a_monthly_schedule_runs_on_a_day_every_month_has() -> None:
    raw = shipped()
    raw["cadences"]["monthly"]["schedule"] = "0 10 31 * *"
    assert errors(raw) == [f"{SOURCE}: cadences.monthly.schedule: '0 10 31 * *' is not of the form 'M H D * *' "
                           "with D from 1 to 28 (once a month)"]


def test_item_fields_are_validated_and_named() -> None:
    raw = shipped()
    item(raw, "daily-alerts")["id"] = "Daily Alerts"
    item(raw, "daily-budget-burn")["cadence"] = "hourly"
    item(raw, "daily-scrape-targets")["surprise"] = 1
    del item(raw, "daily-data-gaps")["docs"]
    item(raw, "weekly-noisy-alerts")["title"] = "two\nlines"
    msg = errors(raw)
    assert f"{SOURCE}: item 'Daily Alerts': id: String should match pattern '^[a-z][a-z0-9]*(-[a-z0-9]+)*$'" in msg
    assert f"{SOURCE}: item 'daily-budget-burn': cadence: Input should be 'daily', 'weekly' or 'monthly'" in msg
    assert f"{SOURCE}: item 'daily-scrape-targets': surprise: unknown field" in msg
    assert f"{SOURCE}: item 'daily-data-gaps': docs: Field required" in msg
    assert any(m.startswith(f"{SOURCE}: item 'weekly-noisy-alerts': title: ") for m in msg)


def test_duplicate_ids_unknown_owners_and_unknown_evaluators_are_refused() -> None:
    raw = shipped()
    raw["items"].append(copy.deepcopy(item(raw, "daily-alerts")))
    item(raw, "daily-budget-burn")["owner"] = "payments"
    item(raw, "daily-scrape-targets")["check"] = "scrape_targetz"
    msg = errors(raw)
    assert f"{SOURCE}: item 'daily-alerts': id: duplicate item id (first defined as item #3)" in msg
    assert (f"{SOURCE}: item 'daily-budget-burn': owner: 'payments' is not a team of the metric contract or 'sre' "
            "(known: game-server, matchmaking, sre)") in msg
    unknown = next(m for m in msg if "scrape_targetz" in m)
    assert unknown.startswith(f"{SOURCE}: item 'daily-scrape-targets': check: unknown evaluator 'scrape_targetz' "
                              "(known: alerts_now, alerts_without_slo_impact, ")


def test_params_are_validated_by_the_evaluators_model() -> None:
    raw = shipped()
    item(raw, "daily-data-gaps")["params"] = {"max_gap": "5 minutes", "lookbak": "24h"}
    item(raw, "weekly-deploy-success")["params"]["min_success_rate"] = 1.5
    item(raw, "weekly-dashboard-review")["params"] = {}
    item(raw, "monthly-stack-versions")["params"]["components"]["prometheus"] = "two point four"
    item(raw, "monthly-dora")["params"]["failure_outcomes"] = ["exploded"]
    msg = errors(raw)
    assert (f"{SOURCE}: item 'daily-data-gaps': params.max_gap: '5 minutes' is not a duration like 5m, 1h or 3d"
            in msg)
    assert f"{SOURCE}: item 'daily-data-gaps': params.lookbak: unknown field" in msg
    assert (f"{SOURCE}: item 'weekly-deploy-success': params.min_success_rate: Input should be less than or equal "
            "to 1") in msg
    assert f"{SOURCE}: item 'weekly-dashboard-review': params.steps: Field required" in msg
    assert (f"{SOURCE}: item 'monthly-stack-versions': params.components.prometheus: 'two point four' is "
            "neither "
            "'requirements.txt' nor a version specifier like ==2.42.*") in msg
    assert any(m.startswith(f"{SOURCE}: item 'monthly-dora': params.failure_outcomes: unknown outcome(s) exploded")
               for m in msg)


def test_params_types_are_strict() -> None:
    raw = shipped()
    item(raw, "weekly-noisy-alerts")["params"]["min_fires"] = "5"
    assert errors(raw) == [f"{SOURCE}: item 'weekly-noisy-alerts': params.min_fires: Input should be a valid integer"]


def test_the_slos_and_services_an_item_names_must_exist() -> None:
    raw = shipped()
    item(raw, "daily-availability-game-server")["params"]["services"] = ["game-server", "payments"]
    item(raw, "weekly-budget-patterns")["params"]["slos"] = ["availability", "uptime"]
    item(raw, "weekly-attainment-matchmaking")["params"] = {"slos": ["latency"], "services": ["matchmaking"]}
    item(raw, "monthly-slo-target-review")["params"]["slos"] = []
    msg = errors(raw)
    assert (f"{SOURCE}: item 'daily-availability-game-server': params.services[1]: unknown service 'payments' "
            "(known: game-server, matchmaking)") in msg
    assert (f"{SOURCE}: item 'weekly-budget-patterns': params.slos[1]: unknown SLO 'uptime' "
            "(known: availability, latency, matchmaking-success)") in msg
    assert f"{SOURCE}: item 'weekly-attainment-matchmaking': params.slos: give slos or services, not both" in msg
    assert (f"{SOURCE}: item 'monthly-slo-target-review': params.slos: an empty list selects nothing; leave the field "
            "out to select every SLO") in msg


def test_a_cadence_without_items_is_an_error() -> None:
    raw = shipped()
    raw["items"] = [i for i in raw["items"] if i["cadence"] != "monthly"]
    assert errors(raw) == [f"{SOURCE}: cadences.monthly: no item has this cadence (a checklist with nothing to "
                           "check)"]


def test_every_problem_is_reported_at_once() -> None:
    raw = shipped()
    item(raw, "daily-alerts")["owner"] = "nobody"
    item(raw, "weekly-noisy-alerts")["params"]["min_fires"] = -1
    item(raw, "monthly-dora")["check"] = "nope"
    assert len(errors(raw)) == 3


def test_the_loader_checks_slo_names_against_slos_yaml(tmp_path: Path) -> None:
    raw = shipped()
    item(raw, "weekly-budget-patterns")["params"]["slos"] = ["availability"]
    path = tmp_path / "checklists.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_checklists(path).get("weekly-budget-patterns").params.references() == {"slos": ["availability"]}
    with pytest.raises(ChecklistError, match=r"params\.slos\[0\]: unknown SLO 'availability' \(known: latency\)"):
        load_checklists(path, slo_names=["latency"])
