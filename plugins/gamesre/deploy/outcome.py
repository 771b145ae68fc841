"""How a deploy ends: the outcome decided from its record, and what the safety net must still roll back."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

OUTCOMES_OK = ("promoted", "dry_run")  # the run succeeds; every other outcome fails it


def decide_outcome(record: Mapping[str, Any], *, stages: Sequence[str] | None, version: str = "",
                   dry_run: bool = False) -> tuple[str, str]:
    """(outcome, reason) at the end of a run. A recorded outcome other than `running` stands (blocked,
    rolled_back, timed_out, invalid, failed). Still `running`: a dry run is `dry_run`; every requested stage
    promoted is `promoted`; anything else means the run stopped part-way: `failed`. `stages` is None when the
    request never validated."""
    outcome, reason = str(record.get("outcome") or "failed"), str(record.get("reason") or "")
    if outcome != "running" or stages is None:
        return outcome, reason
    if dry_run:
        return "dry_run", "dry run: the request is valid and every gate was evaluated; nothing changed"
    done = [e["stage"] for e in record.get("stage_log") or [] if e.get("outcome") == "promoted"]
    if done == list(stages):
        return "promoted", f"{version} promoted through {', '.join(done)}"
    return "failed", ("the run ended before every stage was promoted (a task failed or was stopped); see the run's "
                      "task logs")


def left_half_done(record: Mapping[str, Any], outcome: str, *, dry_run: bool) -> list[str]:
    """The stages the safety net rolls back: a failed real deploy must not leave a stage half rolled out."""
    if dry_run or outcome in OUTCOMES_OK:
        return []
    return [str(e["stage"]) for e in record.get("stage_log") or [] if e.get("outcome") == "running"]
