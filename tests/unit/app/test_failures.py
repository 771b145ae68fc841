"""The failure notice of a task (gamesre.app.failures): who hears of it, what it says, when the on-call is paged, and
that nothing in it ever raises."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gamesre.app.failures import FailurePorts, dedup_key, report_failure
from gamesre.core.services import load_services
from gamesre.integrations.pagerduty import PagerDutyError
from gamesre.reports.failure_notice import TaskFailure
from gamesre.slo.policy import page_before_stale, stale_at
from gamesre.slo.spec import load_policies
from tests.fakes.memory_store import memory_store
from tests.fakes.notifier import RecordingNotifier

NOW = datetime(2026, 5, 12, 4, 40, tzinfo=UTC)  # 13:40 KST
SERVICES = load_services()
POLICY = load_policies()
INGEST = TaskFailure(dag_id="slo_ingest", task_id="ingest", run_id="scheduled__2026-05-12T04:35:00+00:00",
                     error="IngestError: availability: Prometheus (http://prom:9090) unreachable", try_number=4,
                     log_url="http://airflow.test/dags/slo_ingest/runs/r/tasks/ingest?try_number=4")


@dataclass
class RecordingPager:
    events: list[dict[str, Any]] = field(default_factory=list)
    error: Exception | None = None

    def trigger(self, *, summary: str, source: str, dedup_key: str, severity: str,
                details: Mapping[str, Any]) -> str:
        if self.error is not None:
            raise self.error
        self.events.append({"summary": summary, "source": source, "dedup_key": dedup_key, "severity": severity,
                            "details": dict(details)})
        return dedup_key


@dataclass
class Rig:
    ports: FailurePorts
    notifier: RecordingNotifier
    pager: RecordingPager
    webhook: list[str]

    def publish(self, at: datetime, services: tuple[str, ...] = SERVICES.names) -> None:
        store = self.ports.store()
        for name in services:
            store.publish_state("service", name, "normal", at, [], {})


@pytest.fixture
def rig() -> Rig:
    store, notifier, pager, webhook = memory_store(), RecordingNotifier(), RecordingPager(), []

    def fixed_channel(text: str) -> bool:
        webhook.append(text)
        return True

    ports = FailurePorts(notifier=notifier, fixed_channel=fixed_channel, pager=lambda: pager, store=lambda: store,
                         clock=lambda: NOW, services=SERVICES, policy=POLICY)
    return Rig(ports, notifier, pager, webhook)


# --- the pure rules -------------------------------------------------------------------------------------------------

def test_the_state_goes_stale_two_hours_after_the_oldest_published_one() -> None:
    first, later = datetime(2026, 5, 12, 3, 5, tzinfo=UTC), datetime(2026, 5, 12, 4, 5, tzinfo=UTC)
    assert POLICY.state.stale_after == "2h"
    assert stale_at([later, first, None], POLICY) == datetime(2026, 5, 12, 5, 5, tzinfo=UTC)
    assert stale_at([], POLICY) is None


@pytest.mark.parametrize(("minutes_left", "page"), [(31, False), (30, False), (29, True), (0, True), (-10, True)])
def test_a_page_goes_out_under_30_minutes_before_the_state_goes_stale(minutes_left: int, page: bool) -> None:
    assert page_before_stale(NOW + timedelta(minutes=minutes_left), NOW, timedelta(minutes=30)) is page


def test_nothing_published_at_all_pages() -> None:
    assert page_before_stale(None, NOW, timedelta(minutes=30)) is True


def test_one_dedup_key_per_dag() -> None:
    assert dedup_key("slo_ingest") == "gamesre/slo_ingest/policy-state-stale" != dedup_key("error_budget_report")


# --- the use case ---------------------------------------------------------------------------------------------------

def test_a_failed_ingest_tells_the_sre_channel_when_the_state_goes_stale(rig: Rig) -> None:
    rig.publish(datetime(2026, 5, 12, 3, 5, tzinfo=UTC))  # 12:05 KST: stale at 14:05, 25 minutes from now
    result = report_failure(rig.ports, INGEST, guards_policy_state=True)
    (message,) = rig.notifier.messages
    assert message["channel_id"] == SERVICES.sre.slack.channel_id == result["channel_id"]
    assert message["text"] == (
        ":rotating_light: *slo_ingest* failed: task `ingest` of run `scheduled__2026-05-12T04:35:00+00:00`, try 4\n"
        "• *Error:* `IngestError: availability: Prometheus (http://prom:9090) unreachable`\n"
        "• *Log:* <http://airflow.test/dags/slo_ingest/runs/r/tasks/ingest?try_number=4|ingest log>\n"
        "• *Blocks:* the published policy state goes stale at 14:05 KST (published 12:05 + 2h, "
        "include/config/policies.yaml state.stale_after), and then blocks every deploy and game-day "
        "(25 min from now)\n"
        "• *Paged:* the on-call, through PagerDuty (dedup key gamesre/slo_ingest/policy-state-stale)")
    (event,) = rig.pager.events
    assert event["dedup_key"] == "gamesre/slo_ingest/policy-state-stale" and event["severity"] == "critical"
    assert event["summary"].startswith("slo_ingest failed: the published policy state goes stale at 14:05 KST")
    assert event["details"]["log_url"] == INGEST.log_url and result["paged"] is True


def test_a_fresh_state_is_not_worth_a_page(rig: Rig) -> None:
    rig.publish(datetime(2026, 5, 12, 4, 5, tzinfo=UTC))  # 13:05 KST: stale at 15:05, 85 minutes from now
    result = report_failure(rig.ports, INGEST, guards_policy_state=True)
    assert rig.pager.events == [] and result["paged"] is False
    (message,) = rig.notifier.messages
    assert "goes stale at 15:05 KST (published 13:05 + 2h" in message["text"] and "Paged" not in message["text"]


def test_a_stale_state_says_deploys_are_blocked_and_pages(rig: Rig) -> None:
    rig.publish(datetime(2026, 5, 12, 1, 5, tzinfo=UTC))
    report_failure(rig.ports, INGEST, guards_policy_state=True)
    assert "went stale at 12:05 KST (published 10:05 + 2h" in rig.notifier.messages[0]["text"]
    assert "every deploy and game-day is blocked" in rig.notifier.messages[0]["text"]
    assert len(rig.pager.events) == 1


def test_a_service_without_a_published_state_is_blocked_already(rig: Rig) -> None:
    rig.publish(datetime(2026, 5, 12, 4, 5, tzinfo=UTC), services=("game-server",))
    report_failure(rig.ports, INGEST, guards_policy_state=True)
    assert "no error-budget policy state is published" in rig.notifier.messages[0]["text"]
    assert len(rig.pager.events) == 1


def test_repeated_failures_page_with_the_same_key(rig: Rig) -> None:
    rig.publish(datetime(2026, 5, 12, 3, 5, tzinfo=UTC))
    report_failure(rig.ports, INGEST, guards_policy_state=True)
    report_failure(rig.ports, INGEST, guards_policy_state=True)
    assert [e["dedup_key"] for e in rig.pager.events] == [dedup_key("slo_ingest")] * 2  # one PagerDuty alert


def test_a_run_about_one_service_goes_to_its_team_with_what_the_dag_says_it_blocks(rig: Rig) -> None:
    failure = TaskFailure(dag_id="game_service_deploy", task_id="gates_prod", run_id="manual__1", error="X: y",
                          service="matchmaking")
    result = report_failure(rig.ports, failure, blocks="this deploy of the service")
    assert result["channel_id"] == "C07MATCHMK1" and rig.pager.events == []
    assert "• *Blocks:* this deploy of the service" in rig.notifier.messages[0]["text"]
    assert "• *Log:* not available" in rig.notifier.messages[0]["text"]


def test_slack_markup_in_the_error_is_escaped_and_a_long_error_cut(rig: Rig) -> None:
    failure = TaskFailure(dag_id="d", task_id="t", run_id="r", error="<!channel> & `x` " + "y" * 2000)
    report_failure(rig.ports, failure)
    text = rig.notifier.messages[0]["text"]
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; 'x'" in text and len(text) < 1000


def test_a_refused_notice_goes_to_the_webhooks_channel_and_a_failed_page_is_said(rig: Rig) -> None:
    rig.publish(datetime(2026, 5, 12, 3, 5, tzinfo=UTC))
    rig.notifier.accept = False  # e.g. channel_not_found
    rig.pager.error = PagerDutyError("PagerDuty: no answer from http://pd/v2/enqueue")
    result = report_failure(rig.ports, INGEST, guards_policy_state=True)
    assert result["delivered"] is False and result["delivered_to_fixed_channel"] is True
    (text,) = rig.webhook
    assert "• *Paged:* NOT paged: PagerDuty could not be reached (PagerDutyError: PagerDuty: no answer" in text


def test_an_unreadable_store_is_said_and_pages(rig: Rig) -> None:
    def no_store() -> Any:
        raise ConnectionError("sre_store: connection refused")

    rig.ports.store = no_store
    report_failure(rig.ports, INGEST, guards_policy_state=True)
    assert "could not be read (ConnectionError: sre_store: connection refused)" in rig.notifier.messages[0]["text"]
    assert len(rig.pager.events) == 1
