"""The SLO checklist DAGs' tasks (dags/slo_checklists.py): build the ports and run the use case
(gamesre.app.checklists)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from gamesre.airflow.deps import checklist_ports
from gamesre.app import checklists


def evaluate(cadence: str, run_id: str, at: datetime, run_url: str = "") -> dict[str, Any]:
    """Run the cadence's checklist for the instant `at`; the results are stored."""
    return checklists.evaluate(checklist_ports(), cadence, run_id, at, run_url)


def report(cadence: str, run_id: str) -> dict[str, Any]:
    """Render the stored results, write the files, post to Slack."""
    return checklists.report(checklist_ports(), cadence, run_id)
