"""The outcome of one experiment run from its record: the verdict, its reason and the resilience score; whether its
fault may still be injected; which verdicts fail the run."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gamesre.chaos.catalog import ChaosCatalog, load_catalog
from gamesre.chaos.outcome import Outcome, experiment_outcome, fails_the_run, fault_may_remain

AT = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
PASSED_AFTER = {"passed": True, "recovered_within_s": 12.0, "recovery_time_s": 120}


@pytest.fixture(scope="module")
def catalog() -> ChaosCatalog:
    return load_catalog()


def probes(availability: list[bool | None], latency: list[bool | None]) -> list[dict[str, Any]]:
    return [{"name": "availability", "samples": [[i, 0.0, ok] for i, ok in enumerate(availability)]},
            {"name": "latency-p95", "samples": [[i, 0.0, ok] for i, ok in enumerate(latency)]}]


def record(**fields: Any) -> dict[str, Any]:
    """A gs-instance-kill run that was injected, ran its course with every poll passing, and recovered."""
    base = {"id": "r1", "experiment": "gs-instance-kill", "verdict": "running", "reason": "", "dry_run": False,
            "injected_at": AT, "recovered_at": AT, "finished_at": None, "abort": None,
            "probes": probes([True] * 3, [True] * 3), "recovery": {"recovered": True, "detail": "gone"},
            "steady_after": PASSED_AFTER}
    return {**base, **fields}


@pytest.mark.parametrize("verdict", ["invalid", "refused", "skipped"])
def test_a_verdict_decided_before_injection_is_kept_without_a_score(catalog: ChaosCatalog, verdict: str) -> None:
    assert experiment_outcome(record(verdict=verdict, reason="why", injected_at=None), catalog) == Outcome(verdict,
                                                                                                            "why")


def test_an_error_already_recorded_as_final_is_kept(catalog: ChaosCatalog) -> None:
    paged = record(verdict="error", reason="recovery failed, on-call paged", finished_at=AT)
    assert experiment_outcome(paged, catalog) == Outcome("error", "recovery failed, on-call paged")


def test_a_run_that_held_passes_with_the_weighted_probe_score(catalog: ChaosCatalog) -> None:
    # availability (weight 2) 2 of 4 polls, latency-p95 (weight 1) 4 of 4: (2 x 50 + 100) / 3
    decided = experiment_outcome(record(probes=probes([True, False, True, False], [True] * 4)), catalog)
    assert decided.verdict == "pass" and decided.reason.startswith("the steady state held")
    assert decided.score == pytest.approx(200 / 3)


def test_an_abort_is_the_verdict_with_its_rule(catalog: ChaosCatalog) -> None:
    aborted = record(abort={"rule": "consecutive_failures", "reason": "latency-p95 failed twice"})
    decided = experiment_outcome(aborted, catalog)
    assert decided.verdict == "aborted" and decided.reason == "aborted (consecutive_failures): latency-p95 failed twice"
    assert decided.score is not None


def test_a_fault_never_injected_is_an_error_and_a_dry_run_is_a_dry_run(catalog: ChaosCatalog) -> None:
    never = experiment_outcome(record(injected_at=None, probes=[]), catalog)
    assert never == Outcome("error", "the fault was never injected")
    assert experiment_outcome(record(injected_at=None, dry_run=True), catalog).verdict == "dry_run"


def test_an_unconfirmed_recovery_is_an_error_whatever_the_monitor_said(catalog: ChaosCatalog) -> None:
    decided = experiment_outcome(record(recovery={"recovered": False, "detail": "gs-stable-1 still killed"}), catalog)
    assert decided == Outcome("error", "recovery not confirmed, the fault may still be injected: gs-stable-1 still "
                                       "killed")


def test_a_task_error_is_the_verdict(catalog: ChaosCatalog) -> None:
    assert experiment_outcome(record(), catalog, error="monitor crashed") == Outcome("error", "monitor crashed")


def test_a_steady_state_that_did_not_return_in_time_fails(catalog: ChaosCatalog) -> None:
    late = {"passed": False, "recovery_time_s": 120, "reason": "latency-p95 0.8 > 0.5"}
    decided = experiment_outcome(record(steady_after=late), catalog)
    assert decided.verdict == "fail" and "within 120s" in decided.reason and decided.score == pytest.approx(100.0)


def test_a_fault_may_remain_until_its_recovery_is_confirmed() -> None:
    assert fault_may_remain(record(recovered_at=None))
    assert not fault_may_remain(record())
    assert not fault_may_remain(record(injected_at=None, recovered_at=None))


@pytest.mark.parametrize(("verdict", "fails"), [("fail", True), ("aborted", True), ("error", True),
                                                ("invalid", True), ("pass", False), ("dry_run", False),
                                                ("refused", False), ("skipped", False), (None, False)])
def test_which_verdicts_fail_the_run(verdict: str | None, fails: bool) -> None:
    assert fails_the_run(verdict) is fails
