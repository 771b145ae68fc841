"""A local Slack-compatible sink (and PagerDuty Events v2 stand-in): records every message, shows them on a page.

It speaks just enough of Slack for this project's senders, and is as strict as Slack where it matters:
- incoming webhooks (`POST /services/...`, what SlackWebhookHook and Alertmanager's slack_configs send). Like a
  Slack app's webhook, each posts to the one channel it was created for and ignores a `channel` in the body:
  Alertmanager's, one per channel of include/config/alerting.yaml at `/services/T0ALERTS/<channel name>/hook`
  (alert_webhook_path), post to that channel, so do those named with `--webhook PATH=CHANNEL`, and any other
  webhook to `--webhook-channel` (#sre);
- the Web API methods `chat.postMessage`, `auth.test`, `conversations.create` (an incident's channel: a new id,
  accepted from then on; `name_taken` when the name exists, `invalid_name_specials` for a name Slack refuses),
  and the three-step file upload that
  `files_upload_v2` performs (`files.getUploadURLExternal`, the upload itself, `files.completeUploadExternal`).
  Channels are known by id only, as Slack's API wants them: an unknown id (or a `#name`) is refused with
  `{"ok": false, "error": "channel_not_found"}`. The ids are the project's (include/config/services.yaml: each
  service's and the SRE team's channel; include/config/chaos/policy.yaml: the on-call channel) unless `--channels`
  lists others.

Messages are appended to a JSON Lines file, so they survive a restart of the page, and are shown newest
first at `/`, with uploaded images inline. Each records `channel` (the id it went to, or a webhook's channel) and
`channel_name`. `GET /messages` returns them as JSON; `DELETE /messages` clears.

It also stands in for PagerDuty's Events API v2 (what Alertmanager's pagerduty_configs send): `POST
/v2/enqueue` checks the event as PagerDuty documents it (a 32-character routing_key; event_action trigger,
acknowledge or resolve; a dedup_key for acknowledge and resolve; payload summary, source and severity for a
trigger), answers 202 with the dedup_key or 400 naming the problems, and records accepted events apart from
the Slack messages: `GET /v2/events` lists them, `DELETE /v2/events` clears them (so does `DELETE /messages`),
and the page shows them above the messages.

And for a Statuspage-compatible status page (Statuspage's REST API v1, `Authorization: OAuth <key>`): `POST
/v1/pages/<page>/incidents` opens an incident (201 with its id), `PATCH /v1/pages/<page>/incidents/<id>` updates it,
each checked as Statuspage checks them (422 naming the problem); `GET /statuspage` lists every update, and the page
shows them first, as players would read them.
"""
from __future__ import annotations

import argparse
import hashlib
import html
import itertools
import json
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

REPO_ROOT = Path(__file__).resolve().parents[1]


def project_channels(config_dir: Path | None = None) -> dict[str, str]:
    """Channel id -> name of the channels the project posts to: each service's and the SRE team's
    (services.yaml) and the on-call channel (chaos/policy.yaml)."""
    import os

    import yaml

    folder = config_dir or Path(os.environ.get("GAMESRE_CONFIG_DIR") or REPO_ROOT / "include" / "config")
    services = yaml.safe_load((folder / "services.yaml").read_text()) or {}
    slack = [(s.get("slack") or {}) for s in (services.get("services") or {}).values()]
    slack.append((services.get("sre") or {}).get("slack") or {})
    channels = {str(c["channel_id"]): str(c.get("channel") or c["channel_id"]) for c in slack if c.get("channel_id")}
    policy = (yaml.safe_load((folder / "chaos" / "policy.yaml").read_text()) or {}).get("policy") or {}
    if policy.get("oncall_channel_id"):
        channels.setdefault(str(policy["oncall_channel_id"]), "#sre-oncall")
    return channels


def alert_webhook_path(channel: str) -> str:
    """The path of the demo's incoming webhook made for an alert channel: #sre-oncall ->
    /services/T0ALERTS/sre-oncall/hook."""
    return f"/services/T0ALERTS/{channel.lstrip('#')}/hook"


def alert_webhooks(config_dir: Path | None = None) -> dict[str, str]:
    """Path -> channel of the webhooks Alertmanager posts through: one per channel its routing uses (alerting.yaml)."""
    import os

    import yaml

    folder = config_dir or Path(os.environ.get("GAMESRE_CONFIG_DIR") or REPO_ROOT / "include" / "config")
    spec = yaml.safe_load((folder / "alerting.yaml").read_text()) or {}
    routing = spec.get("routing") or {}
    channels = {routing.get("oncall_channel"), routing.get("fallback_channel"),
                *(routing.get("team_channels") or {}).values(),
                *(level.get("channel") for level in spec.get("escalation") or [])}
    return {alert_webhook_path(str(c)): str(c) for c in sorted(c for c in channels if c)}


def parse_pairs(items: list[str], what: str) -> dict[str, str]:
    """`KEY=VALUE` items (each may hold several, comma-separated) as a dict; ValueError naming a bad one."""
    pairs = {}
    for item in (part.strip() for text in items for part in text.split(",")):
        key, sep, value = item.partition("=")
        if not (sep and key.strip() and value.strip()):
            raise ValueError(f"{what}: {item!r} is not KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


class MessageLog:
    """Thread-safe record of received messages, mirrored to a JSON Lines file, and the workspace's channels: id ->
    name, and each webhook's path -> the channel (name or id) it posts to."""

    def __init__(self, path: Path, channels: dict[str, str] | None = None, webhooks: dict[str, str] | None = None,
                 webhook_channel: str = "#sre"):
        self.channels = dict(channels or {})
        self.webhooks = dict(webhooks or {})
        self.webhook_channel = webhook_channel
        self.path = path
        self.files_dir = path.parent / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.messages: list[dict[str, Any]] = []
        self.pending_uploads: dict[str, dict[str, Any]] = {}
        self.events_path = path.parent / "pagerduty.jsonl"
        self.events: list[dict[str, Any]] = []
        self.status_path = path.parent / "statuspage.jsonl"
        self.status_updates: list[dict[str, Any]] = []  # every incident created or updated on the status page
        for source, target in ((path, self.messages), (self.events_path, self.events),
                               (self.status_path, self.status_updates)):
            if source.exists():
                target.extend(json.loads(line) for line in source.read_text().splitlines() if line.strip())

    def channel_name(self, channel: str) -> str:
        """`#name` of a channel given by id (or by name: the webhooks' channels)."""
        return self.channels.get(channel, channel)

    def webhook_target(self, path: str) -> str:
        """The one channel a webhook posts to, whatever its body says."""
        return self.webhooks.get(path, self.webhook_channel)

    def add(self, kind: str, path: str, payload: dict[str, Any], channel: str) -> dict[str, Any]:
        record = {
            "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "kind": kind,
            "path": path,
            "channel": channel,
            "channel_name": self.channel_name(channel),
            "text": payload.get("text") or payload.get("initial_comment") or "",
            "blocks": payload.get("blocks"),
            "attachments": payload.get("attachments"),
            "files": payload.get("files"),
        }
        return self._keep(self.messages, self.path, record)

    def add_event(self, event: dict[str, Any], dedup_key: str) -> dict[str, Any]:
        """Record an accepted PagerDuty event (already validated)."""
        payload = event.get("payload") or {}
        record = {
            "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "routing_key": event["routing_key"],
            "event_action": event["event_action"],
            "dedup_key": dedup_key,
            "summary": payload.get("summary"),
            "severity": payload.get("severity"),
            "source": payload.get("source"),
            "custom_details": payload.get("custom_details"),
            "client": event.get("client"),
        }
        return self._keep(self.events, self.events_path, record)

    def _keep(self, records: list[dict[str, Any]], path: Path, record: dict[str, Any]) -> dict[str, Any]:
        """Append a record in memory and to its JSON-lines file (kept across restarts of the sink)."""
        with self._lock:
            records.append(record)
            with path.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
        return record

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.path.write_text("")
        self.clear_events()

    def clear_events(self) -> None:
        with self._lock:
            self.events.clear()
            self.events_path.write_text("")

    def status_update(self, method: str, page: str, incident_id: str | None,
                      incident: dict[str, Any]) -> dict[str, Any]:
        """Record a status page incident created (incident_id None: a new id) or updated; the incident as it is."""
        with self._lock:
            if incident_id is None:
                incident_id = f"sp{sum(1 for u in self.status_updates if u['method'] == 'POST') + 1:04d}"
            elif not any(u["incident_id"] == incident_id for u in self.status_updates):
                raise KeyError(incident_id)
        record = {"received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "method": method, "page": page,
                  "incident_id": incident_id, **{k: incident.get(k) for k in ("name", "status", "body", "components")}}
        self._keep(self.status_updates, self.status_path, record)
        return {"id": incident_id, **{k: v for k, v in record.items() if k not in ("method", "received_at")}}

    def new_channel(self, name: str) -> str:
        """A channel made through conversations.create: an id like Slack's, accepted from now on."""
        with self._lock:
            channel_id = f"C0INC{len(self.channels):06d}"
            self.channels[channel_id] = name
            return channel_id

    def new_file_id(self) -> str:
        return f"F{next(self._ids):06d}"


def _decode_body(content_type: str, body: bytes) -> dict[str, Any]:
    """Slack clients send JSON or form-encoded bodies; webhooks may wrap JSON in a `payload` field."""
    if not body:
        return {}
    if "application/json" in content_type:
        form = json.loads(body)
        if not isinstance(form, dict):
            return form  # type: ignore[no-any-return]  (PagerDuty's stand-in names it)
    else:
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        if "payload" in form:
            return dict(json.loads(form["payload"]))
    for key in ("blocks", "attachments", "files"):  # JSON in a string, as form fields and some clients send them
        if isinstance(form.get(key), str):
            try:
                form[key] = json.loads(form[key])
            except json.JSONDecodeError:
                pass
    return form


PD_ACTIONS = ("trigger", "acknowledge", "resolve")
PD_SEVERITIES = ("critical", "error", "warning", "info")


def pagerduty_problems(event: Any) -> list[str]:
    """What PagerDuty's Events API v2 would refuse in an event (empty when it is valid)."""
    if not isinstance(event, dict):
        return ["the body is not a JSON object"]
    problems = []
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        problems.append("routing_key must be a 32-character integration key")
    action = event.get("event_action")
    if action not in PD_ACTIONS:
        problems.append(f"event_action must be one of {', '.join(PD_ACTIONS)}")
    if action in ("acknowledge", "resolve") and not event.get("dedup_key"):
        problems.append(f"dedup_key is required to {action}")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            problems.append("payload is required to trigger")
        else:
            for field in ("summary", "source"):
                if not isinstance(payload.get(field), str) or not payload[field]:
                    problems.append(f"payload.{field} is required")
            if payload.get("severity") not in PD_SEVERITIES:
                problems.append(f"payload.severity must be one of {', '.join(PD_SEVERITIES)}")
            if isinstance(payload.get("summary"), str) and len(payload["summary"]) > 1024:
                problems.append("payload.summary is longer than 1024 characters")
    return problems


def statuspage_problems(incident: dict[str, Any], *, creating: bool) -> list[str]:
    """What Statuspage would refuse in an incident object."""
    problems = []
    if creating and not str(incident.get("name") or "").strip():
        problems.append("name can't be blank")
    if incident.get("status") not in ("investigating", "identified", "monitoring", "resolved"):
        problems.append(f"status {incident.get('status')!r} is not one of investigating, identified, monitoring, "
                        "resolved")
    components = incident.get("components") or {}
    if not isinstance(components, dict) or any(
            s not in ("operational", "degraded_performance", "partial_outage", "major_outage")
            for s in components.values()):
        problems.append("components must map component ids to a component status")
    return problems


def _render_text(value: Any) -> str:
    return html.escape(json.dumps(value, indent=1, ensure_ascii=False)) if value else ""


def render_page(log: MessageLog) -> str:
    rows = []
    for m in reversed(log.messages):
        images = "".join(
            f'<div><img src="/files/{html.escape(f["id"])}" style="max-width:720px"></div>'
            for f in (m.get("files") or [])
            if isinstance(f, dict) and "id" in f
        )
        rows.append(
            "<div class='msg'>"
            f"<div class='meta'>{html.escape(m['received_at'])} · {html.escape(m['kind'])} · "
            f"{html.escape(str(m.get('channel_name') or m.get('channel') or m['path']))}</div>"
            f"<pre>{html.escape(str(m['text']))}</pre>"
            + (f"<details><summary>blocks</summary><pre>{_render_text(m.get('blocks'))}</pre></details>"
               if m.get("blocks") else "")
            + (f"<details><summary>attachments</summary><pre>{_render_text(m.get('attachments'))}</pre></details>"
               if m.get("attachments") else "")
            + images
            + "</div>"
        )
    body = "".join(rows) or "<p>No messages yet.</p>"
    incidents = "".join(
        "<div class='msg'>"
        f"<div class='meta'>{html.escape(e['received_at'])} · PagerDuty {html.escape(str(e['event_action']))} · "
        f"key …{html.escape(str(e['routing_key'])[-6:])} · {html.escape(str(e.get('severity') or ''))}</div>"
        f"<pre>{html.escape(str(e.get('summary') or e['dedup_key']))}</pre></div>"
        for e in reversed(log.events)
    )
    if incidents:
        body = f"<h2>PagerDuty events ({len(log.events)})</h2>{incidents}<h2>Slack messages</h2>{body}"
    status = "".join(
        "<div class='msg'>"
        f"<div class='meta'>{html.escape(u['received_at'])} · status page {html.escape(u['incident_id'])} · "
        f"{html.escape(str(u.get('status')))} · {html.escape(json.dumps(u.get('components') or {}))}</div>"
        f"<pre>{html.escape(str(u.get('name') or ''))}\n{html.escape(str(u.get('body') or ''))}</pre></div>"
        for u in reversed(log.status_updates)
    )
    if status:
        body = f"<h2>Status page ({len(log.status_updates)} updates)</h2>{status}{body}"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='5'>"
        "<title>Slack sink</title><style>body{font-family:sans-serif;background:#1a1d21;color:#d1d2d3;margin:2em}"
        ".msg{border-bottom:1px solid #444;padding:.6em 0}.meta{color:#999;font-size:.85em}"
        "pre{white-space:pre-wrap;margin:.3em 0}</style></head>"
        f"<body><h1>Slack sink</h1><p>{len(log.messages)} message(s), newest first.</p>{body}</body></html>"
    )


def make_handler(log: MessageLog) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "slack-sink/1"

        def log_message(self, fmt: str, *args: Any) -> None:  # keep the demo's terminal quiet
            pass

        def _send(self, status: int, body: bytes | str, content_type: str = "application/json") -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _json(self, status: int, obj: Any) -> None:
            self._send(status, json.dumps(obj))

        def do_GET(self) -> None:
            path = urlparse(self.path).path
            if path == "/":
                self._send(200, render_page(log), "text/html; charset=utf-8")
            elif path == "/messages":
                self._json(200, log.messages)
            elif path == "/v2/events":
                self._json(200, log.events)
            elif path == "/statuspage":
                self._json(200, log.status_updates)
            elif path == "/healthz":
                self._send(200, "ok", "text/plain")
            elif path.startswith("/files/"):
                f = log.files_dir / Path(path).name
                if f.is_file():
                    data = f.read_bytes()
                    self._send(200, data, "image/png" if data[:4] == b"\x89PNG" else "application/octet-stream")
                else:
                    self._send(404, "no such file", "text/plain")
            else:
                self._send(404, "not found", "text/plain")

        def do_DELETE(self) -> None:
            if urlparse(self.path).path == "/messages":
                log.clear()
                self._json(200, {"ok": True})
            elif urlparse(self.path).path == "/v2/events":
                log.clear_events()
                self._json(200, {"ok": True})
            else:
                self._send(404, "not found", "text/plain")

        def do_POST(self) -> None:
            path = urlparse(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if path.startswith("/upload/"):
                file_id = Path(path).name
                if file_id not in log.pending_uploads:
                    self._send(404, "unknown upload", "text/plain")
                    return
                (log.files_dir / file_id).write_bytes(body)
                self._send(200, "OK - uploaded", "text/plain")
                return
            try:
                payload = _decode_body(self.headers.get("Content-Type", ""), body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                self._send(400, f"invalid_payload: {exc}", "text/plain")
                return
            if path == "/v2/enqueue":
                self._pagerduty(payload)
            elif path.startswith("/v1/pages/"):
                self._statuspage("POST", path, payload)
            elif path.startswith("/api/"):
                self._api(path.removeprefix("/api/"), payload)
            else:  # an incoming webhook, whatever its token path
                if not (payload.get("text") or payload.get("blocks") or payload.get("attachments")):
                    self._send(400, "no_text", "text/plain")
                    return
                log.add("webhook", path, payload, log.webhook_target(path))  # a `channel` field changes nothing
                self._send(200, "ok", "text/plain")

        def do_PATCH(self) -> None:
            path = urlparse(self.path).path
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                payload = json.loads(body or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                self._send(400, f"invalid_payload: {exc}", "text/plain")
                return
            self._statuspage("PATCH", path, payload)

        def _statuspage(self, method: str, path: str, payload: dict[str, Any]) -> None:
            """Statuspage's v1: POST /v1/pages/<page>/incidents, PATCH /v1/pages/<page>/incidents/<id>."""
            if not str(self.headers.get("Authorization") or "").startswith("OAuth "):
                self._json(401, {"error": "Could not authenticate"})
                return
            parts = path.strip("/").split("/")
            incident = payload.get("incident") if isinstance(payload, dict) else None
            if len(parts) != (4 if method == "POST" else 5) or parts[3] != "incidents" or not isinstance(incident,
                                                                                                         dict):
                self._json(422, {"error": "expected /v1/pages/<page>/incidents[/<id>] with an incident object"})
                return
            problems = statuspage_problems(incident, creating=method == "POST")
            if problems:
                self._json(422, {"error": problems})
                return
            try:
                answer = log.status_update(method, parts[2], parts[4] if len(parts) == 5 else None, incident)
            except KeyError:
                self._json(404, {"error": "Incident not found"})
                return
            self._json(201 if method == "POST" else 200, answer)

        def _pagerduty(self, event: dict[str, Any]) -> None:
            problems = pagerduty_problems(event)
            if problems:
                self._json(400, {"status": "invalid event", "message": "Event object is invalid", "errors": problems})
                return
            dedup_key = str(event.get("dedup_key") or hashlib.sha256(json.dumps(event, sort_keys=True).encode())
                            .hexdigest())
            log.add_event(event, dedup_key)
            self._json(202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key})

        def _api(self, method: str, payload: dict[str, Any]) -> None:
            if method == "auth.test":
                self._json(200, {"ok": True, "user": "gamesre-bot", "team": "demo", "url": "http://sink/"})
            elif method == "chat.postMessage":
                channel = str(payload.get("channel") or "")
                if channel not in log.channels:
                    self._json(200, {"ok": False, "error": "channel_not_found"})
                    return
                if not (payload.get("text") or payload.get("blocks") or payload.get("attachments")):
                    self._json(200, {"ok": False, "error": "no_text"})
                    return
                log.add("chat.postMessage", method, payload, channel)
                self._json(200, {"ok": True, "channel": channel, "ts": f"{time.time():.6f}"})
            elif method == "conversations.create":
                name = str(payload.get("name") or "")
                if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,79}", name):
                    self._json(200, {"ok": False, "error": "invalid_name_specials"})
                elif f"#{name}" in log.channels.values():
                    self._json(200, {"ok": False, "error": "name_taken"})
                else:
                    channel_id = log.new_channel(f"#{name}")
                    log.add("conversations.create", method, {"text": f"(channel #{name} created)"}, channel_id)
                    self._json(200, {"ok": True, "channel": {"id": channel_id, "name": name, "is_channel": True}})
            elif method == "files.getUploadURLExternal":
                file_id = log.new_file_id()
                log.pending_uploads[file_id] = {"filename": payload.get("filename"), "length": payload.get("length")}
                host = self.headers.get("Host", "127.0.0.1")
                self._json(200, {"ok": True, "file_id": file_id, "upload_url": f"http://{host}/upload/{file_id}"})
            elif method == "files.completeUploadExternal":
                channel = str(payload.get("channel_id") or "")
                if channel not in log.channels:
                    self._json(200, {"ok": False, "error": "channel_not_found"})
                    return
                files = payload.get("files") or []
                if isinstance(files, str):
                    files = json.loads(files)
                log.add("file", method, {**payload, "files": files}, channel)
                self._json(200, {"ok": True, "files": [{"id": f.get("id"), "title": f.get("title")} for f in files]})
            else:
                self._json(200, {"ok": False, "error": "unknown_method", "method": method})

    return Handler


def serve(host: str, port: int, data_dir: Path, *, channels: dict[str, str] | None = None,
          webhooks: dict[str, str] | None = None, webhook_channel: str = "#sre") -> ThreadingHTTPServer:
    """The sink on host:port; `channels` (id -> name) defaults to the project's (project_channels)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = MessageLog(data_dir / "messages.jsonl", project_channels() if channels is None else channels,
                     {**alert_webhooks(), **(webhooks or {})}, webhook_channel)
    return ThreadingHTTPServer((host, port), make_handler(log))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--data-dir", type=Path, required=True, help="folder for messages.jsonl and uploaded files")
    parser.add_argument("--channels", action="append", default=[], metavar="ID=#NAME[,...]",
                        help="the channels chat.postMessage and file uploads accept, by id (repeatable; default: the "
                             "project's, from include/config/services.yaml and chaos/policy.yaml)")
    parser.add_argument("--webhook", action="append", default=[], metavar="PATH=CHANNEL[,...]",
                        help="the channel a webhook posts to, by its URL path, e.g. "
                             "/services/T0DEMO/B0ONCALL/x=#sre-oncall (repeatable)")
    parser.add_argument("--webhook-channel", default="#sre",
                        help="the channel of every other webhook (default #sre)")
    args = parser.parse_args(argv)
    try:
        channels = parse_pairs(args.channels, "--channels") if args.channels else None
        webhooks = parse_pairs(args.webhook, "--webhook")
    except ValueError as exc:
        parser.error(str(exc))
    try:
        server = serve(args.host, args.port, args.data_dir, channels=channels, webhooks=webhooks,
                       webhook_channel=args.webhook_channel)
    except OSError as exc:
        print(f"slack sink: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
