"""A Statuspage-compatible client (Atlassian Statuspage's REST API v1): the incident players read, and the status
of the components it affects.

`POST <url>/v1/pages/<page_id>/incidents` opens an incident, `PATCH .../incidents/<id>` updates it (status
investigating, identified, monitoring or resolved; the message; each component's status), with the API key as
`Authorization: OAuth <key>`. The URL is https://api.statuspage.io in production; the demo's stand-in is the
Slack sink (demo/slack_sink.py), which records and shows what players would read.

Errors: `StatusPageError` (an OutsideSystemError) naming the URL and the API's reason; never the key.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from gamesre.core.errors import OutsideSystemError

API_URL = "https://api.statuspage.io"
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
COMPONENT_STATUSES = ("operational", "degraded_performance", "partial_outage", "major_outage")


class StatusPageError(OutsideSystemError):
    """The status page could not be reached or refused the change."""


class StatusPage:
    def __init__(self, api_key: str, page_id: str, url: str = API_URL, timeout: float = 10.0):
        if not api_key or not page_id:
            raise ValueError("a status page needs its API key (the connection's password) and page id (extra page_id)")
        self.api_key, self.page_id, self.url, self.timeout = api_key, page_id, url.rstrip("/"), timeout

    def create_incident(self, *, name: str, status: str, body: str, components: Mapping[str, str]) -> str:
        """Open an incident; its id on the status page."""
        answer = self._send("POST", f"/v1/pages/{self.page_id}/incidents",
                            self._incident(name=name, status=status, body=body, components=components))
        return str(answer["id"])

    def update_incident(self, incident_id: str, *, status: str, body: str, components: Mapping[str, str]) -> None:
        self._send("PATCH", f"/v1/pages/{self.page_id}/incidents/{incident_id}",
                   self._incident(status=status, body=body, components=components))

    @staticmethod
    def _incident(*, status: str, body: str, components: Mapping[str, str], name: str | None = None) -> dict[str, Any]:
        if status not in INCIDENT_STATUSES:
            raise ValueError(f"status must be one of {', '.join(INCIDENT_STATUSES)}, not {status!r}")
        bad = sorted(s for s in components.values() if s not in COMPONENT_STATUSES)
        if bad:
            raise ValueError(f"component status must be one of {', '.join(COMPONENT_STATUSES)}, not {bad}")
        incident: dict[str, Any] = {"status": status, "body": body, "components": dict(components),
                                    "component_ids": sorted(components), "deliver_notifications": True}
        if name is not None:
            incident["name"] = name
        return {"incident": incident}

    def _send(self, method: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        endpoint = f"{self.url}{path}"
        try:
            response = requests.request(method, endpoint, json=payload, timeout=self.timeout,
                                        headers={"Authorization": f"OAuth {self.api_key}"})
        except requests.RequestException as exc:
            raise StatusPageError(f"status page: no answer from {endpoint}: {type(exc).__name__}") from exc
        if response.status_code not in (200, 201):
            raise StatusPageError(f"the status page refused the change ({method} {endpoint}, HTTP "
                                  f"{response.status_code}): {response.text[:300]}")
        try:
            answer = response.json()
        except ValueError:
            raise StatusPageError(f"the status page's answer is not JSON ({endpoint})") from None
        if not isinstance(answer, dict):
            raise StatusPageError(f"the status page's answer is not an incident ({endpoint})")
        return answer
