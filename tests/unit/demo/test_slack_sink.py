"""The Slack sink is as strict as Slack where it matters: chat.postMessage and file uploads only to a known channel
id, and an incoming webhook only to the channel it was made for, whatever the body's `channel` says. The project's
own senders (gamesre.airflow.notify, through the Slack provider) are checked against it too."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from demo.procs import free_port
from demo.slack_sink import main, parse_pairs, project_channels, serve

CHANNELS = {"C07GAMESRV1": "#game-server", "C07SRE00001": "#sre"}


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    server = serve("127.0.0.1", port, tmp_path, channels=CHANNELS,
                   webhooks={"/services/T0/B0ONCALL/x": "#sre-oncall"}, webhook_channel="#sre")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def messages(sink: str) -> list[dict]:
    return list(requests.get(f"{sink}/messages", timeout=5).json())


def test_the_project_channels_are_the_services_the_sre_and_the_oncall_channel() -> None:
    assert project_channels() == {"C07GAMESRV1": "#game-server", "C07MATCHMK1": "#matchmaking",
                                  "C07SRE00001": "#sre", "C07SREONCL1": "#sre-oncall"}


def test_chat_post_message_takes_a_known_channel_id_only(sink: str) -> None:
    api = f"{sink}/api/chat.postMessage"
    for channel in ("C0UNKNOWN01", "#game-server", ""):
        refused = requests.post(api, json={"channel": channel, "text": "hello"}, timeout=5).json()
        assert refused == {"ok": False, "error": "channel_not_found"}, channel
    assert requests.post(api, json={"channel": "C07GAMESRV1", "text": "hello"}, timeout=5).json()["ok"] is True
    (message,) = messages(sink)
    assert (message["channel"], message["channel_name"], message["text"]) == ("C07GAMESRV1", "#game-server", "hello")


def test_a_webhook_posts_to_its_own_channel_whatever_the_body_says(sink: str) -> None:
    for path in ("/services/T0/B0ONCALL/x", "/services/T0/B0OTHER/y"):
        assert requests.post(f"{sink}{path}", json={"text": "hi", "channel": "#game-server"}, timeout=5).ok
    assert [(m["kind"], m["channel"]) for m in messages(sink)] == [("webhook", "#sre-oncall"), ("webhook", "#sre")]


def test_a_file_goes_to_a_known_channel_id_only(sink: str) -> None:
    upload = requests.post(f"{sink}/api/files.getUploadURLExternal", data={"filename": "r.html", "length": 3},
                           timeout=5).json()
    assert requests.post(upload["upload_url"], data=b"<p>", timeout=5).ok
    files = json.dumps([{"id": upload["file_id"], "title": "report"}])
    refused = requests.post(f"{sink}/api/files.completeUploadExternal",
                            data={"files": files, "channel_id": "C0UNKNOWN01"}, timeout=5).json()
    assert refused == {"ok": False, "error": "channel_not_found"}
    done = requests.post(f"{sink}/api/files.completeUploadExternal", data={"files": files, "channel_id": "C07SRE00001"},
                         timeout=5).json()
    assert done["ok"] is True and [(m["kind"], m["channel"]) for m in messages(sink)] == [("file", "C07SRE00001")]


def test_the_options_are_checked(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert parse_pairs(["C1=#a,C2=#b", "C3=#c"], "--channels") == {"C1": "#a", "C2": "#b", "C3": "#c"}
    with pytest.raises(SystemExit):
        main(["--port", "1", "--data-dir", str(tmp_path), "--channels", "C1"])
    assert "--channels: 'C1' is not KEY=VALUE" in capsys.readouterr().err


# --- the project's senders, through the Slack provider ------------------------------------------------------------

@pytest.fixture
def connections(sink: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_API_DEFAULT", json.dumps(
        {"conn_type": "slack", "password": "xoxb-test", "extra": {"base_url": f"{sink}/api/"}}))
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", json.dumps(
        {"conn_type": "slackwebhook", "host": f"{sink}/services", "password": "T0/B0ONCALL/x"}))
    return sink


def test_the_notifier_sends_by_channel_id_and_a_refusal_is_false_not_an_error(connections: str,
                                                                               tmp_path: Path) -> None:
    from gamesre.airflow import notify

    assert notify.post_message("deploy promoted", channel_id="C07GAMESRV1") is True
    assert notify.post_message("lost", channel_id="C0UNKNOWN01") is False  # channel_not_found: logged, not raised
    report = tmp_path / "report.html"
    report.write_text("<p>report</p>")
    assert notify.post_file(report, channel_id="C07SRE00001", title="Checklist report") is True
    assert notify.post_file(report, channel_id="C0UNKNOWN01", title="lost") is False
    assert notify.post_webhook("to the webhook's own channel") is True
    got = [(m["kind"], m["channel"], m["text"]) for m in messages(connections)]
    assert got == [("chat.postMessage", "C07GAMESRV1", "deploy promoted"), ("file", "C07SRE00001", ""),
                   ("webhook", "#sre-oncall", "to the webhook's own channel")]
