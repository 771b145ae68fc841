"""Alert analytics from ALERTS samples, and the daily and weekly alert items built on them."""
from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesre.checklists.analytics import (
    DataError,
    alert_stats,
    alerts_without_impact,
    firing_impact,
    firing_intervals,
    never_fired,
    noisy_alerts,
    rule_keys,
    series_key,
)
from gamesre.checklists.inputs import InputData
from gamesre.checklists.runner import run_item
from gamesre.checklists.spec import ChecklistSpec
from gamesre.slo.spec import SloCatalog
from tests.unit.checklists.conftest import AT, AT_EPOCH, alert_samples, flat_ledger, with_bad

WEEK_START = AT_EPOCH - 7 * 86_400 - 10 * 3600  # Monday 23 February 00:00 KST
PAGE = {"severity": "page", "slo": "availability", "service": "game-server"}


def test_consecutive_samples_make_one_firing_and_a_gap_splits_it() -> None:
    samples = alert_samples(("SloBurnPageFast", PAGE, [0, 60, 120, 300, 360]),
                            ("SloBurnPageFast", {**PAGE, "slo": "latency"}, [60]))
    samples.loc[len(samples)] = {"alertname": "SloBurnPageFast", "labels": PAGE, "alertstate": "pending",
                                 "timestamp": 600}
    intervals = firing_intervals(samples, 60)
    assert intervals[["start", "end", "duration", "samples"]].to_dict("records") == [
        {"start": 0.0, "end": 180.0, "duration": 180.0, "samples": 3},
        {"start": 60.0, "end": 120.0, "duration": 60.0, "samples": 1},
        {"start": 300.0, "end": 420.0, "duration": 120.0, "samples": 2},
    ]
    assert intervals["series"].iloc[0] == 'SloBurnPageFast{service="game-server",severity="page",slo="availability"}'
    assert intervals["labels"].iloc[1]["slo"] == "latency"


def test_series_keys_ignore_alertstate_and_order() -> None:
    assert series_key("A", {"b": "2", "a": "1", "alertstate": "firing", "alertname": "A"}) == 'A{a="1",b="2"}'


def test_bad_samples_are_refused() -> None:
    with pytest.raises(DataError, match="step must be positive"):
        firing_intervals(alert_samples(("A", {}, [0])), 0)
    bad = pd.DataFrame({"alertname": ["A"], "labels": [["not", "a", "mapping"]], "timestamp": [0]})
    with pytest.raises(DataError, match="labels should be a mapping, got list"):
        firing_intervals(bad, 60)
    with pytest.raises(DataError, match="missing column"):
        firing_intervals(pd.DataFrame({"alertname": ["A"]}), 60)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 500), max_size=60))
def test_every_firing_sample_lies_in_exactly_one_interval(steps: list[int]) -> None:
    times = sorted({60 * s for s in steps})
    intervals = firing_intervals(alert_samples(("A", {}, times)), 60)
    for t in times:
        assert ((intervals["start"] <= t) & (t < intervals["end"])).sum() == 1
    assert int(intervals["samples"].sum()) == len(times)
    starts, ends = intervals["start"].to_numpy(), intervals["end"].to_numpy()
    assert all(starts[i + 1] > ends[i] for i in range(len(starts) - 1))  # separated by a missing step


def test_noisy_alerts_fire_often_and_resolve_fast() -> None:
    flappy = [t for k in range(6) for t in (k * 3600, k * 3600 + 60)]  # 6 firings of 2 minutes
    slow = [t for k in range(6) for t in range(k * 7200, k * 7200 + 1200, 60)]  # 6 firings of 20 minutes
    rare = [0, 60]
    intervals = firing_intervals(alert_samples(("Flappy", {}, flappy), ("Slow", {}, slow), ("Rare", {}, rare)), 60)
    stats = alert_stats(intervals)
    assert stats.loc["Flappy", "fires"] == 6 and stats.loc["Flappy", "median_duration"] == 120
    assert stats.loc["Slow", "median_duration"] == 1200 and stats.loc["Rare", "fires"] == 1
    assert list(noisy_alerts(stats, min_fires=5, max_median_duration=600).index) == ["Flappy"]
    assert noisy_alerts(stats, min_fires=7, max_median_duration=600).empty
    assert alert_stats(intervals, start=3 * 3600).loc["Flappy", "fires"] == 3  # firings that started in the period


def test_rules_that_never_fired_are_named_by_their_static_labels() -> None:
    templated = {"severity": "ticket", "instance": "{{ $labels.instance }}"}
    rules = pd.DataFrame({"alertname": ["SloBurnPageFast", "SloBurnPageFast", "HighLoad", "HighLoad"],
                          "labels": [{"slo": "availability", "severity": "page"},
                                     {"slo": "latency", "severity": "page"}, templated, dict(templated)]})
    intervals = firing_intervals(alert_samples(("SloBurnPageFast", {**PAGE, "team": "game-server"}, [0]),
                                               ("HighLoad", {"severity": "ticket", "instance": "gs-1"}, [0])), 60)
    unfired = never_fired(rules, intervals)
    assert unfired.to_dict("records") == [{"alertname": "SloBurnPageFast",
                                           "rule": 'SloBurnPageFast{severity="page",slo="latency"}',
                                           "severity": "page"}]
    assert len(rule_keys(rules)) == 3
    assert len(never_fired(rules, intervals.iloc[0:0])) == 3


def test_slo_impact_of_each_firing(slos: SloCatalog) -> None:
    start = WEEK_START
    availability = with_bad(flat_ledger(start, start + 86_400, 1000.0), start + 3600, start + 3660, 990.0)  # 1% errors
    matchmaking = flat_ledger(start, start + 86_400, 100.0, good_share=0.99)  # 1% failures, far inside 5%
    ledgers = {"availability": availability, "matchmaking-success": matchmaking}
    samples = alert_samples(
        ("SloBurnPageFast", PAGE, range(start + 3600, start + 3900, 60)),  # during the bad minute
        ("SloBurnPageFast", PAGE, range(start + 7200, start + 7500, 60)),  # later, nothing bad
        ("MatchmakingQueueGrowing", {"service": "matchmaking"}, [start + 600]),
        ("NodeDiskFull", {}, [start + 3600]),  # no slo or service label: every SLO is related
        ("SloBurnPageFast", {**PAGE, "slo": "latency"}, [start]),  # no ledger for latency
    )
    impact = firing_impact(firing_intervals(samples, 60), list(slos), ledgers, before=300)
    by = {(r.alertname, r.start): r for r in impact.itertuples()}
    first = by[("SloBurnPageFast", float(start + 3600))]
    assert (first.impact, first.bad_minutes, first.slos) == ("bad", 1, ["availability"])
    assert first.judged_minutes == 10  # [start - 5m, end): 5 before + 5 firing minutes
    assert by[("SloBurnPageFast", float(start + 7200))].impact == "none"
    assert by[("MatchmakingQueueGrowing", float(start + 600))].impact == "none"
    assert by[("NodeDiskFull", float(start + 3600))].impact == "bad"
    assert by[("SloBurnPageFast", float(start))].impact == "unknown"
    quiet = alerts_without_impact(impact)
    assert quiet.to_dict("index") == {"MatchmakingQueueGrowing": {"firings": 1, "with_impact": 0,
                                                                  "without_impact": 1, "unknown": 0}}
    # at 20x the budget's rate the 1% minute (10x) is no longer a bad minute
    assert firing_impact(firing_intervals(samples, 60), list(slos), ledgers,
                         burn_threshold=20.0)["impact"].tolist().count("bad") == 0


def alerts_inputs(samples: pd.DataFrame, current: pd.DataFrame | None = None) -> dict[str, object]:
    return {
        "alertmanager_alerts": current if current is not None else pd.DataFrame(
            columns=["alertname", "labels", "state", "starts_at"]),
        "alert_samples": InputData(samples, source="prometheus", queries=("ALERTS",), meta={"step": 60}),
    }


def test_the_daily_item_fails_on_a_firing_page_and_lists_what_resolved(checklists: ChecklistSpec) -> None:
    item = checklists.get("daily-alerts")
    samples = alert_samples(("SloBurnPageFast", PAGE, range(AT_EPOCH - 1800, AT_EPOCH, 60)),
                            ("SloBurnTicketFast", {"severity": "ticket", "slo": "latency"},
                             range(AT_EPOCH - 7200, AT_EPOCH - 6000, 60)),
                            ("Old", {"severity": "ticket"}, [AT_EPOCH - 2 * 86_400]))
    current = pd.DataFrame({"alertname": ["SloBurnPageFast", "Silenced"],
                            "labels": [{"alertname": "SloBurnPageFast", **PAGE}, {"severity": "page"}],
                            "state": ["active", "suppressed"], "starts_at": [AT_EPOCH - 1800, AT_EPOCH - 60]})
    r = run_item(item, alerts_inputs(samples, current), AT)
    assert r.status == "fail"
    assert r.summary == ("1 page alert(s) firing: SloBurnPageFast (availability, for 30m); 1 firing(s) resolved in "
                         "the last 24h; 1 silenced or inhibited")
    assert r.evidence["firing"][0]["since"] == "2026-03-02T00:30:00Z"
    assert [(x["alertname"], x["duration"]) for x in r.evidence["resolved"]] == [("SloBurnTicketFast", 1200.0)]
    assert r.evidence["inputs"]["alert_samples"]["queries"] == ["ALERTS"]
    quiet = run_item(item, alerts_inputs(samples.iloc[0:0]), AT)
    assert (quiet.status, quiet.summary) == ("pass", "no alert firing; 0 firing(s) resolved in the last 24h")


def test_the_weekly_alert_reviews(checklists: ChecklistSpec, slos: SloCatalog) -> None:
    flappy = [t for k in range(5) for t in (WEEK_START + k * 86_400, WEEK_START + k * 86_400 + 60)]
    samples = alert_samples(("HaproxyBackendFlap", {"severity": "ticket", "service": "game-server"}, flappy))
    noisy = run_item(checklists.get("weekly-noisy-alerts"), alerts_inputs(samples), AT)
    assert noisy.status == "warn"
    assert noisy.summary == ("1 noisy alert(s): HaproxyBackendFlap (5 fires, median 2m); raise their thresholds or "
                             "`for`")
    assert noisy.evidence["alerts"][0]["fires"] == 5 and noisy.evidence["noisy"] == ["HaproxyBackendFlap"]
    four = run_item(checklists.get("weekly-noisy-alerts"), alerts_inputs(samples.iloc[2:]), AT)
    assert four.status == "pass"

    rules = pd.DataFrame({"alertname": ["HaproxyBackendFlap", "SloBurnPageFast"],
                          "labels": [{"severity": "ticket"}, {"severity": "page", "slo": "availability"}]})
    silent = run_item(checklists.get("weekly-silent-alerts"), {**alerts_inputs(samples), "alert_rules": rules}, AT)
    assert silent.status == "warn" and silent.evidence["never_fired_total"] == 1
    assert silent.summary == ('1 of 2 alerting rules never fired in 28d: SloBurnPageFast{severity="page",'
                              'slo="availability"}')
    no_rules = run_item(checklists.get("weekly-silent-alerts"),
                        {**alerts_inputs(samples), "alert_rules": rules.iloc[0:0]}, AT)
    assert no_rules.status == "error" and "no alerting rules" in no_rules.summary

    ledgers = {s.name: flat_ledger(WEEK_START - 86_400, WEEK_START + 7 * 86_400, 1000.0) for s in slos}
    impact = run_item(checklists.get("weekly-alerts-without-impact"),
                      {**alerts_inputs(samples), "slos": slos, "ledgers": ledgers}, AT)
    assert impact.status == "warn"
    assert impact.summary == "1 alert(s) fired with no SLO impact: HaproxyBackendFlap (5 firing(s))"
    assert impact.evidence["firings"][0]["slos"] == ["availability", "latency", "error-rate", "concurrent-sessions",
                                                     "data-save-success"]
