"""Maintenance exclusions against the ledger: adjusted budgets leave out exactly the window's minutes."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from gamesre.integrations.prometheus import PrometheusClient
from gamesre.integrations.store import SREStore
from gamesre.slo.evaluation import evaluate_slos
from gamesre.slo.ingest import ingest_slo
from gamesre.slo.spec import load_policies, load_slos

pytestmark = pytest.mark.integration


def test_a_window_over_the_outage_removes_exactly_its_bad_events(history_prometheus, tmp_path) -> None:
    outage = history_prometheus.incident("game-server-outage")
    slo = load_slos()["availability"]
    store = SREStore(f"sqlite:///{tmp_path / 'sre.db'}")
    start = int((outage.start - timedelta(hours=6)).timestamp()) // 60 * 60
    end = int((outage.end + timedelta(hours=6)).timestamp()) // 60 * 60
    ingest_slo(slo, PrometheusClient(history_prometheus.url), store, start, end)
    at = datetime.fromtimestamp(end, UTC)

    # a maintenance window from 5 minutes before the outage to 5 minutes after it
    w_start, w_end = outage.start - timedelta(minutes=5), outage.end + timedelta(minutes=5)
    raw = evaluate_slos([slo], load_policies(), store, at)[0].snapshot
    store.upsert_window({"id": "mw-test", "kind": "adhoc", "start": w_start, "end": w_end,
                         "services": ["game-server"], "reason": "failover drill", "owner": "sre",
                         "ticket": "OPS-1", "status": "completed", "excludes_budget": True})
    adjusted = evaluate_slos([slo], load_policies(), store, at)[0].snapshot

    ledger = store.ledger(slo.name)
    inside = (ledger.minutes >= w_start.timestamp()) & (ledger.minutes < w_end.timestamp())
    bad = ledger.total - ledger.good
    assert bad[inside].sum() > 1000  # the outage is really in there
    # independently from the rows: raw counts everything, adjusted leaves the window's minutes out
    assert raw.bad == pytest.approx(bad.sum())
    assert adjusted.bad_adjusted == pytest.approx(bad[~inside].sum())
    assert adjusted.bad == pytest.approx(raw.bad)  # the raw figures are kept next to the adjusted ones
    assert adjusted.excluded_minutes == int(inside.sum()) == 16
    expected_sli = ledger.good[~inside].sum() / ledger.total[~inside].sum()
    assert adjusted.sli_adjusted == pytest.approx(expected_sli)
    assert adjusted.budget_consumed_adjusted == pytest.approx(bad[~inside].sum() / adjusted.budget_total)
    assert adjusted.budget_consumed_adjusted < raw.budget_consumed
    assert adjusted.budget_consumed == pytest.approx(raw.budget_consumed)
    # a window for another service changes nothing for game-server
    store.update_window("mw-test", services=["matchmaking"])
    again = evaluate_slos([slo], load_policies(), store, at)[0].snapshot
    assert again.bad_adjusted == pytest.approx(raw.bad) and np.isclose(again.sli_adjusted, raw.sli)
