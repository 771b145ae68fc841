"""PagerDuty Events API v2 client: trigger and resolve an alert on a service by its integration (routing) key.

`POST <url>/v2/enqueue` with the event; PagerDuty answers 202 with the dedup key. A trigger carrying the dedup key of
an alert that is still open is added to that alert instead of opening (and paging for) a new one. The URL is
PagerDuty's (https://events.pagerduty.com) in production; the demo's stand-in is the Slack sink (demo/slack_sink.py).

Errors: `PagerDutyError` (an OutsideSystemError) naming the URL and PagerDuty's own reasons.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from gamesre.core.errors import OutsideSystemError

EVENTS_URL = "https://events.pagerduty.com"
SEVERITIES = ("critical", "error", "warning", "info")


class PagerDutyError(OutsideSystemError):
    """PagerDuty could not be reached or refused the event."""


class PagerDutyEvents:
    def __init__(self, routing_key: str, url: str = EVENTS_URL, timeout: float = 10.0):
        if not routing_key:
            raise ValueError("a PagerDuty routing key (the service's Events v2 integration key) is required")
        self.routing_key = routing_key
        self.url = url.rstrip("/")
        self.timeout = timeout

    def trigger(self, *, summary: str, source: str, dedup_key: str, severity: str = "critical",
                details: Mapping[str, Any] | None = None) -> str:
        """Open (or add to) the alert of `dedup_key`; returns the dedup key PagerDuty acknowledged."""
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        return self._send({"routing_key": self.routing_key, "event_action": "trigger", "dedup_key": dedup_key,
                           "client": "gamesre",
                           "payload": {"summary": summary[:1024], "source": source, "severity": severity,
                                       "custom_details": dict(details or {})}})

    def resolve(self, *, dedup_key: str) -> str:
        """Resolve the alert of `dedup_key` (nothing happens to one that is resolved or unknown)."""
        return self._send({"routing_key": self.routing_key, "event_action": "resolve", "dedup_key": dedup_key})

    def _send(self, event: dict[str, Any]) -> str:
        dedup_key = str(event["dedup_key"])
        endpoint = f"{self.url}/v2/enqueue"
        try:
            response = requests.post(endpoint, json=event, timeout=self.timeout)
        except requests.RequestException as exc:
            raise PagerDutyError(f"PagerDuty: no answer from {endpoint}: {exc}") from exc
        if response.status_code != 202:
            try:
                reasons = "; ".join(response.json().get("errors") or []) or response.text[:300]
            except ValueError:
                reasons = response.text[:300]
            raise PagerDutyError(f"PagerDuty refused the event ({endpoint}, HTTP {response.status_code}): {reasons}")
        return str(response.json().get("dedup_key") or dedup_key)
