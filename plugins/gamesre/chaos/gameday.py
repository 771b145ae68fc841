"""A game-day: a suite of experiments run one at a time. When a scheduled one is too late to run, the experiments
it asks for, and its verdict from theirs. Pure."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from gamesre.chaos.catalog import Suite
from gamesre.core.time import KST

GAMEDAY_LATE_AFTER = timedelta(hours=1)


def late_refusal(scheduled_for: datetime | None, now: datetime) -> str | None:
    """Why a scheduled game-day does not run, or None when it runs (on time, or triggered by hand).

    A scheduled game-day runs on time or not at all: one more than GAMEDAY_LATE_AFTER late (the DAG was unpaused
    on another day, or the scheduler was down) is refused, so nobody is surprised by faults injected at an hour
    nobody planned for.
    """
    if scheduled_for is None or now - scheduled_for <= GAMEDAY_LATE_AFTER:
        return None
    return (f"refused: this scheduled game-day was due at {scheduled_for.astimezone(KST):%Y-%m-%d %H:%M %Z} "
            f"and is {(now - scheduled_for).total_seconds() / 3600:.1f} h late; a late game-day does not run "
            "(trigger one by hand to run it now)")


def experiment_confs(suite: Suite, gameday_id: str, *, dry_run: bool, requested_by: str) -> list[dict[str, Any]]:
    """One experiment request (a chaos_experiment conf) per experiment of the suite, in the suite's order."""
    return [{"experiment": e, "gameday_id": gameday_id, "dry_run": dry_run, "requested_by": requested_by}
            for e in suite.experiments]


def gameday_verdict(runs: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """The game-day's verdict from its experiments' verdicts."""
    verdicts = [str(r.get("verdict")) for r in runs]
    if not verdicts:
        return "error", "no experiment ran"
    if any(v in ("error", "running", "invalid") for v in verdicts):
        return "error", "an experiment ended in error (see its report)"
    if any(v in ("fail", "aborted") for v in verdicts):
        bad = [f"{r['experiment']} {r['verdict']}" for r in runs if r.get("verdict") in ("fail", "aborted")]
        return "fail", "hypotheses broken: " + ", ".join(bad)
    if all(v == "refused" for v in verdicts):
        return "refused", "every experiment was refused by the safety gates: " + str(runs[0].get("reason"))
    if all(v in ("pass", "dry_run") for v in verdicts):
        return "pass", "every experiment passed"
    return "pass", "the experiments that ran passed; others were refused or skipped"


def gameday_outcome(gameday: Mapping[str, Any] | None, runs: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """(verdict, reason) of a game-day: one refused before any experiment ran (too late) keeps its refusal;
    otherwise its experiments decide (gameday_verdict)."""
    if gameday is not None and gameday["verdict"] == "refused" and not runs:
        return "refused", str(gameday["reason"])
    return gameday_verdict(runs)
