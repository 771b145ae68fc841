"""The runner: one result per item, `error` with the reason whenever an item could not be judged."""
from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from gamesre.checklists.inputs import InputData, Unavailable
from gamesre.checklists.registry import CheckContext, CheckError, NoParams, Registry, Verdict, default_registry
from gamesre.checklists.result import order_for_report
from gamesre.checklists.runner import fetch_plan, run_checklist, run_item
from gamesre.checklists.spec import ChecklistItem, ChecklistSpec
from gamesre.slo.spec import Policy, SloCatalog
from tests.unit.checklists.conftest import AT, AT_EPOCH, flat_ledger

REGISTRY = Registry()


@REGISTRY.evaluator("count_targets", inputs=("scrape_targets",))
def count_targets(ctx: CheckContext, params: NoParams) -> Verdict:
    """Counts the targets."""
    frame = ctx.data("scrape_targets")
    return Verdict("pass", f"{len(frame)} targets", {"targets": len(frame), "links": ctx.links("scrape_targets")})


@REGISTRY.evaluator("cannot_judge")
def cannot_judge(ctx: CheckContext, params: NoParams) -> Verdict:
    """Always gives up."""
    raise CheckError("nothing to judge", {"looked_at": 0})


@REGISTRY.evaluator("broken")
def broken(ctx: CheckContext, params: NoParams) -> Verdict:
    """Has a bug."""
    return {}["missing"]  # type: ignore[no-any-return]


@REGISTRY.evaluator("unserialisable")
def unserialisable(ctx: CheckContext, params: NoParams) -> Verdict:
    """Returns evidence with no JSON form."""
    return Verdict("pass", "fine", {"object": object()})


@REGISTRY.evaluator("undeclared")
def undeclared(ctx: CheckContext, params: NoParams) -> Verdict:
    """Reads an input it did not declare."""
    return Verdict("pass", str(len(ctx.data("scrape_targets"))))


def item(check: str, cadence: str = "daily", item_id: str | None = None) -> ChecklistItem:
    return ChecklistItem(item_id or check.replace("_", "-"), cadence, f"Title of {check}", "sre", check,  # type: ignore[arg-type]
                         NoParams(), "docs", 0)


TARGETS = pd.DataFrame({"job": ["game-server", "matchmaking"], "instance": ["gs-1", "mm-1"], "health": ["up", "up"],
                        "last_scrape": [AT_EPOCH, AT_EPOCH], "last_error": ["", ""]})


def test_a_verdict_becomes_a_result_with_the_items_metadata_and_provenance() -> None:
    data = InputData(TARGETS, source="prometheus", queries=("/api/v1/targets",), links=("http://prom/targets",))
    r = run_item(item("count_targets"), {"scrape_targets": data}, AT, registry=REGISTRY)
    assert (r.item_id, r.title, r.cadence, r.owner, r.status, r.summary) == (
        "count-targets", "Title of count_targets", "daily", "sre", "pass", "2 targets")
    assert r.checked_at == AT
    assert r.evidence["targets"] == 2 and r.evidence["links"] == ["http://prom/targets"]
    assert r.evidence["check"] == "count_targets" and r.evidence["at"] == "2026-03-02T01:00:00Z"
    assert r.evidence["period"] == {"label": "2026-03-01 KST", "start": "2026-02-28T15:00:00Z",
                                    "end": "2026-03-01T15:00:00Z", "timezone": "Asia/Seoul"}
    assert r.evidence["inputs"] == {"scrape_targets": {"source": "prometheus", "queries": ["/api/v1/targets"],
                                                       "links": ["http://prom/targets"]}}
    assert r.evidence["params"] == {}


def test_an_unavailable_input_makes_the_item_an_error_with_the_reason() -> None:
    down = Unavailable("connection refused (127.0.0.1:19090)", source="prometheus", queries=("up",))
    r = run_item(item("count_targets"), {"scrape_targets": down}, AT, registry=REGISTRY)
    assert r.status == "error"
    assert r.summary == "input 'scrape_targets' unavailable (prometheus): connection refused (127.0.0.1:19090)"
    assert r.evidence["inputs"]["scrape_targets"] == {"source": "prometheus", "queries": ["up"],
                                                      "unavailable": "connection refused (127.0.0.1:19090)"}


def test_a_missing_or_malformed_input_is_an_error_not_a_crash() -> None:
    assert run_item(item("count_targets"), {}, AT, registry=REGISTRY).summary == (
        "input 'scrape_targets' unavailable: input 'scrape_targets' was not fetched")
    r = run_item(item("count_targets"), {"scrape_targets": TARGETS.drop(columns=["health"])}, AT, registry=REGISTRY)
    assert (r.status, r.summary) == ("error", "input scrape_targets lacks column(s) health")
    r = run_item(item("count_targets"), {"scrape_targets": [1, 2]}, AT, registry=REGISTRY)
    assert r.summary == "input scrape_targets should be a table (a pandas DataFrame), got list"


def test_an_evaluator_that_cannot_judge_or_breaks_is_an_error() -> None:
    r = run_item(item("cannot_judge"), {}, AT, registry=REGISTRY)
    assert (r.status, r.summary, r.evidence["looked_at"]) == ("error", "cannot judge: nothing to judge", 0)
    r = run_item(item("broken"), {}, AT, registry=REGISTRY)
    assert (r.status, r.summary) == ("error", "evaluator 'broken' raised KeyError: 'missing'")
    r = run_item(item("unserialisable"), {}, AT, registry=REGISTRY)
    assert r.status == "error" and "returned unusable evidence: evidence.object: object has no JSON form" in r.summary
    r = run_item(item("undeclared"), {"scrape_targets": TARGETS}, AT, registry=REGISTRY)
    assert r.status == "error" and "input 'scrape_targets' is not among the inputs the evaluator declared" in r.summary


def test_the_fetch_plan_covers_every_items_span(checklists: ChecklistSpec) -> None:
    plan = fetch_plan(checklists, AT)
    # the target review needs three whole KST months before March: December 1 00:00 KST onwards
    assert plan["ledgers"] == (int(datetime(2025, 11, 30, 15, tzinfo=UTC).timestamp()), AT_EPOCH)
    # silent alerts look back 28 days from the end of last week (Monday 00:00 KST)
    assert plan["alert_samples"][0] == int(datetime(2026, 2, 1, 15, tzinfo=UTC).timestamp())
    assert plan["scrape_targets"] == (AT_EPOCH - 3600, AT_EPOCH)
    assert set(plan) == {name for i in checklists for name in default_registry().get(i.check).inputs}
    daily = fetch_plan(checklists.for_cadence("daily"), AT)
    assert "chaos_probes" not in daily and daily["deployments"][1] == AT_EPOCH


@pytest.fixture()
def world(slos: SloCatalog, policy: Policy) -> dict[str, object]:
    """Healthy data for every input, as the edges would fetch it."""
    start = int(datetime(2025, 11, 30, 15, tzinfo=UTC).timestamp())  # 1 December KST: the target review's first month
    ledgers = {s.name: flat_ledger(start, AT_EPOCH, 1.0 if s.budgeting_method == "timeslices"
                                   else 1000.0) for s in slos}
    empty = pd.DataFrame
    return {
        "slos": slos, "policy": policy, "ledgers": ledgers, "exclusions": {},
        "policy_history": pd.DataFrame(
            [{"scope": scope, "name": name, "state": "normal", "computed_at": t}
             for t in range(AT_EPOCH - 40 * 86_400, AT_EPOCH, 3600)
             for scope, name in [*(("slo", s.name) for s in slos), ("service", "game-server")]]),
        "alertmanager_alerts": empty(columns=["alertname", "labels", "state", "starts_at"]),
        "alert_samples": InputData(empty(columns=["alertname", "labels", "timestamp"]), source="prometheus",
                                   meta={"step": 60}),
        "alert_rules": pd.DataFrame({"alertname": ["SloBurnPageFast"], "labels": [{"slo": "availability"}]}),
        "series_freshness": pd.DataFrame({"name": ["up"], "kind": ["metric"], "query": ["up"],
                                          "newest": [AT_EPOCH - 5]}),
        "scrape_targets": TARGETS,
        "sample_timestamps": pd.DataFrame({"series": ["up"] * 1441,
                                           "timestamp": range(AT_EPOCH - 86_400, AT_EPOCH + 1, 60)}),
        "chaos_runs": empty(columns=["run_id", "experiment", "service", "started_at", "finished_at", "verdict",
                                     "score"]),
        "chaos_probes": empty(columns=["run_id", "experiment", "probe", "passed"]),
        "chaos_active_faults": empty(columns=["service", "target", "fault", "injected_at", "run_id"]),
        "deployments": empty(columns=["id", "service", "version", "outcome", "dry_run", "stages", "requested_at",
                                      "started_at", "finished_at", "rolled_back_at", "run_url"]),
        "incidents": empty(columns=["id", "severity", "title", "team", "status", "opened_at", "acknowledged_at",
                                    "resolved_at", "postmortem_due", "postmortem_status", "postmortem_owner"]),
        "versions_running": {"prometheus": "2.42.0+ds", "alertmanager": "0.25.0"},
        "pinned_requirements": {},
        "runbooks": pd.DataFrame({"path": ["include/runbooks/slo-error-budget.md"], "updated_at": [AT_EPOCH]}),
    }


def test_with_prometheus_down_its_items_are_errors_and_the_others_still_run(
        checklists: ChecklistSpec, world: dict[str, object]) -> None:
    prometheus = ("alert_samples", "alert_rules", "series_freshness", "scrape_targets", "sample_timestamps",
                  "versions_running")
    down = {**world, **{name: Unavailable("GET http://127.0.0.1:19090: connection refused", source="prometheus")
                        for name in prometheus}}
    results = run_checklist(checklists, down, AT)
    assert [r.item_id for r in results] == list(checklists.ids)
    errors = {r.item_id for r in results if r.status == "error"}
    assert errors == {"daily-alerts", "daily-data-freshness", "daily-scrape-targets", "daily-data-gaps",
                      "weekly-noisy-alerts", "weekly-silent-alerts", "weekly-alerts-without-impact",
                      "monthly-stack-versions"}
    for r in results:
        if r.status == "error":
            assert "(prometheus): GET http://127.0.0.1:19090: connection refused" in r.summary
    ordered = order_for_report(results, checklists.ids)
    assert all(r.status in ("fail", "error") for r in ordered[:len(errors)])


def test_a_healthy_world_passes_every_automatic_item(checklists: ChecklistSpec, world: dict[str, object]) -> None:
    results = {r.item_id: r for r in run_checklist(checklists, world, AT)}
    not_passing = {k: (r.status, r.summary) for k, r in results.items() if r.status != "pass"}
    # a manual item is never a pass; silent rules and weeks without a game-day or deploy are worth a look
    assert not_passing.keys() == {"weekly-dashboard-review", "weekly-silent-alerts", "weekly-chaos-results",
                                  "monthly-slo-target-review", "monthly-resilience-inputs", "monthly-dora",
                                  "monthly-stack-versions"}
    assert results["weekly-dashboard-review"].status == "manual"
    assert results["monthly-slo-target-review"].summary.startswith("availability: tighten to 99.950%")
