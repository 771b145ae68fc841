"""Slack notifications that never fail the workflow: messages and files to a channel by its id (the Web API), and
the incoming webhook for its one fixed channel.

A real Slack app's incoming webhook posts to the channel it was created for and ignores any `channel` in the body,
so everything meant for a particular channel goes through the Web API (`chat.postMessage`, files_upload_v2) with
the channel's id (include/config/services.yaml `slack.channel_id`), sent by the Slack provider's notifier and hook.
A notification failure (Slack refusing, e.g. `channel_not_found`, or not answering) is logged with its reason and
reported back as False; the task carries on (DESIGN.md, decision 7). Connections: `slack_api_default` (Web API,
a bot token) and `slack_default` (incoming webhook).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WEBHOOK_CONN_ID = "slack_default"
API_CONN_ID = "slack_api_default"
USERNAME = "gamesre"


def post_message(text: str, *, channel_id: str, blocks: Sequence[dict[str, Any]] = (),
                 conn_id: str = API_CONN_ID) -> bool:
    """chat.postMessage to the channel `channel_id`; True when Slack (or the sink) accepted it."""
    try:
        from airflow.providers.slack.notifications.slack import SlackNotifier

        SlackNotifier(slack_conn_id=conn_id, channel=channel_id, text=text, blocks=blocks, username=USERNAME,
                      unfurl_links=False).notify({})
        return True
    except Exception as exc:  # a notification failure never fails the workflow
        log.warning("Slack message to %s not sent (%s: %s); continuing", channel_id, type(exc).__name__, exc)
        return False


def post_webhook(text: str, *, conn_id: str = WEBHOOK_CONN_ID) -> bool:
    """A message through the incoming webhook, to the one channel it was created for; True when accepted."""
    try:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        SlackWebhookNotifier(slack_webhook_conn_id=conn_id, text=text).notify({})
        return True
    except Exception as exc:  # a notification failure never fails the workflow
        log.warning("Slack webhook message not sent (%s: %s); continuing", type(exc).__name__, exc)
        return False


def post_file(path: Path, *, channel_id: str, title: str, comment: str | None = None,
              conn_id: str = API_CONN_ID) -> bool:
    """Upload a file (a PNG chart, an HTML report) with the Web API's files_upload_v2; True when accepted."""
    try:
        from airflow.providers.slack.hooks.slack import SlackHook

        SlackHook(slack_conn_id=conn_id).send_file_v2(
            channel_id=channel_id,
            file_uploads={"file": str(path), "filename": path.name, "title": title},
            initial_comment=comment,
        )
        return True
    except Exception as exc:  # a notification failure never fails the workflow
        log.warning("Slack file %s not sent to %s (%s: %s); continuing", path.name, channel_id, type(exc).__name__,
                    exc)
        return False


def create_channel(name: str, *, conn_id: str = API_CONN_ID) -> str:
    """conversations.create of a public channel named `name` (no '#'); its id. SlackChannelTaken when the name
    exists; any other failure raises (the caller records it and goes on)."""
    from airflow.providers.slack.hooks.slack import SlackHook
    from slack_sdk.errors import SlackApiError

    from gamesre.app.incidents import SlackChannelTaken

    try:
        response = SlackHook(slack_conn_id=conn_id).client.conversations_create(name=name)
    except SlackApiError as exc:
        if exc.response.get("error") == "name_taken":
            raise SlackChannelTaken(name) from None
        raise
    return str(response["channel"]["id"])
