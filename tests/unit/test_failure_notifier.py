"""The Airflow side of failure notices (gamesre.airflow.failure_notifier): what it reads from a failure callback's
context, whose channel a run belongs to, and that the callback never raises."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gamesre.airflow import deps
from gamesre.airflow.failure_notifier import TaskFailureNotifier, run_service, task_failure
from gamesre.app.failures import FailurePorts
from gamesre.core.services import load_services
from gamesre.slo.spec import load_policies
from tests.fakes.memory_store import memory_store
from tests.fakes.notifier import RecordingNotifier


class TI:
    dag_id, task_id, run_id, try_number = "game_service_deploy", "rollout_prod", "manual__2026-05-12", 2
    log_url = "http://airflow.test/dags/game_service_deploy/runs/manual__2026-05-12/tasks/rollout_prod?try_number=2"


def context(**params: Any) -> dict[str, Any]:
    return {"ti": TI(), "exception": RuntimeError("HAProxy runtime API: connection refused"), "params": params}


def test_a_deploy_belongs_to_its_service_and_an_experiment_to_its_target_service() -> None:
    assert run_service({"service": "matchmaking", "version": "2.5.0"}) == "matchmaking"
    assert run_service({"experiment": "gs-instance-kill"}) == "game-server"
    assert run_service({"experiment": "no-such-experiment"}) is None
    assert run_service({"suite": "weekly"}) is None  # a game-day, an SLO DAG: the SRE team's


def test_the_failure_is_read_from_the_callback_context() -> None:
    failure = task_failure(context(service="game-server"))
    assert (failure.dag_id, failure.task_id, failure.run_id, failure.try_number) == (
        "game_service_deploy", "rollout_prod", "manual__2026-05-12", 2)
    assert failure.error == "RuntimeError: HAProxy runtime API: connection refused"
    assert failure.log_url == TI.log_url and failure.service == "game-server"


def test_the_notice_reaches_the_services_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    notifier = RecordingNotifier()
    ports = FailurePorts(notifier=notifier, fixed_channel=lambda text: True, pager=lambda: None,  # type: ignore
                         store=memory_store, clock=lambda: datetime(2026, 5, 12, tzinfo=UTC),
                         services=load_services(), policy=load_policies())
    monkeypatch.setattr(deps, "failure_ports", lambda: ports)
    TaskFailureNotifier(blocks="this deploy of the service")(context(service="game-server"))
    (message,) = notifier.messages
    assert message["channel_id"] == "C07GAMESRV1"
    assert message["text"].startswith(":rotating_light: *game_service_deploy* failed: task `rollout_prod`")
    assert f"<{TI.log_url}|rollout_prod log>" in message["text"]


def test_the_callback_never_raises(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def no_ports() -> FailurePorts:
        raise RuntimeError("services.yaml: sre: missing")

    monkeypatch.setattr(deps, "failure_ports", no_ports)
    TaskFailureNotifier(guards_policy_state=True)(context())
    assert "failure notice not sent (RuntimeError: services.yaml: sre: missing)" in caplog.text
