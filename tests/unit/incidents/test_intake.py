"""The intake decision: one test per rule, and replaying or reordering a notification never changes what it does."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesre.core.services import load_services
from gamesre.incidents.intake import (
    IntakeDecision,
    OpenIncident,
    apply_decision,
    decide_intake,
    service_teams,
)
from gamesre.incidents.payload import Alert, Notification, Status
from gamesre.incidents.spec import IncidentsSpec, load_incidents

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SPEC = load_incidents()
TEAMS = service_teams(load_services())
GROUP = '{}/{severity="page"}:{alertname="SloBurnPageFast", service="game-server", slo="availability"}'
OTHER_GROUP = '{}/{severity="page"}:{alertname="EndpointsDown", service="game-server"}'


def alert(fingerprint: str, *, name: str = "SloBurnPageFast", service: str | None = "game-server",
          severity: str | None = "page", status: Status = "firing") -> Alert:
    labels = {"alertname": name}
    if service is not None:
        labels["service"] = service
    if severity is not None:
        labels["severity"] = severity
    return Alert(fingerprint, status, labels, {}, NOW - timedelta(minutes=5),
                 None if status == "firing" else NOW, "")


def notification(*alerts: Alert, group_key: str = GROUP) -> Notification:
    status: Status = "firing" if any(a.status == "firing" for a in alerts) else "resolved"
    return Notification(group_key, status, "oncall", {}, {}, "http://alertmanager:9093", 0, alerts)


def incident(id_: str, *, services: tuple[str, ...] = ("game-server",), group_keys: tuple[str, ...] = (),
             fingerprints: tuple[str, ...] = (), opened_minutes_ago: float = 60) -> OpenIncident:
    return OpenIncident(id_, services, frozenset(group_keys), frozenset(fingerprints),
                        NOW - timedelta(minutes=opened_minutes_ago))


def decide(n: Notification, *incidents: OpenIncident, spec: IncidentsSpec = SPEC) -> IntakeDecision:
    return decide_intake(n, incidents, NOW, spec, TEAMS)


FP1, FP2, FP3 = "00000000000000a1", "00000000000000b2", "00000000000000c3"


def test_the_service_teams_come_from_services_yaml() -> None:
    assert TEAMS == {"game-server": "game-server", "matchmaking": "matchmaking"}


def test_without_a_page_alert_a_notification_is_ignored_naming_the_severities_seen() -> None:
    n = notification(alert(FP1, severity="ticket"), alert(FP2, severity=None))
    d = decide(n, incident("INC-20261207-001", group_keys=(OTHER_GROUP,), fingerprints=(FP3,)))
    assert (d.action, d.incident_id, d.page_alerts, d.services, d.unowned) == ("ignore", None, (), (), ())
    assert d.why == ("no page alert (severities seen: (no severity label), ticket) and no open incident owns this "
                     "alert group")


def test_the_same_alert_group_notified_again_joins_its_incident() -> None:
    n = notification(alert(FP1), alert(FP2, status="resolved"), alert(FP3, severity="ticket", status="resolved"))
    d = decide(n, incident("INC-20261207-001", group_keys=(GROUP,), fingerprints=(FP1, FP2), opened_minutes_ago=300))
    assert (d.action, d.incident_id) == ("join", "INC-20261207-001")
    assert [a.fingerprint for a in d.page_alerts] == [FP1, FP2]
    assert d.resolved_fingerprints == (FP2,)  # the ticket alert is not the incident's
    assert d.why == "the same alert group notified again: joins INC-20261207-001; resolved: 1 alert"


def test_an_alert_group_an_incident_owns_joins_even_without_a_page_alert() -> None:
    d = decide(notification(alert(FP1, severity="ticket"), group_key=GROUP),
               incident("INC-20261207-001", group_keys=(GROUP,)))
    assert (d.action, d.incident_id, d.page_alerts) == ("join", "INC-20261207-001", ())


def test_a_page_alert_already_in_an_incident_joins_it_under_a_new_group_key() -> None:
    d = decide(notification(alert(FP1), group_key=OTHER_GROUP),
               incident("INC-20261207-002", fingerprints=(FP1,), opened_minutes_ago=240))
    assert (d.action, d.incident_id) == ("join", "INC-20261207-002")
    assert d.why == f"alert {FP1} is already part of INC-20261207-002: joins it"


def test_a_second_alert_group_of_a_service_within_the_join_window_joins_the_latest_incident() -> None:
    older = incident("INC-20261207-001", opened_minutes_ago=25)
    latest = incident("INC-20261207-002", services=("matchmaking", "game-server"), opened_minutes_ago=10)
    elsewhere = incident("INC-20261207-003", services=("matchmaking",), opened_minutes_ago=1)
    d = decide(notification(alert(FP1, name="EndpointsDown"), group_key=OTHER_GROUP), older, latest, elsewhere)
    assert (d.action, d.incident_id, d.services, d.team) == ("join", "INC-20261207-002", ("game-server",),
                                                            "game-server")
    assert d.why == "second alert group for game-server within 30m of INC-20261207-002: joins it"


@pytest.mark.parametrize(("minutes_ago", "action"), [(29.99, "join"), (30, "open"), (90, "open")])
def test_the_join_window_counts_from_the_incident_opening(minutes_ago: float, action: str) -> None:
    d = decide(notification(alert(FP1)), incident("INC-20261207-001", opened_minutes_ago=minutes_ago))
    assert d.action == action


def test_an_incident_of_another_service_is_not_joined_by_time_alone() -> None:
    d = decide(notification(alert(FP1)), incident("INC-20261207-001", services=("matchmaking",), opened_minutes_ago=1))
    assert (d.action, d.incident_id) == ("open", None)


def test_firing_page_alerts_with_no_incident_open_one() -> None:
    n = notification(alert(FP2, name="SloBurnPageFast"), alert(FP1, name="EndpointsDown"),
                     alert(FP3, severity="ticket"))
    d = decide(n)
    assert (d.action, d.incident_id) == ("open", None)  # the store assigns the id
    assert [a.fingerprint for a in d.page_alerts] == [FP1, FP2]
    assert (d.services, d.unowned, d.team, d.resolved_fingerprints) == (("game-server",), (), "game-server", ())
    assert d.why == ("2 firing page alerts (EndpointsDown, SloBurnPageFast) for game-server with no open incident: "
                     "opens one")


def test_a_resolved_notification_without_an_incident_is_ignored() -> None:
    d = decide(notification(alert(FP1, status="resolved")))
    assert (d.action, d.incident_id, d.resolved_fingerprints) == ("ignore", None, (FP1,))
    assert d.why.startswith("resolved notification for an alert group with no open incident")


def test_resolved_page_alerts_in_a_firing_notification_open_nothing() -> None:
    d = decide(notification(alert(FP1, status="resolved"), alert(FP2, severity="ticket")))
    assert d.action == "ignore"
    assert d.why.startswith("resolved notification for an alert group with no open incident")


def test_a_resolved_notification_joins_its_incident_and_never_closes_it() -> None:
    d = decide(notification(alert(FP1, status="resolved"), alert(FP2, status="resolved")),
               incident("INC-20261207-001", group_keys=(GROUP,), fingerprints=(FP1, FP2)))
    assert (d.action, d.incident_id, d.resolved_fingerprints) == ("join", "INC-20261207-001", (FP1, FP2))
    assert d.why == "the same alert group notified again: joins INC-20261207-001; resolved: 2 alerts"


def test_a_resolved_notification_never_joins_by_time_alone() -> None:
    d = decide(notification(alert(FP1, status="resolved")), incident("INC-20261207-001", opened_minutes_ago=1))
    assert d.action == "ignore"


def test_group_key_of_one_incident_and_fingerprint_of_another_join_the_group_key_owner() -> None:
    d = decide(notification(alert(FP1)),
               incident("INC-20261207-001", group_keys=(GROUP,), opened_minutes_ago=90),
               incident("INC-20261207-002", fingerprints=(FP1,), opened_minutes_ago=5))
    assert (d.action, d.incident_id) == ("join", "INC-20261207-001")
    assert d.why == ("ambiguous: the alert group belongs to INC-20261207-001 and alerts of it to INC-20261207-002; "
                     "joins INC-20261207-001, the owner of the group key")


def test_alerts_in_two_incidents_join_the_most_recently_opened_and_say_so() -> None:
    d = decide(notification(alert(FP1), alert(FP2), group_key=OTHER_GROUP),
               incident("INC-20261207-001", fingerprints=(FP1,), opened_minutes_ago=90),
               incident("INC-20261207-002", fingerprints=(FP2,), opened_minutes_ago=50))
    assert (d.action, d.incident_id) == ("join", "INC-20261207-002")
    assert d.why.startswith("ambiguous: alerts of this group belong to INC-20261207-002 and INC-20261207-001")


def test_a_page_with_a_missing_or_unknown_service_opens_owned_by_the_default_team() -> None:
    d = decide(notification(alert(FP1, service=None, name="NodeMemoryHigh"), alert(FP2, service="chat")))
    assert (d.action, d.services, d.unowned, d.team) == ("open", (), ("", "chat"), "sre")
    assert d.why == ("2 firing page alerts (NodeMemoryHigh, SloBurnPageFast) with no open incident: opens one; "
                     "service label missing, 'chat': owned by sre")


def test_an_unknown_service_next_to_a_known_one_is_listed_and_the_known_team_owns_it() -> None:
    d = decide(notification(alert(FP1, service="matchmaking"), alert(FP2, service="chat")))
    assert (d.action, d.services, d.unowned, d.team) == ("open", ("matchmaking",), ("chat",), "matchmaking")
    assert d.why.endswith("; also service label 'chat'")


def test_an_unowned_page_joins_its_own_alert_group_again() -> None:
    d = decide(notification(alert(FP1, service=None)), incident("INC-20261207-001", services=(), group_keys=(GROUP,)))
    assert (d.action, d.incident_id, d.unowned, d.team) == ("join", "INC-20261207-001", ("",), "sre")


def test_the_page_severity_comes_from_the_spec() -> None:
    spec = SPEC.model_copy(update={"intake": SPEC.intake.model_copy(update={"page_severity": "critical"})})
    assert decide(notification(alert(FP1)), spec=spec).action == "ignore"
    assert decide(notification(alert(FP1, severity="critical")), spec=spec).action == "open"


def test_applying_an_open_records_the_group_key_fingerprints_and_services() -> None:
    n = notification(alert(FP1), alert(FP2, severity="ticket"))
    [opened] = apply_decision(decide(n), n, (), new_id="INC-20261207-004", now=NOW)
    assert opened == OpenIncident("INC-20261207-004", ("game-server",), frozenset({GROUP}), frozenset({FP1}), NOW)


def test_applying_a_join_merges_into_the_joined_incident_only() -> None:
    a = incident("INC-20261207-001", services=("matchmaking",), fingerprints=(FP3,), opened_minutes_ago=5)
    b = incident("INC-20261207-002", services=("matchmaking",))
    n = notification(alert(FP1), alert(FP3, service="game-server"), group_key=OTHER_GROUP)
    d = decide(n, a, b)
    assert (d.action, d.incident_id) == ("join", "INC-20261207-001")
    after = apply_decision(d, n, (a, b), new_id="unused", now=NOW)
    assert after[0] == OpenIncident("INC-20261207-001", ("game-server", "matchmaking"), frozenset({OTHER_GROUP}),
                                    frozenset({FP1, FP3}), a.opened_at)
    assert after[1] == b
    assert apply_decision(decide(notification(alert(FP1, severity="ticket"))), n, (a, b), new_id="x", now=NOW) == (a, b)


# --- properties ---------------------------------------------------------------------------------------------

FINGERPRINTS = [f"{i:016x}" for i in range(1, 7)]
GROUPS = ["g1", "g2", "g3"]
SERVICES = ["game-server", "matchmaking", "chat", None]


@st.composite
def alerts_of_a_group(draw: st.DrawFn) -> list[Alert]:
    fingerprints = draw(st.lists(st.sampled_from(FINGERPRINTS), min_size=1, max_size=4, unique=True))
    return [alert(fp, name=draw(st.sampled_from(["SloBurnPageFast", "EndpointsDown"])),
                  service=draw(st.sampled_from(SERVICES)), severity=draw(st.sampled_from(["page", "ticket", None])),
                  status=draw(st.sampled_from(["firing", "resolved"]))) for fp in fingerprints]


@st.composite
def open_incidents(draw: st.DrawFn) -> list[OpenIncident]:
    count = draw(st.integers(0, 3))
    return [incident(f"INC-20261207-00{i + 1}",
                     services=tuple(draw(st.lists(st.sampled_from(["game-server", "matchmaking"]), unique=True))),
                     group_keys=tuple(draw(st.lists(st.sampled_from(GROUPS), unique=True, max_size=2))),
                     fingerprints=tuple(draw(st.lists(st.sampled_from(FINGERPRINTS), unique=True, max_size=3))),
                     opened_minutes_ago=draw(st.integers(0, 120)))
            for i in range(count)]


@settings(max_examples=200, deadline=None)
@given(alerts_of_a_group(), st.sampled_from(GROUPS), open_incidents(),
       st.lists(st.integers(0, 24 * 60), min_size=1, max_size=4))
def test_replaying_a_notification_joins_the_incident_it_opened_or_joined(
        alerts: list[Alert], group_key: str, incidents: list[OpenIncident], replay_after_minutes: list[int]) -> None:
    n = notification(*alerts, group_key=group_key)
    first = decide_intake(n, incidents, NOW, SPEC, TEAMS)
    state = apply_decision(first, n, incidents, new_id="INC-20261208-001", now=NOW)
    for minutes in replay_after_minutes:
        again = decide_intake(n, state, NOW + timedelta(minutes=minutes), SPEC, TEAMS)
        if first.action == "ignore":
            assert again == first
        else:
            assert (again.action, again.incident_id) == ("join", first.incident_id or "INC-20261208-001")
            assert (again.page_alerts, again.services, again.unowned, again.team) == (
                first.page_alerts, first.services, first.unowned, first.team)
        state = apply_decision(again, n, state, new_id="INC-20261208-002", now=NOW)
    assert len(state) == len(incidents) + (first.action == "open")


@settings(max_examples=200, deadline=None)
@given(alerts_of_a_group(), st.sampled_from(GROUPS), open_incidents(), st.randoms(use_true_random=False))
def test_the_order_of_alerts_and_incidents_does_not_change_the_decision(
        alerts: list[Alert], group_key: str, incidents: list[OpenIncident], rnd: random.Random) -> None:
    decision = decide_intake(notification(*alerts, group_key=group_key), incidents, NOW, SPEC, TEAMS)
    shuffled_alerts, shuffled_incidents = list(alerts), list(incidents)
    rnd.shuffle(shuffled_alerts)
    rnd.shuffle(shuffled_incidents)
    again = decide_intake(notification(*shuffled_alerts, group_key=group_key), shuffled_incidents, NOW, SPEC, TEAMS)
    assert again == decision
