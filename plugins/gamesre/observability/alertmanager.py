"""The Alertmanager configuration: routing by severity and team, escalation receivers, inhibition, secrets by file.

Routing (alerting.yaml `routing` and `escalation`):
- `Watchdog` -> the `watchdog-heartbeat` receiver (no integration here: plug a dead man's switch service in);
  `MaintenanceWindow` -> `null` (it exists to inhibit, not to notify);
- `PageEscalation` -> `escalation-<level>`: that level's PagerDuty service and Slack channel;
- severity=page -> `oncall`: PagerDuty (primary service), the on-call Slack channel and, where configured, the
  incident intake on the Airflow API server (a webhook with a bearer token from a file), in one receiver;
- severity=ticket -> `tickets-<team>`, the team's Slack channel by the `team` label; any other team and any
  alert without a severity -> `tickets-fallback` (the fallback channel).
Inhibition: a `MaintenanceWindow` mutes the page and ticket alerts (escalations included) of its service;
a page mutes the ticket of the same condition (same alertname, service, slo, instance, mountpoint,
resource); an SLO burn page mutes the SLO burn tickets of the same SLO.
Slack: a Slack app's incoming webhook posts to the one channel it was created for and ignores the `channel` field,
so every channel has its own webhook, and each receiver's slack_config sends to its channel's webhook.
Secrets are never in the file: each channel's webhook URL is read from `<secrets_dir>/slack-webhook-<channel>` (the
channel's name without `#`) and each PagerDuty service's Events v2 routing key from
`<secrets_dir>/pagerduty-<service>.key`. The demo harness may put its local sink's URLs inline (they are not
secrets).
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gamesre.observability.alerts import (
    COMMAND,
    ESCALATION_ALERT,
    MAINTENANCE_ALERT,
    WATCHDOG_ALERT,
    Sources,
    Timing,
    dump_yaml,
    load_alerting,
)

ALERTMANAGER_CONFIG = Path("include/alertmanager/alertmanager.yml")
GROUP_BY = ["alertname", "service", "slo"]
# Labels that tell one instance of a condition from another: a page only mutes the ticket of the same one.
SAME_CONDITION = ["alertname", "service", "slo", "instance", "mountpoint", "resource"]

SLACK_TITLE = ('[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] '
               "{{ .CommonLabels.alertname }} {{ .CommonLabels.service }}"
               '{{ if .CommonLabels.escalation }} (escalation: {{ .CommonLabels.escalation }}){{ end }}')
SLACK_TEXT = ("{{ range .Alerts }}*{{ .Labels.severity }}* {{ .Annotations.summary }}\n"
              "{{ .Annotations.description }}\n"
              "Runbook: {{ .Annotations.runbook_url }}\n{{ end }}")
PD_DESCRIPTION = "{{ .CommonLabels.alertname }} {{ .CommonLabels.service }}: {{ .CommonAnnotations.summary }}"


def pagerduty_key_file(secrets_dir: str | Path, service: str) -> str:
    return f"{secrets_dir}/pagerduty-{service}.key"


def slack_webhook_file(secrets_dir: str | Path, channel: str) -> str:
    """The file holding the incoming-webhook URL of `channel` (#sre-oncall -> slack-webhook-sre-oncall)."""
    return f"{secrets_dir}/slack-webhook-{channel.lstrip('#')}"


def slack_channels(src: Sources) -> list[str]:
    """Every Slack channel the routing sends to (each needs its own incoming webhook), sorted."""
    routing = src.spec.routing
    return sorted({routing.oncall_channel, routing.fallback_channel, *routing.team_channels.values(),
                   *(level.channel for level in src.spec.escalation)})


def demo_routing_key(service: str) -> str:
    """A made-up Events v2 routing key for a local stand-in: 32 hex characters, like a real integration key."""
    return hashlib.sha256(f"demo-{service}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Delivery:
    """Where notifications leave: the secrets folder and, for the demo, inline URLs of local stand-ins."""

    secrets_dir: str | None  # None: every secret inline (the demo's sink URL and made-up keys only)
    pagerduty_url: str | None = None  # None: Alertmanager's default, PagerDuty's Events v2 API
    # channel -> inline webhook URL (the demo sink only); None: each read from the secrets folder
    slack_webhook_urls: Mapping[str, str] | None = None
    # the incident intake (POST .../gamesre/incidents/alertmanager on the Airflow API server); None: none
    incident_intake_url: str | None = None
    # the file with its bearer token; None: incident-intake-token in the secrets folder
    incident_intake_token_file: str | None = None


def incident_intake_token_file(secrets_dir: str | Path) -> str:
    """The file holding the incident intake's bearer token (the API server reads the same token)."""
    return f"{secrets_dir}/incident-intake-token"


def _incident_intake(delivery: Delivery) -> list[dict[str, Any]]:
    """The webhook that opens incidents from pages, with its bearer token read from a file; resolved
    notifications too (they mark alerts resolved, never close an incident)."""
    if delivery.incident_intake_url is None:
        return []
    token_file = delivery.incident_intake_token_file
    if token_file is None:
        if delivery.secrets_dir is None:
            raise ValueError("the incident intake's token file needs a secrets folder (Delivery.secrets_dir)")
        token_file = incident_intake_token_file(delivery.secrets_dir)
    return [{"url": delivery.incident_intake_url, "send_resolved": True, "max_alerts": 0,
             "http_config": {"authorization": {"type": "Bearer", "credentials_file": token_file}}}]


def _timing(t: Timing) -> dict[str, str]:
    return {"group_wait": t.group_wait, "group_interval": t.group_interval, "repeat_interval": t.repeat_interval}


def _slack(delivery: Delivery, channel: str) -> dict[str, Any]:
    """A slack_config to `channel` through that channel's own webhook (`channel` only labels it: a Slack app's
    webhook ignores it)."""
    config: dict[str, Any] = {}
    if delivery.slack_webhook_urls is not None:
        config["api_url"] = delivery.slack_webhook_urls[channel]
    elif delivery.secrets_dir is None:
        raise ValueError("the Slack webhook URL files need a secrets folder (Delivery.secrets_dir)")
    else:
        config["api_url_file"] = slack_webhook_file(delivery.secrets_dir, channel)
    return {**config, "channel": channel, "send_resolved": True, "title": SLACK_TITLE, "text": SLACK_TEXT}


def _pagerduty(delivery: Delivery, service: str, *, inline_key: bool) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if inline_key:
        config["routing_key"] = demo_routing_key(service)
    elif delivery.secrets_dir is None:
        raise ValueError("a PagerDuty routing key file needs a secrets folder (Delivery.secrets_dir)")
    else:
        config["routing_key_file"] = pagerduty_key_file(delivery.secrets_dir, service)
    config.update({
        "send_resolved": True,
        "severity": "critical",
        "description": PD_DESCRIPTION,
        "details": {
            "service": "{{ .CommonLabels.service }}",
            "team": "{{ .CommonLabels.team }}",
            "summary": "{{ .CommonAnnotations.summary }}",
            "runbook_url": "{{ .CommonAnnotations.runbook_url }}",
            "escalation": "{{ .CommonLabels.escalation }}",
        },
    })
    return config


def render(src: Sources, delivery: Delivery, *, timing: Timing | None = None, inline_pagerduty_keys: bool = False,
           header: str = "") -> str:
    """The configuration's text. `timing` overrides every route's group_wait/interval/repeat (tests)."""
    routing = src.spec.routing

    def timed(t: Timing) -> dict[str, str]:
        return _timing(timing or t)

    global_: dict[str, Any] = {"resolve_timeout": "5m"}
    if delivery.pagerduty_url:
        global_["pagerduty_url"] = delivery.pagerduty_url

    receivers: list[dict[str, Any]] = [
        {"name": "null"},
        {"name": "watchdog-heartbeat"},
        {"name": "oncall",
         "pagerduty_configs": [_pagerduty(delivery, routing.primary_pagerduty, inline_key=inline_pagerduty_keys)],
         "slack_configs": [_slack(delivery, routing.oncall_channel)],
         **({"webhook_configs": _incident_intake(delivery)} if delivery.incident_intake_url else {})},
    ]
    escalation_routes = []
    for level in src.spec.escalation:
        name = f"escalation-{level.level}"
        pagerduty = _pagerduty(delivery, level.pagerduty, inline_key=inline_pagerduty_keys)
        receivers.append({"name": name, "pagerduty_configs": [pagerduty],
                          "slack_configs": [_slack(delivery, level.channel)]})
        escalation_routes.append({
            "receiver": name,
            "matchers": [f'alertname="{ESCALATION_ALERT}"', f'escalation="{level.level}"'],
            "group_by": ["alertname", "escalation", "escalated_alertname", "service", "slo"],
            **timed(Timing(group_wait=routing.page.group_wait, group_interval=routing.page.group_interval,
                           repeat_interval=level.repeat_interval)),
        })
    team_routes = []
    for team, channel in routing.team_channels.items():
        receivers.append({"name": f"tickets-{team}", "slack_configs": [_slack(delivery, channel)]})
        team_routes.append({"receiver": f"tickets-{team}", "matchers": [f'team="{team}"']})
    receivers.append({"name": "tickets-fallback", "slack_configs": [_slack(delivery, routing.fallback_channel)]})

    route: dict[str, Any] = {
        "receiver": "tickets-fallback",
        "group_by": GROUP_BY,
        **timed(routing.default),
        "routes": [
            {"receiver": "watchdog-heartbeat", "matchers": [f'alertname="{WATCHDOG_ALERT}"'],
             **timed(Timing(group_wait="0s", group_interval="1m", repeat_interval="5m"))},
            {"receiver": "null", "matchers": [f'alertname="{MAINTENANCE_ALERT}"']},
            *escalation_routes,
            {"receiver": "oncall", "matchers": ['severity="page"'], **timed(routing.page)},
            {"receiver": "tickets-fallback", "matchers": ['severity="ticket"'], **timed(routing.ticket),
             "routes": team_routes},
        ],
    }
    inhibit = [
        {"source_matchers": [f'alertname="{MAINTENANCE_ALERT}"'], "target_matchers": ['severity=~"page|ticket"'],
         "equal": ["service"]},
        {"source_matchers": ['severity="page"'], "target_matchers": ['severity="ticket"'], "equal": SAME_CONDITION},
        {"source_matchers": ['alertname=~"SloBurnPage.*"'], "target_matchers": ['alertname=~"SloBurnTicket.*"'],
         "equal": ["service", "slo"]},
    ]
    config = {"global": global_, "route": route, "inhibit_rules": inhibit, "receivers": receivers}
    return header + dump_yaml(config)


def generate(src: Sources | None = None) -> dict[Path, str]:
    """include/alertmanager/alertmanager.yml for the docker-compose stack (repo-relative path -> text)."""
    src = src if src is not None else load_alerting()
    compose = src.spec.compose
    header = (
        "# GENERATED FILE - DO NOT EDIT.\n"
        "# The Alertmanager configuration of the docker-compose stack.\n"
        "# Generated by plugins/gamesre/observability/alertmanager.py from include/config/alerting.yaml\n"
        f"# Change the spec, then regenerate: {COMMAND}\n"
        f"# Secrets are files in {compose.secrets_dir} (not in git), one value each:\n"
        + "".join(f"#   {Path(slack_webhook_file(compose.secrets_dir, channel)).name} (the Slack incoming webhook "
                  f"of {channel})\n" for channel in slack_channels(src))
        + "".join(f"#   {Path(pagerduty_key_file(compose.secrets_dir, s)).name} (PagerDuty Events v2 routing key)\n"
                  for s in src.spec.routing.pagerduty_services)
        + (f"#   {Path(incident_intake_token_file(compose.secrets_dir)).name} (the incident intake's bearer token, "
           "the same file as the API server's GAMESRE_INCIDENT_INTAKE_TOKEN_FILE)\n"
           if compose.incident_intake_url else "")
        + "# Explained in docs/alerting.md.\n"
    )
    delivery = Delivery(secrets_dir=compose.secrets_dir, pagerduty_url=compose.pagerduty_url,
                        incident_intake_url=compose.incident_intake_url)
    return {ALERTMANAGER_CONFIG: render(src, delivery, header=header)}
