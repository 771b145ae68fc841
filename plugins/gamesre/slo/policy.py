"""Error-budget policy: the state of an SLO and of a service from snapshots, with the reasons for it.

States, worst first (the precedence; a service takes the worst state of its SLOs):

    rollback       budget consumed (adjusted) >= 80%: roll back the latest change automatically
    deploy_freeze  budget consumed (adjusted) >= 50%: only fixes ship
    fast_burn      a page tier of state fast_burn holds (14.4x over 1h and 5m on 30 days)
    no_data        no SLI, or too little data coverage to judge: never silently normal
    slow_burn      a page tier of state slow_burn holds (6x over 6h and 30m on 30 days)
    ticket         a ticket tier holds (3x over 1d and 2h, or 1x over 3d and 6h, on 30 days)
    normal         none of the above

The first four block changes (deploy and chaos gates); so does a state older than `state.stale_after`.
Burn tiers compare the adjusted burn rates (maintenance excluded) of both windows with
factor = budget_fraction x window / long_window (the SLO window's own length, a calendar month's included),
and need the minimum traffic in the long window. During the evening peak (18:00-22:00 Asia/Seoul, by the
snapshot instant) every burn threshold is divided by the strictness 1.2; budget thresholds do not change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from gamesre.core.durations import parse_duration
from gamesre.core.time import KST, as_utc, iso, to_epoch
from gamesre.slo.budget import SloSnapshot, burn_factor
from gamesre.slo.spec import BurnTier, Policy
from gamesre.slo.windows import MINUTE

State = Literal["rollback", "deploy_freeze", "fast_burn", "no_data", "slow_burn", "ticket", "normal"]
STATES: tuple[State, ...] = ("rollback", "deploy_freeze", "fast_burn", "no_data", "slow_burn", "ticket", "normal")
BLOCKING_STATES: frozenset[State] = frozenset({"rollback", "deploy_freeze", "fast_burn", "no_data"})


def severity_rank(state: str) -> int:
    """0 for the worst state; unknown states rank as the worst (fail safe)."""
    return STATES.index(state) if state in STATES else -1  # type: ignore[arg-type]


def worst(states: Iterable[State]) -> State:
    """The state with the highest precedence; `normal` for none."""
    return min(states, key=severity_rank, default="normal")


@dataclass(frozen=True)
class Reason:
    """Why a rule holds: the SLO, the rule, the observed numbers and the thresholds they crossed."""

    slo: str
    rule: str
    state: State
    message: str
    observed: Mapping[str, float | None] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "slo": self.slo,
            "rule": self.rule,
            "state": self.state,
            "message": self.message,
            "observed": dict(self.observed),
            "thresholds": dict(self.thresholds),
        }


@dataclass(frozen=True)
class SloState:
    """The policy state of one SLO at one instant, with every rule that holds (worst first)."""

    slo: str
    service: str
    state: State
    at: str
    evening_peak: bool
    reasons: tuple[Reason, ...]

    @property
    def blocking(self) -> bool:
        return self.state in BLOCKING_STATES

    def to_dict(self) -> dict[str, Any]:
        return {
            "slo": self.slo,
            "service": self.service,
            "state": self.state,
            "blocking": self.blocking,
            "at": self.at,
            "evening_peak": self.evening_peak,
            "reasons": [r.to_dict() for r in self.reasons],
        }


@dataclass(frozen=True)
class ServiceState:
    """A service's state: the worst of its SLOs' states, with their reasons."""

    service: str
    state: State
    at: str
    slo_states: Mapping[str, State]
    reasons: tuple[Reason, ...]

    @property
    def blocking(self) -> bool:
        return self.state in BLOCKING_STATES

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "state": self.state,
            "blocking": self.blocking,
            "at": self.at,
            "slo_states": dict(self.slo_states),
            "reasons": [r.to_dict() for r in self.reasons],
        }


def is_evening_peak(at: datetime | int | float, policy: Policy) -> bool:
    """Whether the instant falls in the evening peak, [start, end) local time (a wrap past midnight works)."""
    local = datetime.fromtimestamp(to_epoch(at), KST)
    minute = local.hour * 60 + local.minute
    start, end = policy.evening_peak.minutes_of_day()
    return start <= minute < end if start < end else (minute >= start or minute < end)


def burn_threshold(tier: BurnTier, window_minutes: int, policy: Policy, *, peak: bool) -> float:
    """The burn rate at or above which the tier holds: its exact factor for the window, stricter at peak."""
    factor = burn_factor(window_minutes * MINUTE, parse_duration(tier.long_window), tier.budget_fraction)
    return factor / policy.evening_peak.strictness if peak else factor


def _traffic_guard(snapshot: SloSnapshot, tier: BurnTier, policy: Policy) -> tuple[bool, str, dict[str, float]]:
    """Whether the long window has enough traffic to act on, what it had, and the numbers."""
    window = snapshot.burn_windows[tier.long_window]
    if snapshot.method == "occurrences":
        need = float(policy.min_traffic.events)
        had = f"{window.events:g} events in {tier.long_window}, the guard needs {need:g}"
        return window.events >= need, had, {"events": window.events, "min_events": need}
    need = policy.min_traffic.timeslice_coverage * window.minutes
    had = f"{window.slices:g} evaluated minutes in {tier.long_window}, the guard needs {need:g}"
    return window.slices >= need, had, {"evaluated_minutes": window.slices, "min_evaluated_minutes": need}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"


def evaluate(snapshot: SloSnapshot, policy: Policy) -> SloState:
    """The policy state of one SLO from its snapshot (adjusted figures: maintenance excluded)."""
    name = snapshot.name
    peak = is_evening_peak(snapshot.at_epoch, policy)
    reasons: list[Reason] = []

    # Budget thresholds.
    consumed = snapshot.budget_consumed_adjusted
    if consumed is not None:
        for state, limit in (("rollback", policy.budget.rollback), ("deploy_freeze", policy.budget.deploy_freeze)):
            if consumed >= limit:
                reasons.append(
                    Reason(
                        name,
                        f"budget.{state}",
                        state,  # type: ignore[arg-type]
                        f"{_pct(consumed)} of the {snapshot.window} error budget consumed (adjusted), "
                        f"at or above {_pct(limit)}",
                        {"budget_consumed_adjusted": consumed},
                        {state: limit},
                    )
                )

    # Data: no SLI, or too little coverage over the window or recently.
    if snapshot.status == "no_data":
        reasons.append(
            Reason(
                name,
                "data.sli",
                "no_data",
                "no SLI: " + ("; ".join(snapshot.reasons) or "no data"),
                {"sli_adjusted": None},
            )
        )
    if snapshot.coverage_adjusted is None or snapshot.coverage_adjusted < policy.state.min_window_coverage:
        reasons.append(
            Reason(
                name,
                "data.window_coverage",
                "no_data",
                f"data for {_pct(snapshot.coverage_adjusted)} of the elapsed window, "
                f"below {_pct(policy.state.min_window_coverage)}",
                {"coverage_adjusted": snapshot.coverage_adjusted},
                {"min_window_coverage": policy.state.min_window_coverage},
            )
        )
    recent = snapshot.burn_windows[policy.state.recent_window].coverage
    if recent is not None and recent < policy.state.min_recent_coverage:
        reasons.append(
            Reason(
                name,
                "data.recent_coverage",
                "no_data",
                f"data for {_pct(recent)} of the last {policy.state.recent_window}, "
                f"below {_pct(policy.state.min_recent_coverage)}",
                {"recent_coverage": recent},
                {"min_recent_coverage": policy.state.min_recent_coverage},
            )
        )

    # Burn-rate tiers.
    for tier in policy.burn_alerts:
        threshold = burn_threshold(tier, snapshot.window_minutes, policy, peak=peak)
        long_rate = snapshot.burn_rates_adjusted[tier.long_window]
        short_rate = snapshot.burn_rates_adjusted[tier.short_window]
        if long_rate is None or short_rate is None or long_rate < threshold or short_rate < threshold:
            continue
        enough, had, traffic = _traffic_guard(snapshot, tier, policy)
        rates = (
            f"burn rate {long_rate:.2f}x over {tier.long_window} and {short_rate:.2f}x over {tier.short_window}, "
            f"at or above {threshold:.4g}x ({tier.budget_fraction:.0%} of the budget in {tier.long_window}"
            + (f", divided by {policy.evening_peak.strictness:g} for the evening peak" if peak else "")
            + ")"
        )
        observed = {f"burn_rate_{tier.long_window}": long_rate, f"burn_rate_{tier.short_window}": short_rate, **traffic}
        if enough:
            reasons.append(Reason(name, f"burn.{tier.name}", tier.state, rates, observed, {"burn_rate": threshold}))
        else:  # low traffic cannot page or ticket; say so, without changing the state
            message = f"{rates}, but held back by the minimum-traffic guard: {had}"
            reasons.append(Reason(name, f"guard.{tier.name}", "normal", message, observed, {"burn_rate": threshold}))

    reasons.sort(key=lambda r: severity_rank(r.state))
    state = worst(r.state for r in reasons)
    if state == "normal" and not any(r.rule.startswith("guard.") for r in reasons):
        reasons.append(
            Reason(
                name,
                "none",
                "normal",
                f"no rule holds: {_pct(consumed)} of the budget consumed, burn 1h "
                f"{_fmt_rate(snapshot.burn_rates_adjusted.get('1h'))}, coverage {_pct(snapshot.coverage_adjusted)}",
                {"budget_consumed_adjusted": consumed, "burn_rate_1h": snapshot.burn_rates_adjusted.get("1h")},
            )
        )
    return SloState(name, snapshot.service, state, snapshot.at, peak, tuple(reasons))


def _fmt_rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.2f}x"


def service_states(states: Iterable[SloState]) -> dict[str, ServiceState]:
    """Per service: the worst state of its SLOs and the reasons of every SLO not in `normal`."""
    by_service: dict[str, list[SloState]] = {}
    for s in states:
        by_service.setdefault(s.service, []).append(s)
    out: dict[str, ServiceState] = {}
    for service, members in sorted(by_service.items()):
        state = worst(m.state for m in members)
        reasons = tuple(
            sorted((r for m in members if m.state != "normal" for r in m.reasons), key=lambda r: severity_rank(r.state))
        )
        at = max(m.at for m in members)
        out[service] = ServiceState(service, state, at, {m.slo: m.state for m in members}, reasons)
    return out


def is_stale(published_at: datetime | int | float, now: datetime | int | float, policy: Policy) -> bool:
    """A published state older than `state.stale_after` must be treated as blocking."""
    return to_epoch(now) - to_epoch(published_at) > parse_duration(policy.state.stale_after)


def stale_at(published_at: Iterable[datetime | int | float | None], policy: Policy) -> datetime | None:
    """When the published policy state goes stale: `state.stale_after` after the oldest of the published states (the
    first gate to read it blocks from then on). None when nothing is published: the gates block already."""
    published = [as_utc(at) for at in published_at if at is not None]
    return min(published) + timedelta(seconds=parse_duration(policy.state.stale_after)) if published else None


def page_before_stale(stale: datetime | None, now: datetime, lead: timedelta) -> bool:
    """Whether the policy state is stale or goes stale within `lead`: the gates are about to block every deploy
    and game-day, which is worth waking someone for. Nothing published at all counts as stale."""
    return stale is None or stale - as_utc(now) < lead


def blocks_changes(
    state: str | None, published_at: datetime | int | float | None, now: datetime | int | float, policy: Policy
) -> bool:
    """What a gate decides: a missing, unknown, stale or blocking state blocks; only fresh non-blocking states pass."""
    if state is None or published_at is None or state not in STATES:
        return True
    return state in BLOCKING_STATES or is_stale(published_at, now, policy)


def snapshot_record(snapshot: SloSnapshot, state: SloState) -> dict[str, Any]:
    """The per-SLO record the CLI prints as JSON and the report shows: the snapshot plus its state."""
    record = snapshot.to_dict()
    record["state"] = state.state
    record["blocking"] = state.blocking
    record["evening_peak"] = state.evening_peak
    record["state_reasons"] = [r.to_dict() for r in state.reasons]
    return record


__all__ = [
    "BLOCKING_STATES",
    "STATES",
    "Reason",
    "ServiceState",
    "SloState",
    "blocks_changes",
    "burn_threshold",
    "evaluate",
    "is_evening_peak",
    "is_stale",
    "iso",
    "service_states",
    "severity_rank",
    "snapshot_record",
    "worst",
]
