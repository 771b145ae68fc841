"""The checklist report: failing items first, readable evidence in Markdown and HTML, charts, the Slack summary."""
from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from gamesre.checklists.inputs import InputData, Unavailable
from gamesre.checklists.result import ItemResult
from gamesre.checklists.runner import run_item
from gamesre.checklists.spec import load_checklists
from gamesre.core.time import KST
from gamesre.reports.checklist_report import (
    SLACK_MAX_CHARS,
    attainment_chart,
    budget_patterns_chart,
    charts,
    render_html,
    render_markdown,
    slack_summary,
)
from gamesre.slo.spec import load_slos
from tests.unit.checklists.conftest import AT, deployments, flat_ledger, with_bad

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WEEK = "2026-W09 KST"  # the week a run at AT (Monday 2 March 2026, 10:00 KST) judges


def kst(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(datetime(year, month, day, hour, tzinfo=KST).timestamp())


WEEK_START, WEEK_END = kst(2026, 2, 23), kst(2026, 3, 2)
BURST = kst(2026, 2, 25, 20)  # Wednesday 20:00 KST: availability fails every request for two hours
PROMETHEUS_DOWN = "connection refused (127.0.0.1:19090)"


@pytest.fixture(scope="module")
def weekly() -> list[ItemResult]:
    """One real result of each status from the weekly checklist, given in the reverse of the report order."""
    spec = load_checklists()
    slos = load_slos()
    ledgers = {s.name: flat_ledger(WEEK_START, WEEK_END, 1000.0) for s in slos}
    ledgers["availability"] = with_bad(ledgers["availability"], BURST, BURST + 7200, 0.0)
    slo_inputs = {"slos": slos, "ledgers": InputData(ledgers, source="store"), "exclusions": {}}
    down = Unavailable(PROMETHEUS_DOWN, source="prometheus", queries=("ALERTS",))
    return [
        run_item(spec.get("weekly-deploy-success"), {"deployments": deployments([])}, AT),
        run_item(spec.get("weekly-dashboard-review"), {}, AT),
        run_item(spec.get("weekly-budget-patterns"), slo_inputs, AT),
        run_item(spec.get("weekly-noisy-alerts"), {"alert_samples": down}, AT),
        run_item(spec.get("weekly-attainment-game-server"), slo_inputs, AT),
    ]


@pytest.fixture(scope="module")
def weekly_html(weekly: list[ItemResult]) -> str:
    return render_html(weekly, cadence="weekly", period_label=WEEK)  # drawing the charts takes a moment: once


def result(item_id: str, status: str, summary: str = "something", evidence: dict[str, Any] | None = None,
           title: str | None = None) -> ItemResult:
    return ItemResult(item_id, title or f"Item {item_id}", "daily", status, summary,  # type: ignore[arg-type]
                      evidence or {}, "sre", datetime(2026, 3, 2, 0, 0, tzinfo=UTC))


def test_the_real_results_have_one_of_each_status(weekly: list[ItemResult]) -> None:
    assert [r.status for r in weekly] == ["pass", "manual", "warn", "error", "fail"]


def test_markdown_puts_failing_items_first_with_the_counts(weekly: list[ItemResult]) -> None:
    md = render_markdown(weekly, cadence="weekly", period_label=WEEK, run_url="https://airflow.example/runs/1")
    assert md.startswith(f"# Weekly SLO checklist, {WEEK}\n")
    assert "**1 fail, 1 error, 1 warn, 1 manual, 1 pass (5 items)**" in md
    assert "[Airflow run](https://airflow.example/runs/1)" in md
    headings = [md.index(h) for h in ("## ❌ FAIL · game-server SLO attainment over the week",
                                      "## 💥 ERROR · Noisy alerts", "## ⚠️ WARN · When the budget was spent",
                                      "## 📝 MANUAL · Dashboard review",
                                      "## ✅ PASS · Deployment success rate and rollbacks")]
    assert headings == sorted(headings)
    overview = [line.split(" | ")[0] for line in md.splitlines() if line.startswith(("| ❌", "| 💥", "| ⚠️", "| 📝",
                                                                                       "| ✅"))]
    assert overview == ["| ❌ fail", "| 💥 error", "| ⚠️ warn", "| 📝 manual", "| ✅ pass"]
    slack = slack_summary(weekly, cadence="weekly", period_label=WEEK).splitlines()
    assert slack[0] == f"*Weekly SLO checklist, {WEEK}* · 1 fail, 1 error, 1 warn, 1 manual, 1 pass (5 items)"
    assert [line.split(" ")[0] for line in slack[1:]] == [":x:", ":boom:", ":warning:", ":memo:",
                                                          ":white_check_mark:"]


def test_markdown_writes_the_attainment_evidence_as_a_table_of_percentages(weekly: list[ItemResult]) -> None:
    md = render_markdown(weekly, cadence="weekly", period_label=WEEK)
    # two hours of 1000 failed requests a minute in a week of 1000 a minute
    sli = 1 - 2 * 60 * 1000 / (7 * 1440 * 1000)
    burn = (1 - sli) / 0.001
    row = next(line for line in md.splitlines() if line.startswith("| availability | fail |"))
    assert row.split(" | ")[2:5] == [f"{100 * sli:.3f}%", "99.900%", f"{burn:.2f}x"]
    assert "| latency | pass | 100.000% | 95.000% |" in md
    assert "- **thresholds:** min_coverage 90.0%" in md
    assert "- `ledgers` from store" in md


def test_markdown_lists_the_top_hours_under_their_slo_in_kst(weekly: list[ItemResult]) -> None:
    md = render_markdown(weekly, cadence="weekly", period_label=WEEK)
    assert "**slos: top hours**" in md
    # 60,000 bad events in an hour against a 30-day budget of 0.1% x 1000 events x 43,200 minutes
    assert f"| availability | 2026-02-25 20:00 KST | 60,000 | {100 * 60_000 / 43_200:.1f}% |" in md
    assert "| availability | 2026-02-25 21:00 KST | 60,000 |" in md


def test_an_error_item_says_it_could_not_be_checked_and_why(weekly: list[ItemResult], weekly_html: str) -> None:
    reason = f"input 'alert_samples' unavailable (prometheus): {PROMETHEUS_DOWN}"
    md = render_markdown(weekly, cadence="weekly", period_label=WEEK)
    assert f"**Could not be checked: {reason}**" in md
    assert "- `alert_samples` from prometheus: unavailable, " + PROMETHEUS_DOWN + " · queries `ALERTS`" in md
    assert f"Could not be checked: input &#x27;alert_samples&#x27; unavailable (prometheus): {PROMETHEUS_DOWN}" \
        in weekly_html
    slack = slack_summary(weekly, cadence="weekly", period_label=WEEK)
    assert f":boom: *Noisy alerts - fire often, resolve fast* (sre) · could not be checked: {reason}" in slack


def test_a_manual_item_says_who_is_assigned_and_numbers_its_steps(weekly: list[ItemResult]) -> None:
    md = render_markdown(weekly, cadence="weekly", period_label=WEEK)
    assert f"**Assigned to sre: 4 step(s) to review for {WEEK}**" in md
    assert "\n1. game-service-overview - every panel" in md and "\n4. Note any panel" in md
    assert ":memo: *Dashboard review* · assigned to sre" in slack_summary(weekly, cadence="weekly",
                                                                           period_label=WEEK)


def test_stored_results_render_the_same_as_fresh_ones(weekly: list[ItemResult]) -> None:
    stored = [ItemResult.from_json(r.to_json()) for r in weekly]
    assert render_markdown(stored, cadence="weekly", period_label=WEEK) == render_markdown(
        weekly, cadence="weekly", period_label=WEEK)


def test_charts_are_pngs_for_the_evidence_that_has_series(weekly: list[ItemResult], weekly_html: str) -> None:
    pngs = charts(weekly)
    assert set(pngs) == {"status-overview", "attainment-weekly-attainment-game-server",
                         "budget-patterns-weekly-budget-patterns"}
    assert all(png.startswith(PNG_MAGIC) for png in pngs.values())
    page = weekly_html
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3 and all(base64.b64decode(i).startswith(PNG_MAGIC) for i in images)
    # each chart sits in its item's section
    assert page.index('alt="SLI against target') > page.index("❌ FAIL · game-server SLO attainment")
    assert page.index('alt="budget spent by weekday and hour') > page.index("⚠️ WARN · When the budget")


def test_charts_are_skipped_when_their_numbers_are_missing() -> None:
    no_numbers = [
        result("a", "warn", evidence={"slos": [{"slo": "x", "sli": None, "target": 0.999},
                                               {"slo": "y", "sli": 0.5, "target": None}]}),
        result("b", "pass", evidence={"slos": [{"slo": "x", "by_weekday": [1.0, 2.0], "by_hour": None,
                                                "window_budget": 10.0},
                                               {"slo": "y", "by_weekday": [0.0] * 7, "by_hour": [0.0] * 24,
                                                "window_budget": 10.0},
                                               {"slo": "z", "by_weekday": [1.0] * 7, "by_hour": [1.0] * 24,
                                                "window_budget": None}]}),
        result("c", "pass", evidence={"slos": "not a list", "by_hour": [None] * 24}),
        result("d", "pass", evidence={"slos": [None, 3, {"sli": "high", "target": "higher"}]}),
    ]
    assert list(charts(no_numbers)) == ["status-overview"]
    assert all(attainment_chart(r) is None and budget_patterns_chart(r) is None for r in no_numbers)
    assert charts([]) == {}
    page = render_html(no_numbers, cadence="daily", period_label="2026-03-01 KST")
    assert page.count("<img") == 1


def test_an_slo_without_an_sli_is_drawn_beside_those_with_one() -> None:
    r = result("a", "warn", evidence={"slos": [{"slo": "x", "sli": None, "target": 0.999, "status": "warn"},
                                               {"slo": "y", "sli": 0.9995, "target": 0.999, "status": "pass"}]})
    png = attainment_chart(r)
    assert png is not None and png.startswith(PNG_MAGIC)


def test_html_escapes_everything_and_links_only_http() -> None:
    evil = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
    r = result("evil", "fail", summary=evil, title="<b>bold</b>", evidence={
        "rows": [{"name": "<i>n</i>", "url": "javascript:alert(1)", "dashboard": "https://grafana.example/d/a?x=1"}],
        "inputs": {"targets": {"source": "prometheus", "queries": ['up{job="a"} < 1'],
                               "links": ["https://prom.example/graph?g0.expr=up", "javascript:alert(2)"]}},
    })
    page = render_html([r], cadence="daily", period_label="2026-03-01 KST", run_url='javascript:alert("run")')
    assert "<script>" not in page and "<img src=x" not in page and "<b>bold" not in page and "<i>n" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in page
    assert 'href="javascript' not in page
    assert '<a href="https://grafana.example/d/a?x=1">grafana.example/d/a?x=1</a>' in page
    assert '<a href="https://prom.example/graph?g0.expr=up">' in page
    assert "<code>up{job=&quot;a&quot;} &lt; 1</code>" in page
    md = render_markdown([r], cadence="daily", period_label="2026-03-01 KST")
    assert "&lt;script>" in md and "<script>" not in md
    assert '`up{job="a"} < 1`' in md  # a query reads as it is in a code span
    assert "[grafana.example/d/a?x=1](https://grafana.example/d/a?x=1)" in md
    assert "](javascript" not in md


def test_long_evidence_is_cut_saying_how_much_was_left_out() -> None:
    rows = [{"name": f"series-{i}", "query": f"rate(x_{i}[5m]) | y", "age": 600.0 + i, "age_text": "no data"
             if i == 0 else f"{10 + i}m"} for i in range(30)]
    r = result("fresh", "fail", evidence={"check": "series_freshness", "stale": rows, "stale_total": 120,
                                         "checked_total": 400})
    md = render_markdown([r], cadence="daily", period_label="2026-03-01 KST")
    assert "| series-9 | `rate(x_9[5m]) \\| y` | 19m |" in md  # the evaluator's own text for the age
    assert "| series-0 | `rate(x_0[5m]) \\| y` | no data |" in md
    assert "series-10 " not in md
    assert "(110 more rows not shown)" in md
    assert "- **checked total:** 400" in md and "stale total" not in md


def test_slack_lists_problems_first_and_stays_short() -> None:
    many = [result(f"pass-{i}", "pass") for i in range(20)] + [
        result(f"fail-{i:02d}", "fail", summary=f"fail {i} " + "x" * 300) for i in range(40)]
    text = slack_summary(many, cadence="daily", period_label="2026-03-01 KST",
                         report_url="https://reports.example/daily.html")
    lines = text.splitlines()
    assert len(text) <= SLACK_MAX_CHARS
    assert lines[0] == ("*Daily SLO checklist, 2026-03-01 KST* · 40 fail, 0 error, 0 warn, 0 manual, 20 pass "
                        "(60 items) · <https://reports.example/daily.html|full report>")
    items = lines[1:-1]
    assert all(line.startswith(":x: *Item fail-") for line in items)
    assert [line.split("*")[1] for line in items] == [f"Item fail-{i:02d}" for i in range(len(items))]
    assert lines[-1] == f"… +{60 - len(items)} more in the full report"


def test_slack_fits_everything_when_short_and_escapes_markup() -> None:
    results = [result("ok", "pass", title="All <good> & fine"), result("bad", "warn", summary="p99 > 2s <!here>")]
    text = slack_summary(results, cadence="daily", period_label="2026-03-01 KST", report_url="/reports/daily.html")
    assert text.splitlines() == [
        "*Daily SLO checklist, 2026-03-01 KST* · 0 fail, 0 error, 1 warn, 0 manual, 1 pass (2 items) · "
        "full report: /reports/daily.html",
        ":warning: *Item bad* (sre) · p99 &gt; 2s &lt;!here&gt;",
        ":white_check_mark: All &lt;good&gt; &amp; fine",
    ]


def test_an_empty_checklist_still_renders() -> None:
    md = render_markdown([], cadence="monthly", period_label="2026-02 KST")
    assert "**no items were checked**" in md
    assert "<h1>Monthly SLO checklist, 2026-02 KST</h1>" in render_html([], cadence="monthly",
                                                                       period_label="2026-02 KST")
