"""The chaos game-day report: what people read (Markdown, HTML, Slack), what CI reads (JUnit) and the score."""
from __future__ import annotations

import base64
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesre.reports.chaos_report import (
    gameday_score,
    junit_xml,
    order_runs,
    probe_bounds,
    render_html,
    render_markdown,
    score_trend_chart,
    slack_summary,
    timeline_chart,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)  # 14:00 KST


def iso(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def epoch(seconds: float) -> float:
    return (T0 + timedelta(seconds=seconds)).timestamp()


def make_run(experiment: str, verdict: str, score: float | None, **overrides: Any) -> dict[str, Any]:
    """A stored run record as the chaos workflow writes it; a passing, recovered pod kill unless overridden."""
    run: dict[str, Any] = {
        "id": f"chaos_experiment__manual__{experiment}", "experiment": experiment,
        "title": f"Experiment {experiment}", "service": "game-server", "backend": "local", "environment": "prod",
        "gameday_id": "chaos_gameday__scheduled__2026-11-26", "dry_run": verdict == "dry_run",
        "fault": {"kind": "pod_delete", "params": {}, "duration_s": 60.0},
        "targets": ["gs-stable-1"], "blast_radius": {"requested": "50%", "resolved": 1, "of": 2},
        "requested_by": "alice", "verdict": verdict, "reason": f"{experiment} reason", "score": score,
        "weight": 1.0,
        "gates": [{"gate": "budget", "passed": True, "reason": "budget 80% left", "evidence": {"left": 0.8}}],
        "steady_before": {"passed": True, "probes": [
            {"name": "availability", "query": "q", "value": 0.999, "passed": True, "tolerance": ">= 0.99"}]},
        "steady_after": {"passed": True, "recovered_within_s": 12.0, "recovery_time_s": 120.0, "probes": [
            {"name": "availability", "query": "q", "value": 0.998, "passed": True, "tolerance": ">= 0.99"}]},
        "probes": [{"name": "availability", "query": "q", "tolerance": ">= 0.99", "weight": 1.0,
                    "samples": [[epoch(60 + 10 * i), 0.999 if i % 4 else 0.95, bool(i % 4)] for i in range(12)],
                    "success_pct": 75.0}],
        "abort": None,
        "timeline": {"requested_at": iso(0), "injected_at": iso(60), "aborted_at": None,
                     "recovered_at": iso(132), "finished_at": iso(180)},
        "recovery": {"recovered": True, "remaining": [], "detail": "instance back", "attempts": 1},
        "run_url": f"http://localhost:8080/dags/chaos_experiment/runs/{experiment}",
    }
    if verdict in ("refused", "skipped", "dry_run"):
        run.update(probes=[], steady_after=None, recovery=None,
                   timeline={"requested_at": iso(0), "injected_at": None, "aborted_at": None,
                             "recovered_at": None, "finished_at": iso(5)})
    run.update(overrides)
    return run


def suite() -> list[dict[str, Any]]:
    """One run of every verdict, deliberately out of attention order."""
    return [
        make_run("gs-pass", "pass", 87.5, weight=2.0),
        make_run("gs-refused", "refused", None, gates=[
            {"gate": "budget", "passed": True, "reason": "budget 80% left"},
            {"gate": "evening_peak", "passed": False, "reason": "it is 19:30 KST, inside the evening peak"}]),
        make_run("gs-fail", "fail", 40.0, reason="availability fell to 0.95 | below 0.99"),
        make_run("gs-skipped", "skipped", None),
        make_run("gs-aborted", "aborted", 55.0,
                 abort={"rule": "burn_rate", "at": iso(150), "reason": "burn rate 20x over 1 min"},
                 timeline={"requested_at": iso(0), "injected_at": iso(60), "aborted_at": iso(150),
                           "recovered_at": iso(200), "finished_at": iso(240)}),
        make_run("gs-dry", "dry_run", None),
        make_run("gs-error", "error", None, reason="Prometheus unreachable", recovery=None,
                 timeline={"requested_at": iso(0), "injected_at": None, "aborted_at": None,
                           "recovered_at": None, "finished_at": iso(30)}),
    ]


# ----------------------------------------------------------------------------------------------- the score


def test_gameday_score_is_the_weighted_mean_of_the_scored_runs() -> None:
    runs = suite()
    # pass 87.5 x 2, fail 40 x 1, aborted 55 x 1; refused/skipped/dry-run and the unscored error do not count
    assert gameday_score(runs) == pytest.approx((2 * 87.5 + 40 + 55) / 4)  # 67.5
    # a refused run with a stale score still does not count, a missing weight counts as 1, weight 0 drops a run
    extra = [make_run("r", "refused", 0.0), make_run("w", "pass", 100.0, weight=None),
             make_run("z", "fail", 0.0, weight=0.0)]
    assert gameday_score(runs + extra) == pytest.approx((2 * 87.5 + 40 + 55 + 100) / 5)
    assert gameday_score([make_run("r", "refused", None), make_run("d", "dry_run", None)]) is None
    assert gameday_score([]) is None
    with pytest.raises(ValueError, match="negative weight"):
        gameday_score([make_run("n", "pass", 50.0, weight=-1.0)])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0.01, 100)), min_size=1, max_size=12))
def test_gameday_score_lies_between_the_lowest_and_highest_run_score(pairs: list[tuple[float, float]]) -> None:
    runs = [make_run(f"e{i}", "pass", score, weight=weight) for i, (score, weight) in enumerate(pairs)]
    score = gameday_score(runs)
    assert score is not None
    scores = [s for s, _ in pairs]
    assert min(scores) - 1e-9 <= score <= max(scores) + 1e-9


# ----------------------------------------------------------------------------------------------- Markdown


def section_order(text: str) -> list[str]:
    return re.findall(r"^## (\S+): ", text, flags=re.MULTILINE)


def test_markdown_puts_problems_first_and_states_the_numbers() -> None:
    gameday = {"id": "chaos_gameday__scheduled__2026-11-26", "suite": "weekly", "started_at": iso(0),
               "finished_at": iso(900), "verdict": "fail", "score": None}
    md = render_markdown(suite(), gameday=gameday)

    assert md.startswith("# Chaos game day weekly: 2026-11-26 14:00 KST\n")
    assert ("7 experiments: 1 fail, 1 aborted, 1 error, 1 refused, 1 pass, 1 dry_run, 1 skipped"
            " · game-day score 67.5") in md
    assert section_order(md) == ["gs-fail", "gs-aborted", "gs-error", "gs-refused", "gs-pass", "gs-dry",
                                 "gs-skipped"]
    table = [line for line in md.splitlines() if line.startswith("| gs-")]
    assert [row.split(" | ")[0] for row in table] == [f"| gs-{n}" for n in
                                                      ("fail", "aborted", "error", "refused", "pass", "dry",
                                                       "skipped")]
    # the reason's pipe does not break the table; the row carries score, fault, targets and blast radius
    assert ("| gs-fail | fail | 40.0 | pod_delete for 60 s | gs-stable-1 | 50% → 1 of 2 "
            "| availability fell to 0.95 \\| below 0.99 |") in table


def test_markdown_section_explains_gates_steady_state_abort_and_recovery() -> None:
    md = render_markdown(suite())
    sections = dict(zip(section_order(md), re.split(r"^## \S+: .*$", md, flags=re.MULTILINE)[1:], strict=True))

    refused = sections["gs-refused"]
    assert refused.index("- refused: it is 19:30 KST, inside the evening peak (gate evening_peak)") < refused.index(
        "- passed: budget 80% left (gate budget)")
    assert "Recovery: nothing was injected" in refused

    passed = sections["gs-pass"]
    assert "| availability | 0.999 | >= 0.99 | pass |" in passed
    assert "Steady state after: pass, back to steady state after 12 s (allowed 2 min)" in passed
    assert "| availability | >= 0.99 | 1 | 12 | 3 | 0 | 75.0% |" in passed
    assert "Recovery: recovered after 1 attempt: instance back" in passed
    assert "- injected: 2026-11-26 14:01:00 KST" in passed
    assert "[Airflow run](http://localhost:8080/dags/chaos_experiment/runs/gs-pass)" in passed

    assert "Aborted by rule burn_rate at 2026-11-26 14:02:30 KST: burn rate 20x over 1 min" in sections["gs-aborted"]


def test_markdown_shouts_when_a_fault_is_still_injected() -> None:
    stuck = make_run("gs-stuck", "pass", 95.0, recovery={
        "recovered": False, "remaining": ["gs-stable-2"], "detail": "process did not restart", "attempts": 3})
    md = render_markdown([*suite(), stuck])
    loud = ("**RECOVERY FAILED for gs-stuck, still injected: gs-stable-2 (after 3 attempts; "
            "process did not restart)**")
    assert md.count(loud) == 2  # at the top of the report and in its own section
    assert md.index(loud) < md.index("| experiment |")
    assert section_order(md)[0] == "gs-stuck"  # a fault left behind outranks every verdict


def test_markdown_shows_the_score_history_of_each_experiment() -> None:
    history = [{"id": f"old{i}", "experiment": "gs-pass", "finished_at": iso(-7 * 86_400 * i),
                "verdict": "pass", "score": 90.0 + i} for i in (2, 1)]
    md = render_markdown(suite(), history=history)
    assert "Score history: 92.0 (11-12 KST) → 91.0 (11-19 KST) → 87.5 (this run)" in md


# ----------------------------------------------------------------------------------------------- HTML


def test_html_escapes_stored_text_and_embeds_the_charts() -> None:
    evil = make_run("gs-evil<img src=x onerror=alert(1)>", "fail", 10.0,
                    title='<script>alert("pwned")</script>', reason="a & b <b>bold</b>",
                    run_url="javascript:alert(1)")
    page = render_html([evil, make_run("gs-pass", "pass", 90.0)], history=[
        {"id": "h", "experiment": "gs-pass", "finished_at": iso(-86_400), "verdict": "pass", "score": 88.0}])

    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script>" not in page and "<img src=x" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page
    assert "a &amp; b &lt;b&gt;bold&lt;/b&gt;" in page
    assert "javascript:" not in page  # not linked, not echoed
    assert '<a href="http://localhost:8080/dags/chaos_experiment/runs/gs-pass">' in page
    assert page.index("gs-evil") < page.index("<h2>gs-pass")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3  # score trend + one timeline per run
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img in images)
    assert not re.search(r'src="(?!data:)|<link|<script', page)  # nothing loaded from outside: self-contained


# ----------------------------------------------------------------------------------------------- charts


def test_timeline_chart_is_a_png_for_full_and_degenerate_runs() -> None:
    full = make_run("gs-pass", "pass", 80.0, title="costs $5 and $6", probes=[
        {"name": "availability", "tolerance": ">= 0.99", "weight": 1.0, "success_pct": 50.0,
         "samples": [[epoch(60), 0.999, True], [epoch(70), None, None], [epoch(80), 0.9, False],
                     [epoch(90), None, False]]},
        {"name": "p99 $latency$", "tolerance": "p99 under 250 ms", "bounds": {"low": None, "high": 0.25},
         "samples": [[epoch(60), 0.1, True]]},
        {"name": "players", "tolerance": "between 100 and 500", "samples": []},
    ])
    degenerate = [
        full,
        make_run("empty", "error", None, probes=[]),
        make_run("nones", "fail", 0.0, probes=[
            {"name": "availability", "samples": [[epoch(i), None, None] for i in range(5)]}]),
        make_run("bare", "error", None, probes=None, timeline=None, fault=None),
        {"experiment": "minimal"},
    ]
    for run in degenerate:
        png = timeline_chart(run)
        assert png.startswith(PNG_MAGIC) and len(png) > 1000
    pyplot = sys.modules.get("matplotlib.pyplot")
    assert pyplot is None or pyplot.get_fignums() == []  # no global figure state left behind


def test_score_trend_chart_is_a_png_with_and_without_history() -> None:
    history: list[Mapping[str, Any]] = [
        {"id": "a", "experiment": "gs-pass", "finished_at": iso(-86_400 * 7), "verdict": "pass", "score": 90.0},
        {"id": "b", "experiment": "gs-pass", "finished_at": iso(0), "verdict": "fail", "score": 40.0},
        {"id": "c", "experiment": "gs-refused", "finished_at": iso(0), "verdict": "refused", "score": None},
        {"id": "g", "suite": "weekly", "finished_at": iso(0), "verdict": "fail", "score": 65.0},
    ]
    for hist, gameday in ((history, {"score": 70.0, "finished_at": iso(100)}), ([], None),
                          (history[2:3], None)):
        png = score_trend_chart(hist, gameday=gameday)
        assert png.startswith(PNG_MAGIC)


def test_probe_bounds_come_from_the_bounds_or_a_plain_tolerance() -> None:
    assert probe_bounds({"tolerance": ">= 0.99"}) == (0.99, None)
    assert probe_bounds({"tolerance": "< 250"}) == (None, 250.0)
    assert probe_bounds({"tolerance": "between 500 and 100"}) == (100.0, 500.0)
    assert probe_bounds({"tolerance": "p99 < 250ms"}) == (None, None)  # not structured: nothing drawn
    assert probe_bounds({"tolerance": ">= 0.99", "bounds": {"low": 0.95, "high": None}}) == (0.95, None)


# ----------------------------------------------------------------------------------------------- JUnit


def test_junit_xml_parses_back_with_one_case_per_run() -> None:
    runs = [*suite(), make_run("gs-odd", "exploded", None, reason="bad\x00byte"),
            make_run("gs-stuck", "pass", 95.0, recovery={"recovered": False, "remaining": ["gs-stable-2"]})]
    root = ET.fromstring(junit_xml(runs, suite_name="chaos weekly"))  # noqa: S314 (our own output, not untrusted)

    assert root.tag == "testsuite" and root.get("name") == "chaos weekly"
    cases = root.findall("testcase")
    assert len(cases) == int(root.get("tests", "0")) == 9
    assert {c.get("classname") for c in cases} == {"chaos.game-server"}
    by_name = {c.get("name"): c for c in cases}
    # fail, aborted, and the pass whose fault is still injected
    assert int(root.get("failures", "")) == sum(len(c.findall("failure")) for c in cases) == 3
    assert int(root.get("errors", "")) == sum(len(c.findall("error")) for c in cases) == 2  # error + unknown
    assert int(root.get("skipped", "")) == sum(len(c.findall("skipped")) for c in cases) == 3

    failure = by_name["gs-fail"].find("failure")
    assert failure is not None and failure.get("message") == "availability fell to 0.95 | below 0.99"
    aborted = by_name["gs-aborted"].find("failure")
    assert aborted is not None and aborted.get("type") == "aborted"
    assert "burn_rate" in (aborted.text or "")
    refused = by_name["gs-refused"].find("skipped")
    assert refused is not None and refused.get("message") == "refused: gs-refused reason"
    stuck = by_name["gs-stuck"].find("failure")
    assert stuck is not None and stuck.get("type") == "recovery" and "gs-stable-2" in (stuck.get("message") or "")
    odd = by_name["gs-odd"].find("error")
    assert odd is not None and "exploded" in (odd.get("message") or "")
    assert by_name["gs-pass"].find("failure") is None and by_name["gs-pass"].find("error") is None

    assert by_name["gs-pass"].get("time") == "180.000"  # requested -> finished
    props = {p.get("name"): p.get("value") for p in by_name["gs-pass"].iter("property")}
    assert props["score"] == "87.5" and props["verdict"] == "pass"
    suite_props = {p.get("name"): p.get("value") for p in root.findall("properties/property")}
    assert float(suite_props["gameday_score"] or "nan") == pytest.approx(gameday_score(runs) or -1)


# ----------------------------------------------------------------------------------------------- Slack


def test_slack_summary_lists_failing_first_and_flags_unrecovered_faults() -> None:
    stuck = make_run("gs-stuck", "fail", 20.0, reason="<!channel> & co", recovery={
        "recovered": False, "remaining": ["gs-stable-2"], "detail": "kill -CONT failed", "attempts": 3})
    unknown = make_run("gs-lost", "pass", 99.0, recovery=None)  # injected, but no recovery was recorded
    text = slack_summary([*suite(), stuck, unknown], gameday={"suite": "weekly", "score": 61.3},
                         report_url="http://reports.local/chaos/2026-11-26.html")
    lines = text.splitlines()

    assert lines[0].startswith("*Chaos game day weekly* · 9 experiments: 2 fail")
    assert "game-day score 61.3" in lines[0] and lines[0].endswith("<http://reports.local/chaos/2026-11-26.html|"
                                                                   "full report>")
    assert lines[1] == ":rotating_light: still injected: *gs-stuck* → gs-stable-2 (kill -CONT failed)"
    assert lines[2].startswith(":rotating_light: still injected? no recovery recorded for *gs-lost*")
    experiments = [re.search(r"\*(\S+)\*", line).group(1) for line in lines[3:]]  # type: ignore[union-attr]
    # the two possibly-injected faults first (failing before passing), then by verdict
    assert experiments == ["gs-stuck", "gs-lost", "gs-fail", "gs-aborted", "gs-error", "gs-refused", "gs-pass",
                           "gs-dry", "gs-skipped"]
    assert lines[3].startswith(":x: *gs-stuck* (game-server) fail · score 20.0 · &lt;!channel&gt; &amp; co")
    assert ":octagonal_sign: *gs-aborted*" in text and "aborted by burn_rate" in text
    assert ":white_check_mark: *gs-pass* (game-server) pass · score 87.5" in text
    assert "<http://localhost:8080/dags/chaos_experiment/runs/gs-fail|run>" in text


def test_slack_summary_stays_quiet_when_every_fault_was_removed() -> None:
    text = slack_summary(suite())
    assert ":rotating_light:" not in text
    assert text.splitlines()[0].startswith("*Chaos experiments* · 7 experiments")


def test_order_runs_is_stable_within_a_verdict_lowest_score_first() -> None:
    runs = [make_run("b", "pass", 90.0), make_run("a", "pass", 70.0), make_run("c", "pass", None)]
    assert [r["experiment"] for r in order_runs(runs)] == ["a", "b", "c"]
