"""The intake use case with the real store on in-memory SQLite: open, join, repeat, ignore, refuse."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gamesre.app import incidents
from gamesre.app.incidents import (
    IncidentConfig,
    IncidentPorts,
    PayloadError,
    SlackChannelTaken,
    receive_notification,
)
from gamesre.incidents.oncall import roster
from gamesre.integrations.store import SREStore
from tests.fakes.alertmanager_webhook import alert, body, raw
from tests.fakes.memory_store import memory_store
from tests.fakes.notifier import RecordingNotifier

NOW = datetime(2026, 12, 7, 1, 3, tzinfo=UTC)  # 10:03 KST


@pytest.fixture(scope="module")
def config() -> IncidentConfig:
    return IncidentConfig()


@pytest.fixture
def store() -> SREStore:
    return memory_store()


def test_a_page_opens_an_incident_with_its_alerts_severity_and_timeline(store: SREStore,
                                                                         config: IncidentConfig) -> None:
    result = receive_notification(raw(body(alert(slo="data-save-success", service="game-server"))), store, config,
                                  NOW)
    assert (result.action, result.incident_id, result.created, result.repeat) == ("open", "INC-20261207-001",
                                                                                 True, False)
    incident = store.incident("INC-20261207-001")
    assert incident is not None
    assert (incident["severity"], incident["status"], incident["services"], incident["team"]) == (
        "sev1", "open", ["game-server"], "game-server")  # the data-save-success rule of incidents.yaml
    assert incident["title"] == "SloBurnPageFast on game-server"
    assert [a["status"] for a in store.incident_alerts("INC-20261207-001")] == ["firing"]
    kinds = [e["kind"] for e in store.incident_events("INC-20261207-001")]
    assert kinds == ["intake", "severity", "alert_firing"]
    assert "player saves are failing" in store.incident_events("INC-20261207-001")[1]["summary"]


def test_the_same_body_again_only_counts_and_a_changed_group_joins(store: SREStore, config: IncidentConfig) -> None:
    first = body(alert(instance="gs-stable-1"))
    receive_notification(raw(first), store, config, NOW)
    again = receive_notification(raw(first), store, config, NOW + timedelta(minutes=1))
    assert (again.action, again.incident_id, again.created, again.repeat, again.times) == (
        "open", "INC-20261207-001", False, True, 2)  # what that body did the first time; nothing new
    grown = body(alert(instance="gs-stable-1"), alert(instance="gs-stable-2"))
    joined = receive_notification(raw(grown), store, config, NOW + timedelta(minutes=5))
    assert (joined.action, joined.incident_id, joined.repeat) == ("join", "INC-20261207-001", False)
    assert "the same alert group notified again" in joined.why
    assert len(store.incidents()) == 1 and len(store.incident_alerts("INC-20261207-001")) == 2
    assert [r["times"] for r in store.intake_log()] == [2, 1]


def test_a_second_group_of_the_service_joins_within_the_window_and_opens_after_it(store: SREStore,
                                                                                   config: IncidentConfig) -> None:
    receive_notification(raw(body(alert())), store, config, NOW)
    latency = body(alert("GameActionLatencyHigh", slo="latency"))
    joined = receive_notification(raw(latency), store, config, NOW + timedelta(minutes=29))
    assert (joined.action, joined.incident_id) == ("join", "INC-20261207-001")
    later = body(alert("MatchmakingSuccessLow", service="matchmaking", slo="matchmaking-success"))
    opened = receive_notification(raw(later), store, config, NOW + timedelta(minutes=31))
    assert (opened.action, opened.incident_id) == ("open", "INC-20261207-002")
    assert [i["id"] for i in store.open_incidents(service="matchmaking")] == ["INC-20261207-002"]


def test_resolved_alerts_are_marked_and_never_close_the_incident(store: SREStore, config: IncidentConfig) -> None:
    receive_notification(raw(body(alert())), store, config, NOW)
    resolved = body(alert(status="resolved", ends_at=NOW + timedelta(minutes=9)))
    result = receive_notification(raw(resolved), store, config, NOW + timedelta(minutes=10))
    assert (result.action, result.incident_id) == ("join", "INC-20261207-001")
    assert [a["status"] for a in store.incident_alerts("INC-20261207-001")] == ["resolved"]
    assert store.incident("INC-20261207-001")["status"] == "open"  # type: ignore[index]


def test_tickets_and_unknown_resolutions_are_recorded_and_ignored(store: SREStore, config: IncidentConfig) -> None:
    ticket = receive_notification(raw(body(alert(severity="ticket"))), store, config, NOW)
    stray = receive_notification(raw(body(alert("Other", status="resolved", ends_at=NOW))), store, config, NOW)
    assert (ticket.action, stray.action) == ("ignore", "ignore")
    assert store.incidents() == []
    assert [r["action"] for r in store.intake_log()] == ["ignore", "ignore"]
    assert "severities seen: ticket" in ticket.why


def test_a_page_of_an_unknown_service_is_owned_by_the_sre_team(store: SREStore, config: IncidentConfig) -> None:
    result = receive_notification(raw(body(alert(service="billing"))), store, config, NOW)
    incident = store.incident(str(result.incident_id))
    assert incident is not None and (incident["team"], incident["services"]) == ("sre", [])
    assert incident["details"]["unowned"] == ["billing"]
    assert "'billing': owned by sre" in result.why


@pytest.mark.parametrize(("payload", "says"), [
    (b"{not json", "body: not JSON"),
    (b"[]", "body: must be a JSON object, got list"),
    (raw({**body(alert()), "version": "3"}), "version"),
    (raw({**body(alert()), "alerts": []}), "alerts"),
])
def test_a_bad_body_is_refused_naming_the_problem_and_nothing_is_recorded(store: SREStore, config: IncidentConfig,
                                                                         payload: bytes, says: str) -> None:
    with pytest.raises(PayloadError, match=says):
        receive_notification(payload, store, config, NOW)
    assert store.intake_log() == [] and store.incidents() == []


# --- declare and assemble -----------------------------------------------------------------------------------------

@dataclass
class Chat(RecordingNotifier):
    channels: dict[str, str] = field(default_factory=dict)  # name -> id
    taken: set[str] = field(default_factory=set)
    down: bool = False

    def create_channel(self, name: str) -> str:
        if self.down:
            raise ConnectionError("slack.com unreachable")
        if name in self.taken or name in self.channels:
            raise SlackChannelTaken(name)
        self.channels[name] = f"C0INC{len(self.channels):06d}"
        return self.channels[name]


@dataclass
class Pager:
    events: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    down: bool = False

    def trigger(self, *, summary: str, source: str, dedup_key: str, severity: str, details: dict[str, Any]) -> str:
        if self.down:
            raise ConnectionError("events.pagerduty.com unreachable")
        self.events.append({"summary": summary, "dedup_key": dedup_key, "details": details})
        return dedup_key

    def resolve(self, *, dedup_key: str) -> str:
        if self.down:
            raise ConnectionError("events.pagerduty.com unreachable")
        self.resolved.append(dedup_key)
        return dedup_key


def ports_of(store: SREStore, config: IncidentConfig, chat: Chat, pager: Pager, at: datetime,
             report_dir: Path | None = None) -> IncidentPorts:
    return IncidentPorts(store=store, chat=chat, pager=lambda: pager, clock=lambda: at, config=config,
                         report_dir=report_dir)


def opened(store: SREStore, config: IncidentConfig, **labels: Any) -> str:
    result = receive_notification(raw(body(alert(**labels))), store, config, NOW)
    return str(result.incident_id)


def test_declare_raises_the_severity_on_a_fast_burn_and_says_why(store: SREStore, config: IncidentConfig) -> None:
    incident_id = opened(store, config, slo="latency")
    assert store.incident(incident_id)["severity"] == "sev2"  # type: ignore[index]
    store.publish_state("slo", "latency", "fast_burn", NOW, [],
                        {"budget_remaining_adjusted": 0.61, "burn_rates_adjusted": {"1h": 15.2}})
    later = NOW + timedelta(seconds=20)
    result = incidents.declare(ports_of(store, config, Chat(), Pager(), later), incident_id)
    assert result["severity"] == "sev1"
    events = store.incident_events(incident_id)
    assert [e["kind"] for e in events][-3:] == ["severity", "declared", "suspects"]
    assert "sev2 -> sev1" in events[-3]["summary"] and "14.4x" in events[-3]["summary"]
    assert events[-1]["summary"].startswith("suspects: SLO latency fast_burn since 10:03 KST")
    assert "14.4x" in store.incident(incident_id)["details"]["severity_why"][0]  # type: ignore[index]
    again = incidents.declare(ports_of(store, config, Chat(), Pager(), later + timedelta(minutes=1)), incident_id)
    assert again["declared_at"] == result["declared_at"] and len(store.incident_events(incident_id)) == len(events)


def test_assemble_assigns_roles_from_the_rotation_makes_the_channel_posts_and_pages(store: SREStore,
                                                                                    config: IncidentConfig) -> None:
    incident_id = opened(store, config, slo="data-save-success")  # sev1: pages, three roles
    chat, pager = Chat(), Pager()
    ports = ports_of(store, config, chat, pager, NOW + timedelta(seconds=30))
    incidents.declare(ports, incident_id)
    result = incidents.assemble(ports, incident_id)
    on_call = roster(config.oncall, "game-server", NOW)
    roles = store.incident_roles(incident_id)
    assert {r: v["person"] for r, v in roles.items()} == {
        "incident_commander": on_call.level("primary").person, "operations_lead": on_call.level("secondary").person,
        "communications_lead": on_call.level("tertiary").person}
    assert result["channel"] == "#inc-20261207-sloburnpagefast-on-game-server"
    game_server = config.services.channel_id("game-server")
    sre = config.services.sre.slack.channel_id
    assert [m["channel_id"] for m in chat.messages] == [chat.channels[result["channel"][1:]], game_server, sre]
    text = chat.messages[0]["text"]
    assert f"*{incident_id}* declared: *SEV1*" in text and on_call.level("primary").name in text
    assert [e["dedup_key"] for e in pager.events] == [incident_id]
    # a retry of the task sends nothing twice
    incidents.assemble(ports, incident_id)
    assert len(chat.messages) == 3 and len(pager.events) == 1 and len(chat.channels) == 1


def test_a_taken_channel_name_gets_a_suffix(store: SREStore, config: IncidentConfig) -> None:
    incident_id = opened(store, config)
    title = store.incident(incident_id)["title"]  # type: ignore[index]
    chat = Chat(taken={incidents.channel_name(incident_id, title)})
    result = incidents.assemble(ports_of(store, config, chat, Pager(), NOW), incident_id)
    assert result["channel"] == f"#{incidents.channel_name(incident_id, title)}-2"


def test_slack_and_pagerduty_down_are_recorded_and_the_incident_goes_on(store: SREStore,
                                                                        config: IncidentConfig) -> None:
    incident_id = opened(store, config, slo="data-save-success")
    chat, pager = Chat(down=True, accept=False), Pager(down=True)
    result = incidents.assemble(ports_of(store, config, chat, pager, NOW), incident_id)
    assert result["channel"] is None and result["paged"]["delivered"] is False
    notices = store.incident_notices(incident_id)
    assert [(n["channel"], n["delivered"]) for n in notices] == [("slack", False)] * 3 + [("pagerduty", False)]
    assert "unreachable" in notices[0]["error"] and "unreachable" in notices[-1]["error"]
    assert any("NOT sent" in e["summary"] for e in store.incident_events(incident_id))
    # once Slack and PagerDuty are back, a retry delivers what was not
    chat.down, chat.accept, pager.down = False, True, False
    incidents.assemble(ports_of(store, config, chat, pager, NOW + timedelta(minutes=1)), incident_id)
    assert len(pager.events) == 1 and len(chat.messages) == 5 and len(chat.channels) == 1



# --- people, escalation, resolution ---------------------------------------------------------------------------------

@dataclass
class StatusPage:
    posts: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False

    def create_incident(self, *, name: str, status: str, body: str, components: Any) -> str:
        return self._post("create", name=name, status=status, body=body, components=dict(components))

    def update_incident(self, incident_id: str, *, status: str, body: str, components: Any) -> None:
        self._post("update", id=incident_id, status=status, body=body, components=dict(components))

    def _post(self, kind: str, **fields: Any) -> str:
        if self.down:
            raise ConnectionError("status page unreachable")
        self.posts.append({"kind": kind, **fields})
        return "sp1"


@dataclass
class Rig:
    store: SREStore
    config: IncidentConfig
    chat: Chat = field(default_factory=Chat)
    pager: Pager = field(default_factory=Pager)
    page: StatusPage = field(default_factory=StatusPage)
    now: datetime = NOW
    report_dir: Path | None = None

    @property
    def ports(self) -> IncidentPorts:
        return IncidentPorts(store=self.store, chat=self.chat, pager=lambda: self.pager, clock=lambda: self.now,
                             config=self.config, report_dir=self.report_dir, status_page=lambda: self.page)

    def at(self, **delta: float) -> Rig:
        self.now = NOW + timedelta(**delta)
        return self


@pytest.fixture
def rig(store: SREStore, config: IncidentConfig, tmp_path: Path) -> Rig:
    return Rig(store, config, report_dir=tmp_path)


def assembled(rig: Rig, **labels: Any) -> str:
    incident_id = opened(rig.store, rig.config, **labels)
    incidents.declare(rig.ports, incident_id)
    incidents.assemble(rig.ports, incident_id)
    return incident_id


def test_without_an_acknowledgement_every_level_is_brought_in_on_time_once(rig: Rig) -> None:
    incident_id = assembled(rig, slo="data-save-success")
    opened_at = rig.store.incident(incident_id)["opened_at"]  # type: ignore[index]
    rig.now = opened_at + timedelta(minutes=4)
    state = incidents.watch(rig.ports, incident_id)
    assert state["escalated"] == [] and state["next_at"] == (opened_at + timedelta(minutes=5)).isoformat()
    rig.now = opened_at + timedelta(minutes=5, seconds=3)
    state = incidents.watch(rig.ports, incident_id)
    on_call = roster(rig.config.oncall, "game-server", rig.now)
    assert [(s["level"], s["person"]) for s in state["escalated"]] == [("secondary",
                                                                         on_call.level("secondary").person)]
    assert state["next_at"] == (opened_at + timedelta(minutes=30)).isoformat()
    assert incidents.watch(rig.ports, incident_id)["escalated"] == []  # once
    rig.now = opened_at + timedelta(hours=2)  # a watch that comes late takes both, says how late
    assert [s["level"] for s in incidents.watch(rig.ports, incident_id)["escalated"]] == ["tertiary", "executive"]
    escalations = [e for e in rig.store.incident_events(incident_id) if e["kind"] == "escalated"]
    assert [e["details"]["level"] for e in escalations] == ["secondary", "tertiary", "executive"]
    assert "taken 5400 s late" in escalations[1]["summary"]
    assert [e["dedup_key"] for e in rig.pager.events][1:] == [f"{incident_id}/secondary", f"{incident_id}/tertiary",
                                                               f"{incident_id}/executive"]
    message = next(m for m in rig.chat.messages if "Executive (CTO)" in m["text"] and "escalated" in m["text"])
    assert f"<@{on_call.level('executive').slack_user_id}>" in message["text"]


def test_an_acknowledgement_in_time_stops_the_secondary_and_is_said(rig: Rig) -> None:
    incident_id = assembled(rig)
    rig.at(minutes=3)
    result = incidents.act(rig.ports, incident_id, "acknowledge", "yuna")
    assert "acknowledged by yuna" in result["said"] and "Secondary is not brought in" in result["said"]
    assert incidents.act(rig.ports, incident_id, "acknowledge", "doyun")["changed"] is False
    rig.at(minutes=20)
    state = incidents.watch(rig.ports, incident_id)
    assert state["escalated"] == [] and state["seen"]["acknowledged"] is True
    assert state["next_at"].startswith(str((rig.store.incident(incident_id)["opened_at"]  # type: ignore[index]
                                            + timedelta(minutes=30)).date()))


@pytest.mark.parametrize(("action", "fields", "says"), [
    ("severity", {"severity": "sev1"}, "reason"),
    ("severity", {"severity": "sev9", "text": "worse"}, "sev9"),
    ("handover", {"role": "incident_commander", "person": "bob", "text": "shift end"}, "unknown person 'bob'"),
    ("handover", {"role": "chef", "person": "yuna", "text": "x"}, "unknown role 'chef'"),
    ("note", {}, "a note needs its text"),
    ("resolve", {}, "one-line summary"),
    ("reboot", {}, "unknown action 'reboot'"),
])
def test_a_person_action_that_cannot_apply_is_refused_and_changes_nothing(rig: Rig, action: str,
                                                                          fields: dict[str, str], says: str) -> None:
    incident_id = assembled(rig)
    before = (rig.store.incident(incident_id), len(rig.store.incident_events(incident_id)))
    with pytest.raises(incidents.IncidentActionRefused, match=says):
        incidents.act(rig.ports, incident_id, action, "yuna", **fields)
    assert (rig.store.incident(incident_id), len(rig.store.incident_events(incident_id))) == before
    with pytest.raises(incidents.IncidentActionRefused, match="no incident INC-20991231-001"):
        incidents.act(rig.ports, "INC-20991231-001", "acknowledge", "yuna")


def test_severity_handover_and_notes_are_recorded_with_who_and_why(rig: Rig) -> None:
    incident_id = assembled(rig)
    incidents.act(rig.ports, incident_id, "severity", "doyun", severity="sev1", text="saves failing in one region")
    incidents.act(rig.ports, incident_id, "handover", "doyun", role="incident_commander", person="haeun",
                  text="shift change")
    incidents.act(rig.ports, incident_id, "note", "haeun", text="rolled back 1.6.66")
    assert rig.store.incident(incident_id)["severity"] == "sev1"  # type: ignore[index]
    assert rig.store.incident_roles(incident_id)["incident_commander"]["person"] == "haeun"
    last = rig.store.incident_events(incident_id)[-3:]
    assert [(e["kind"], e["actor"]) for e in last] == [("severity", "doyun"), ("role", "doyun"), ("note", "haeun")]
    assert "raised sev2 -> sev1 by doyun: saves failing in one region" in last[0]["summary"]


def test_resolving_ends_the_watch_and_close_writes_the_postmortem_with_the_budget_cost(rig: Rig) -> None:
    store = rig.store
    # one minute of 1,000 saves with 10 failed, before and during the incident, and a deploy 10 minutes before
    first = int(datetime(2026, 12, 7, 1, 2, tzinfo=UTC).timestamp())
    store.upsert_ledger("data-save-success", [(first - 60 * k, 990.0, 1000.0) for k in range(0, 3)]
                        + [(first + 60 * k, 990.0, 1000.0) for k in range(1, 8)])
    store.publish_state("slo", "data-save-success", "fast_burn", NOW, [],
                        {"budget_total": 100.0, "budget_unit": "events", "budget_remaining_adjusted": 0.2,
                         "burn_rates_adjusted": {"1h": 100.0}})
    store.upsert_deployment({"id": "d1", "service": "game-server", "version": "1.6.66", "image": "i",
                             "previous_version": "1.6.65", "strategy": "canary", "stages": ["prod"],
                             "backend": "local", "change_ticket": "", "requested_by": "ci", "dry_run": False,
                             "forced": False, "outcome": "promoted", "requested_at": NOW - timedelta(minutes=15),
                             "finished_at": NOW - timedelta(minutes=10)})
    incident_id = assembled(rig, slo="data-save-success")
    declared = rig.store.incident(incident_id)["details"]  # type: ignore[index]
    assert [s["what"] for s in declared["suspects"]][:1] == [
        "deploy game-server 1.6.66 (from 1.6.65) promoted, 9 min before the first alert"]
    assert "Suspects (from the store): deploy game-server 1.6.66" in rig.chat.messages[0]["text"]
    rig.at(minutes=2)
    incidents.act(rig.ports, incident_id, "acknowledge", "yuna")
    rig.at(minutes=7)
    incidents.act(rig.ports, incident_id, "resolve", "yuna", text="rolled back 1.6.66; saves recovered")
    assert incidents.watch(rig.ports, incident_id)["resolved"] is True
    with pytest.raises(incidents.IncidentActionRefused, match="resolved already"):
        incidents.act(rig.ports, incident_id, "note", "yuna", text="late")
    result = incidents.close(rig.ports, incident_id)
    # the first alert started 01:02:03 UTC: the minutes 01:02 to 01:09, before the resolution at 01:10 (8 x 10
    # failed saves), of a budget of 100 failed saves
    assert result["budget"]["data-save-success"]["bad"] == pytest.approx(80.0)
    assert result["budget"]["data-save-success"]["budget_share"] == pytest.approx(0.80)
    metrics = result["metrics"]
    assert metrics["mtta_s"] == pytest.approx(120 - 0) and metrics["mttr_s"] == pytest.approx(420)
    assert metrics["burn_started_at"] == "2026-12-07T01:00:00+00:00"  # the run of burning minutes before the page
    assert rig.pager.resolved == [incident_id]
    postmortem = rig.store.incident(incident_id)["details"]["postmortem"]  # type: ignore[index]
    assert postmortem["owner"] == roster(rig.config.oncall, "game-server", NOW).level("primary").person
    assert postmortem["due"] == "2026-12-14"  # Sev1: 5 business days after Monday 2026-12-07 (KST)
    text = postmortem["markdown"]
    assert "deploy game-server 1.6.66 (from 1.6.65): promoted" in text
    assert "| data-save-success | 80 events | 8000 events, 8 min | 80.00% |" in text
    assert "no budget lost: availability, concurrent-sessions, error-rate, latency" in text
    assert "Why 1?" in text and "acknowledged by yuna" in text
    assert Path(postmortem["path"]).read_text() == text
    again = incidents.close(rig.ports, incident_id)  # a retry: nothing twice
    assert again["metrics"] == metrics and rig.pager.resolved == [incident_id]
    assert sum(1 for e in rig.store.incident_events(incident_id) if e["kind"] == "postmortem") == 1



def test_the_status_page_is_opened_updated_at_the_cadence_with_a_reminder_and_resolved(rig: Rig) -> None:
    incident_id = assembled(rig, slo="data-save-success")  # sev1: every 30 min, partial outage
    first = rig.page.posts[0]
    assert (first["kind"], first["status"], first["components"]) == ("create", "investigating",
                                                                     {"game-servers": "partial_outage"})
    assert "게임 서버 / Game servers에 문제가 발생하여" in first["body"] and "Next update by 10:33 KST" in first["body"]
    opened_at = rig.store.incident(incident_id)["opened_at"]  # type: ignore[index]
    rig.now = opened_at + timedelta(minutes=29)
    incidents.act(rig.ports, incident_id, "acknowledge", "yuna")
    state = incidents.watch(rig.ports, incident_id)
    assert len(rig.page.posts) == 1 and state["next_at"] == (opened_at + timedelta(minutes=30)).isoformat()
    rig.now = opened_at + timedelta(minutes=30, seconds=5)
    incidents.watch(rig.ports, incident_id)
    assert [(p["kind"], p["status"]) for p in rig.page.posts] == [("create", "investigating"),
                                                                   ("update", "investigating")]
    comms = roster(rig.config.oncall, "game-server", NOW).level("tertiary")
    reminder = rig.chat.messages[-1]["text"]
    assert reminder.startswith(f":loudspeaker: <@{comms.slack_user_id}> the status page update")
    rig.now += timedelta(minutes=5)
    incidents.act(rig.ports, incident_id, "resolve", "yuna", text="rolled back")
    incidents.close(rig.ports, incident_id)
    last = rig.page.posts[-1]
    assert (last["kind"], last["status"], last["components"]) == ("update", "resolved", {"game-servers": "operational"})
    incidents.close(rig.ports, incident_id)
    assert len(rig.page.posts) == 3  # resolved once


def test_a_status_page_that_is_down_is_recorded_and_tried_again(rig: Rig) -> None:
    rig.page.down = True
    incident_id = assembled(rig, slo="data-save-success")
    assert rig.page.posts == []
    failed = [n for n in rig.store.incident_notices(incident_id) if n["channel"] == "statuspage"]
    assert [(n["purpose"], n["delivered"]) for n in failed] == [("investigating", False)]
    assert "unreachable" in failed[0]["error"]
    rig.page.down = False
    rig.at(minutes=2)
    incidents.watch(rig.ports, incident_id)
    assert [p["kind"] for p in rig.page.posts] == ["create"]


def test_a_sev3_is_not_announced(rig: Rig) -> None:
    incident_id = opened(rig.store, rig.config)
    rig.store.update_incident(incident_id, severity="sev3")
    incidents.assemble(rig.ports, incident_id)
    assert rig.page.posts == []



def test_a_postmortem_is_marked_final_only_after_resolution_and_with_where_it_is(rig: Rig) -> None:
    incident_id = assembled(rig, slo="data-save-success")
    with pytest.raises(incidents.IncidentActionRefused, match="not resolved yet"):
        incidents.act(rig.ports, incident_id, "postmortem_final", "yuna", text="https://wiki/pm/1")
    rig.at(minutes=10)
    incidents.act(rig.ports, incident_id, "resolve", "yuna", text="rolled back")
    with pytest.raises(incidents.IncidentActionRefused, match="no postmortem draft yet"):
        incidents.act(rig.ports, incident_id, "postmortem_final", "yuna", text="https://wiki/pm/1")
    incidents.close(rig.ports, incident_id)
    assert rig.store.incident(incident_id)["details"]["postmortem"]["status"] == "draft"  # type: ignore[index]
    with pytest.raises(incidents.IncidentActionRefused, match="needs where it is"):
        incidents.act(rig.ports, incident_id, "postmortem_final", "yuna")
    incidents.act(rig.ports, incident_id, "postmortem_final", "yuna", text="https://wiki/pm/1")
    postmortem = rig.store.incident(incident_id)["details"]["postmortem"]  # type: ignore[index]
    assert (postmortem["status"], postmortem["final"], postmortem["final_by"]) == ("final", "https://wiki/pm/1", "yuna")
    incidents.close(rig.ports, incident_id)  # a re-run of close keeps what people said
    again = rig.store.incident(incident_id)["details"]["postmortem"]  # type: ignore[index]
    assert (again["status"], again["final"], again["final_by"]) == ("final", "https://wiki/pm/1", "yuna")


# --- mitigation: the suspect deploy rolled back, the running chaos experiment aborted ----------------------------

def deployed(store: SREStore, deployment_id: str, version: str, previous: str, minutes_ago: float,
             outcome: str = "promoted", **fields: Any) -> None:
    store.upsert_deployment({"id": deployment_id, "service": "game-server", "version": version, "image": "i",
                             "previous_version": previous, "strategy": "canary", "stages": ["prod"],
                             "backend": "local", "change_ticket": "CHG-1", "requested_by": "ci", "dry_run": False,
                             "forced": False, "outcome": outcome,
                             "requested_at": NOW - timedelta(minutes=minutes_ago + 5),
                             "finished_at": NOW - timedelta(minutes=minutes_ago), **fields})


def test_rollback_asks_for_a_deploy_run_back_to_what_the_latest_promoted_suspect_replaced(rig: Rig) -> None:
    deployed(rig.store, "d-old", "1.6.65", "1.6.64", 50)
    deployed(rig.store, "d-bad", "1.6.66", "1.6.65", 10)
    deployed(rig.store, "d-failed", "1.6.67", "1.6.66", 5, outcome="rolled_back")
    incident_id = assembled(rig)
    result = incidents.act(rig.ports, incident_id, "rollback", "yuna", text="saves fail since 1.6.66")
    assert result["deploy_dag"] == "game_service_deploy"
    assert result["deploy_run_id"] == f"rollback__{incident_id}__20261207T010300Z"
    assert result["deploy_conf"] == {"kind": "rollback", "service": "game-server", "rollback_of": "d-bad",
                                     "change_ticket": incident_id, "requested_by": "yuna"}
    event = rig.store.incident_events(incident_id)[-1]
    assert (event["kind"], event["actor"]) == ("mitigation", "yuna")
    assert event["summary"] == (f"rollback of game-server 1.6.66 -> 1.6.65 asked for by yuna (deployment d-bad): "
                                f"deploy run rollback__{incident_id}__20261207T010300Z; saves fail since 1.6.66")
    assert event["details"]["deploy_conf"]["rollback_of"] == "d-bad"
    assert rig.chat.messages[-1]["text"] == f"*{incident_id}*: {event['summary']}"
    # named explicitly, an older one
    older = incidents.act(rig.ports, incident_id, "rollback", "yuna", target="d-old")
    assert older["deploy_conf"]["rollback_of"] == "d-old"


@pytest.mark.parametrize(("setup", "target", "says"), [
    ([], "", "no promoted deploy of game-server among the suspects"),
    ([("d1", "1.6.66", "1.6.65", 10, "promoted", {})], "d9", "no deployment 'd9' of game-server"),
    ([("d1", "1.6.66", "1.6.65", 10, "rolled_back", {})], "d1", r"d1 \(1.6.66, rolled_back\) was not promoted"),
    ([("d1", "1.6.65", "1.6.66", 10, "promoted", {"kind": "rollback", "rollback_of": "d0"})], "d1",
     "is itself a rollback"),
    ([("d0", "1.6.66", "1.6.65", 30, "promoted", {}),
      ("d1", "1.6.65", "1.6.66", 10, "promoted", {"kind": "automatic-rollback", "rollback_of": "d0"})], "",
     "d1 is itself a rollback"),  # the latest change among the suspects is the budget policy's rollback
    ([("d1", "1.6.66", "1.6.65", 20, "promoted", {}),
      ("r1", "1.6.65", "1.6.66", 10, "running", {"kind": "rollback", "rollback_of": "d1"})], "",
     "d1 is rolled back already by run r1 \\(running\\)"),
])
def test_a_rollback_that_cannot_apply_is_refused_and_changes_nothing(rig: Rig, setup: list[tuple[Any, ...]],
                                                                     target: str, says: str) -> None:
    for deployment_id, version, previous, ago, outcome, fields in setup:
        deployed(rig.store, deployment_id, version, previous, ago, outcome, **fields)
    incident_id = assembled(rig)
    before = len(rig.store.incident_events(incident_id))
    with pytest.raises(incidents.IncidentActionRefused, match=says):
        incidents.act(rig.ports, incident_id, "rollback", "yuna", target=target)
    assert len(rig.store.incident_events(incident_id)) == before


def test_abort_chaos_turns_on_the_kill_switch_of_each_experiment_injecting_into_the_services(rig: Rig) -> None:
    switched: list[tuple[str, str]] = []

    def chaos_abort(run_id: str, why: str) -> str:
        switched.append((run_id, why))
        return f"gamesre_chaos_kill_switch__{run_id}"

    def chaos_run(run_id: str, service: str, *, finished: bool = False) -> None:
        rig.store.upsert_chaos_run({"id": run_id, "experiment": "gs-latency", "title": "t", "service": service,
                                    "backend": "local", "environment": "prod", "fault": {}, "probes": [],
                                    "requested_at": NOW - timedelta(minutes=8),
                                    "injected_at": NOW - timedelta(minutes=7),
                                    "finished_at": NOW - timedelta(minutes=1) if finished else None})

    chaos_run("c-game", "game-server")
    chaos_run("c-done", "game-server", finished=True)
    chaos_run("c-match", "matchmaking")
    incident_id = assembled(rig)
    ports = replace(rig.ports, chaos_abort=chaos_abort)
    result = incidents.act(ports, incident_id, "abort_chaos", "yuna", text="the latency fault hides the cause")
    assert switched == [("c-game", f"{incident_id}: the latency fault hides the cause (yuna)")]
    assert result["said"] == ("chaos aborted by yuna (the latency fault hides the cause): gs-latency on game-server "
                              "(run c-game, switch gamesre_chaos_kill_switch__c-game); the fault is removed at the "
                              "run's next poll")
    assert rig.store.incident_events(incident_id)[-1]["kind"] == "mitigation"
    with pytest.raises(incidents.IncidentActionRefused, match="no chaos run 'c-match' is injecting a fault into "
                                                              "game-server now"):
        incidents.act(ports, incident_id, "abort_chaos", "yuna", target="c-match")
