"""Alertmanager webhook bodies (payload version 4) as Alertmanager POSTs them, for the incident intake's tests."""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any


def fingerprint(labels: dict[str, str]) -> str:
    """A stable 16-hex fingerprint of a label set (Alertmanager's is a hash of the labels too)."""
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


def alert(alertname: str = "SloBurnPageFast", *, service: str | None = "game-server", severity: str = "page",
          slo: str | None = "availability", status: str = "firing", starts_at: datetime | None = None,
          ends_at: datetime | None = None, **labels: str) -> dict[str, Any]:
    all_labels = {"alertname": alertname, "severity": severity, **labels}
    if service is not None:
        all_labels["service"] = service
    if slo is not None:
        all_labels["slo"] = slo
    start = starts_at or datetime(2026, 12, 7, 1, 2, 3, tzinfo=UTC)
    return {"status": status, "labels": all_labels,
            "annotations": {"summary": f"{alertname} on {service}", "runbook_url": "include/runbooks/x.md"},
            "startsAt": start.isoformat().replace("+00:00", "Z"),
            "endsAt": ends_at.isoformat().replace("+00:00", "Z") if ends_at else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": fingerprint(all_labels)}


def body(*alerts: dict[str, Any], group_key: str | None = None, receiver: str = "oncall") -> dict[str, Any]:
    """A notification of one alert group; its group key from the alerts' alertname, service and slo by default."""
    first = alerts[0]["labels"]
    group_labels = {k: first[k] for k in ("alertname", "service", "slo") if k in first}
    key = group_key or '{}/{severity="page"}:{' + ", ".join(f'{k}="{v}"' for k, v in group_labels.items()) + "}"
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {"receiver": receiver, "status": status, "alerts": list(alerts), "groupLabels": group_labels,
            "commonLabels": group_labels, "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
            "version": "4", "groupKey": key, "truncatedAlerts": 0}


def raw(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()
