"""Deploy records in the SRE store (SQLite and PostgreSQL): the per-service lock, the deployment row, verdicts."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gamesre.integrations.store import SREStore, deploy_lock

pytestmark = pytest.mark.integration


def request_row(run_id: str, **extra: object) -> dict:
    return {"id": run_id, "service": "game-server", "version": "1.5.1", "image": "r/g:1.5.1", "strategy": "canary",
            "stages": ["dev", "prod"], "backend": "local", "change_ticket": "CHG-1", "requested_by": "ci",
            "dry_run": False, "forced": False, "outcome": "running", "requested_at": datetime.now(UTC), **extra}


def test_one_deploy_lock_per_service(store_url: str) -> None:
    store = SREStore(store_url)
    assert store.acquire_deploy_lock("game-server", "run-a", "1.5.1", stale_after_s=3600) is None
    assert store.acquire_deploy_lock("game-server", "run-a", "1.5.1", stale_after_s=3600) is None  # re-entrant
    holder = store.acquire_deploy_lock("game-server", "run-b", "1.5.2", stale_after_s=3600)
    assert holder is not None and holder["run_id"] == "run-a" and holder["version"] == "1.5.1"
    assert store.acquire_deploy_lock("matchmaking", "run-b", "2.4.0", stale_after_s=3600) is None  # other service
    assert store.release_deploy_lock("game-server", "run-b") is False  # not the holder: nothing released
    assert store.release_deploy_lock("game-server", "run-a") is True
    assert store.acquire_deploy_lock("game-server", "run-b", "1.5.2", stale_after_s=3600) is None
    assert store.deploy_lock("game-server")["run_id"] == "run-b"


def test_a_stale_lock_is_taken_over(store_url: str) -> None:
    store = SREStore(store_url)
    store.acquire_deploy_lock("game-server", "crashed", "1.5.1", stale_after_s=3600)
    with store.engine.begin() as conn:
        conn.execute(sa.update(deploy_lock).values(acquired_at=datetime.now(UTC) - timedelta(hours=7)))
    assert store.acquire_deploy_lock("game-server", "run-c", "1.5.3", stale_after_s=6 * 3600) is None
    assert store.deploy_lock("game-server")["run_id"] == "run-c"


def test_deployment_record_insert_update_and_verdicts(store_url: str) -> None:
    store = SREStore(store_url)
    store.upsert_deployment(request_row("run-1"))
    store.update_deployment("run-1", outcome="rolled_back", reason="prod canary 10%: regression",
                            stage_log=[{"stage": "prod", "outcome": "rolled_back"}],
                            rolled_back_at=datetime.now(UTC))
    record = store.deployment("run-1")
    assert record["outcome"] == "rolled_back" and record["stage_log"][0]["stage"] == "prod"
    assert record["version"] == "1.5.1" and record["rolled_back_at"].tzinfo is not None
    with pytest.raises(KeyError, match="run-404"):
        store.update_deployment("run-404", outcome="failed")
    store.record_verdict("run-1", "prod", 0, "canary 10%", "continue", "first", {"slis": []})
    store.record_verdict("run-1", "prod", 0, "canary 10%", "fail", "regression", {"slis": [{"slo": "availability"}]})
    verdicts = store.verdicts("run-1")
    assert [(v["step"], v["decision"]) for v in verdicts] == [(0, "fail")]  # a re-run replaces the step's verdict
    assert verdicts[0]["evidence"]["slis"][0]["slo"] == "availability"
    assert [r["id"] for r in store.deployments(service="game-server")] == ["run-1"]
