"""Invariants of the budget math over arbitrary ledgers (hypothesis): bounded, finite, monotone, fair."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gamesre.slo.budget import Ledger, SloSnapshot, compute_snapshot
from gamesre.slo.spec import Slo, load_slos

AT = datetime(2026, 3, 20, 0, 0, tzinfo=UTC)
END = int(AT.timestamp())
SPAN = 31 * 1440  # minutes before AT that rows may fall in (the longest window is 31 days)
CATALOG = load_slos()
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def specs(draw: st.DrawFn) -> Slo:
    base = draw(st.sampled_from([s for s in CATALOG if s.sli.kind == "ratio"]))
    method = draw(st.sampled_from(["occurrences", "timeslices", "ratio-timeslices"]))
    return base.model_copy(
        update={
            "budgeting_method": method,
            "target": draw(st.sampled_from([0.5, 0.9, 0.95, 0.99, 0.999, 0.9999])),
            "window": draw(st.sampled_from(["rolling-28d", "rolling-30d", "calendar-month"])),
            "timeslice_target": draw(st.sampled_from([0.5, 0.95, 0.999, 1.0])) if method == "timeslices" else None,
            "no_data": "skip" if method == "occurrences" else draw(st.sampled_from(["good", "bad", "skip"])),
            "min_events": draw(st.integers(1, 50)),
        }
    )


counts = st.one_of(
    st.just(0.0), st.integers(0, 10_000).map(float), st.floats(0, 1e7, allow_nan=False, allow_infinity=False)
)


@st.composite
def ledgers(draw: st.DrawFn) -> Ledger:
    offsets = draw(st.lists(st.integers(-5, SPAN), unique=True, max_size=120))  # a few rows after AT too
    rows = []
    for off in offsets:
        total = draw(counts)
        share = draw(st.sampled_from([0.0, 0.5, 0.999, 1.0]) | st.floats(0, 1))
        rows.append((END - off * 60, min(total * share, total), total))
    return Ledger.from_rows(rows)


@st.composite
def exclusion_lists(draw: st.DrawFn) -> list[tuple[int, int]]:
    out = []
    for _ in range(draw(st.integers(0, 4))):
        start = END - draw(st.integers(-600, SPAN * 60 + 86400))
        out.append((start, start + draw(st.integers(1, 5 * 86400))))
    return out


def numbers(snap: SloSnapshot) -> list[float]:
    d = snap.to_dict()
    found: list[float] = []

    def walk(v: object) -> None:
        if isinstance(v, float | int) and not isinstance(v, bool):
            found.append(float(v))
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(d)
    return found


@SETTINGS
@given(specs(), ledgers(), exclusion_lists())
def test_every_number_is_finite_and_every_sli_within_0_and_1(
    spec: Slo, ledger: Ledger, exclusions: list[tuple[int, int]]
) -> None:
    snap = compute_snapshot(spec, ledger, AT, exclusions)
    assert all(math.isfinite(x) for x in numbers(snap))
    json.dumps(snap.to_dict(), allow_nan=False)
    for value in (snap.sli, snap.sli_adjusted):
        assert value is None or 0.0 <= value <= 1.0
    for value in (snap.coverage, snap.coverage_adjusted):
        assert value is None or 0.0 <= value <= 1.0
    for rates in (snap.burn_rates, snap.burn_rates_adjusted):
        assert all(r is None or r >= 0 for r in rates.values())
    assert (snap.sli_adjusted is None) == (snap.status == "no_data")
    assert snap.budget_consumed is None or snap.budget_consumed >= 0


@SETTINGS
@given(specs(), ledgers(), exclusion_lists())
def test_consumed_plus_remaining_is_the_whole_budget(
    spec: Slo, ledger: Ledger, exclusions: list[tuple[int, int]]
) -> None:
    snap = compute_snapshot(spec, ledger, AT, exclusions)
    for consumed, remaining in (
        (snap.budget_consumed, snap.budget_remaining),
        (snap.budget_consumed_adjusted, snap.budget_remaining_adjusted),
    ):
        assert (consumed is None) == (remaining is None)
        if consumed is not None and remaining is not None:
            assert math.isclose(consumed + remaining, 1.0, rel_tol=1e-12, abs_tol=1e-12)
    if snap.budget_remaining_units is not None and snap.budget_total is not None:
        assert math.isclose(snap.budget_remaining_units + snap.bad, snap.budget_total, rel_tol=1e-9, abs_tol=1e-9)


@SETTINGS
@given(specs(), ledgers(), st.data())
def test_more_bad_events_never_consume_less(spec: Slo, ledger: Ledger, data: st.DataObject) -> None:
    assume(len(ledger) > 0)
    i = data.draw(st.integers(0, len(ledger) - 1))
    good = ledger.good.copy()
    good[i] = data.draw(st.floats(0, float(good[i])))  # turn some good events of one minute bad
    worse = Ledger(ledger.minutes, good, ledger.total)
    before, after = compute_snapshot(spec, ledger, AT), compute_snapshot(spec, worse, AT)
    if before.budget_consumed is not None:
        assert after.budget_consumed is not None
        assert after.budget_consumed >= before.budget_consumed * (1 - 1e-9) - 1e-12
    assert after.bad >= before.bad * (1 - 1e-9) - 1e-12


@SETTINGS
@given(specs(), ledgers(), exclusion_lists(), exclusion_lists())
def test_exclusions_never_increase_consumption(
    spec: Slo, ledger: Ledger, some: list[tuple[int, int]], more: list[tuple[int, int]]
) -> None:
    fewer = compute_snapshot(spec, ledger, AT, some)
    most = compute_snapshot(spec, ledger, AT, some + more)
    assert fewer.budget_total == most.budget_total
    if fewer.budget_consumed is not None and fewer.budget_consumed_adjusted is not None:
        assert fewer.budget_consumed_adjusted <= fewer.budget_consumed * (1 + 1e-9) + 1e-12
    if most.budget_consumed_adjusted is not None:
        assert fewer.budget_consumed_adjusted is not None
        assert most.budget_consumed_adjusted <= fewer.budget_consumed_adjusted * (1 + 1e-9) + 1e-12
    # raw figures ignore exclusions entirely
    assert (fewer.sli, fewer.budget_consumed, fewer.bad) == (most.sli, most.budget_consumed, most.bad)


@SETTINGS
@given(specs(), st.lists(st.integers(0, SPAN), unique=True, max_size=60))
def test_zero_traffic_is_no_data_never_a_number(spec: Slo, offsets: list[int]) -> None:
    ledger = Ledger.from_rows([(END - (o + 1) * 60, 0.0, 0.0) for o in offsets])
    snap = compute_snapshot(spec, ledger, AT)
    if spec.no_data == "skip" or spec.budgeting_method == "occurrences":
        assert snap.sli is None and snap.status == "no_data" and snap.budget_consumed is None
    assert all(math.isfinite(x) for x in numbers(snap))


@SETTINGS
@given(specs(), ledgers())
def test_a_rolling_window_of_full_good_traffic_consumes_nothing(spec: Slo, ledger: Ledger) -> None:
    perfect = Ledger(ledger.minutes, ledger.total.copy(), ledger.total)
    snap = compute_snapshot(spec, perfect, AT)
    if spec.no_data != "bad" and snap.budget_consumed is not None:
        assert snap.budget_consumed == 0.0
        assert snap.sli == 1.0
    assert np.all(perfect.good <= perfect.total)
