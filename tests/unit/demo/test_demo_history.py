"""The history generator on short spans: contract-complete, consistent, deterministic, incidents as planted."""
from __future__ import annotations

import io
import itertools
import shutil
import subprocess
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from demo import history
from demo.curve import KST
from demo.history import (
    BackfillError,
    Incident,
    block_windows,
    compute_history,
    generate,
    plan_incidents,
    write_openmetrics,
)
from demo.topology import DEFAULT_TOPOLOGY
from gamesre.core.contract import Contract, load_contract

END = datetime(2025, 6, 4, 12, 0, tzinfo=KST)  # a Wednesday noon; the 35 days before it hold the incidents
INCIDENTS = plan_incidents(END)
STABLE = [i for i in DEFAULT_TOPOLOGY if i.track == "stable"]


def incident(kind: str) -> Incident:
    return next(i for i in INCIDENTS if i.kind == kind)


def short_text(end: datetime, minutes: int = 120, seed: int = 7) -> str:
    out = io.StringIO()
    generate(out, end, span=timedelta(minutes=minutes), seed=seed, incidents=INCIDENTS)
    return out.getvalue()


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract()


@pytest.fixture(scope="module")
def outage_history() -> history.History:
    end = incident("outage").end + timedelta(minutes=10)
    return compute_history(end, span=timedelta(minutes=30), seed=7, incidents=INCIDENTS)


@pytest.fixture(scope="module")
def outage_text(outage_history: history.History) -> str:
    out = io.StringIO()
    write_openmetrics(out, outage_history)
    return out.getvalue()


@pytest.fixture(scope="module")
def parsed(outage_history: history.History) -> dict[str, list]:
    """Every sample, parsed by prometheus_client's OpenMetrics parser one timestamp at a time.

    prometheus_client 0.26 drops the samples of a histogram series after its first timestamp when one
    document holds several (it de-duplicates series within a group regardless of timestamp), so each
    minute is written as its own document here; promtool reads the whole file (see the promtool test).
    """
    samples: dict[str, list] = defaultdict(list)
    for i in range(len(outage_history.ts)):
        out = io.StringIO()
        write_openmetrics(out, outage_history, slice(i, i + 1))
        for f in text_string_to_metric_families(out.getvalue()):
            samples[f.name].extend(f.samples)
    return samples


def family(name: str, contract: Contract) -> str:
    return name.removesuffix("_total") if contract.metric(name).type == "counter" else name


def test_incidents_are_planted_relative_to_the_end() -> None:
    assert [i.kind for i in INCIDENTS] == ["slow_burn", "latency", "outage", "matchmaking"]
    durations = {i.kind: i.end - i.start for i in INCIDENTS}
    assert durations["outage"] == timedelta(minutes=6)
    assert timedelta(hours=1.5) <= durations["latency"] <= timedelta(hours=3)
    assert durations["matchmaking"] == timedelta(hours=1)
    assert durations["slow_burn"] == timedelta(days=3)
    assert all(END - timedelta(days=35) < i.start and i.end < END for i in INCIDENTS)
    later = plan_incidents(END + timedelta(days=1))
    assert [i.start - j.start for i, j in zip(later, INCIDENTS, strict=True)] == [timedelta(days=1)] * 4
    assert [i.kind for i in plan_incidents(END, days=5)] == ["matchmaking"]


def test_output_is_openmetrics_ending_with_eof(outage_text: str) -> None:
    assert outage_text.endswith("\n# EOF\n")
    assert "_created" not in outage_text


def test_every_contract_series_of_every_stable_instance_is_present(parsed: dict[str, list],
                                                                    contract: Contract) -> None:
    assert set(parsed) == {family(m.name, contract) for m in contract.metrics.values()}
    for m in contract.metrics.values():
        samples = parsed[family(m.name, contract)]
        instances = [i for i in STABLE if m in contract.metrics_for(i.service)]
        seen: dict[str, set[tuple[str, ...]]] = defaultdict(set)
        for s in samples:
            allowed = set(contract.all_labels(m)) - ({"le"} if not s.name.endswith("_bucket") else set())
            assert set(s.labels) == allowed, (m.name, s.labels)
            inst = next(i for i in instances if i.name == s.labels["instance"])
            assert (s.labels["job"], s.labels["service"], s.labels["version"], s.labels["track"]) == (
                inst.job(contract), inst.service, inst.version, "stable")
            seen[inst.name].add(tuple(s.labels[label] for label in m.labels))
        expected = set(itertools.product(*(contract.label_values[label] for label in m.labels)))
        assert {name: combos for name, combos in seen.items()} == {i.name: expected for i in instances}


def test_samples_every_60s_up_to_the_end(parsed: dict[str, list]) -> None:
    end = incident("outage").end + timedelta(minutes=10)
    stamps = sorted({float(s.timestamp) for s in parsed["game_build_info"]})
    assert len(stamps) == 30 and stamps[-1] == end.timestamp()
    assert set(np.diff(stamps)) == {60.0}


def test_counters_never_decrease_and_histograms_are_consistent(parsed: dict[str, list], contract: Contract) -> None:
    for m in contract.metrics.values():
        if m.type == "gauge":
            continue
        by_series: dict[tuple, list] = defaultdict(list)
        for s in parsed[family(m.name, contract)]:
            by_series[(s.name, tuple(sorted(s.labels.items())))].append(s)
        for series in by_series.values():
            values = [s.value for s in sorted(series, key=lambda s: float(s.timestamp))]
            assert all(b >= a for a, b in itertools.pairwise(values)), (m.name, series[0].labels)
        if m.type == "histogram":
            groups: dict[tuple, dict[str, float]] = defaultdict(dict)
            for s in parsed[m.name]:
                key = (tuple(sorted((k, v) for k, v in s.labels.items() if k != "le")), float(s.timestamp))
                groups[key][s.labels.get("le", s.name)] = s.value
            for group in groups.values():
                buckets = [group[le] for le in [*(str(b) for b in m.buckets), "+Inf"]]
                assert all(b >= a for a, b in itertools.pairwise(buckets))
                assert group["+Inf"] == group[f"{m.name}_count"]


def _success_share(h: history.History, rows: np.ndarray) -> float:
    ok = total = 0.0
    for inst in h.instances:
        for (_, code), series in inst.scalars("game_action_requests_total").items():
            added = float(np.diff(series)[rows[1:]].sum())  # per-minute increments inside the window
            total += added
            ok += added if code == "200" else 0.0
    return ok / total


def _window(kind: str, before: timedelta, after: timedelta) -> tuple[history.History, np.ndarray]:
    inc = incident(kind)
    h = compute_history(inc.end + after, span=inc.end - inc.start + before + after, seed=3, incidents=INCIDENTS)
    return h, inc.mask(h.ts)


def test_outage_fails_every_action() -> None:
    h, inside = _window("outage", timedelta(minutes=60), timedelta(minutes=30))
    assert inside.sum() == 6
    assert _success_share(h, inside) < 0.001
    assert _success_share(h, ~inside) > 0.99
    # saves wait in the write-behind queue: none is lost, all are slow
    failed = sum(np.diff(i.scalars("game_data_save_total")[("failure",)])[inside[1:]].sum()
                 for i in h.instances if "game_data_save_total" in i.values)
    saved = sum(np.diff(i.scalars("game_data_save_total")[("success",)])[inside[1:]].sum()
                for i in h.instances if "game_data_save_total" in i.values)
    assert failed == 0 and saved > 0
    rejected = sum(np.diff(i.scalars("game_session_admissions_total")[("rejected",)])[~inside[1:]].sum()
                   for i in h.instances if "game_session_admissions_total" in i.values)
    assert rejected == 0  # outside the outage no login is refused


def test_latency_regression_pushes_many_actions_over_half_a_second(contract: Contract) -> None:
    h, inside = _window("latency", timedelta(hours=1), timedelta(hours=1))
    le = list(contract.metric("game_action_duration_seconds").buckets).index(0.5)

    def slow_share(rows: np.ndarray) -> float:
        slow = total = 0.0
        for inst in h.instances:
            for hist in inst.histograms("game_action_duration_seconds").values():
                count = np.diff(hist.count)[rows[1:]].sum()
                total += count
                slow += count - np.diff(hist.buckets[:, le])[rows[1:]].sum()
        return slow / total

    assert slow_share(inside) > 0.2
    assert slow_share(~inside) < 0.01


def test_matchmaking_degradation_drops_success_well_below_95_percent() -> None:
    h, inside = _window("matchmaking", timedelta(hours=1), timedelta(minutes=30))
    mm = next(i for i in h.instances if "matchmaking_requests_total" in i.values)

    def success(rows: np.ndarray) -> float:
        by_result: dict[str, float] = defaultdict(float)
        for (_, _, result), series in mm.scalars("matchmaking_requests_total").items():
            by_result[result] += np.diff(series)[rows[1:]].sum()
        return by_result["success"] / sum(by_result.values())

    assert success(inside) < 0.85
    assert success(~inside) > 0.98
    queue_inside = np.mean([q[inside].mean() for q in mm.scalars("matchmaking_queue_size").values()])
    queue_outside = np.mean([q[~inside].mean() for q in mm.scalars("matchmaking_queue_size").values()])
    assert queue_inside > 2 * queue_outside  # waits 4x longer: the queues really grow


def test_slow_burn_error_ratio_is_above_the_budget_rate() -> None:
    inc = incident("slow_burn")
    h = compute_history(inc.start + timedelta(hours=14), span=timedelta(hours=2), seed=5, incidents=INCIDENTS)
    everything = np.ones(len(h.ts), dtype=bool)
    error_ratio = 1 - _success_share(h, everything)
    assert 0.0015 < error_ratio < 0.004  # 0.25 % planted, budget rate 0.1 %
    quiet = compute_history(inc.start - timedelta(days=1), span=timedelta(hours=2), seed=5, incidents=INCIDENTS)
    assert 1 - _success_share(quiet, np.ones(len(quiet.ts), dtype=bool)) < 0.001


def test_traffic_and_sessions_follow_the_daily_curve() -> None:
    day = compute_history(datetime(2025, 6, 3, 23, 59, tzinfo=KST), span=timedelta(days=1), seed=1, incidents=[])
    hours = np.array([datetime.fromtimestamp(int(t), KST).hour for t in day.ts])
    per_minute = np.sum([np.diff(s, prepend=0) for i in day.instances
                         for s in i.scalars("game_action_requests_total").values()], axis=0)
    assert per_minute[hours == 20].mean() > 3 * per_minute[hours == 4].mean()
    sessions = np.sum([i.scalars("game_sessions_active")[()] for i in day.instances
                       if "game_sessions_active" in i.values], axis=0)
    assert 40_000 < sessions[hours == 20].mean() < 70_000  # tens of thousands against 100,000 capacity


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    end = END - timedelta(days=2)
    assert short_text(end, minutes=20, seed=11) == short_text(end, minutes=20, seed=11)
    assert short_text(end, minutes=20, seed=11) != short_text(end, minutes=20, seed=12)


def test_block_windows_align_like_promtool() -> None:
    ts = np.arange(1_700_000_000, 1_700_000_000 + 5 * 86400, 60)
    windows = block_windows(ts)
    assert windows[0].start == 0 and windows[-1].stop == len(ts)
    assert all(a.stop == b.start for a, b in itertools.pairwise(windows))
    for w in windows:
        assert len(set((ts[w] // history.BLOCK_S).tolist())) == 1


def test_backfill_names_promtool_when_it_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(history.shutil, "which", lambda name: None)
    with pytest.raises(BackfillError, match="promtool is not installed"):
        history.backfill(tmp_path / "data", END, days=1)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_turns_a_short_history_into_a_block(tmp_path: Path) -> None:
    path = tmp_path / "history.om"
    path.write_text(short_text(END, minutes=30))
    result = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(path), str(tmp_path / "d")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    series = sum(len(m.buckets) + 3 if m.type == "histogram" else 1
                 for i in STABLE for m in load_contract().metrics_for(i.service)
                 for _ in itertools.product(*(load_contract().label_values[label] for label in m.labels)))
    assert f" {series * 30} " in result.stdout  # NUM SAMPLES: every series, every minute
