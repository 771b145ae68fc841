"""People steering a running deploy: pause, resume, promote the current step, promote fully, abort.

Pure. Every request is a row of the store's `deploy_control` log (who, why, when); the analysis trigger reads the
log at every poll and `control_state` says what it means for the step being judged:

- `pause`: the step holds its traffic. The analysis keeps judging: a regression still rolls back at once, but a
  pass is held and the step deadline does not run while paused (the paused time is added to it). Paused longer
  than `max_pause`: rolled back (a deploy is never left half-done and unwatched).
- `resume`: the step goes on under its normal rules.
- `promote`: the current step passes now (a person's decision, recorded as such); the next step follows.
- `promote_full`: the rest of the stage's steps are skipped: all traffic on the new version, promoted in that stage.
- `abort`: roll back now (or, while the deploy awaits an approval, end it there); the run ends `aborted`.

A one-shot request (promote, promote_full, abort) applies once: the worker marks its row `applied` where it took
effect, so the next step does not take it again. Several pending: abort wins over promotions.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ACTIONS = ("pause", "resume", "promote", "promote_full", "abort")
ONE_SHOT = ("abort", "promote_full", "promote")  # in the order they win when several are pending
ACTION_TEXT = {"pause": "paused", "resume": "resumed", "promote": "promoted the current step",
               "promote_full": "promoted fully", "abort": "aborted"}


@dataclass(frozen=True)
class Control:
    id: int
    action: str
    actor: str
    reason: str
    requested_at: datetime
    applied: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Control:
        return cls(id=int(row["id"]), action=str(row["action"]), actor=str(row["actor"]), reason=str(row["reason"]),
                   requested_at=row["requested_at"], applied=row.get("applied"))

    def describe(self) -> str:
        return f"{ACTION_TEXT.get(self.action, self.action)} by {self.actor}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "action": self.action, "actor": self.actor, "reason": self.reason,
                "requested_at": self.requested_at.isoformat(), "applied": self.applied}


@dataclass(frozen=True)
class ControlState:
    paused: Control | None  # the pause in force (None: not paused)
    pending: Control | None  # the one-shot request to apply now


def _ordered(controls: Iterable[Control]) -> list[Control]:
    return sorted(controls, key=lambda c: (c.requested_at, c.id))


def control_state(controls: Iterable[Control]) -> ControlState:
    """What the log means now: the pause in force and the one-shot request to apply (abort first)."""
    ordered = _ordered(controls)
    paused: Control | None = None
    for c in ordered:
        if c.action == "pause":
            paused = c
        elif c.action == "resume":
            paused = None
    pending = None
    for action in ONE_SHOT:
        waiting = [c for c in ordered if c.action == action and c.applied is None]
        if waiting:
            pending = waiting[-1]
            break
    return ControlState(paused=paused, pending=pending)


def paused_seconds(controls: Iterable[Control], since: datetime, now: datetime) -> float:
    """How long the deploy was paused between `since` and `now` (the intervals from each pause to its resume)."""
    total = 0.0
    start: datetime | None = None
    for c in _ordered(controls):
        if c.action == "pause" and start is None:
            start = c.requested_at
        elif c.action == "resume" and start is not None:
            total += _overlap(start, c.requested_at, since, now)
            start = None
    if start is not None:
        total += _overlap(start, now, since, now)
    return total


def _overlap(a: datetime, b: datetime, since: datetime, now: datetime) -> float:
    return max(0.0, (min(b, now) - max(a, since)).total_seconds())


def refusal(action: str, reason: str, record: Mapping[str, Any] | None, controls: Iterable[Control]) -> str | None:
    """Why the request cannot be taken (None: it can). Checked before anything is recorded."""
    if action not in ACTIONS:
        return f"action: must be one of {', '.join(ACTIONS)}, got {action!r}"
    if not reason.strip():
        return "reason: say why (it is recorded with your name and posted to the service's channel)"
    if record is None:
        return "run_id: no deploy with this run id in the SRE store"
    if record.get("dry_run"):
        return "run_id: this deploy is a dry run: it changes nothing, there is nothing to steer"
    if record.get("kind", "deploy") != "deploy":
        return (f"run_id: this run is a {record.get('kind')}: a rollback runs to its end (aborting it would bring "
                "back the version it rolls back)")
    if record.get("outcome") != "running":
        return f"run_id: this deploy has ended ({record.get('outcome')}): {record.get('reason') or ''}".rstrip(": ")
    state = control_state(controls)
    if action == "pause" and state.paused is not None:
        return f"action: the deploy is already paused ({state.paused.describe()})"
    if action == "resume" and state.paused is None:
        return "action: the deploy is not paused"
    return None


def steer(decision: str, reason: str, state: ControlState, now: datetime,
          max_pause_s: float) -> tuple[str, str, Control | None]:
    """The step's decision after people's requests, from the analysis' own (continue, pass, fail, timed_out).

    abort > a regression > promote / promote_full > pause: an abort is obeyed at once; a breach rolls back even
    when someone asked to promote; a pause holds a pass and the deadline, never a failure.
    Returns (decision, reason, the request that decided it or None); the decisions added here are `aborted`, and
    `pass` for a promotion.
    """
    pending = state.pending
    if pending is not None and pending.action == "abort":
        return "aborted", pending.describe(), pending
    if decision == "fail":
        return decision, reason, None
    if pending is not None:
        return "pass", pending.describe(), pending
    if state.paused is not None:
        paused_for = (now - state.paused.requested_at).total_seconds()
        if paused_for > max_pause_s:
            return "timed_out", (f"paused for {paused_for:.0f}s, longer than max_pause {max_pause_s:.0f}s "
                                 f"({state.paused.describe()}): rolled back rather than left half-done"), None
        if decision in ("pass", "timed_out"):
            return "continue", f"held by a pause ({state.paused.describe()}); the analysis says: {reason}", None
    return decision, reason, None
