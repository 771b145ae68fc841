"""The chaos run record's documents: a rejected request, the steady state read at one instant, the monitor's
samples, the game-day window of a fault's span, the report's shape and the score history."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gamesre.chaos.catalog import ChaosCatalog, load_catalog
from gamesre.chaos.records import (
    gameday_window,
    probe_samples,
    rejected_run,
    report_record,
    score_history,
    steady_state_check,
)

AT = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog() -> ChaosCatalog:
    return load_catalog()


def test_a_rejected_request_keeps_what_can_be_told_cut_to_the_columns(catalog: ChaosCatalog) -> None:
    raw = {"experiment": "gs-latency", "requested_by": "x" * 200, "dry_run": 1}
    doc = rejected_run(raw, catalog, reason="invalid chaos experiment request: duration: ...", requested_by="alice")
    assert doc["verdict"] == "invalid" and doc["service"] == "game-server" and doc["fault"]["kind"] == "network_latency"
    assert doc["requested_by"] == "x" * 128 and doc["dry_run"] is True and doc["environment"] == "prod"
    unknown = rejected_run({"experiment": "nope"}, catalog, reason="r", requested_by="alice")
    assert (unknown["title"], unknown["service"], unknown["fault"], unknown["weight"]) == ("", "", {}, 0.0)
    assert unknown["requested_by"] == "alice"


def test_the_steady_state_holds_when_every_probe_passes_and_its_values_become_the_baselines(
        catalog: ChaosCatalog) -> None:
    probes = catalog.experiment("gs-instance-kill").steady_state.probes
    held = steady_state_check(probes, {"availability": 0.999, "latency-p95": 0.2}, {}, 100.0)
    assert held["passed"] and held["at"] == 100.0
    assert held["baselines"] == {"availability": 0.999, "latency-p95": 0.2}
    assert [p["query"] for p in held["probes"]] == [p.query for p in probes]
    broken = steady_state_check(probes, {"availability": None, "latency-p95": 0.2}, {"availability": "down"}, 100.0)
    assert not broken["passed"] and broken["reason"] == "availability: no data: down"


def test_probe_samples_carry_their_bounds_and_success(catalog: ChaosCatalog) -> None:
    experiment = catalog.experiment("gs-instance-kill")
    docs = probe_samples(experiment, {"availability": [[1, 0.999, True], [6, None, None]]})
    availability, latency = docs
    assert availability["bounds"] == {"low": 0.99, "high": None}
    assert availability["success_pct"] == 50.0  # no_data: abort counts the poll without data as failed
    assert latency["samples"] == [] and latency["success_pct"] is None


def test_the_gameday_window_lasts_at_least_a_minute_and_until_now_while_unrecovered() -> None:
    record = {"id": "r1", "experiment": "gs-latency", "service": "game-server", "injected_at": AT,
              "recovered_at": AT + timedelta(seconds=20), "fault": {"kind": "network_latency"},
              "targets": ["gs-stable-1"], "requested_by": "alice"}
    window = gameday_window(record, AT + timedelta(hours=1))
    assert (window["start"], window["end"]) == (AT, AT + timedelta(minutes=1))
    assert window["reason"] == "chaos game-day: gs-latency (network_latency on gs-stable-1)"
    assert window["excludes_budget"] is False and window["owner"] == "alice"
    assert gameday_window({**record, "recovered_at": None}, AT + timedelta(hours=1))["end"] == AT + timedelta(hours=1)


def test_the_report_record_has_instants_as_text_and_a_timeline() -> None:
    doc = report_record({"id": "r1", "requested_at": AT, "injected_at": None, "score": 90.0})
    assert doc["requested_at"] == AT.isoformat() and doc["score"] == 90.0
    assert doc["timeline"] == {"requested_at": AT.isoformat(), "injected_at": None, "aborted_at": None,
                               "recovered_at": None, "finished_at": None}


def test_the_score_history_holds_only_scored_runs_and_gamedays_oldest_first() -> None:
    runs = [{"id": "r2", "experiment": "e", "finished_at": AT, "verdict": "pass", "score": 100.0},
            {"id": "r3", "experiment": "e", "finished_at": AT, "verdict": "refused", "score": None}]
    gamedays = [{"id": "g1", "suite": "weekly", "finished_at": AT - timedelta(days=7), "verdict": "pass",
                 "score": 80.0}]
    assert [h["id"] for h in score_history(runs, gamedays)] == ["g1", "r2"]
    assert score_history(runs, gamedays)[0]["kind"] == "gameday"
