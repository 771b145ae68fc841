"""Error-budget policy: states from real snapshots, precedence, peak strictness, traffic guard, staleness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from gamesre.core.time import KST
from gamesre.slo.budget import Ledger, compute_snapshot
from gamesre.slo.policy import (
    BLOCKING_STATES,
    STATES,
    SloState,
    blocks_changes,
    burn_threshold,
    evaluate,
    is_evening_peak,
    is_stale,
    service_states,
    worst,
)
from gamesre.slo.spec import Slo, load_policies, load_slos

POLICY = load_policies()
CATALOG = load_slos()
OFF_PEAK = datetime(2026, 3, 20, 3, 0, tzinfo=KST)  # 03:00 KST
PEAK = datetime(2026, 3, 20, 19, 0, tzinfo=KST)  # 19:00 KST = 10:00 UTC


def ledger(
    at: datetime, per_minute: float = 1000, days: float = 30, burns: tuple[tuple[int, float], ...] = ()
) -> Ledger:
    """`days` of traffic before `at`; `burns` sets (last minutes, burn rate on a 99.9% target) from the end."""
    end = int(at.timestamp())
    n = int(days * 1440)
    minutes = np.arange(end - n * 60, end, 60, dtype=np.int64)
    total = np.full(n, float(per_minute))
    error = np.zeros(n)
    for last, burn in burns:
        error[minutes >= end - last * 60] = burn * 0.001
    return Ledger(minutes, total * (1 - error), total)


def state_of(led: Ledger, at: datetime, spec: Slo | None = None) -> SloState:
    return evaluate(compute_snapshot(spec or CATALOG["availability"], led, at), POLICY)


def rules(state: SloState) -> list[str]:
    return [r.rule for r in state.reasons]


def test_a_healthy_slo_is_normal_and_says_why() -> None:
    s = state_of(ledger(OFF_PEAK), OFF_PEAK)
    assert s.state == "normal" and not s.blocking
    assert rules(s) == ["none"]
    assert "no rule holds" in s.reasons[0].message


def test_fast_burn_pages_at_15x_and_carries_its_numbers() -> None:
    s = state_of(ledger(OFF_PEAK, burns=((60, 15.0),)), OFF_PEAK)
    assert s.state == "fast_burn" and s.blocking
    (reason,) = s.reasons
    assert reason.rule == "burn.page_fast" and reason.slo == "availability"
    assert reason.observed["burn_rate_1h"] == pytest.approx(15.0)
    assert reason.observed["burn_rate_5m"] == pytest.approx(15.0)
    assert reason.thresholds["burn_rate"] == pytest.approx(14.4)
    assert "15.00x over 1h" in reason.message


def test_13x_is_quiet_off_peak_and_pages_in_the_evening_peak() -> None:
    assert state_of(ledger(OFF_PEAK, burns=((60, 13.0),)), OFF_PEAK).state == "normal"
    peak = state_of(ledger(PEAK, burns=((60, 13.0),)), PEAK)
    assert peak.evening_peak
    assert peak.state == "fast_burn"
    assert peak.reasons[0].thresholds["burn_rate"] == pytest.approx(14.4 / 1.2)
    assert "divided by 1.2 for the evening peak" in peak.reasons[0].message


def test_slow_burn_and_ticket_tiers() -> None:
    slow = state_of(ledger(OFF_PEAK, burns=((360, 7.0),)), OFF_PEAK)
    assert slow.state == "slow_burn" and not slow.blocking
    assert rules(slow) == ["burn.page_slow"]
    ticket = state_of(ledger(OFF_PEAK, burns=((3 * 1440, 1.2),)), OFF_PEAK)
    assert ticket.state == "ticket"
    assert rules(ticket) == ["burn.ticket_slow"]


def test_budget_thresholds_and_precedence_over_burn_tiers() -> None:
    freeze = state_of(ledger(OFF_PEAK, burns=((16 * 1440, 1.0),)), OFF_PEAK)  # 16/30 = 53% consumed at 1x
    assert freeze.state == "deploy_freeze"
    assert rules(freeze) == ["budget.deploy_freeze", "burn.ticket_slow"]
    rollback = state_of(ledger(OFF_PEAK, burns=((25 * 1440, 1.0), (60, 20.0))), OFF_PEAK)
    assert rollback.state == "rollback"
    assert rules(rollback)[:3] == ["budget.rollback", "budget.deploy_freeze", "burn.page_fast"]
    assert rollback.reasons[0].observed["budget_consumed_adjusted"] > 0.8


def test_maintenance_exclusions_lift_a_freeze() -> None:
    at = OFF_PEAK
    led = ledger(at, burns=((16 * 1440, 1.0),))
    end = int(at.timestamp())
    raw = evaluate(compute_snapshot(CATALOG["availability"], led, at), POLICY)
    adjusted = evaluate(
        compute_snapshot(CATALOG["availability"], led, at, exclusions=[(end - 16 * 86400, end - 10 * 86400)]), POLICY
    )
    assert raw.state == "deploy_freeze"
    assert adjusted.state == "ticket"  # 10 of 30 days burned at 1x: 33% consumed


def test_precedence_is_rollback_freeze_fast_burn_no_data_slow_burn_ticket_normal() -> None:
    assert STATES == ("rollback", "deploy_freeze", "fast_burn", "no_data", "slow_burn", "ticket", "normal")
    assert worst(["ticket", "slow_burn", "normal"]) == "slow_burn"
    assert worst(["slow_burn", "no_data"]) == "no_data"
    assert worst(["no_data", "fast_burn", "ticket"]) == "fast_burn"
    assert worst([]) == "normal"
    assert BLOCKING_STATES == {"rollback", "deploy_freeze", "fast_burn", "no_data"}


def test_no_traffic_is_no_data_never_normal() -> None:
    for spec in CATALOG:
        s = state_of(Ledger.empty(), OFF_PEAK, spec)
        assert s.state == "no_data" and s.blocking
        assert "data.sli" in rules(s)


def test_low_window_coverage_is_no_data_even_with_a_good_sli() -> None:
    s = state_of(ledger(OFF_PEAK, days=10), OFF_PEAK)  # a third of the 30-day window has data
    assert s.state == "no_data"
    assert rules(s) == ["data.window_coverage"]
    assert s.reasons[0].observed["coverage_adjusted"] == pytest.approx(1 / 3)


def test_a_recent_gap_is_no_data() -> None:
    led = ledger(OFF_PEAK)
    keep = led.minutes < int(OFF_PEAK.timestamp()) - 45 * 60  # the ingest stopped 45 minutes ago
    s = state_of(Ledger(led.minutes[keep], led.good[keep], led.total[keep]), OFF_PEAK)
    assert s.state == "no_data"
    assert rules(s) == ["data.recent_coverage"]


def test_fast_burn_outranks_missing_coverage_and_both_are_reported() -> None:
    s = state_of(ledger(OFF_PEAK, days=10, burns=((60, 20.0),)), OFF_PEAK)
    assert s.state == "fast_burn"
    assert rules(s) == ["burn.page_fast", "data.window_coverage"]


def test_low_traffic_cannot_page() -> None:
    at = OFF_PEAK
    base = ledger(at)
    quiet_hour = base.minutes >= int(at.timestamp()) - 3600
    for per_minute, expected in ((1.0, "normal"), (2.0, "fast_burn")):  # 60 vs 120 events in the hour (guard: 100)
        total = np.where(quiet_hour, per_minute, base.total)
        good = np.where(quiet_hour, per_minute / 2, base.good)  # 50% errors: a 500x burn
        s = state_of(Ledger(base.minutes, good, total), at)
        assert s.state == expected
        if expected == "normal":
            assert rules(s) == ["guard.page_fast"]
            assert (
                "held back by the minimum-traffic guard: 60 events in 1h, the guard needs 100" in s.reasons[0].message
            )


def test_timeslice_traffic_guard_counts_evaluated_minutes() -> None:
    spec = CATALOG["concurrent-sessions"]
    end = int(OFF_PEAK.timestamp())
    minutes = np.arange(end - 28 * 86400, end, 60, dtype=np.int64)
    good = np.ones(minutes.size)
    good[-20:] = 0.0  # over capacity for the last 20 minutes: 20 of a 40.32-minute budget
    full = state_of(Ledger(minutes, good, np.ones(minutes.size)), OFF_PEAK, spec)
    assert full.state == "fast_burn"
    sparse = np.ones(minutes.size, dtype=bool)
    sparse[-60:] = np.arange(60) % 3 == 0  # only 20 of the last 60 minutes evaluated (guard: 30)
    thin = state_of(Ledger(minutes[sparse], good[sparse], np.ones(int(sparse.sum()))), OFF_PEAK, spec)
    assert "burn.page_fast" not in rules(thin)
    assert thin.state == "no_data"  # and the recent coverage rule says why nothing can be judged


@pytest.mark.parametrize(
    ("local", "inside"),
    [((17, 59), False), ((18, 0), True), ((21, 59), True), ((22, 0), False), ((3, 0), False)],
)
def test_evening_peak_is_18_to_22_seoul_time(local: tuple[int, int], inside: bool) -> None:
    at = datetime(2026, 3, 20, *local, tzinfo=KST)
    assert is_evening_peak(at, POLICY) is inside
    assert is_evening_peak(at.astimezone(UTC), POLICY) is inside


def test_burn_thresholds_are_exact_per_window_and_divided_at_peak() -> None:
    page_fast = POLICY.burn_alerts[0]
    assert burn_threshold(page_fast, 30 * 1440, POLICY, peak=False) == pytest.approx(14.4)
    assert burn_threshold(page_fast, 30 * 1440, POLICY, peak=True) == pytest.approx(12.0)
    assert burn_threshold(page_fast, 28 * 1440, POLICY, peak=True) == pytest.approx(11.2)
    assert burn_threshold(page_fast, 31 * 1440, POLICY, peak=False) == pytest.approx(14.88)


def test_calendar_month_tiers_use_the_months_length() -> None:
    at = datetime(2026, 2, 20, 3, 0, tzinfo=KST)  # February: 28 days, so page_fast is 13.44x
    spec = CATALOG["data-save-success"]
    end = int(at.timestamp())
    minutes = np.arange(end - 19 * 86400 - 3 * 3600, end, 60, dtype=np.int64)  # the month so far
    total = np.full(minutes.size, 1000.0)
    good = total.copy()
    good[-60:] = 1000 * (1 - 13.8 * 0.0001)  # 13.8x: pages in February, would not in a 30-day window
    s = evaluate(compute_snapshot(spec, Ledger(minutes, good, total), at), POLICY)
    assert s.state == "fast_burn"
    assert s.reasons[0].thresholds["burn_rate"] == pytest.approx(13.44)


def test_service_state_is_the_worst_of_its_slos_with_their_reasons() -> None:
    at = OFF_PEAK
    states = [
        state_of(ledger(at), at, CATALOG["latency"]),
        state_of(ledger(at, burns=((360, 7.0),)), at, CATALOG["availability"]),
        state_of(Ledger.empty(), at, CATALOG["data-save-success"]),
        state_of(ledger(at, days=28), at, CATALOG["matchmaking-success"]),
    ]
    by_service = service_states(states)
    game = by_service["game-server"]
    assert game.state == "no_data" and game.blocking
    assert game.slo_states == {"latency": "normal", "availability": "slow_burn", "data-save-success": "no_data"}
    assert [(r.slo, r.state) for r in game.reasons] == [
        ("data-save-success", "no_data"),  # no SLI
        ("data-save-success", "no_data"),  # no window coverage
        ("data-save-success", "no_data"),  # no recent coverage
        ("availability", "slow_burn"),
    ]
    assert by_service["matchmaking"].state == "normal"
    assert game.to_dict()["state"] == "no_data"


def test_gates_block_on_missing_stale_unknown_or_blocking_states() -> None:
    now = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    fresh = now - timedelta(hours=1)
    assert blocks_changes(None, None, now, POLICY)
    assert blocks_changes("normal", None, now, POLICY)
    assert blocks_changes("mystery", fresh, now, POLICY)
    assert not blocks_changes("normal", fresh, now, POLICY)
    assert not blocks_changes("slow_burn", fresh, now, POLICY)
    assert blocks_changes("no_data", fresh, now, POLICY)
    assert not is_stale(now - timedelta(hours=2), now, POLICY)
    assert is_stale(now - timedelta(hours=2, seconds=1), now, POLICY)
    assert blocks_changes("normal", now - timedelta(hours=3), now, POLICY)
