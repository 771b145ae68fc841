"""Rollout plans: the steps of canary, blue-green, rolling and synthetic stages, and the percentage rules."""
from __future__ import annotations

import json

import pytest

from gamesre.deploy.plan import STRATEGIES, RolloutPlan, Step, build_plan, check_percentages


def test_a_canary_shifts_traffic_step_by_step_to_100_percent() -> None:
    plan = build_plan("canary", canary_steps=(5, 20, 100))
    assert plan.strategy == "canary"
    assert plan.steps == (Step(0, "weight", 5, 0), Step(1, "weight", 20, 1), Step(2, "weight", 100, 2))
    assert plan.weights == (5, 20, 100)
    assert [s.label for s in plan.steps] == ["canary 5%", "canary 20%", "canary 100%"]
    assert plan.scale_down_delay_s == 0


def test_the_default_canary_is_10_25_50_100() -> None:
    assert build_plan("canary").weights == (10, 25, 50, 100)


def test_blue_green_previews_without_traffic_then_switches_everything() -> None:
    plan = build_plan("blue-green", scale_down_delay_s=60)
    assert plan.steps == (Step(0, "preview", 0, None), Step(1, "switch", 100, 0))
    assert plan.weights == (100,)  # the preview shifts nothing
    assert [s.label for s in plan.steps] == ["preview", "switch to new version"]
    assert plan.scale_down_delay_s == 60


def test_rolling_replaces_instances_batch_by_batch() -> None:
    plan = build_plan("rolling", rolling_batches=(25, 50, 100), canary_steps=(1, 100))
    assert plan.steps == (Step(0, "batch", 25, 0), Step(1, "batch", 50, 1), Step(2, "batch", 100, 2))
    assert plan.steps[0].label == "rolling batch to 25%"
    assert plan.scale_down_delay_s == 0  # only blue-green keeps the old version running


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_synthetic_stage_is_one_preview_whatever_the_strategy(strategy: str) -> None:
    plan = build_plan(strategy, synthetic=True, scale_down_delay_s=60)
    assert plan.strategy == "verify"
    assert plan.steps == (Step(0, "preview", 0, None),)
    assert plan.weights == ()
    assert plan.scale_down_delay_s == 0


def test_an_unknown_strategy_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"strategy: 'recreate' is not one of canary, blue-green, rolling"):
        build_plan("recreate")


def test_bad_canary_steps_and_rolling_batches_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"^canary_steps: the last step must be 100, got 50$"):
        build_plan("canary", canary_steps=(10, 50))
    with pytest.raises(ValueError, match=r"^rolling_batches: steps must strictly increase"):
        build_plan("rolling", rolling_batches=(50, 50, 100))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ((), r"^steps: at least one step is needed$"),
        ((0, 100), r"^steps: 0 is not a whole percentage in 1\.\.100$"),
        ((50, 101), r"^steps: 101 is not a whole percentage in 1\.\.100$"),
        ((50.0, 100), r"^steps: 50\.0 is not a whole percentage"),
        ((True, 100), r"^steps: True is not a whole percentage"),
        (("50", 100), r"^steps: '50' is not a whole percentage"),
        ((50, 25, 100), r"^steps: steps must strictly increase, got \[50, 25, 100\]$"),
        ((10, 10, 100), r"^steps: steps must strictly increase"),
        ((10, 50), r"^steps: the last step must be 100, got 50$"),
    ],
)
def test_check_percentages_errors_say_what_is_wrong(values: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_percentages(values, "steps")


def test_check_percentages_returns_a_tuple_of_valid_steps() -> None:
    assert check_percentages([1, 2, 100], "x") == (1, 2, 100)
    assert check_percentages([100], "x") == (100,)


@pytest.mark.parametrize(
    "plan",
    [build_plan("canary"), build_plan("blue-green", scale_down_delay_s=90), build_plan("rolling"),
     build_plan("canary", synthetic=True)],
    ids=["canary", "blue-green", "rolling", "synthetic"],
)
def test_a_plan_survives_json_round_trip(plan: RolloutPlan) -> None:
    doc = json.loads(json.dumps(plan.to_dict()))  # XCom stores JSON
    assert RolloutPlan.from_dict(doc) == plan
    assert [s["label"] for s in doc["steps"]] == [s.label for s in plan.steps]


def test_a_plan_document_without_delay_reads_as_zero() -> None:
    doc = build_plan("rolling").to_dict()
    del doc["scale_down_delay_s"]
    assert RolloutPlan.from_dict(doc).scale_down_delay_s == 0


@pytest.mark.parametrize(("strategy", "kind", "label"), [("canary", "weight", "canary 100%"),
                                                         ("blue-green", "switch", "switch to new version"),
                                                         ("rolling", "batch", "rolling batch to 100%")])
def test_an_immediate_plan_moves_all_traffic_in_one_step(strategy: str, kind: str, label: str) -> None:
    plan = build_plan(strategy, immediate=True)
    assert [(s.kind, s.weight, s.shift_index, s.label) for s in plan.steps] == [(kind, 100, 0, label)]
    assert plan.weights == (100,) and plan.scale_down_delay_s == 0
