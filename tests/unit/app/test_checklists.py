"""The checklist use case with in-memory ports: a down source makes its items `error`, the run and its report are
recorded, and the report reaches Slack (or says the checklist did not run)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gamesre.app.checklists import ChecklistPorts, evaluate, report
from gamesre.checklists import load_checklists
from gamesre.checklists.inputs import Unavailable
from gamesre.core.services import load_services
from tests.fakes.memory_store import memory_store
from tests.fakes.notifier import RecordingNotifier

AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 10:00 KST
SRE_CHANNEL_ID = load_services().sre.slack.channel_id


def ports(tmp_path, asked: list[Any] | None = None) -> ChecklistPorts:
    def nothing_answers(plan: Any, at: int) -> dict[str, Unavailable]:
        if asked is not None:
            asked.append((dict(plan), at))
        return {name: Unavailable("prometheus: connection refused", source="prometheus") for name in plan}

    return ChecklistPorts(store=memory_store(), fetch_inputs=nothing_answers, notifier=RecordingNotifier(),
                          clock=lambda: AT, checklists=load_checklists(), report_dir=tmp_path,
                          report_channel_id=SRE_CHANNEL_ID)


def test_every_input_is_fetched_once_and_a_down_source_makes_items_error_with_the_reason(tmp_path) -> None:
    asked: list[Any] = []
    p = ports(tmp_path, asked)
    summary = evaluate(p, "daily", "run-1", AT, "http://airflow/run-1")
    assert len(asked) == 1 and asked[0][1] == int(AT.timestamp())
    items = load_checklists().for_cadence("daily")
    assert summary["items"] == len(items) and summary["status"] == "error"
    stored = p.store.checklist_results("run-1")
    errored = [r for r in stored if r["status"] == "error"]
    assert errored and all("connection refused" in r["summary"] for r in errored)
    run = p.store.checklist_runs(ids=["run-1"])[0]
    assert run["status"] == "error" and sum(run["counts"].values()) == len(items)


def test_the_report_is_written_posted_and_recorded(tmp_path) -> None:
    p = ports(tmp_path)
    evaluate(p, "daily", "run-1", AT)
    where = report(p, "daily", "run-1")
    files = where["files"]
    assert files["markdown"].endswith(".md") and (tmp_path / "checklists").is_dir()
    assert "# " in open(files["markdown"]).read()
    (message,) = p.notifier.messages
    assert message["channel_id"] == SRE_CHANNEL_ID == "C07SRE00001" and where["delivered"]
    assert str(tmp_path) not in message["text"]  # no path on the worker: the report itself is a Slack file
    html, *charts = p.notifier.files
    assert html["name"] == files["html"].rsplit("/", 1)[1] and html["content"].startswith(b"<!")
    assert where["report_uploaded"] and charts and all(f["name"].endswith(".png") for f in charts)
    assert {f["channel_id"] for f in p.notifier.files} == {SRE_CHANNEL_ID}
    assert p.store.checklist_runs(ids=["run-1"])[0]["report"] == where


def test_a_checklist_that_did_not_run_is_reported_as_such(tmp_path) -> None:
    p = ports(tmp_path)
    where = report(p, "weekly", "run-9")
    assert where == {"delivered": True, "files": {}}
    assert p.notifier.messages[0]["text"].startswith(":boom: The weekly SLO checklist did not run (run run-9)")
    assert p.notifier.messages[0]["channel_id"] == SRE_CHANNEL_ID


def test_slack_refusing_does_not_fail_the_report(tmp_path) -> None:
    p = ports(tmp_path)
    p.notifier.accept = False  # type: ignore[attr-defined]
    evaluate(p, "daily", "run-1", AT)
    where = report(p, "daily", "run-1")
    assert where["delivered"] is False and where["charts_uploaded"] == []
