"""Incident evaluators: response times and severities over the period, and postmortems past their due date."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from gamesre.checklists.evaluators._common import duration_text, listing, records
from gamesre.checklists.params import Duration, seconds
from gamesre.checklists.registry import CheckContext, ParamsModel, Verdict, evaluator

_INCIDENT_COLUMNS = ("id", "severity", "title", "team", "status", "opened_at", "acknowledged_at", "resolved_at",
                     "mtta", "mttr")
_TIMES = ("opened_at", "acknowledged_at", "resolved_at", "postmortem_due")
SEVERITIES = ("sev0", "sev1", "sev2", "sev3")


def _median(values: pd.Series) -> float | None:
    clean = values.dropna()
    return None if clean.empty else float(clean.median())


class ResponseParams(ParamsModel):
    """warn when the median time to acknowledge passes max_median_mtta or to resolve max_median_mttr; fail while a
    Sev0/Sev1 incident has gone unacknowledged longer than max_unacknowledged."""

    max_median_mtta: Duration = "5m"
    max_median_mttr: Duration = "1h"
    max_unacknowledged: Duration = "15m"


@evaluator("incident_response", params_model=ResponseParams, inputs=("incidents",))
def incident_response(ctx: CheckContext, params: ResponseParams) -> Verdict:
    """Incidents opened in the period by severity, the median time to acknowledge (MTTA) and to resolve (MTTR),
    and serious incidents nobody has acknowledged."""
    frame = ctx.data("incidents")
    opened = frame[(frame["opened_at"] >= ctx.period.start) & (frame["opened_at"] < ctx.period.end)].copy()
    opened["mtta"] = opened["acknowledged_at"] - opened["opened_at"]
    opened["mttr"] = opened["resolved_at"] - opened["opened_at"]
    mtta, mttr = _median(opened["mtta"]), _median(opened["mttr"])
    late = ctx.at - frame["opened_at"] > seconds(params.max_unacknowledged)
    waiting = frame[frame["severity"].isin(("sev0", "sev1")) & frame["acknowledged_at"].isna()
                    & (frame["status"] != "resolved") & late]
    by_severity = {s: int((opened["severity"] == s).sum()) for s in SEVERITIES}
    evidence: dict[str, Any] = {
        "by_severity": by_severity,
        "mtta_median": mtta, "mttr_median": mttr,
        "incidents": records(opened.sort_values("opened_at"), _INCIDENT_COLUMNS, times=_TIMES),
        "unacknowledged": records(waiting, _INCIDENT_COLUMNS, times=_TIMES),
        "thresholds": params.model_dump(),
    }
    if len(waiting):
        return Verdict("fail", f"{len(waiting)} Sev0/Sev1 incident(s) unacknowledged for more than "
                               f"{params.max_unacknowledged}: {listing(list(waiting['id']))}", evidence)
    if opened.empty:
        return Verdict("pass", f"no incident opened in {ctx.period.label}", evidence)
    counts = ", ".join(f"{n} {s.upper()}" for s, n in by_severity.items() if n)
    text = (f"{len(opened)} incident(s) in {ctx.period.label} ({counts}); MTTA median {duration_text(mtta)}, MTTR "
            f"median {duration_text(mttr)}")
    slow = []
    if mtta is not None and mtta > seconds(params.max_median_mtta):
        slow.append(f"MTTA above {params.max_median_mtta}")
    if mttr is not None and mttr > seconds(params.max_median_mttr):
        slow.append(f"MTTR above {params.max_median_mttr}")
    return Verdict("warn" if slow else "pass", text + (f": {'; '.join(slow)}" if slow else ""), evidence)


class PostmortemParams(ParamsModel):
    """warn when a required postmortem is due within due_soon; fail once it is past its due date unfinished."""

    due_soon: Duration = "2d"


@evaluator("postmortems", params_model=PostmortemParams, inputs=("incidents",))
def postmortems(ctx: CheckContext, params: PostmortemParams) -> Verdict:
    """Required postmortems (incidents.yaml: Sev0 within 3 business days, Sev1 within 5) that are past their due date
    or due soon and not marked final (incident_action `postmortem_final`)."""
    frame = ctx.data("incidents")
    pending = frame[frame["postmortem_due"].notna() & (frame["postmortem_status"] != "final")]
    overdue = pending[pending["postmortem_due"] < ctx.at]
    soon = pending[(pending["postmortem_due"] >= ctx.at) & (pending["postmortem_due"] < ctx.at + seconds(
        params.due_soon))]
    columns = ("id", "severity", "title", "postmortem_owner", "postmortem_due", "postmortem_status")
    evidence = {"overdue": records(overdue, columns, times=_TIMES), "due_soon": records(soon, columns, times=_TIMES),
                "pending": len(pending), "thresholds": params.model_dump()}
    if len(overdue):
        return Verdict("fail", f"{len(overdue)} postmortem(s) past their due date: " + listing(
            [f"{r.id} (owner {r.postmortem_owner}, due {_day(r.postmortem_due)})" for r in overdue.itertuples()]),
            evidence)
    if len(soon):
        return Verdict("warn", f"{len(soon)} postmortem(s) due within {params.due_soon}: " + listing(
            [f"{r.id} (owner {r.postmortem_owner}, due {_day(r.postmortem_due)})" for r in soon.itertuples()]),
            evidence)
    return Verdict("pass", f"no postmortem overdue ({len(pending)} in progress, none due within {params.due_soon})",
                   evidence)


def _day(epoch: float) -> str:
    return "n/a" if math.isnan(epoch) else pd.Timestamp(epoch, unit="s", tz="Asia/Seoul").strftime("%Y-%m-%d")
