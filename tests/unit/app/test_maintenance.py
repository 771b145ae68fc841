"""The maintenance use case with in-memory ports: reconcile, exact-time transitions, event scaling, ad-hoc windows."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gamesre.app.maintenance import (
    InvalidWindowRequest,
    MaintenancePorts,
    apply_request,
    apply_transition,
    reconcile,
    validate_request,
)
from gamesre.calendar import load_calendar
from gamesre.calendar.occurrence import ServiceScaling
from gamesre.calendar.scaling import EventScaler, ScaleChange
from gamesre.core.services import load_services
from tests.fakes.memory_store import memory_store
from tests.fakes.notifier import RecordingNotifier

TUESDAY_0300_KST = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)  # inside the weekly Tuesday 02:00-06:00 KST window
WINDOW = "recurring-tue-2026-12-08"


@dataclass
class FakeSilence:
    id: str


@dataclass
class FakeEnsured:
    silence: FakeSilence
    action: str


@dataclass
class FakeSilences:
    """Alertmanager's silences by (window, matchers): ensuring one twice keeps the first."""

    live: dict[tuple[str, str], str] = field(default_factory=dict)

    def ensure_silence(self, window_id: str, matchers: Any, start: datetime, end: datetime, created_by: str,
                       comment: str) -> FakeEnsured:
        key = (window_id, repr(matchers))
        if key in self.live:
            return FakeEnsured(FakeSilence(self.live[key]), "kept")
        self.live[key] = f"s{len(self.live) + 1}"
        return FakeEnsured(FakeSilence(self.live[key]), "created")

    def expire_window_silences(self, window_id: str) -> list[str]:
        gone = [sid for (wid, _), sid in self.live.items() if wid == window_id]
        self.live = {k: v for k, v in self.live.items() if k[0] != window_id}
        return gone


@dataclass
class FakeScaler(EventScaler):
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    up: set[str] = field(default_factory=set)

    def scale_up(self, event_id: str, scaling: ServiceScaling) -> ScaleChange:
        self.calls.append(("up", event_id, scaling.service))
        changed = scaling.service not in self.up
        self.up.add(scaling.service)
        return ScaleChange(changed, f"{scaling.service}: {'+' if changed else 'already'} {scaling.extra_instances}")

    def scale_back(self, event_id: str, scaling: ServiceScaling) -> ScaleChange:
        self.calls.append(("back", event_id, scaling.service))
        changed = scaling.service in self.up
        self.up.discard(scaling.service)
        return ScaleChange(changed, f"{scaling.service}: {'back' if changed else 'nothing to do'}")


@pytest.fixture
def ports() -> MaintenancePorts:
    services = load_services()
    clock = {"now": TUESDAY_0300_KST}
    scaler = FakeScaler()
    built = MaintenancePorts(store=memory_store(), silences=FakeSilences(), scaler=lambda kind: scaler,
                             notifier=RecordingNotifier(), clock=lambda: clock["now"], services=services,
                             calendar=load_calendar(services=services))
    built.clock_state = clock  # type: ignore[attr-defined]
    built.fake_scaler = scaler  # type: ignore[attr-defined]
    return built


def test_reconcile_records_and_silences_the_running_window_once(ports) -> None:
    first = reconcile(ports, TUESDAY_0300_KST)
    assert WINDOW in first["silences"]
    ids = first["silences"][WINDOW]
    assert len(ids) == len(load_services().names)  # one silence per affected service
    again = reconcile(ports, TUESDAY_0300_KST)
    assert again["silences"][WINDOW] == ids  # a re-run finds the same silences, makes no new ones
    assert ports.store.window(WINDOW)["silence_ids"] == ids
    assert ports.store.window(WINDOW)["status"] == "active"


def test_window_end_expires_its_silences_and_says_so(ports) -> None:
    reconcile(ports, TUESDAY_0300_KST)
    end = {"at": (TUESDAY_0300_KST + timedelta(hours=3)).isoformat(), "kind": "window_end", "window_id": WINDOW}
    result = apply_transition(ports, end)
    assert result["status"] == "completed" and len(result["expired"]) == len(load_services().names)
    assert ports.store.window(WINDOW)["status"] == "completed"
    ended = ports.notifier.messages[-2:]  # the weekly window affects both services: one notice in each channel
    assert all(m["text"].startswith(":white_check_mark: Maintenance ended:") for m in ended)
    assert {m["channel_id"] for m in ended} == {"C07GAMESRV1", "C07MATCHMK1"}


def test_a_transition_of_a_cancelled_window_does_nothing(ports) -> None:
    reconcile(ports, TUESDAY_0300_KST)
    ports.store.update_window(WINDOW, status="cancelled")
    start = {"at": TUESDAY_0300_KST.isoformat(), "kind": "window_start", "window_id": WINDOW}
    assert apply_transition(ports, start)["skipped"] == "cancelled or removed"


def test_event_scaling_goes_to_the_backend_and_only_changes_are_posted(ports) -> None:
    festival_lead = datetime(2026, 12, 19, 0, 30, tzinfo=UTC)  # 09:30 KST, inside the 1-hour lead time
    ports.clock_state["now"] = festival_lead
    up = {"at": festival_lead.isoformat(), "kind": "scale_up", "window_id": "winter-festival-2026"}
    first = apply_transition(ports, up)
    assert set(first["scaling"]) == {"game-server", "matchmaking"}
    posted = [m["text"] for m in ports.notifier.messages]
    assert sum("scaled up for event winter-festival-2026" in t for t in posted) == 2
    assert {m["text"].split()[1]: m["channel_id"] for m in ports.notifier.messages} == {
        "game-server": "C07GAMESRV1", "matchmaking": "C07MATCHMK1"}  # each service's change in its own channel
    apply_transition(ports, up)  # a retry changes nothing and posts nothing more
    assert len(ports.notifier.messages) == len(posted)
    assert ("up", "winter-festival-2026", "game-server") in ports.fake_scaler.calls


def test_an_adhoc_window_needs_its_fields_and_registering_it_silences_its_services(ports) -> None:
    with pytest.raises(InvalidWindowRequest, match="missing start, reason, ticket"):
        validate_request(ports, {"action": "register", "services": ["matchmaking"], "duration_minutes": 30},
                         "sre-kim")
    params = {"action": "register", "services": ["matchmaking"], "duration_minutes": 30, "window_id": "",
              "start": "2026-12-10T03:00:00+09:00", "reason": "Queue store failover drill", "ticket": "OPS-42"}
    checked = validate_request(ports, params, "sre-kim")
    assert checked["already_registered"] is False and ports.store.window(checked["window_id"]) is None
    done = apply_request(ports, checked)
    assert done["status"] == "scheduled" and len(done["silence_ids"]) == 1
    (registered,) = ports.notifier.messages  # only the affected service's channel hears of it
    assert registered["channel_id"] == "C07MATCHMK1" and "registered by sre-kim" in registered["text"]
    cancel = validate_request(ports, {**params, "action": "cancel", "window_id": done["window_id"]}, "sre-lee")
    gone = apply_request(ports, cancel)
    assert gone["status"] == "cancelled" and gone["expired_silences"] == done["silence_ids"]
    row = ports.store.window(done["window_id"])
    assert row["status"] == "cancelled" and row["cancelled_by"] == "sre-lee"
    assert ports.notifier.messages[-1]["text"].startswith(":x: Maintenance window cancelled by sre-lee")
    assert [m["channel_id"] for m in ports.notifier.messages] == ["C07MATCHMK1", "C07MATCHMK1"]
