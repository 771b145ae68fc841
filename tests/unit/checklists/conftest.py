"""Builders for the checklist tests: SLO specs from slos.yaml, ledgers and records made by hand."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gamesre.checklists.spec import ChecklistSpec, load_checklists
from gamesre.slo.spec import Policy, Slo, SloCatalog, load_policies, load_slos

# Monday 2 March 2026, 10:00 KST: the weekly run; the daily period is Sunday 1 March, the monthly one February.
AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
AT_EPOCH = int(AT.timestamp())


@pytest.fixture(scope="session")
def slos() -> SloCatalog:
    return load_slos()


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policies()


@pytest.fixture(scope="session")
def checklists() -> ChecklistSpec:
    return load_checklists()


def flat_ledger(start: int, end: int, total: float = 1000.0, good_share: float = 1.0) -> pd.DataFrame:
    """One row per minute of [start, end) with `total` events of which `good_share` are good."""
    minutes = np.arange(start, end, 60, dtype=np.int64)
    return pd.DataFrame({"minute": minutes, "good": np.full(minutes.size, total * good_share),
                         "total": np.full(minutes.size, total)})


def with_bad(frame: pd.DataFrame, start: int, end: int, good: float) -> pd.DataFrame:
    """`frame` with the good count of the minutes in [start, end) set to `good`."""
    out = frame.copy()
    out.loc[(out["minute"] >= start) & (out["minute"] < end), "good"] = good
    return out


def slo_like(slo: Slo, **update: Any) -> Slo:
    return slo.model_copy(update=update)


def deployments(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Deployment records with the store's columns; unspecified fields get harmless defaults."""
    defaults = {"version": "1.0.0", "dry_run": False, "stages": ["dev", "staging", "prod"], "started_at": None,
                "finished_at": None, "rolled_back_at": None, "run_url": ""}
    records = [{**defaults, "id": f"run-{i}", **row} for i, row in enumerate(rows)]
    columns = ["id", "service", "version", "outcome", "dry_run", "stages", "requested_at", "started_at",
               "finished_at", "rolled_back_at", "run_url"]
    return pd.DataFrame(records, columns=columns)


def alert_samples(*series: tuple[str, dict[str, str], Iterable[int]]) -> pd.DataFrame:
    """ALERTS samples: (alertname, labels, timestamps) per series."""
    rows = [{"alertname": name, "labels": {"alertname": name, **labels}, "alertstate": "firing", "timestamp": t}
            for name, labels, times in series for t in times]
    return pd.DataFrame(rows, columns=["alertname", "labels", "alertstate", "timestamp"])
