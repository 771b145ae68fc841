"""Alertmanager's webhook body (payload version "4") read strictly into a Notification, and stored and read back.

Alertmanager POSTs one JSON document per alert group and notification: the group's key and labels, and its
alerts, each with a fingerprint (a hash of its labels) that stays the same for as long as the alert exists.
Parsing refuses what would make the intake guess: a missing field, a label that is not a string, a time
without a timezone, the same fingerprint twice. Every problem is named by its field path in one PayloadError,
e.g. `alerts[2].fingerprint: missing`. Fields this module does not know are ignored: Alertmanager adds fields
within a payload version.

`to_dict()` / `from_dict()` are the stored form (snake_case keys, ISO 8601 UTC times, null for an unset end).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal, cast

PAYLOAD_VERSION = "4"

Status = Literal["firing", "resolved"]
_STATUSES = ("firing", "resolved")
_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{16}$")
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$")
_UNSET_YEAR = 1  # Go's zero time, 0001-01-01T00:00:00Z: what Alertmanager sends for an end that is not known


MAX_BODY_BYTES = 4 * 1024 * 1024  # Alertmanager's bodies are kilobytes; a group of 1,000 alerts is about 1 MB


class PayloadError(ValueError):
    """A webhook body (or a stored notification) that cannot be read; one line per problem, each naming its field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 time with its timezone as an aware UTC datetime; fractions beyond microseconds (Alertmanager
    writes nanoseconds) are truncated. ValueError otherwise."""
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 time with a timezone, like 2026-12-07T01:02:03.5Z")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zulu, sign, off_h, off_m = match.groups()[6:]
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    offset = timedelta(0) if zulu else (1 if sign == "+" else -1) * timedelta(hours=int(off_h), minutes=int(off_m))
    try:
        local = datetime(year, month, day, hour, minute, second, micros, tzinfo=timezone(offset))
        return local.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{text!r} is not a valid time: {exc}") from None


def format_time(at: datetime) -> str:
    """An aware datetime as ISO 8601 UTC with a Z (microseconds only when there are any)."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Alert:
    """One alert of a notification; `ends_at` is None when Alertmanager does not know the end yet."""

    fingerprint: str
    status: Status
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def service(self) -> str | None:
        return self.labels.get("service")

    @property
    def severity(self) -> str | None:
        return self.labels.get("severity")

    @property
    def slo(self) -> str | None:
        return self.labels.get("slo")

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "starts_at": format_time(self.starts_at),
            "ends_at": None if self.ends_at is None else format_time(self.ends_at),
            "generator_url": self.generator_url,
        }

    @classmethod
    def from_dict(cls, doc: object) -> Alert:
        """The inverse of to_dict; PayloadError naming the field when the stored form is damaged."""
        reader = _Reader()
        alert = reader.alert(doc, "", _STORED_ALERT)
        reader.check()
        assert alert is not None  # the reader raised otherwise
        return alert


@dataclass(frozen=True)
class Notification:
    """One webhook call: an alert group (its key and labels) and its alerts, in the order Alertmanager sent them."""

    group_key: str
    status: Status
    receiver: str
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    external_url: str
    truncated_alerts: int
    alerts: tuple[Alert, ...]

    @property
    def fingerprints(self) -> frozenset[str]:
        return frozenset(a.fingerprint for a in self.alerts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_key": self.group_key,
            "status": self.status,
            "receiver": self.receiver,
            "group_labels": dict(self.group_labels),
            "common_labels": dict(self.common_labels),
            "external_url": self.external_url,
            "truncated_alerts": self.truncated_alerts,
            "alerts": [a.to_dict() for a in self.alerts],
        }

    @classmethod
    def from_dict(cls, doc: object) -> Notification:
        """The inverse of to_dict; PayloadError naming the field when the stored form is damaged."""
        return _Reader().notification(doc, _STORED)


def parse_alertmanager_webhook(body: object) -> Notification:
    """The notification in a webhook body (the decoded JSON); PayloadError listing every problem otherwise."""
    return _Reader().notification(body, _WEBHOOK)


# --- reading, shared by the webhook body and the stored form (which differ in key names only) ----------------


@dataclass(frozen=True)
class _Keys:
    version: str | None
    group_key: str
    status: str
    receiver: str
    group_labels: str
    common_labels: str
    common_annotations: str | None
    external_url: str
    truncated_alerts: str
    alerts: str
    alert: _AlertKeys


@dataclass(frozen=True)
class _AlertKeys:
    fingerprint: str
    status: str
    labels: str
    annotations: str
    starts_at: str
    ends_at: str
    generator_url: str
    unset_end_is_zero_time: bool  # Alertmanager's Go zero time; the stored form writes null


_WEBHOOK_ALERT = _AlertKeys("fingerprint", "status", "labels", "annotations", "startsAt", "endsAt", "generatorURL",
                            unset_end_is_zero_time=True)
_STORED_ALERT = _AlertKeys("fingerprint", "status", "labels", "annotations", "starts_at", "ends_at", "generator_url",
                           unset_end_is_zero_time=False)
_WEBHOOK = _Keys("version", "groupKey", "status", "receiver", "groupLabels", "commonLabels", "commonAnnotations",
                 "externalURL", "truncatedAlerts", "alerts", _WEBHOOK_ALERT)
_STORED = _Keys(None, "group_key", "status", "receiver", "group_labels", "common_labels", None, "external_url",
                "truncated_alerts", "alerts", _STORED_ALERT)

_MISSING = object()


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


class _Reader:
    """Collects every problem with its field path, so that one error lists them all."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def check(self) -> None:
        if self.problems:
            raise PayloadError(self.problems)

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path or '(body)'}: {message}")

    def field(self, doc: Mapping[str, Any], key: str, path: str) -> object:
        value = doc.get(key, _MISSING)
        if value is _MISSING:
            self.problem(_join(path, key), "missing")
        return value

    def string(self, doc: Mapping[str, Any], key: str, path: str, *, empty: bool = True) -> str:
        value = self.field(doc, key, path)
        if value is _MISSING:
            return ""
        if not isinstance(value, str):
            self.problem(_join(path, key), f"must be a string, got {value!r}")
            return ""
        if not empty and not value:
            self.problem(_join(path, key), "must not be empty")
        return value

    def status(self, doc: Mapping[str, Any], key: str, path: str) -> Status:
        value = self.field(doc, key, path)
        if value is not _MISSING and value not in _STATUSES:
            self.problem(_join(path, key), f'must be "firing" or "resolved", got {value!r}')
        return cast(Status, value if value in _STATUSES else "firing")

    def string_map(self, doc: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
        value = self.field(doc, key, path)
        where = _join(path, key)
        if value is _MISSING:
            return {}
        if not isinstance(value, dict):
            self.problem(where, f"must be a map of strings to strings, got {type(value).__name__}")
            return {}
        out: dict[str, str] = {}
        for name, item in value.items():
            if not isinstance(name, str):
                self.problem(where, f"key {name!r} is not a string")
            elif not isinstance(item, str):
                self.problem(f"{where}.{name}", f"must be a string, got {item!r}")
            else:
                out[name] = item
        return dict(sorted(out.items()))

    def time(self, doc: Mapping[str, Any], key: str, path: str, *, unset_is_zero: bool,
             optional: bool) -> datetime | None:
        value = self.field(doc, key, path)
        where = _join(path, key)
        if value is _MISSING:
            return None
        if value is None and optional and not unset_is_zero:
            return None
        if not isinstance(value, str):
            self.problem(where, f"must be an RFC 3339 time string, got {value!r}")
            return None
        try:
            at = parse_rfc3339(value)
        except ValueError as exc:
            self.problem(where, str(exc))
            return None
        if unset_is_zero and at.year == _UNSET_YEAR:
            if not optional:
                self.problem(where, f"unset ({value})")
            return None
        return at

    def alert(self, doc: object, path: str, keys: _AlertKeys) -> Alert | None:
        if not isinstance(doc, dict):
            self.problem(path, f"must be an object, got {type(doc).__name__}")
            return None
        before = len(self.problems)
        fingerprint = self.string(doc, keys.fingerprint, path)
        if isinstance(doc.get(keys.fingerprint), str) and not _FINGERPRINT.match(fingerprint):
            self.problem(_join(path, keys.fingerprint), f"must be 16 hex digits, got {fingerprint!r}")
        status = self.status(doc, keys.status, path)
        labels = self.string_map(doc, keys.labels, path)
        annotations = self.string_map(doc, keys.annotations, path)
        starts_at = self.time(doc, keys.starts_at, path, unset_is_zero=keys.unset_end_is_zero_time, optional=False)
        ends_at = self.time(doc, keys.ends_at, path, unset_is_zero=keys.unset_end_is_zero_time, optional=True)
        generator_url = self.string(doc, keys.generator_url, path)
        if len(self.problems) > before or starts_at is None:
            return None
        return Alert(fingerprint.lower(), status, labels, annotations, starts_at, ends_at, generator_url)

    def notification(self, body: object, keys: _Keys) -> Notification:
        if not isinstance(body, dict):
            raise PayloadError([f"(body): must be a JSON object, got {type(body).__name__}"])
        if keys.version is not None:
            version = self.field(body, keys.version, "")
            if version is not _MISSING and version != PAYLOAD_VERSION:
                self.problem(keys.version, f'must be "{PAYLOAD_VERSION}", got {version!r}'.replace("'", '"'))
        group_key = self.string(body, keys.group_key, "", empty=False)
        status = self.status(body, keys.status, "")
        receiver = self.string(body, keys.receiver, "")
        group_labels = self.string_map(body, keys.group_labels, "")
        common_labels = self.string_map(body, keys.common_labels, "")
        if keys.common_annotations is not None:
            self.string_map(body, keys.common_annotations, "")
        external_url = self.string(body, keys.external_url, "")
        truncated = self.field(body, keys.truncated_alerts, "")
        if truncated is not _MISSING and (type(truncated) is not int or truncated < 0):
            self.problem(keys.truncated_alerts, f"must be a whole number >= 0, got {truncated!r}")
        alerts: list[Alert] = []
        items = self.field(body, keys.alerts, "")
        if items is not _MISSING and not isinstance(items, list):
            self.problem(keys.alerts, f"must be a list, got {type(items).__name__}")
        elif isinstance(items, list) and not items:
            self.problem(keys.alerts, "empty: a notification without alerts says nothing")
        elif isinstance(items, list):
            first_at: dict[str, int] = {}
            for index, item in enumerate(items):
                alert = self.alert(item, f"{keys.alerts}[{index}]", keys.alert)
                if alert is None:
                    continue
                if alert.fingerprint in first_at:
                    self.problem(f"{keys.alerts}[{index}].{keys.alert.fingerprint}",
                                 f"{alert.fingerprint} is also alerts[{first_at[alert.fingerprint]}]'s: "
                                 "the same alert twice in one body is ambiguous")
                    continue
                first_at[alert.fingerprint] = index
                alerts.append(alert)
        self.check()
        return Notification(group_key, status, receiver, group_labels, common_labels, external_url,
                            cast(int, truncated), tuple(alerts))
