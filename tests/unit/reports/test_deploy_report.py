"""The deploy evidence: the request and outcome, per stage its gates, per step the verdict, statistics and queries."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from gamesre.core.gates import GateResult
from gamesre.deploy.analysis import Counts, SliSpec, Thresholds, judge_sli, judge_step, sli_queries
from gamesre.deploy.config import load_deploy_config
from gamesre.reports.deploy_report import evidence_document, evidence_markdown
from gamesre.reports.document import render_html, render_markdown, render_slack

T = Thresholds.from_settings(load_deploy_config().analysis.to_dict())
AVAILABILITY = SliSpec("availability", 0.999, ('game_action_requests_total{service="game-server"}',),
                       good=('game_action_requests_total{code="200",service="game-server"}',))
LATENCY = SliSpec("latency", 0.95, ("game_action_duration_seconds_count",),
                  good=('game_action_duration_seconds_bucket{le="0.5"}',))
NOT_JUDGED = [{"slo": "capacity", "decision": "not_judged", "reason": "gauge SLI over the whole fleet (e.g. "
               "capacity): it has no per-version event counts to compare"}]
RUN_URL = "http://localhost:8080/dags/game_service_deploy/runs/manual__2026-03-02"


def step_verdict(stage: str, step: int, label: str, counts: dict[str, tuple[Counts | None, Counts]],
                 elapsed_s: float = 120.0) -> dict[str, Any]:
    """A deploy_verdict row as the store returns it: the analysis trigger's event is its evidence."""
    cohorts = {"candidate": {"version": "1.6.66"}, "baseline": {"version": "1.6.65"}}
    slis = []
    for sli in (AVAILABILITY, LATENCY):
        candidate, baseline = counts[sli.slo]
        queries = {name: sli_queries(sli, cohort, int(elapsed_s)) for name, cohort in cohorts.items()}
        slis.append(judge_sli(sli, candidate, baseline, T, queries=queries,
                              error=None if candidate else "Prometheus: connection refused"))
    decided = judge_step(slis, elapsed_s, T, NOT_JUDGED)
    event = {**decided.to_dict(), "polls": 4, "errors": 0, "decided_at": "2026-03-02T01:10:00+00:00",
             "thresholds": T.to_dict()}
    return {"id": step + 1, "deployment_id": "manual__2026-03-02", "stage": stage, "step": step, "step_label": label,
            "decision": decided.decision, "reason": decided.reason, "evidence": event,
            "decided_at": datetime(2026, 3, 2, 1, 10, tzinfo=UTC)}


@pytest.fixture
def rolled_back() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A forced canary promoted in dev and rolled back in prod, where availability regressed."""
    gates = [GateResult("lock", True, "deploy lock taken by manual__2026-03-02"),
             GateResult("budget", True, "budget exhausted (state freeze); bypassed by force: hotfix for login",
                        bypassed=True),
             GateResult("calendar", True, "no freeze or event window now")]
    record = {
        "id": "manual__2026-03-02", "service": "game-server", "version": "1.6.66", "image": "gs:1.6.66",
        "previous_version": "1.6.65", "strategy": "canary", "stages": ["dev", "prod"], "backend": "local",
        "change_ticket": "CHG-20", "requested_by": "alice", "dry_run": False, "forced": True,
        "force_reason": "hotfix for login", "outcome": "rolled_back",
        "reason": "prod canary 10%: regression: availability: 3.000% bad of 1000",
        "stage_log": [
            {"stage": "dev", "gates": [g.to_dict() for g in gates], "strictness": 1.0, "outcome": "promoted",
             "steps": [{"index": 0, "label": "canary 10%", "decision": "pass"}]},
            {"stage": "prod", "gates": [g.to_dict() for g in gates], "strictness": 1.2, "outcome": "rolled_back",
             "steps": [{"index": 0, "label": "canary 10%", "decision": "fail"}]},
        ],
        "requested_at": datetime(2026, 3, 2, 1, 0, tzinfo=UTC), "run_url": RUN_URL,
    }
    verdicts = [
        step_verdict("dev", 0, "canary 10%", {"availability": (Counts(2000, 0), Counts(8000, 4)),
                                              "latency": (Counts(2000, 10), Counts(8000, 40))}, elapsed_s=300),
        step_verdict("prod", 0, "canary 10%", {"availability": (Counts(1000, 30), Counts(5000, 2)),
                                               "latency": (None, Counts(5000, 20))}),
    ]
    return record, verdicts


def section(md: str, heading: str) -> str:
    """The Markdown from `heading` to the next heading of its level or above."""
    level = heading.split(" ")[0]
    start = md.index(heading + "\n")
    following = re.search(rf"^#{{1,{len(level)}}} ", md[start + len(heading):], flags=re.MULTILINE)
    return md[start: start + len(heading) + following.start()] if following else md[start:]


def test_the_header_says_what_was_deployed_how_and_why_it_ended(rolled_back: Any) -> None:
    md = evidence_markdown(*rolled_back)
    assert md.startswith("# Deploy game-server 1.6.66: rolled_back\n\n")
    assert "- **reason:** prod canary 10%: regression: availability: 3.000% bad of 1000\n" in md
    assert f"- **run:** [{RUN_URL}]({RUN_URL})\n" in md
    assert "- **strategy:** canary\n- **backend:** local\n- **stages:** dev, prod\n" in md
    assert "- **requested by:** alice\n- **change ticket:** CHG-20\n- **forced:** hotfix for login\n" in md


def test_each_stage_lists_its_gates_and_only_its_own_steps(rolled_back: Any) -> None:
    md = evidence_markdown(*rolled_back)
    assert [line for line in md.splitlines() if line.startswith("## ")] == ["## Stage dev: promoted",
                                                                            "## Stage prod: rolled_back"]
    dev, prod = section(md, "## Stage dev: promoted"), section(md, "## Stage prod: rolled_back")
    assert "| lock | passed | deploy lock taken by manual__2026-03-02 |" in dev
    assert "| budget | bypassed | budget exhausted (state freeze); bypassed by force: hotfix for login |" in dev
    assert "### canary 10%: pass" in dev and "### canary 10%: fail" not in dev
    assert "### canary 10%: fail" in prod and "### canary 10%: pass" not in prod


def test_a_step_shows_its_verdict_statistics_queries_and_the_slis_not_judged(rolled_back: Any) -> None:
    record, verdicts = rolled_back
    failed = verdicts[1]
    availability = failed["evidence"]["slis"][0]
    stat = availability["statistic"]
    md = section(evidence_markdown(record, verdicts), "### canary 10%: fail")

    assert failed["reason"] in md
    assert availability["decision"] == "fail" and availability["rule"] in ("fast_abort", "sprt_reject")
    assert (f"| availability | fail | {availability['rule']} | 30 bad of 1,000 (3.0000%) | 2 bad of 5,000 (0.0400%) "
            f"| {stat['llr']:.2f} | {stat['p0']:.4%} | {stat['p1']:.4%} |") in md
    # no data for the candidate: said so, with no statistic rather than "nan"
    assert "| latency | inconclusive | no_data | no data | 20 bad of 5,000 (0.4000%) | - | - | - |" in md
    assert "nan" not in md
    candidate_total = availability["queries"]["candidate"]["total"]
    assert 'version="1.6.66"' in candidate_total
    assert f"- availability candidate total: `{candidate_total}`" in md
    assert md.count("- latency ") == 4  # total and good of both cohorts
    assert ("**Not judged:**\n\n- capacity: gauge SLI over the whole fleet (e.g. capacity): it has no per-version "
            "event counts to compare") in md


def test_a_blocked_deploy_shows_the_refusing_gate_and_stages_never_started() -> None:
    record = {"service": "game-server", "version": "1.7.0", "strategy": "rolling", "backend": "kubernetes",
              "stages": ["staging", "prod"], "requested_by": "ci", "change_ticket": "CHG-21", "forced": False,
              "force_reason": "", "outcome": "blocked", "run_url": "javascript:alert(1)",
              "reason": "stage staging blocked: page_alerts: page alert(s) firing for the service: GameServerDown",
              "stage_log": [{"stage": "staging", "gates": [
                  GateResult("lock", True, "deploy lock taken").to_dict(),
                  GateResult("page_alerts", False, "page alert(s) firing for the service: GameServerDown").to_dict()]},
                  {"stage": "prod"}]}
    doc = evidence_document(record, [])
    md = render_markdown(doc)
    assert "## Stage staging: not started" in md and "## Stage prod: not started" in md
    assert "| page_alerts | BLOCKED | page alert(s) firing for the service: GameServerDown |" in md
    assert "forced" not in md
    assert "- **run:** javascript:alert(1)" in md and "](javascript" not in md  # said, never linked
    page = render_html(doc)
    assert '<tr class="t-fail"><td>page_alerts</td><td>BLOCKED</td>' in page
    assert 'href="javascript' not in page


def test_the_evidence_reads_the_same_in_html_and_slack(rolled_back: Any) -> None:
    doc = evidence_document(*rolled_back)
    page, slack = render_html(doc), render_slack(doc)
    assert "<h1>Deploy game-server 1.6.66: rolled_back</h1>" in page
    assert '<h3 class="t-fail">canary 10%: fail</h3>' in page
    assert "<code>sum(increase(game_action_requests_total{service=&quot;game-server&quot;,version=&quot;1.6.66&quot;}" \
        in page
    assert slack.startswith("*Deploy game-server 1.6.66: rolled_back*\n• *reason:* prod canary 10%")
    assert f"• *run:* <{RUN_URL}|{RUN_URL}>" in slack
    assert evidence_markdown(*rolled_back) == render_markdown(doc)
