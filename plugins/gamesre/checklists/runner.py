"""Running checklist items on fetched inputs: what to fetch, and each item's result, fail safe.

The edges (Airflow tasks) call `fetch_plan` to learn which inputs the items of a run need and over which
span, fetch each once through the integrations (an `Unavailable` with the reason when a fetch fails), and
call `run_checklist`. Every item yields exactly one ItemResult: an item whose input is unavailable or
malformed, or whose evaluator raises, is `error` with the reason, and the others still run.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from gamesre.checklists.inputs import InputData, Unavailable, shape_problem
from gamesre.checklists.periods import Period, checklist_period
from gamesre.checklists.registry import CheckContext, CheckError, Registry, default_registry
from gamesre.checklists.result import ItemResult
from gamesre.checklists.spec import ChecklistItem
from gamesre.core.time import iso, to_epoch


def item_period(item: ChecklistItem, at: datetime | int | float) -> Period:
    """The period the item judges: the last complete day, week or month (KST) before `at`."""
    return checklist_period(item.cadence, at)


def fetch_plan(items: Iterable[ChecklistItem], at: datetime | int | float,
               registry: Registry | None = None) -> dict[str, tuple[int, int]]:
    """Input name -> [start, end) epoch span covering what every item needs of it (fetch each input once)."""
    registry = registry if registry is not None else default_registry()
    now = to_epoch(at)
    plan: dict[str, tuple[int, int]] = {}
    for item in items:
        entry = registry.get(item.check)
        start, end = entry.data_window(item.params, item_period(item, now), now)
        for name in entry.inputs:
            lo, hi = plan.get(name, (start, end))
            plan[name] = (min(lo, start), max(hi, end))
    return plan


def _base_evidence(item: ChecklistItem, period: Period, at: int, provenance: Mapping[str, Any]) -> dict[str, Any]:
    return {"check": item.check, "at": iso(at), "period": period.to_dict(), "params": item.params_dict(),
            "inputs": dict(provenance)}


def run_item(
    item: ChecklistItem,
    inputs: Mapping[str, Any],
    at: datetime | int | float,
    *,
    registry: Registry | None = None,
    checked_at: datetime | None = None,
) -> ItemResult:
    """Evaluate one item on the fetched `inputs` (values, InputData or Unavailable, by input name)."""
    registry = registry if registry is not None else default_registry()
    now = to_epoch(at)
    checked = checked_at or datetime.fromtimestamp(now, UTC)
    period = item_period(item, now)
    entry = registry.get(item.check)

    given: dict[str, InputData] = {}
    provenance: dict[str, Any] = {}
    problems: list[str] = []
    for name in entry.inputs:
        value = inputs.get(name, Unavailable(f"input {name!r} was not fetched"))
        if isinstance(value, Unavailable):
            provenance[name] = value.provenance()
            where = f" ({value.source})" if value.source else ""
            problems.append(f"input {name!r} unavailable{where}: {value.reason}")
            continue
        data = value if isinstance(value, InputData) else InputData(value)
        provenance[name] = data.provenance()
        problem = shape_problem(name, data)
        if problem:
            problems.append(problem)
            continue
        given[name] = data

    def result(status: str, summary: str, evidence: Mapping[str, Any]) -> ItemResult:
        return ItemResult(item.id, item.title, item.cadence, status,  # type: ignore[arg-type]
                          summary, {**evidence, **_base_evidence(item, period, now, provenance)}, item.owner, checked)

    if problems:
        return result("error", "; ".join(problems), {"reasons": problems})
    context = CheckContext(item.id, item.owner, item.cadence, now, period, given)
    try:
        verdict = entry.func(context, item.params)
    except CheckError as exc:
        return result("error", f"cannot judge: {exc.reason}", {**exc.evidence, "reasons": [exc.reason]})
    except Exception as exc:  # one broken evaluator must not sink the checklist, nor pass
        reason = f"evaluator {item.check!r} raised {type(exc).__name__}: {exc}"
        return result("error", reason, {"reasons": [reason], "exception": type(exc).__name__})
    try:
        return result(verdict.status, verdict.summary, verdict.evidence)
    except (TypeError, ValueError) as exc:  # evidence without a JSON form
        reason = f"evaluator {item.check!r} returned unusable evidence: {exc}"
        return result("error", reason, {"reasons": [reason]})


def run_checklist(
    items: Iterable[ChecklistItem],
    inputs: Mapping[str, Any],
    at: datetime | int | float,
    *,
    registry: Registry | None = None,
    checked_at: datetime | None = None,
) -> list[ItemResult]:
    """One result per item, in the items' order (`order_for_report` puts failing items first)."""
    registry = registry if registry is not None else default_registry()
    return [run_item(item, inputs, at, registry=registry, checked_at=checked_at) for item in items]


__all__ = ["fetch_plan", "item_period", "run_checklist", "run_item"]
