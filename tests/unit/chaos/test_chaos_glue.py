"""The chaos task glue around a backend that misbehaves: recovery retries, pages the on-call with what is still
injected, and the reaper recovers what a crashed run left behind but never the running game-day's fault.

The glue runs for real against an SQLite SRE store; the backend is a scripted stand-in (the real backends
have their own integration tests) and Slack is captured.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gamesre.airflow import chaos as glue
from gamesre.chaos.faults import ChaosBackend, ChaosBackendError, FaultSpec, Injection, Recovery
from gamesre.integrations.store import SREStore

FAULT = FaultSpec("network_latency", {"latency_ms": 600}, 60)


def injection(run_id: str) -> Injection:
    return Injection(run_id, "gs-latency", "local", "game-server", FAULT, ("gs-stable-1",), "2026-11-26T05:00:00+00:00")


class ScriptedBackend(ChaosBackend):
    kind = "local"

    def __init__(self, outcomes: list[Any], leftovers: list[Injection] | None = None) -> None:
        self.outcomes = outcomes  # per recover() call: a Recovery, or an exception to raise
        self.leftovers = leftovers or []
        self.recovered: list[str] = []

    def targets(self, selector: Any) -> list[str]:
        return ["gs-stable-1", "gs-stable-2"]

    def inject(self, run_id: str, experiment: str, fault: FaultSpec, targets: list[str]) -> Injection:
        return injection(run_id)

    def abort(self, injection: Injection) -> None:
        pass

    def recover(self, injection: Injection) -> Recovery:
        outcome = self.outcomes.pop(0) if self.outcomes else Recovery(True, (), "gone")
        if isinstance(outcome, Exception):
            raise outcome
        if outcome.recovered:
            self.recovered.append(injection.run_id)
        return outcome

    def injected(self, service: str | None = None) -> list[Injection]:
        return [i for i in self.leftovers if service in (None, i.service) and i.run_id not in self.recovered]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SREStore]:
    store = SREStore(f"sqlite:///{tmp_path / 'sre.db'}")
    monkeypatch.setattr(glue, "_store", lambda: store)
    monkeypatch.setattr(glue.time, "sleep", lambda _s: None)
    yield store


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    sent: list[tuple[str, str | None]] = []
    monkeypatch.setattr(glue, "post_message", lambda text, channel=None, **_: sent.append((text, channel)) or True)
    return sent


def use(monkeypatch: pytest.MonkeyPatch, backend: ChaosBackend) -> None:
    monkeypatch.setattr(glue, "make_backend", lambda service: backend)


def injected_run(store: SREStore, run_id: str, **extra: Any) -> None:
    store.upsert_chaos_run({"id": run_id, "experiment": "gs-latency", "title": "t", "service": "game-server",
                            "backend": "local", "environment": "prod", "fault": FAULT.to_dict(),
                            "targets": ["gs-stable-1"], "weight": 2.0, "requested_at": datetime.now(UTC),
                            "injected_at": datetime.now(UTC), "injection": injection(run_id).to_dict(), **extra})


def test_recovery_retries_backend_errors_then_releases_the_lock(store: SREStore, monkeypatch: pytest.MonkeyPatch,
                                                                 slack: list) -> None:
    injected_run(store, "r1")
    store.acquire_chaos_lock("r1", "gs-latency", stale_after_s=3600)
    backend = ScriptedBackend([ChaosBackendError("gs-stable-1 unreachable"), Recovery(True, (), "latency_ms back")])
    use(monkeypatch, backend)
    result = glue.recover("r1")
    assert result["recovered"] and result["attempts"] == 2
    record = store.chaos_run("r1")
    assert record["recovered_at"] is not None and record["recovery"]["detail"] == "latency_ms back"
    assert store.chaos_lock() is None and slack == []
    assert glue.recover("r1")["recovered"]  # idempotent: a re-run does nothing more
    assert backend.recovered == ["r1"]


def test_a_recovery_that_keeps_failing_pages_the_oncall_with_what_is_still_injected(
        store: SREStore, monkeypatch: pytest.MonkeyPatch, slack: list) -> None:
    injected_run(store, "r2")
    store.acquire_chaos_lock("r2", "gs-latency", stale_after_s=3600)
    still = Recovery(False, ("gs-stable-1: latency_ms=600.0",), "the fleet still reports the fault")
    use(monkeypatch, ScriptedBackend([ChaosBackendError("boom")] * 2 + [still]))
    with pytest.raises(glue.RecoveryFailed, match=r"gs-stable-1: latency_ms=600.0"):
        glue.recover("r2")
    assert store.chaos_lock()["run_id"] == "r2"  # never released while the fault may be injected
    assert store.chaos_run("r2")["recovered_at"] is None

    class Run:
        run_id = "r2"

    glue.page_unrecovered({"dag_run": Run(), "exception": "RecoveryFailed"})
    ((text, channel),) = slack
    assert channel == "#sre-oncall" and "gs-stable-1: latency_ms=600.0" in text and "FAILED" in text
    assert store.chaos_run("r2")["verdict"] == "error"


def test_the_reaper_recovers_a_crashed_runs_fault_but_not_the_running_gamedays(
        store: SREStore, monkeypatch: pytest.MonkeyPatch, slack: list) -> None:
    injected_run(store, "crashed", verdict="running")
    injected_run(store, "running-now")
    store.acquire_chaos_lock("running-now", "gs-latency", stale_after_s=3600)
    backend = ScriptedBackend([], leftovers=[injection("crashed"), injection("running-now"), injection("orphan")])
    use(monkeypatch, backend)
    monkeypatch.setattr(glue, "_services", lambda: type("S", (), {"names": ("game-server",)})())
    result = glue.reap()
    assert sorted(backend.recovered) == ["crashed", "orphan"]
    assert len(result["reaped"]) == 2
    crashed = store.chaos_run("crashed")
    assert crashed["verdict"] == "error" and "reaper" in crashed["reason"] and crashed["recovered_at"] is not None
    assert store.chaos_run("running-now")["recovered_at"] is None
    assert store.chaos_lock()["run_id"] == "running-now" and slack == []
