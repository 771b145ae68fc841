"""The SLO use cases with in-memory ports: ingest with catch-up and a partial failure, the published states, the
daily report."""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from gamesre.app.slo import SloPorts, compute_states, ingest, is_daily_report_time, post_report
from gamesre.core.errors import OutsideSystemError
from gamesre.slo.ingest import IngestError
from gamesre.slo.spec import load_policies, load_slos, parse_slos
from tests.fakes.counter_history import CounterSeries, FakePrometheus
from tests.fakes.memory_store import memory_store
from tests.fakes.notifier import RecordingNotifier

END = datetime(2026, 3, 20, 3, 0, tzinfo=UTC)
START = END - timedelta(hours=3)
CATALOG = load_slos()
AVAILABILITY = CATALOG["availability"]


def history() -> FakePrometheus:
    """Two instances of game actions every 15 s over the 3 hours (and the hour before): 2% failures, a fast burn."""
    t = np.arange(START.timestamp() - 3600, END.timestamp() + 60, 15.0)
    series = []
    for instance in ("i0", "i1"):
        series.append(CounterSeries({"instance": instance, "code": "200"}, t, np.arange(t.size) * 98.0))
        series.append(CounterSeries({"instance": instance, "code": "500"}, t, np.arange(t.size) * 2.0))
    sli = AVAILABILITY.sli
    return FakePrometheus({sli.total_selectors()[0].promql(): series,  # type: ignore[union-attr]
                           sli.good_selectors()[0].promql(): [s for s in series  # type: ignore[union-attr]
                                                              if s.labels["code"] == "200"]})


class FailingAfter:
    """A Prometheus that stops answering after `calls` queries, as one stopped in the middle of an ingest."""

    def __init__(self, prom: FakePrometheus, calls: int):
        self.prom, self.left = prom, calls

    def _spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise OutsideSystemError("Prometheus at http://prom is unreachable: ConnectionError")

    def raw_samples(self, *args):  # type: ignore[no-untyped-def]
        self._spend()
        return self.prom.raw_samples(*args)

    def last_values(self, *args):  # type: ignore[no-untyped-def]
        self._spend()
        return self.prom.last_values(*args)

    def query_range(self, *args):  # type: ignore[no-untyped-def]
        self._spend()
        return self.prom.query_range(*args)


def ports(prometheus, slos=None) -> SloPorts:  # type: ignore[no-untyped-def]
    return SloPorts(store=memory_store(), prometheus=lambda: prometheus, notifier=RecordingNotifier(),
                    clock=lambda: END + timedelta(minutes=1), slos=slos or parse_slos(
                        {"version": 1, "slos": [AVAILABILITY.model_dump(exclude_none=True)]}),
                    policy=load_policies(), report_channel_id="C0REPORTS", sleep=lambda s: None)


def test_ingest_fills_back_to_the_backfill_floor_then_only_the_interval(caplog) -> None:
    p = ports(history())
    first = ingest(p, END - timedelta(minutes=5), END, max_backfill=timedelta(hours=3))
    assert first["slos"][0]["start"] == int(START.timestamp())  # the first run fills the floor's 3 hours
    assert len(p.store.ledger("availability")) == 180
    later = ingest(p, END - timedelta(minutes=5), END, max_backfill=timedelta(hours=3))
    assert later["slos"][0]["start"] == int((END - timedelta(minutes=5)).timestamp())


def test_a_partial_ingest_says_what_was_written_and_the_next_run_completes_it_exactly(caplog) -> None:
    whole = ports(history())
    ingest(whole, END - timedelta(minutes=5), END, max_backfill=timedelta(hours=3), chunk_seconds=3600)
    p = ports(FailingAfter(history(), calls=3))  # the first hour's two queries, then one of the second hour
    with caplog.at_level(logging.INFO, logger="gamesre.app.slo"), pytest.raises(IngestError) as err:
        ingest(p, END - timedelta(minutes=5), END, max_backfill=timedelta(hours=3), chunk_seconds=3600)
    assert "availability: written 2026-03-20T00:00:00Z..2026-03-20T01:00:00Z (60 of 180 minutes" in str(err.value)
    assert "NOT written 2026-03-20T01:00:00Z..2026-03-20T03:00:00Z: OutsideSystemError" in caplog.text
    assert "The next run continues each SLO above" in caplog.text
    p.prometheus = lambda: history()  # Prometheus is back
    ingest(p, END - timedelta(minutes=5), END, max_backfill=timedelta(hours=3), chunk_seconds=3600)
    got, want = p.store.ledger("availability"), whole.store.ledger("availability")
    for field in ("minutes", "good", "total", "span"):
        assert getattr(got, field).tolist() == getattr(want, field).tolist()


def test_states_are_published_per_slo_and_per_service_and_the_report_reaches_slack() -> None:
    p = ports(history())
    ingest(p, END - timedelta(minutes=5), END, max_backfill=timedelta(hours=3))
    published = compute_states(p, END)
    assert set(published["slos"]) == {"availability"} and published["services"] == {"game-server": "fast_burn"}
    state = p.store.current_state("slo", "availability")
    assert state is not None and state["computed_at"] == END and state["state"] == "fast_burn"
    p.store.upsert_incident({"id": "INC-20260320-001", "severity": "sev1", "title": "logins failing",
                             "services": ["game-server"], "opened_at": END - timedelta(hours=2), "status": "resolved",
                             "resolved_at": END - timedelta(hours=1),
                             "details": {"postmortem": {"budget": {"availability": {"budget_share": 0.123}}}}})
    p.store.upsert_incident({"id": "INC-20260320-002", "severity": "sev2", "title": "queue slow",
                             "services": ["matchmaking"], "opened_at": END - timedelta(minutes=30)})
    p.store.upsert_incident({"id": "INC-20260101-001", "severity": "sev1", "title": "old",
                             "services": ["game-server"], "opened_at": END - timedelta(days=60), "status": "resolved"})
    sent = post_report(p, END)
    assert sent["message_sent"] and sent["chart_sent"]
    assert sent["incidents"] == ["INC-20260320-001", "INC-20260320-002"]  # those of the 30-day window
    text = p.notifier.messages[0]["text"]
    assert "INC-20260320-001 SEV1 logins failing (resolved, opened 03-20 10:00 KST): budget availability 12.3%" in text
    assert "INC-20260320-002 SEV2 queue slow (open, opened 03-20 11:30 KST): budget not known until it is resolved" \
        in text
    assert "availability" in p.notifier.messages[0]["text"] and p.notifier.messages[0]["channel_id"] == "C0REPORTS"
    assert p.notifier.files[0]["channel_id"] == "C0REPORTS" and p.notifier.files[0]["name"].endswith(".png")


def test_the_daily_report_hour_is_nine_in_seoul() -> None:
    assert is_daily_report_time(datetime(2026, 3, 20, 0, 30, tzinfo=UTC))  # 09:30 KST
    assert not is_daily_report_time(datetime(2026, 3, 20, 1, 0, tzinfo=UTC))  # 10:00 KST
