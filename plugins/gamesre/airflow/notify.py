"""Slack notifications that never fail the workflow: a message (webhook) and files such as report charts (Web API).

A notification failure is logged with its reason and reported back as False; the task carries on
(DESIGN.md, decision 7). Connections: `slack_default` (incoming webhook) and `slack_api_default` (Web API).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WEBHOOK_CONN_ID = "slack_default"
API_CONN_ID = "slack_api_default"


def post_message(text: str, *, blocks: list[dict[str, Any]] | None = None, channel: str | None = None,
                 conn_id: str = WEBHOOK_CONN_ID) -> bool:
    """Send a message through the Slack webhook; True when Slack (or the sink) accepted it."""
    try:
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        body: dict[str, Any] = {"text": text}
        if blocks:
            body["blocks"] = blocks
        if channel:
            body["channel"] = channel
        response = SlackWebhookHook(slack_webhook_conn_id=conn_id).send_dict(body)
        ok = 200 <= int(getattr(response, "status_code", 200)) < 300
        if not ok:
            log.warning("Slack webhook refused the message: HTTP %s %s", response.status_code, response.body)
        return ok
    except Exception as exc:  # a notification failure never fails the workflow
        log.warning("Slack notification not sent (%s: %s); continuing", type(exc).__name__, exc)
        return False


def post_file(path: Path, *, channel_id: str, title: str, comment: str | None = None,
              conn_id: str = API_CONN_ID) -> bool:
    """Upload a file (e.g. a PNG chart) with the Web API's files_upload_v2; True when accepted."""
    try:
        from airflow.providers.slack.hooks.slack import SlackHook

        SlackHook(slack_conn_id=conn_id).send_file_v2(
            channel_id=channel_id,
            file_uploads={"file": str(path), "filename": path.name, "title": title},
            initial_comment=comment,
        )
        return True
    except Exception as exc:  # a notification failure never fails the workflow
        log.warning("Slack file %s not sent (%s: %s); continuing", path.name, type(exc).__name__, exc)
        return False


def notify_failure(context: dict[str, Any]) -> None:
    """on_failure_callback: tell Slack which task failed, after its retries, and why (never raises)."""
    ti = context.get("task_instance")
    exc = context.get("exception")
    task = f"{getattr(ti, 'dag_id', '?')}.{getattr(ti, 'task_id', '?')}"
    run = getattr(context.get("dag_run"), "run_id", "?")
    post_message(f":rotating_light: {task} failed (run {run}): {type(exc).__name__ if exc else 'error'}: {exc}")
