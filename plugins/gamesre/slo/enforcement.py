"""The budget policy acts: which change to roll back when a service's budget is spent, and when never to.

Pure. `decide` reads the facts the use case gathered (gamesre.app.enforcement) and returns one `Decision`:

- the service's published state must be `rollback` (>= 80% of a budget consumed), or `fast_burn` within
  `fast_burn_after_promotion` of the suspect's promotion; anything else: nothing to enforce;
- one decision per **policy episode**: the unbroken run of published trigger states (rollback or fast_burn) the
  latest publication belongs to. A decision already recorded for the episode stands (never two rollbacks, never
  the same page twice); a new episode starts after the service was published in any other state;
- the **suspect** is the service's latest promoted change, if it is a deploy (not a rollback) promoted within
  `look_back` of now; a promotion older than that, or a service already rolled back, has no suspect;
- the **evidence** must point at the change: for every SLO of the service in a blocking state, the burn (error
  ratio over the SLO's budget rate, from the ledger) before and after the promotion, and where its current burn
  began (the start of the unbroken run of burning minutes before now). When that burn began before the
  promotion (one minute of slack for the minute the promotion falls in), the change did not cause it: no rollback;
- with a suspect: `rollback` (mode act), `propose` (a person decides, mode propose) or `notify`; without one in
  state rollback: `page` the owners ("budget at 83%, no change to roll back"), the freeze stays.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from gamesre.core.durations import parse_duration
from gamesre.core.time import as_utc

TRIGGER_STATES = ("rollback", "fast_burn")
BLOCKING_SLO_STATES = ("rollback", "fast_burn", "deploy_freeze", "slow_burn")
Mode = Literal["act", "propose", "notify"]
Action = Literal["none", "rollback", "propose", "notify", "page"]
SLACK = timedelta(minutes=1)  # the ledger's resolution: a burn starting in the promotion's minute is the change's


@dataclass(frozen=True)
class Settings:
    """policies.yaml `enforcement`."""

    look_back: timedelta = timedelta(hours=6)
    fast_burn_after_promotion: timedelta = timedelta(hours=2)
    mode: Mode = "propose"
    modes: Mapping[str, Mode] = field(default_factory=dict)  # per service
    propose_timeout: timedelta = timedelta(minutes=15)
    propose_default: Literal["rollback", "keep"] = "keep"

    def mode_of(self, service: str) -> Mode:
        return self.modes.get(service, self.mode)

    @classmethod
    def from_policy(cls, enforcement: Any, services: Sequence[str]) -> Settings:
        """From policies.yaml's validated `enforcement` (gamesre.slo.spec.Enforcement); a mode for a service
        services.yaml does not have is refused."""
        unknown = sorted(set(enforcement.services) - set(services))
        if unknown:
            raise ValueError(f"policies.yaml enforcement.services: unknown service(s) {', '.join(unknown)} (known: "
                             f"{', '.join(services)})")
        return cls(look_back=timedelta(seconds=parse_duration(enforcement.look_back)),
                   fast_burn_after_promotion=timedelta(seconds=parse_duration(enforcement.fast_burn_after_promotion)),
                   mode=enforcement.mode, modes=dict(enforcement.services),
                   propose_timeout=timedelta(seconds=parse_duration(enforcement.propose_timeout)),
                   propose_default=enforcement.propose_default)


@dataclass(frozen=True)
class SloMinutes:
    """One SLO's ledger minutes (epoch seconds, good, total), oldest first, and its target."""

    name: str
    target: float
    minutes: Sequence[int]
    good: Sequence[float]
    total: Sequence[float]

    def burning(self, i: int) -> bool:
        return self.total[i] > 0 and (self.total[i] - self.good[i]) / self.total[i] > 1 - self.target

    def burn(self, start: datetime, end: datetime) -> float | None:
        """The error ratio over [start, end) divided by the budget rate (1x spends the budget exactly); None: no
        events."""
        lo, hi = as_utc(start).timestamp(), as_utc(end).timestamp()
        good = total = 0.0
        for m, g, t in zip(self.minutes, self.good, self.total, strict=True):
            if lo <= m < hi:
                good, total = good + g, total + t
        return None if total <= 0 else ((total - good) / total) / (1 - self.target)

    def burn_began(self) -> int | None:
        """The first minute of the unbroken run of burning minutes ending at the last minute with events; None
        when that minute does not burn."""
        last = max((i for i, t in enumerate(self.total) if t > 0), default=None)
        if last is None or not self.burning(last):
            return None
        start = last
        while start > 0 and (self.burning(start - 1) or self.total[start - 1] <= 0):
            start -= 1
        while not self.burning(start):  # a leading minute without events is no evidence either way
            start += 1
        return int(self.minutes[start])


@dataclass(frozen=True)
class Decision:
    service: str
    action: Action
    reason: str
    state: str
    episode_start: datetime | None = None
    suspect: Mapping[str, Any] | None = None  # the deployment record to roll back
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "action": self.action, "reason": self.reason, "state": self.state,
                "episode_start": self.episode_start.isoformat() if self.episode_start else None,
                "suspect": dict(self.suspect) if self.suspect else None, "evidence": dict(self.evidence)}


def episode_start(history: Sequence[Mapping[str, Any]]) -> datetime | None:
    """When the current episode began: the first publication of the unbroken run of trigger states that ends with
    the latest publication (history: the service's published states, oldest first); None when the latest is not a
    trigger state."""
    if not history or history[-1]["state"] not in TRIGGER_STATES:
        return None
    start = len(history) - 1
    while start > 0 and history[start - 1]["state"] in TRIGGER_STATES:
        start -= 1
    return as_utc(history[start]["computed_at"])


def _promoted_at(deployment: Mapping[str, Any]) -> datetime:
    return as_utc(deployment.get("finished_at") or deployment["requested_at"])


def _fmt(value: float | None) -> str:
    return "no data" if value is None else f"{value:.1f}x"


def decide(service: str, now: datetime, history: Sequence[Mapping[str, Any]],
           deployments: Sequence[Mapping[str, Any]], slos: Sequence[SloMinutes], settings: Settings, *,
           decided_episodes: Sequence[datetime] = (), consumed: float | None = None) -> Decision:
    """The policy's decision for one service now. `history`: its published states, oldest first; `deployments`:
    its deployment records; `slos`: the ledger minutes of its SLOs in a blocking state (from before the look-back
    to now); `decided_episodes`: the episodes a decision was recorded for; `consumed`: the largest share of a
    budget consumed among its SLOs (for the words)."""
    now = as_utc(now)
    state = str(history[-1]["state"]) if history else "unknown"
    episode = episode_start(history)
    if episode is None:
        return Decision(service, "none", f"state {state}: nothing to enforce", state)
    if any(as_utc(e) == episode for e in decided_episodes):
        return Decision(service, "none", f"this episode (state {state} since {episode:%Y-%m-%d %H:%M} UTC) was "
                        "decided already: one decision per episode", state, episode)
    spent = f"{consumed:.0%} of the budget consumed" if consumed is not None else f"state {state}"
    promoted = sorted((d for d in deployments if d.get("outcome") == "promoted" and not d.get("dry_run")),
                      key=_promoted_at)
    latest = promoted[-1] if promoted else None
    no_suspect: Action = "page" if state == "rollback" else "none"
    if latest is None:
        return Decision(service, no_suspect, f"{spent}, no change to roll back: no promoted deploy is recorded; "
                        "the deploy freeze stays", state, episode)
    at = _promoted_at(latest)
    if latest.get("kind", "deploy") != "deploy":
        return Decision(service, no_suspect, f"{spent}, no change to roll back: the latest change is the "
                        f"{latest.get('kind')} to {latest['version']} at {at:%H:%M} UTC; the deploy freeze stays",
                        state, episode)
    if not latest.get("previous_version"):
        return Decision(service, no_suspect, f"{spent}, no change to roll back: {latest['version']} has no recorded "
                        "previous version; the deploy freeze stays", state, episode)
    if now - at > settings.look_back:
        return Decision(service, no_suspect, f"{spent}, no change to roll back: the latest promotion "
                        f"({latest['version']} at {at:%Y-%m-%d %H:%M} UTC) is older than the look-back "
                        f"({settings.look_back}); the deploy freeze stays", state, episode)
    if state == "fast_burn" and now - at > settings.fast_burn_after_promotion:
        return Decision(service, "none", f"fast burn {now - at} after the promotion of {latest['version']}, later "
                        f"than {settings.fast_burn_after_promotion}: the page stands, no automatic rollback", state,
                        episode)
    # the burn before the promotion over as long as after it, at least an hour (a promotion seconds ago still has a
    # past to compare with), at most the look-back
    window = min(settings.look_back, max(now - at, timedelta(hours=1)))
    minute = at.replace(second=0, microsecond=0)  # the ledger's resolution: the promotion's minute counts as after
    evidence: dict[str, Any] = {"promoted_at": at.isoformat(), "version": latest["version"],
                                "previous_version": latest.get("previous_version"), "slos": {}}
    began: list[datetime] = []
    for slo in slos:
        start = slo.burn_began()
        before, after = slo.burn(minute - window, minute), slo.burn(minute, now + timedelta(minutes=1))
        evidence["slos"][slo.name] = {"burn_before": before, "burn_after": after,
                                      "burn_began": None if start is None else
                                      datetime.fromtimestamp(start, at.tzinfo).isoformat()}
        if start is not None:
            began.append(datetime.fromtimestamp(start, at.tzinfo))
    if not began:
        return Decision(service, no_suspect, f"{spent}, but no SLO of the service burns now: the evidence does not "
                        f"point at {latest['version']}; the deploy freeze stays", state, episode, evidence=evidence)
    first = min(began)
    if first < at - SLACK:
        return Decision(service, no_suspect, f"{spent}, but the burn began at {first:%H:%M} UTC, before "
                        f"{latest['version']} was promoted at {at:%H:%M} UTC: the change did not cause it; no "
                        "rollback, the deploy freeze stays", state, episode, evidence=evidence)
    words = "; ".join(f"{name} {_fmt(e['burn_before'])} before -> {_fmt(e['burn_after'])} after"
                      for name, e in evidence["slos"].items())
    mode = settings.mode_of(service)
    action: Action = {"act": "rollback", "propose": "propose", "notify": "notify"}[mode]  # type: ignore[assignment]
    reason = (f"{spent}; the burn began at {first:%H:%M} UTC, after {latest['version']} was promoted at "
              f"{at:%H:%M} UTC ({words}): roll back to {latest.get('previous_version')}")
    return Decision(service, action, reason, state, episode, suspect=latest, evidence=evidence)
