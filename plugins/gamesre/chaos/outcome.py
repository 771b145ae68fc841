"""The outcome of one experiment run, decided from its record: verdict, reason and resilience score, whether its
fault may still be injected, and which verdicts fail the run. Pure."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gamesre.chaos.catalog import ChaosCatalog
from gamesre.chaos.probes import resilience_score, verdict

DECIDED_BEFORE_INJECTION = ("invalid", "refused", "skipped")  # recorded by validate, the gates, the steady state
SCORED_VERDICTS = ("pass", "fail", "aborted")  # the fault ran: its probes say how well the service held
FAILED_VERDICTS = ("fail", "aborted", "error", "invalid")


@dataclass(frozen=True)
class Outcome:
    verdict: str
    reason: str
    score: float | None = None


def already_decided(record: Mapping[str, Any]) -> bool:
    """The run ended before injection (invalid, refused, skipped), or a failed recovery already ended it."""
    return record["verdict"] in DECIDED_BEFORE_INJECTION or (record["verdict"] == "error"
                                                             and bool(record.get("finished_at")))


def experiment_outcome(record: Mapping[str, Any], catalog: ChaosCatalog, *, error: str | None = None) -> Outcome:
    """The verdict (gamesre.chaos.probes.verdict), its reason and the resilience score of the run whose record
    this is; `error` says what failed in the run's own tasks. A verdict decided earlier is kept."""
    if already_decided(record):
        return Outcome(record["verdict"], record["reason"])
    injected = bool(record.get("injected_at"))
    recovery = record.get("recovery") or {}
    abort = record.get("abort")
    decision = ({"outcome": "aborted", **abort} if abort else
                ({"outcome": "completed"} if record.get("probes") and injected else None))
    decided, reason = verdict(
        dry_run=bool(record.get("dry_run")), error=error or (None if injected else "the fault was never injected"),
        decision=decision, recovered=recovery.get("recovered") if injected else None,
        recovery_detail=str(recovery.get("detail") or ""), steady_after=record.get("steady_after"))
    score = None
    if decided in SCORED_VERDICTS and record.get("experiment"):
        experiment = catalog.experiment(record["experiment"])
        samples = {p["name"]: p.get("samples") or [] for p in record.get("probes") or []}
        score, _ = resilience_score(experiment.steady_state.probes, samples, experiment.abort.no_data)
    return Outcome(decided, reason, score)


def fault_may_remain(record: Mapping[str, Any]) -> bool:
    """A fault was injected and its recovery is not confirmed: the game-day lock stays taken until it is."""
    return bool(record.get("injected_at")) and not record.get("recovered_at")


def fails_the_run(verdict: object) -> bool:
    """The hypothesis broke, the machinery failed or the request was invalid. A refusal by the safety gates or a
    skip (no steady state to start from) is a decision, not a failure."""
    return verdict in FAILED_VERDICTS
