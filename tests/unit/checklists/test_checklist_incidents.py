"""Incident checklist items, checked by hand: the week's incidents, MTTA and MTTR, unacknowledged serious ones, and
postmortems past their due date."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from gamesre.checklists.runner import run_item
from gamesre.checklists.spec import ChecklistSpec
from tests.unit.checklists.conftest import AT, AT_EPOCH

M = 60
COLUMNS = ("id", "severity", "title", "team", "status", "opened_at", "acknowledged_at", "resolved_at",
           "postmortem_due", "postmortem_status", "postmortem_owner")


def incidents(*rows: dict[str, Any]) -> pd.DataFrame:
    defaults = {"title": "t", "team": "game-server", "status": "resolved", "acknowledged_at": math.nan,
                "resolved_at": math.nan, "postmortem_due": math.nan, "postmortem_status": "", "postmortem_owner": ""}
    return pd.DataFrame([{**defaults, **r} for r in rows], columns=list(COLUMNS))


def test_the_weeks_incidents_with_their_median_response_times(checklists: ChecklistSpec) -> None:
    week_ago = AT_EPOCH - 3 * 86_400
    frame = incidents(
        {"id": "INC-1", "severity": "sev1", "opened_at": week_ago, "acknowledged_at": week_ago + 3 * M,
         "resolved_at": week_ago + 50 * M},
        {"id": "INC-2", "severity": "sev2", "opened_at": week_ago + 86_400,
         "acknowledged_at": week_ago + 86_400 + 9 * M, "resolved_at": week_ago + 86_400 + 90 * M},
        {"id": "INC-3", "severity": "sev2", "opened_at": week_ago + 2 * 86_400,
         "acknowledged_at": week_ago + 2 * 86_400 + 4 * M, "resolved_at": week_ago + 2 * 86_400 + 30 * M},
        {"id": "INC-0", "severity": "sev0", "opened_at": AT_EPOCH - 30 * 86_400, "resolved_at": AT_EPOCH - 29 * 86_400},
    )
    result = run_item(checklists.get("weekly-incident-response"), {"incidents": frame}, AT)
    # MTTA 3, 9, 4 min -> median 4 min; MTTR 50, 90, 30 min -> median 50 min: under 5 min and 1 h
    assert result.status == "pass"
    assert result.summary.startswith("3 incident(s) in ") and "(1 SEV1, 2 SEV2)" in result.summary
    assert result.evidence["mtta_median"] == 4 * M and result.evidence["mttr_median"] == 50 * M
    slow = frame.assign(acknowledged_at=frame["opened_at"] + 12 * M)
    assert run_item(checklists.get("weekly-incident-response"), {"incidents": slow}, AT).summary.endswith(
        ": MTTA above 5m")


def test_a_serious_incident_nobody_acknowledged_fails_the_item(checklists: ChecklistSpec) -> None:
    frame = incidents({"id": "INC-9", "severity": "sev0", "status": "open", "opened_at": AT_EPOCH - 20 * M},
                      {"id": "INC-8", "severity": "sev2", "status": "open", "opened_at": AT_EPOCH - 90 * M})
    result = run_item(checklists.get("weekly-incident-response"), {"incidents": frame}, AT)
    assert (result.status, result.summary) == ("fail", "1 Sev0/Sev1 incident(s) unacknowledged for more than 15m: "
                                                         "INC-9")


def test_postmortems_past_their_due_date_fail_and_those_due_soon_warn(checklists: ChecklistSpec) -> None:
    item = checklists.get("weekly-postmortems")
    overdue = incidents({"id": "INC-5", "severity": "sev1", "opened_at": AT_EPOCH - 10 * 86_400,
                         "postmortem_due": AT_EPOCH - 3600, "postmortem_status": "draft", "postmortem_owner": "yuna"},
                        {"id": "INC-6", "severity": "sev0", "opened_at": AT_EPOCH - 10 * 86_400,
                         "postmortem_due": AT_EPOCH - 3600, "postmortem_status": "final"})
    result = run_item(item, {"incidents": overdue}, AT)
    assert result.status == "fail" and result.summary.startswith("1 postmortem(s) past their due date: INC-5 (owner "
                                                                 "yuna, due ")
    soon = overdue.assign(postmortem_due=AT_EPOCH + 86_400)
    assert run_item(item, {"incidents": soon}, AT).status == "warn"
    later = overdue.assign(postmortem_due=AT_EPOCH + 5 * 86_400)
    assert run_item(item, {"incidents": later}, AT).summary == ("no postmortem overdue (1 in progress, none due "
                                                                "within 2d)")
