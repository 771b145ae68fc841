"""Checklist runs and item results in the SRE store (SQLite and PostgreSQL): a re-run replaces, evidence
round-trips as JSON, and the results read back are valid ItemResults."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gamesre.checklists.result import ItemResult
from gamesre.integrations.store import SREStore

pytestmark = pytest.mark.integration


def result(item_id: str, status: str, **evidence: object) -> dict:
    return ItemResult(item_id, f"title {item_id}", "daily", status, f"{status} summary",  # type: ignore[arg-type]
                      evidence, "sre", datetime(2026, 11, 26, 0, 0, tzinfo=UTC)).to_dict()


def test_a_run_and_its_results_round_trip_and_a_rerun_replaces(store_url: str) -> None:
    store = SREStore(store_url)
    at = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    store.upsert_checklist_run({"id": "run-1", "cadence": "daily", "period_start": at - timedelta(days=1),
                                "period_end": at, "at": at})
    assert store.save_checklist_results("run-1", [result("a", "fail", sli=0.998, queries=["up"]),
                                                  result("b", "pass")]) == 2
    store.save_checklist_results("run-1", [result("a", "pass", sli=0.9995)])  # the task retried
    store.update_checklist_run("run-1", status="pass", counts={"pass": 2}, report={"delivered": True},
                               finished_at=at)
    (run,) = store.checklist_runs(cadence="daily")
    assert run["status"] == "pass" and run["counts"] == {"pass": 2} and run["period_end"] == at
    rows = store.checklist_results("run-1")
    assert [(r["item_id"], r["status"]) for r in rows] == [("a", "pass"), ("b", "pass")]
    assert rows[0]["evidence"] == {"sli": 0.9995}
    back = ItemResult.from_dict({k: rows[0][k] for k in ("item_id", "title", "cadence", "status", "summary",
                                                         "evidence", "owner")}
                                | {"checked_at": rows[0]["checked_at"].isoformat()})
    assert back.status == "pass" and back.checked_at == datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    with pytest.raises(KeyError, match="no checklist run 'nope'"):
        store.update_checklist_run("nope", status="pass")
