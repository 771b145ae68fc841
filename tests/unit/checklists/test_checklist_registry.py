"""The evaluator registry: the decorator registers, refuses clashes and unknown inputs; the shipped one is whole."""
from __future__ import annotations

import pytest
from pydantic import BaseModel

from gamesre.checklists.inputs import INPUTS
from gamesre.checklists.periods import Period
from gamesre.checklists.registry import (
    CheckContext,
    NoParams,
    ParamsModel,
    Registry,
    Verdict,
    combine,
    default_registry,
)


class Threshold(ParamsModel):
    limit: int = 3


def test_the_decorator_registers_the_function_unchanged() -> None:
    registry = Registry()

    @registry.evaluator("queue_depth", params_model=Threshold, inputs=("series_freshness",))
    def queue_depth(ctx: CheckContext, params: Threshold) -> Verdict:
        """Queues drain."""
        return Verdict("pass", f"limit {params.limit}")

    entry = registry.get("queue_depth")
    assert entry.func is queue_depth and entry.inputs == ("series_freshness",) and entry.description == "Queues drain."
    assert entry.parse_params({"limit": 5}) == Threshold(limit=5)
    assert entry.parse_params(None) == Threshold()
    period = Period(0, 86_400, "day")
    assert entry.data_window(Threshold(), period, 90_000) == (0, 86_400)
    assert "queue_depth" in registry and registry.names() == ["queue_depth"] and len(registry) == 1


def test_a_window_function_sets_the_data_span() -> None:
    registry = Registry()

    @registry.evaluator("lookback", window=lambda params, period, at: (at - 60, at))
    def lookback(ctx: CheckContext, params: NoParams) -> Verdict:
        return Verdict("pass", "ok")

    assert registry.get("lookback").data_window(NoParams(), Period(0, 10, "p"), 1000) == (940, 1000)


def test_registration_mistakes_are_refused() -> None:
    registry = Registry()

    def check(ctx: CheckContext, params: NoParams) -> Verdict:
        return Verdict("pass", "ok")

    registry.evaluator("same")(check)
    registry.evaluator("same")(check)  # the same function again (a module imported twice) is fine
    with pytest.raises(ValueError, match=r"evaluator 'same' is already registered \(by .*check\)"):
        registry.evaluator("same")(lambda ctx, params: Verdict("pass", "x"))
    with pytest.raises(ValueError, match="must be lower_snake_case"):
        registry.evaluator("Bad-Name")(check)
    with pytest.raises(ValueError, match=r"unknown input\(s\) prometheus_raw"):
        registry.evaluator("raw", inputs=("prometheus_raw",))(check)

    class Loose(BaseModel):
        x: int = 1

    with pytest.raises(TypeError, match="params_model must subclass ParamsModel"):
        registry.evaluator("loose", params_model=Loose)(check)  # type: ignore[type-var]
    with pytest.raises(KeyError, match=r"unknown evaluator 'nope' \(known: same\)"):
        registry.get("nope")


def test_a_verdict_is_pass_warn_fail_or_manual() -> None:
    with pytest.raises(ValueError, match="raise CheckError when it cannot judge"):
        Verdict("error", "x")  # type: ignore[arg-type]


def test_combine_takes_the_worst() -> None:
    assert combine(s for s in ["pass", "warn", "pass"]) == "warn"
    assert combine(["manual", "fail"]) == "fail"
    assert combine([]) == "pass"


def test_the_default_registry_holds_every_builtin_with_known_inputs() -> None:
    registry = default_registry()
    assert set(registry.names()) >= {
        "slo_attainment", "budget_burn", "alerts_now", "series_freshness", "scrape_targets", "sample_gaps",
        "chaos_status", "deploy_pipeline", "budget_patterns", "noisy_alerts", "silent_alerts",
        "alerts_without_slo_impact", "manual", "chaos_results", "deploy_success", "slo_target_review",
        "budget_policy_review", "stack_versions", "runbook_freshness", "resilience_inputs", "dora",
        "incident_response", "postmortems"}
    for entry in registry:
        assert entry.description, f"{entry.name} has no docstring"
        assert all(name in INPUTS for name in entry.inputs)
        assert issubclass(entry.params_model, ParamsModel)


def test_the_example_in_the_docs_registers_and_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    import pandas as pd

    from gamesre.checklists import registry as registry_module
    from gamesre.checklists.runner import run_item
    from gamesre.checklists.spec import ChecklistItem
    from gamesre.core.paths import REPO_ROOT

    docs = (REPO_ROOT / "docs" / "checklists.md").read_text()
    snippet = next(block for block in re.findall(r"```python\n(.*?)```", docs, re.S) if "@evaluator(" in block)
    fresh = Registry()
    monkeypatch.setattr(registry_module, "evaluator", fresh.evaluator)
    namespace: dict[str, object] = {}
    code = compile("\n".join(line[3:] for line in snippet.splitlines()), "docs/checklists.md", "exec",
                   dont_inherit=True)
    exec(code, namespace)  # noqa: S102  (the docs' own example, run as written)
    entry = fresh.get("matchmaking_queue_fresh")
    item = ChecklistItem("matchmaking-queue", "daily", "Queue fresh", "matchmaking", entry.name,
                         entry.parse_params({"max_age": "5m"}), "docs", 0)
    frame = pd.DataFrame({"name": ["matchmaking_queue_size", "up"], "kind": ["metric"] * 2, "query": ["q"] * 2,
                          "newest": [1000.0 - 600, 1000.0]})
    r = run_item(item, {"series_freshness": frame}, 1000, registry=fresh)
    assert (r.status, r.summary, r.evidence["stale"]) == ("fail", "1 queue series stale", ["matchmaking_queue_size"])
