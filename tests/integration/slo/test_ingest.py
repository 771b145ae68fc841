"""SLO ingest against a real Prometheus holding the demo's backfilled history (planted incidents included)."""
from __future__ import annotations

import numpy as np
import pytest

from gamesre.integrations.prometheus import PrometheusClient, PrometheusQueryError, PrometheusUnreachable
from gamesre.integrations.store import SREStore
from gamesre.slo.ingest import IngestError, ingest_all, ingest_slo
from gamesre.slo.spec import load_slos, parse_slos

pytestmark = pytest.mark.integration


def minute(ts: float) -> int:
    return int(ts // 60 * 60)


@pytest.fixture
def store(tmp_path) -> SREStore:
    return SREStore(f"sqlite:///{tmp_path / 'sre.db'}")


def test_outage_minutes_have_traffic_and_no_good_events(history_prometheus, store) -> None:
    outage = history_prometheus.incident("game-server-outage")
    start, end = minute(outage.start.timestamp()) - 1800, minute(outage.end.timestamp()) + 1800
    prom = PrometheusClient(history_prometheus.url)
    ingest_slo(load_slos()["availability"], prom, store, start, end)
    ledger = store.ledger("availability", start, end)
    assert ledger.minutes.tolist() == list(range(start, end, 60))  # every minute has data
    inside = (ledger.minutes >= outage.start.timestamp()) & (ledger.minutes + 60 <= outage.end.timestamp())
    assert inside.sum() == (outage.end - outage.start).total_seconds() // 60  # every minute of the outage
    assert (ledger.total[inside] > 0).all() and (ledger.good[inside] == 0).all()
    before = ledger.minutes + 60 <= outage.start.timestamp()
    assert (ledger.good[before] / ledger.total[before]).min() > 0.99


def test_ledger_totals_equal_counter_increases_computed_by_prometheus(history_prometheus, store) -> None:
    prom = PrometheusClient(history_prometheus.url)
    end = minute(history_prometheus.end.timestamp()) - 3600
    start = end - 6 * 3600
    slo = load_slos()["matchmaking-success"]
    ingest_slo(slo, prom, store, start, end, chunk=3600)
    ledger = store.ledger(slo.name, start, end)
    for side, selectors, got in (("total", slo.sli.total_selectors(), ledger.total.sum()),
                                 ("good", slo.sli.good_selectors(), ledger.good.sum())):
        sel = selectors[0].promql()  # the history has no counter resets: a plain difference is exact
        expected = prom.scalar(f"sum({sel})", end) - prom.scalar(f"sum({sel})", start)
        assert got == pytest.approx(expected, rel=1e-12), side


def test_rerun_and_other_chunking_write_identical_rows(history_prometheus, store, tmp_path) -> None:
    prom = PrometheusClient(history_prometheus.url)
    end = minute(history_prometheus.end.timestamp())
    start = end - 3 * 3600
    slos = load_slos()
    for name in ("error-rate", "concurrent-sessions", "latency"):
        ingest_slo(slos[name], prom, store, start, end, chunk=3600)
        first = store.ledger(name)
        ingest_slo(slos[name], prom, store, start, end, chunk=3600)
        other = SREStore(f"sqlite:///{tmp_path / f'other-{name}.db'}")
        ingest_slo(slos[name], prom, other, start, end, chunk=6 * 3600)
        for again in (store.ledger(name), other.ledger(name)):
            assert np.array_equal(first.minutes, again.minutes)
            assert np.array_equal(first.good, again.good) and np.array_equal(first.total, again.total)


def test_threshold_sli_writes_one_unit_per_minute(history_prometheus, store) -> None:
    prom = PrometheusClient(history_prometheus.url)
    end = minute(history_prometheus.end.timestamp())
    ingest_slo(load_slos()["concurrent-sessions"], prom, store, end - 7200, end)
    ledger = store.ledger("concurrent-sessions")
    assert len(ledger) == 120
    assert set(ledger.total.tolist()) == {1.0} and set(ledger.good.tolist()) <= {0.0, 1.0}


def test_a_query_prometheus_rejects_names_the_slo_and_the_others_are_still_written(history_prometheus, store):
    raw = {"version": 1, "slos": [
        {"name": "availability", "service": "game-server", "owner": "game-server", "description": "ok",
         "sli": {"kind": "ratio",
                 "good": [{"metric": "game_action_requests_total",
                           "matchers": {"code": "200", "service": "game-server"}}],
                 "total": [{"metric": "game_action_requests_total",
                            "matchers": {"service": "game-server"}}]},
         "target": 0.999, "window": "rolling-30d", "budgeting_method": "occurrences"},
        {"name": "bad-regex", "service": "game-server", "owner": "game-server", "description": "RE2 rejects (?=",
         "sli": {"kind": "ratio",
                 "good": [{"metric": "game_action_requests_total", "matchers": {"service": "game-server"},
                           "matchers_regex": {"action": "(?=move)move"}}],
                 "total": [{"metric": "game_action_requests_total",
                            "matchers": {"service": "game-server"}}]},
         "target": 0.999, "window": "rolling-30d", "budgeting_method": "occurrences"},
    ]}
    slos = parse_slos(raw, "test.yaml")
    end = minute(history_prometheus.end.timestamp())
    with pytest.raises(IngestError) as err:
        ingest_all(slos, PrometheusClient(history_prometheus.url), store, end - 600, end)
    assert list(err.value.failures) == ["bad-regex"]
    assert "rejected the query" in err.value.failures["bad-regex"]
    assert len(store.ledger("availability")) == 10


def test_unreachable_prometheus_is_an_explicit_error(store) -> None:
    from demo.procs import free_port

    prom = PrometheusClient(f"http://127.0.0.1:{free_port()}", retries=0)
    with pytest.raises(PrometheusUnreachable, match="unreachable"):
        prom.query("up", 0)
    with pytest.raises(IngestError, match=r"availability.*unreachable"):
        ingest_all([load_slos()["availability"]], prom, store, 1_800_000_000, 1_800_000_600)


def test_bad_promql_is_a_query_error_with_prometheus_reason(history_prometheus) -> None:
    with pytest.raises(PrometheusQueryError, match=r"bad_data.*parse error"):
        PrometheusClient(history_prometheus.url).query("sum(", 0)
