"""Alertmanager webhook bodies: a realistic one is read, every malformed one is refused naming the field, and a
notification is stored and read back unchanged."""
from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesre.incidents.payload import (
    Alert,
    Notification,
    PayloadError,
    parse_alertmanager_webhook,
    parse_rfc3339,
)

GROUP_KEY = '{}/{severity="page"}:{alertname="SloBurnPageFast", service="game-server", slo="availability"}'


def webhook_body() -> dict[str, Any]:
    """What Alertmanager 0.28 POSTs to the oncall receiver for the fast burn page of the availability SLO."""
    labels = {"alertname": "SloBurnPageFast", "severity": "page", "slo": "availability", "service": "game-server",
              "team": "game-server", "tier": "page_fast", "long_window": "1h", "short_window": "5m",
              "runbook_url": "include/runbooks/slo-error-budget.md#availability"}
    annotations = {"summary": "SLO availability: error budget burning at 14.4x or more over 1h and 5m",
                   "runbook_url": "include/runbooks/slo-error-budget.md#availability"}
    return {
        "receiver": "oncall",
        "status": "firing",
        "alerts": [
            {"status": "firing", "labels": labels, "annotations": annotations,
             "startsAt": "2026-12-07T01:02:03.123456789Z", "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "http://prometheus:9090/graph?g0.expr=slo%3Asli_error%3Aratio_rate1h",
             "fingerprint": "3c5e2b0a9f1d7e64"},
            {"status": "resolved", "labels": {**labels, "instance": "gs-stable-2"}, "annotations": annotations,
             "startsAt": "2026-12-07T09:55:00+09:00", "endsAt": "2026-12-07T01:04:00.5Z",
             "generatorURL": "", "fingerprint": "A1B2C3D4E5F60718"},
        ],
        "groupLabels": {"alertname": "SloBurnPageFast", "service": "game-server", "slo": "availability"},
        "commonLabels": {"alertname": "SloBurnPageFast", "severity": "page", "slo": "availability",
                         "service": "game-server"},
        "commonAnnotations": {"runbook_url": "include/runbooks/slo-error-budget.md#availability"},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": GROUP_KEY,
        "truncatedAlerts": 0,
    }


def problems(body: object) -> list[str]:
    with pytest.raises(PayloadError) as info:
        parse_alertmanager_webhook(body)
    assert list(info.value.problems) == str(info.value).splitlines()
    return list(info.value.problems)


def test_a_realistic_body_is_read() -> None:
    n = parse_alertmanager_webhook(webhook_body())
    assert (n.group_key, n.status, n.receiver, n.external_url, n.truncated_alerts) == (
        GROUP_KEY, "firing", "oncall", "http://alertmanager:9093", 0)
    assert n.group_labels == {"alertname": "SloBurnPageFast", "service": "game-server", "slo": "availability"}
    assert n.common_labels["severity"] == "page"
    first, second = n.alerts
    assert (first.alertname, first.service, first.severity, first.slo) == (
        "SloBurnPageFast", "game-server", "page", "availability")
    assert first.starts_at == datetime(2026, 12, 7, 1, 2, 3, 123456, tzinfo=UTC)  # nanoseconds truncated
    assert first.ends_at is None  # Go's zero time: no end known yet
    assert first.fingerprint == "3c5e2b0a9f1d7e64"
    assert second.status == "resolved"
    assert second.starts_at == datetime(2026, 12, 7, 0, 55, tzinfo=UTC)  # +09:00 converted to UTC
    assert second.ends_at == datetime(2026, 12, 7, 1, 4, 0, 500000, tzinfo=UTC)
    assert second.fingerprint == "a1b2c3d4e5f60718"  # one spelling, whatever case was sent
    assert second.generator_url == ""
    assert n.fingerprints == {"3c5e2b0a9f1d7e64", "a1b2c3d4e5f60718"}


def test_labels_absent_from_an_alert_read_as_none() -> None:
    body = webhook_body()
    body["alerts"][0]["labels"] = {"alertname": "Watchdog"}
    alert = parse_alertmanager_webhook(body).alerts[0]
    assert (alert.alertname, alert.service, alert.severity, alert.slo) == ("Watchdog", None, None, None)
    body["alerts"][0]["labels"] = {}
    assert parse_alertmanager_webhook(body).alerts[0].alertname == ""


def test_fields_alertmanager_may_add_are_ignored() -> None:
    body = webhook_body()
    body["silenceURL"] = "http://alertmanager:9093/#/silences/new"
    body["alerts"][0]["silenceURL"] = "http://alertmanager:9093/#/silences/new"
    assert len(parse_alertmanager_webhook(body).alerts) == 2


@pytest.mark.parametrize("body", [[], "{}", None])
def test_the_body_must_be_an_object(body: object) -> None:
    assert problems(body) == [f"(body): must be a JSON object, got {type(body).__name__}"]


@pytest.mark.parametrize(("version", "message"), [("3", 'must be "4", got "3"'), (4, 'must be "4", got 4')])
def test_only_payload_version_4_is_read(version: object, message: str) -> None:
    body = webhook_body()
    body["version"] = version
    assert problems(body) == [f"version: {message}"]


@pytest.mark.parametrize("field", ["version", "groupKey", "status", "receiver", "groupLabels", "commonLabels",
                                   "commonAnnotations", "externalURL", "truncatedAlerts", "alerts"])
def test_a_missing_top_level_field_is_named(field: str) -> None:
    body = webhook_body()
    del body[field]
    assert problems(body) == [f"{field}: missing"]


@pytest.mark.parametrize("field", ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL",
                                   "fingerprint"])
def test_a_missing_alert_field_is_named(field: str) -> None:
    body = webhook_body()
    del body["alerts"][1][field]
    assert problems(body) == [f"alerts[1].{field}: missing"]


def test_the_group_key_is_a_non_empty_string() -> None:
    body = webhook_body()
    body["groupKey"] = ""
    assert problems(body) == ["groupKey: must not be empty"]
    body["groupKey"] = 7
    assert problems(body) == ["groupKey: must be a string, got 7"]


def test_statuses_are_firing_or_resolved() -> None:
    body = webhook_body()
    body["status"] = "pending"
    body["alerts"][0]["status"] = "suppressed"
    assert problems(body) == ['status: must be "firing" or "resolved", got \'pending\'',
                              'alerts[0].status: must be "firing" or "resolved", got \'suppressed\'']


def test_labels_and_annotations_are_string_to_string_maps() -> None:
    body = webhook_body()
    body["alerts"][0]["labels"]["replicas"] = 3
    body["alerts"][1]["annotations"] = ["summary"]
    body["commonLabels"] = {1: "x"}
    body["groupLabels"]["slo"] = None
    assert problems(body) == [
        "groupLabels.slo: must be a string, got None",
        "commonLabels: key 1 is not a string",
        "alerts[0].labels.replicas: must be a string, got 3",
        "alerts[1].annotations: must be a map of strings to strings, got list"]


@pytest.mark.parametrize(("text", "message"), [
    ("2026-12-07T01:02:03", "is not an RFC 3339 time with a timezone"),
    ("2026-12-07 01:02:03Z", "is not an RFC 3339 time with a timezone"),
    ("2026-12-07T01:02:03.1234567890Z", "is not an RFC 3339 time with a timezone"),
    ("2026-02-30T01:02:03Z", "is not a valid time: day is out of range for month"),
    ("yesterday", "is not an RFC 3339 time with a timezone"),
])
def test_times_are_rfc_3339_with_a_timezone(text: str, message: str) -> None:
    body = webhook_body()
    body["alerts"][0]["startsAt"] = text
    [line] = problems(body)
    assert line.startswith(f"alerts[0].startsAt: {text!r} {message}")


def test_a_time_is_a_string() -> None:
    body = webhook_body()
    body["alerts"][0]["endsAt"] = None
    assert problems(body) == ["alerts[0].endsAt: must be an RFC 3339 time string, got None"]


def test_an_alert_always_has_a_start() -> None:
    body = webhook_body()
    body["alerts"][0]["startsAt"] = "0001-01-01T00:00:00Z"
    assert problems(body) == ["alerts[0].startsAt: unset (0001-01-01T00:00:00Z)"]


@pytest.mark.parametrize("fingerprint", ["3c5e2b0a9f1d7e6", "3c5e2b0a9f1d7e640", "3c5e2b0a9f1d7e6g", ""])
def test_a_fingerprint_is_16_hex_digits(fingerprint: str) -> None:
    body = webhook_body()
    body["alerts"][0]["fingerprint"] = fingerprint
    assert problems(body) == [f"alerts[0].fingerprint: must be 16 hex digits, got {fingerprint!r}"]


def test_the_same_fingerprint_twice_is_ambiguous() -> None:
    body = webhook_body()
    body["alerts"].append(copy.deepcopy(body["alerts"][0]))
    body["alerts"][2]["fingerprint"] = body["alerts"][0]["fingerprint"].upper()
    assert problems(body) == ["alerts[2].fingerprint: 3c5e2b0a9f1d7e64 is also alerts[0]'s: the same alert twice "
                              "in one body is ambiguous"]


def test_an_empty_alert_list_is_refused() -> None:
    body = webhook_body()
    body["alerts"] = []
    assert problems(body) == ["alerts: empty: a notification without alerts says nothing"]
    body["alerts"] = {"0": {}}
    assert problems(body) == ["alerts: must be a list, got dict"]
    body["alerts"] = ["firing"]
    assert problems(body) == ["alerts[0]: must be an object, got str"]


@pytest.mark.parametrize("value", [-1, "0", 1.0, True])
def test_truncated_alerts_is_a_whole_number(value: object) -> None:
    body = webhook_body()
    body["truncatedAlerts"] = value
    assert problems(body) == [f"truncatedAlerts: must be a whole number >= 0, got {value!r}"]


def test_every_problem_is_listed_at_once() -> None:
    body = webhook_body()
    body["version"] = "3"
    del body["receiver"]
    body["alerts"][0]["fingerprint"] = "xyz"
    del body["alerts"][1]["startsAt"]
    assert problems(body) == ['version: must be "4", got "3"', "receiver: missing",
                              "alerts[0].fingerprint: must be 16 hex digits, got 'xyz'", "alerts[1].startsAt: missing"]


def test_rfc3339_offsets_become_utc() -> None:
    assert parse_rfc3339("2026-12-07T00:30:00+09:00") == datetime(2026, 12, 6, 15, 30, tzinfo=UTC)
    assert parse_rfc3339("2026-12-06t15:30:00.000000001-00:00") == datetime(2026, 12, 6, 15, 30, tzinfo=UTC)


def test_the_stored_form_is_json_with_iso_times() -> None:
    n = parse_alertmanager_webhook(webhook_body())
    doc = json.loads(json.dumps(n.to_dict()))
    assert doc["alerts"][0]["starts_at"] == "2026-12-07T01:02:03.123456Z"
    assert doc["alerts"][0]["ends_at"] is None
    assert doc["alerts"][1]["starts_at"] == "2026-12-07T00:55:00Z"
    assert Notification.from_dict(doc) == n
    assert Alert.from_dict(doc["alerts"][1]) == n.alerts[1]


def test_a_damaged_stored_form_is_refused_naming_the_field() -> None:
    doc = parse_alertmanager_webhook(webhook_body()).to_dict()
    del doc["group_key"]
    doc["alerts"][0]["starts_at"] = None
    with pytest.raises(PayloadError) as info:
        Notification.from_dict(doc)
    assert info.value.problems == ("group_key: missing",
                                   "alerts[0].starts_at: must be an RFC 3339 time string, got None")
    with pytest.raises(PayloadError, match=r"^fingerprint: missing$"):
        Alert.from_dict({k: v for k, v in doc["alerts"][1].items() if k != "fingerprint"})


# --- round trips --------------------------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_labels = st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), _text, max_size=5)
_instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
_alerts = st.builds(
    Alert,
    fingerprint=st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
    status=st.sampled_from(["firing", "resolved"]),
    labels=_labels,
    annotations=_labels,
    starts_at=_instants,
    ends_at=st.none() | _instants,
    generator_url=_text,
)


@st.composite
def notifications(draw: st.DrawFn) -> Notification:
    alerts = draw(st.lists(_alerts, min_size=1, max_size=5, unique_by=lambda a: a.fingerprint))
    return Notification(
        group_key=draw(_text.filter(bool)), status=draw(st.sampled_from(["firing", "resolved"])),
        receiver=draw(_text), group_labels=draw(_labels), common_labels=draw(_labels), external_url=draw(_text),
        truncated_alerts=draw(st.integers(0, 1000)), alerts=tuple(alerts))


@settings(max_examples=80, deadline=None)
@given(notifications())
def test_a_stored_notification_reads_back_unchanged(n: Notification) -> None:
    assert Notification.from_dict(json.loads(json.dumps(n.to_dict()))) == n


def as_webhook(n: Notification) -> dict[str, Any]:
    """The body Alertmanager would have sent for a notification."""
    def stamp(at: datetime | None) -> str:
        return "0001-01-01T00:00:00Z" if at is None else at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "789Z"
    return {"version": "4", "groupKey": n.group_key, "truncatedAlerts": n.truncated_alerts, "status": n.status,
            "receiver": n.receiver, "groupLabels": dict(n.group_labels), "commonLabels": dict(n.common_labels),
            "commonAnnotations": {}, "externalURL": n.external_url,
            "alerts": [{"status": a.status, "labels": dict(a.labels), "annotations": dict(a.annotations),
                        "startsAt": stamp(a.starts_at), "endsAt": stamp(a.ends_at), "generatorURL": a.generator_url,
                        "fingerprint": a.fingerprint} for a in n.alerts]}


@settings(max_examples=80, deadline=None)
@given(notifications())
def test_a_webhook_body_parses_to_the_notification_it_carries(n: Notification) -> None:
    parsed = parse_alertmanager_webhook(json.loads(json.dumps(as_webhook(n))))
    assert parsed == n
    assert Notification.from_dict(parsed.to_dict()) == parsed
