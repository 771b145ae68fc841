"""Alertmanager API v2 client: silences for maintenance windows (idempotent per window id) and firing alerts.

A silence made for a calendar window carries the window id in its comment as `[gamesre-window:<id>]`, so a
retry or a re-run finds it instead of making another one. A window may own several silences (one per
service: matchers are ANDed, so two services cannot share one); a silence is identified by the window id
and its set of matchers. Every silence has an end time: the client refuses to make one without.

The client talks to an HttpEndpoint (gamesre.integrations.http_endpoint): basic auth or a bearer token, TLS with a
private CA or a client certificate, extra headers (a multi-tenant Mimir's X-Scope-OrgID), a path prefix.

Errors: an unreachable Alertmanager raises `AlertmanagerUnreachable` naming the URL; refused credentials (HTTP
401/403) or a failed TLS verification raise `AlertmanagerAccessError` naming the connection; an HTTP error raises
`AlertmanagerError` with Alertmanager's own message (e.g. why it refused a matcher). No message carries a secret.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import requests

from gamesre.core.errors import OutsideSystemError
from gamesre.core.services import Matcher
from gamesre.integrations.http_endpoint import ACCESS_DENIED, HttpEndpoint

MARKER = "[gamesre-window:{id}]"
_MARKER = re.compile(r"\[gamesre-window:([A-Za-z0-9._:-]+)\]")
LIVE_STATES = ("active", "pending")

EnsureAction = Literal["created", "reused", "updated", "replaced"]


class AlertmanagerError(OutsideSystemError):
    """Alertmanager answered with an error; `message` is Alertmanager's own text, `label` says which Alertmanager
    (with its connection, when it came from one)."""

    def __init__(self, message: str, *, status: int | None = None, url: str = "", label: str = "Alertmanager"):
        where = f" ({url}, HTTP {status})" if status is not None else (f" ({url})" if url else "")
        super().__init__(f"{label}: {message}{where}")
        self.message = message
        self.status = status
        self.url = url


class AlertmanagerUnreachable(AlertmanagerError):
    """No answer from Alertmanager at all (connection refused, DNS, timeout)."""


class AlertmanagerAccessError(AlertmanagerUnreachable):
    """Alertmanager (or a gateway in front of it) refused the credentials, or TLS verification failed: asking
    again does not help. The message is the whole sentence, naming the connection."""

    def __init__(self, sentence: str, *, status: int | None = None, url: str = ""):
        OutsideSystemError.__init__(self, sentence)
        self.message = sentence
        self.status = status
        self.url = url


def window_marker(window_id: str) -> str:
    if not _MARKER.fullmatch(MARKER.format(id=window_id)):
        raise ValueError(f"window id {window_id!r} cannot be put in a silence marker (letters, digits, . _ : - only)")
    return MARKER.format(id=window_id)


def window_id_of(comment: str) -> str | None:
    """The window id in a silence comment, or None for silences not made for a window."""
    match = _MARKER.search(comment or "")
    return match.group(1) if match else None


def _format_time(at: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as Alertmanager writes it back."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _as_matchers(matchers: Iterable[Matcher | str]) -> tuple[Matcher, ...]:
    parsed = tuple(m if isinstance(m, Matcher) else Matcher.parse(m) for m in matchers)
    if not parsed:
        raise ValueError("a silence needs at least one matcher (an empty one would silence everything)")
    return parsed


def _matcher_key(matchers: Iterable[Matcher]) -> frozenset[Matcher]:
    return frozenset(matchers)


@dataclass(frozen=True)
class Silence:
    id: str
    state: str  # active | pending | expired
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    starts_at_raw: str  # exactly as Alertmanager sent it: an update of an active silence must repeat it

    @property
    def window_id(self) -> str | None:
        return window_id_of(self.comment)

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @classmethod
    def from_api(cls, doc: dict[str, Any]) -> Silence:
        return cls(
            id=str(doc["id"]), state=str(doc.get("status", {}).get("state", "")),
            matchers=tuple(Matcher.from_api(m) for m in doc.get("matchers", [])),
            starts_at=_parse_time(doc["startsAt"]), ends_at=_parse_time(doc["endsAt"]),
            created_by=str(doc.get("createdBy", "")), comment=str(doc.get("comment", "")),
            starts_at_raw=str(doc["startsAt"]),
        )


@dataclass(frozen=True)
class EnsureResult:
    """What ensure_silence did: created a silence, reused one, updated one in place, or replaced one."""

    silence: Silence
    action: EnsureAction
    previous_id: str | None = None  # for "replaced": the silence Alertmanager expired in its place


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str  # active | suppressed | unprocessed
    silenced_by: tuple[str, ...]
    inhibited_by: tuple[str, ...]
    starts_at: datetime

    @classmethod
    def from_api(cls, doc: dict[str, Any]) -> Alert:
        status = doc.get("status", {})
        return cls(
            fingerprint=str(doc.get("fingerprint", "")), labels=dict(doc.get("labels", {})),
            annotations=dict(doc.get("annotations", {})), state=str(status.get("state", "")),
            silenced_by=tuple(status.get("silencedBy") or ()), inhibited_by=tuple(status.get("inhibitedBy") or ()),
            starts_at=_parse_time(doc["startsAt"]),
        )


class AlertmanagerClient:
    """A client of one Alertmanager, e.g. `AlertmanagerClient("http://127.0.0.1:9093")`, or an HttpEndpoint with
    credentials, TLS settings and headers (what AlertmanagerHook builds from a connection)."""

    def __init__(self, endpoint: HttpEndpoint | str, *, timeout: float = 10.0,
                 session: requests.Session | None = None):
        self.endpoint = HttpEndpoint.of("Alertmanager", endpoint)
        self.url = self.endpoint.base_url  # never holds credentials
        self.timeout = timeout
        self.session = session or self.endpoint.requests_session()

    # --- transport -----------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.url}/api/v2{path}"
        scrub, label = self.endpoint.scrub, self.endpoint.label
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise AlertmanagerAccessError(self.endpoint.tls_failed(exc), url=url) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise AlertmanagerUnreachable(scrub(f"unreachable at {self.url}: {type(exc).__name__}: {exc}"),
                                          url=url, label=label) from None
        if response.status_code in ACCESS_DENIED:
            raise AlertmanagerAccessError(self.endpoint.refused(response.status_code, response.text),
                                          status=response.status_code, url=url)
        if response.status_code >= 400:
            raise AlertmanagerError(scrub(_error_message(response)), status=response.status_code, url=url,
                                    label=label)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise AlertmanagerError(scrub(f"answered {method} {path} with something that is not JSON: "
                                          f"{response.text[:200]!r}"), status=response.status_code, url=url,
                                    label=label) from None

    # --- silences ------------------------------------------------------------------------------------------
    def silences(self, filter: Sequence[Matcher | str] = (), *, window_id: str | None = None,
                 states: Sequence[str] | None = None) -> list[Silence]:
        """Silences, optionally those whose matchers match `filter` (Alertmanager's filter), of one window
        and in some states; oldest start first."""
        params = [("filter", str(m)) for m in _as_matchers(filter)] if filter else []
        docs = self._request("GET", "/silences", params=params) or []
        found = [Silence.from_api(d) for d in docs]
        if window_id is not None:
            found = [s for s in found if s.window_id == window_id]
        if states is not None:
            found = [s for s in found if s.state in states]
        return sorted(found, key=lambda s: (s.starts_at, s.id))

    def silence(self, silence_id: str) -> Silence:
        return Silence.from_api(self._request("GET", f"/silence/{silence_id}"))

    def ensure_silence(self, window_id: str, matchers: Sequence[Matcher | str], starts_at: datetime,
                       ends_at: datetime, created_by: str, comment: str, *,
                       now: datetime | None = None) -> EnsureResult:
        """One live silence for (window, matchers) ending at `ends_at`; safe to call again and again.

        - none yet: create it (a start in the past means now, as Alertmanager does);
        - an active or pending one with the same end: reuse it;
        - a different end (the window was extended or shortened): update it (POST with its id); Alertmanager
          keeps the id when it can update in place and otherwise expires it and returns a new one.
        """
        parsed = _as_matchers(matchers)
        marker = window_marker(window_id)
        now = now or datetime.now(UTC)
        for at, what in ((starts_at, "starts_at"), (ends_at, "ends_at")):
            if not isinstance(at, datetime) or at.tzinfo is None:
                raise ValueError(f"{what} must be a timezone-aware datetime, got {at!r}")
        if ends_at <= starts_at:
            raise ValueError(f"silence for window {window_id}: ends_at {_format_time(ends_at)} is not after "
                             f"starts_at {_format_time(starts_at)}")
        if ends_at <= now:
            raise ValueError(f"silence for window {window_id}: ends_at {_format_time(ends_at)} is in the past; "
                             "the window is over, nothing to silence")
        full_comment = comment if marker in comment else f"{comment.rstrip()} {marker}".strip()
        key = _matcher_key(parsed)
        existing = [s for s in self.silences(window_id=window_id, states=LIVE_STATES)
                    if _matcher_key(s.matchers) == key]
        body: dict[str, Any] = {"matchers": [m.to_api() for m in parsed], "endsAt": _format_time(ends_at),
                                "createdBy": created_by, "comment": full_comment}
        if not existing:
            body["startsAt"] = _format_time(starts_at)
            created = self._post_silence(body)
            return EnsureResult(self.silence(created), "created")
        current, *duplicates = existing
        for extra in duplicates:  # an older client or a person made more than one: keep the first
            self.expire(extra.id)
        if _format_time(current.ends_at) == _format_time(ends_at):
            return EnsureResult(current, "reused")
        # An active silence keeps its start (Alertmanager refuses to move it); a pending one may move.
        body["id"] = current.id
        body["startsAt"] = current.starts_at_raw if current.state == "active" else _format_time(starts_at)
        new_id = self._post_silence(body)
        action: EnsureAction = "updated" if new_id == current.id else "replaced"
        return EnsureResult(self.silence(new_id), action, None if action == "updated" else current.id)

    def _post_silence(self, body: dict[str, Any]) -> str:
        answer = self._request("POST", "/silences", json=body)
        if not isinstance(answer, dict) or "silenceID" not in answer:
            raise AlertmanagerError(self.endpoint.scrub(f"unexpected answer to POST /silences: {answer!r}"),
                                    url=self.url, label=self.endpoint.label)
        return str(answer["silenceID"])

    def expire(self, silence_id: str) -> None:
        """Expire one silence (DELETE /api/v2/silence/{id})."""
        self._request("DELETE", f"/silence/{silence_id}")

    def expire_window_silences(self, window_id: str, *, keep: Iterable[str] = ()) -> list[str]:
        """Expire every live silence of the window (except the ids in `keep`); returns the ids expired.

        Idempotent: a second call finds none left and expires nothing.
        """
        window_marker(window_id)
        keep_ids = set(keep)
        expired = []
        for s in self.silences(window_id=window_id, states=LIVE_STATES):
            if s.id not in keep_ids:
                self.expire(s.id)
                expired.append(s.id)
        return expired

    # --- alerts --------------------------------------------------------------------------------------------
    def version(self) -> str:
        """The running Alertmanager's version (GET /api/v2/status, versionInfo.version)."""
        return str(self._request("GET", "/status")["versionInfo"]["version"])

    def alerts(self, filter: Sequence[Matcher | str] = (), *, active: bool = True, silenced: bool = True,
               inhibited: bool = True, unprocessed: bool = True) -> list[Alert]:
        """Alerts Alertmanager holds that match `filter`; by default every state, including silenced ones."""
        params: list[tuple[str, str]] = [
            ("active", str(active).lower()), ("silenced", str(silenced).lower()),
            ("inhibited", str(inhibited).lower()), ("unprocessed", str(unprocessed).lower()),
        ]
        params += [("filter", str(m)) for m in _as_matchers(filter)] if filter else []
        return [Alert.from_api(d) for d in self._request("GET", "/alerts", params=params) or []]

    def ready(self) -> bool:
        """True when Alertmanager answers its readiness endpoint."""
        try:
            return self.session.get(f"{self.url}/-/ready", timeout=self.timeout).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            return False


def _error_message(response: requests.Response) -> str:
    """Alertmanager's message: a JSON string, a JSON object with `message`, or plain text."""
    try:
        doc = response.json()
    except ValueError:
        return response.text.strip() or f"HTTP {response.status_code}"
    if isinstance(doc, str):
        return doc
    if isinstance(doc, dict) and "message" in doc:
        return str(doc["message"])
    return str(doc)
