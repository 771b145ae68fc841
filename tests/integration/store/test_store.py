"""The SRE store on SQLite and PostgreSQL: idempotent ledger upserts, states (its schema: test_schema.py)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from gamesre.integrations.store import SREStore

pytestmark = pytest.mark.integration

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, minute-aligned


def test_ledger_upsert_is_idempotent_and_reads_back_sorted(store_url: str) -> None:
    store = SREStore(store_url)
    slices = [(T0 + 120, 9.0, 10.0), (T0, 5.0, 5.0), (T0 + 60, 0.0, 0.0)]
    store.upsert_ledger("availability", slices)
    store.upsert_ledger("availability", slices)  # a re-run of the same interval
    store.upsert_ledger("availability", [(T0 + 120, 8.0, 10.0)])  # a corrected value replaces the old one
    got = store.ledger("availability")
    assert got.minutes.tolist() == [T0, T0 + 60, T0 + 120]
    assert got.good.tolist() == [5.0, 0.0, 8.0]
    assert got.total.tolist() == [5.0, 0.0, 10.0]
    assert store.ledger("availability", start=T0 + 60, end=T0 + 120).minutes.tolist() == [T0 + 60]
    assert store.ledger_extent("availability") == (T0, T0 + 120)
    assert store.ledger_extent("latency") is None
    assert len(store.ledger("latency")) == 0


def test_ledger_rows_keep_the_minutes_they_cover(store_url: str) -> None:
    store = SREStore(store_url)
    store.upsert_ledger("availability", [(T0, 5.0, 5.0, 1), (T0 + 1800, 300.0, 310.0, 30), (T0 + 1860, 9.0, 10.0)])
    got = store.ledger("availability")
    assert got.span.tolist() == [1, 30, 1]
    assert store.ledger_row_before("availability", T0 + 1800) == T0
    assert store.ledger_row_before("availability", T0 + 1801) == T0 + 1800
    assert store.ledger_row_before("availability", T0) is None


@pytest.mark.parametrize(
    "bad, reason",
    [((T0 + 1, 1.0, 1.0), "not minute-aligned"), ((T0, 2.0, 1.0), "invalid counts"),
     ((T0, float("nan"), 1.0), "invalid counts"), ((T0, -1.0, 1.0), "invalid counts"),
     ((T0, 1.0, 1.0, 0), "invalid span"), ((T0, 1.0, 1.0, 1.5), "invalid span")],
)
def test_ledger_rejects_bad_slices_and_writes_nothing(store_url: str, bad: tuple, reason: str) -> None:
    store = SREStore(store_url)
    with pytest.raises(ValueError, match=reason):
        store.upsert_ledger("availability", [(T0 + 60, 1.0, 1.0), bad])
    assert len(store.ledger("availability")) == 0


def test_published_state_replaces_current_and_keeps_history(store_url: str) -> None:
    store = SREStore(store_url)
    t1 = datetime(2026, 1, 1, tzinfo=UTC)
    store.publish_state("service", "game-server", "normal", t1, [], {"slos": ["availability"]})
    store.publish_state("service", "game-server", "deploy_freeze", t1 + timedelta(hours=1),
                        [{"slo": "availability", "rule": "budget_consumed>=0.5", "value": np.float64(0.61)}], {})
    current = store.current_state("service", "game-server")
    assert current is not None
    assert current["state"] == "deploy_freeze"
    assert current["computed_at"] == t1 + timedelta(hours=1)
    assert current["reasons"][0]["value"] == 0.61
    assert [h["state"] for h in store.state_history("service", "game-server")] == ["normal", "deploy_freeze"]
    assert store.current_state("service", "matchmaking") is None


def test_snapshot_upsert_per_slo_instant_and_window(store_url: str) -> None:
    store = SREStore(store_url)
    at = datetime(2026, 1, 1, 1, tzinfo=UTC)
    store.save_snapshot("availability", at, "rolling-30d", "normal", {"sli": 0.9995})
    store.save_snapshot("availability", at, "rolling-30d", "slow_burn", {"sli": 0.998})
    snaps = store.snapshots("availability")
    assert len(snaps) == 1 and snaps[0]["state"] == "slow_burn" and snaps[0]["payload"]["sli"] == 0.998
    assert snaps[0]["at"] == at


def test_unreachable_database_is_a_clear_error() -> None:
    from gamesre.integrations.store import StoreError

    with pytest.raises(StoreError, match="cannot open the SRE store"):
        SREStore("sqlite:////nonexistent-dir/for/sure/sre.db")


def test_packed_days_read_back_exactly_what_the_minute_rows_hold(store_url: str) -> None:
    import sqlalchemy as sa

    from gamesre.integrations.store import slo_ledger

    store = SREStore(store_url)
    rng = np.random.default_rng(7)
    minutes = T0 - 3600 + 60 * np.sort(rng.choice(4 * 1440, size=3000, replace=False))  # 4 days, gaps
    total = rng.integers(0, 500, size=minutes.size).astype(float)
    good = np.floor(total * rng.uniform(0.9, 1.0, size=minutes.size))
    store.upsert_ledger("latency", zip(minutes.tolist(), good.tolist(), total.tolist(), strict=True))
    store.upsert_ledger("latency", [(int(minutes[5]), 1.0, 2.0)])  # a later correction inside a packed day
    good[5], total[5] = 1.0, 2.0
    got = store.ledger("latency")
    assert got.minutes.tolist() == minutes.tolist()
    assert got.good.tolist() == good.tolist() and got.total.tolist() == total.tolist()
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(slo_ledger.c.minute, slo_ledger.c.good).where(slo_ledger.c.slo == "latency")
                            .order_by(slo_ledger.c.minute)).all()
    assert [r[0] for r in rows] == minutes.tolist() and [r[1] for r in rows] == good.tolist()
    lo, hi = int(minutes[100]), int(minutes[2000])
    window = store.ledger("latency", start=lo, end=hi)
    assert window.minutes.tolist() == minutes[100:2000].tolist()


def test_windows_give_exclusions_per_service_and_skip_cancelled_ones(store_url: str) -> None:
    store = SREStore(store_url)
    t = datetime(2026, 12, 1, 17, tzinfo=UTC)  # Tuesday 02:00 KST
    base = {"kind": "recurring", "reason": "weekly maintenance", "owner": "sre", "ticket": "OPS-1",
            "status": "scheduled", "excludes_budget": True}
    store.upsert_window({**base, "id": "w1", "start": t, "end": t + timedelta(hours=4),
                         "services": ["matchmaking", "game-server"]})
    store.upsert_window({**base, "id": "w2", "start": t + timedelta(days=1), "end": t + timedelta(days=1, hours=1),
                         "services": ["matchmaking"], "status": "cancelled"})
    store.upsert_window({**base, "id": "w3", "start": t + timedelta(days=2), "end": t + timedelta(days=2, hours=1),
                         "services": ["game-server"], "excludes_budget": False, "kind": "event"})
    day = timedelta(days=1)
    assert store.exclusions("game-server", t - day, t + 3 * day) == [(int(t.timestamp()), int(t.timestamp()) + 14400)]
    assert store.exclusions("matchmaking", t - day, t + 3 * day) == [(int(t.timestamp()), int(t.timestamp()) + 14400)]
    assert [w["id"] for w in store.windows(include_cancelled=True)] == ["w1", "w2", "w3"]
    assert store.windows(t + 5 * day, t + 6 * day) == []
    w1 = store.windows()[0]
    assert w1["services"] == ["game-server", "matchmaking"] and w1["start"] == t


def test_window_update_keeps_fields_it_does_not_name(store_url: str) -> None:
    store = SREStore(store_url)
    t = datetime(2026, 12, 1, 17, tzinfo=UTC)
    store.upsert_window({"id": "w", "kind": "adhoc", "start": t, "end": t + timedelta(hours=1),
                         "services": ["game-server"], "reason": "r", "owner": "kim", "ticket": "OPS-9",
                         "status": "scheduled", "excludes_budget": True})
    store.update_window("w", silence_ids=["s1", "s2"])
    store.update_window("w", status="active")
    store.upsert_window({"id": "w", "kind": "adhoc", "start": t, "end": t + timedelta(hours=2),
                         "services": ["game-server"], "reason": "r", "owner": "kim", "ticket": "OPS-9",
                         "status": "active", "excludes_budget": True})  # a re-registration keeps the silences
    w = store.window("w")
    assert w is not None and w["silence_ids"] == ["s1", "s2"] and w["status"] == "active"
    assert w["created_by"] == "kim" and w["end"] == t + timedelta(hours=2) and store.window("nope") is None
    with pytest.raises(KeyError, match="no maintenance window 'nope'"):
        store.update_window("nope", status="active")
