"""The report's "time ranges that consumed the most budget", on a hand-made ledger."""
from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from gamesre.reports.budget_report import hourly_bad_units, slo_table, top_burn_ranges
from gamesre.slo.budget import Ledger, compute_snapshot
from gamesre.slo.spec import load_slos

AT = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)


def test_the_burning_hours_are_found_merged_and_sized() -> None:
    slo = load_slos()["availability"]  # occurrences, 99.9%, rolling 30 d
    end = int(AT.timestamp())
    minutes = np.arange(end - 30 * 86_400, end, 60, dtype=np.int64)
    total = np.full(minutes.size, 1000.0)
    good = total - 0.0  # a perfect month...
    burst = (minutes >= end - 10 * 86_400) & (minutes < end - 10 * 86_400 + 2 * 3600)
    good[burst] = 900.0  # ...but for two hours with 10% errors, ten days ago
    ledger = Ledger(minutes, good, total)
    snapshot = compute_snapshot(slo, ledger, AT)
    ranges = top_burn_ranges(slo, ledger, snapshot)
    assert len(ranges) == 1
    r = ranges[0]
    assert r.start == datetime.fromtimestamp(end - 10 * 86_400, UTC) and (r.end - r.start).total_seconds() == 7200
    assert r.bad_units == 120 * 100
    assert r.budget_share == pytest.approx(12_000 / snapshot.budget_total)
    hours, per_hour = hourly_bad_units(slo, ledger, end - 86_400, end)
    assert hours.size == 24 and per_hour.sum() == 0
    assert "| availability |" in slo_table([(snapshot, "rollback")])
