"""The SLO operations checklists (daily, weekly, monthly) as data, evaluators and results: pure, no I/O.

    include/config/checklists.yaml --load_checklists--> ChecklistSpec (items: check + validated params)
    items --fetch_plan--> the inputs to fetch and their spans (the edges fetch them: Prometheus, store ...)
    items + inputs --run_checklist--> ItemResult per item --order_for_report--> failing items first

Modules: `spec` (the YAML), `registry` (evaluators and the decorator), `inputs` (the catalog of fetched
data), `periods` (KST day, week, month), `analytics` (the pandas computations), `evaluators/` (one
function per check), `runner` (fail-safe evaluation), `result` (ItemResult and the report order),
`versions` (version pins). docs/checklists.md describes the items and how to add one.

Importing this package is light (no pandas); the evaluators load on first use of the default registry.
"""
from __future__ import annotations

from gamesre.checklists.inputs import InputData, Unavailable
from gamesre.checklists.periods import Period, checklist_period
from gamesre.checklists.registry import (
    CheckContext,
    CheckError,
    ParamsModel,
    Verdict,
    default_registry,
    evaluator,
)
from gamesre.checklists.result import ItemResult, order_for_report
from gamesre.checklists.runner import fetch_plan, run_checklist, run_item
from gamesre.checklists.spec import ChecklistError, ChecklistItem, ChecklistSpec, load_checklists

__all__ = [
    "CheckContext",
    "CheckError",
    "ChecklistError",
    "ChecklistItem",
    "ChecklistSpec",
    "InputData",
    "ItemResult",
    "ParamsModel",
    "Period",
    "Unavailable",
    "Verdict",
    "checklist_period",
    "default_registry",
    "evaluator",
    "fetch_plan",
    "load_checklists",
    "order_for_report",
    "run_checklist",
    "run_item",
]
