"""Housekeeping evaluators: the monitoring stack's versions against the pins, and runbook freshness."""
from __future__ import annotations

from typing import Annotated, Any

from packaging.utils import canonicalize_name
from pydantic import Field, field_validator

from gamesre.checklists.analytics import stale_documents
from gamesre.checklists.evaluators._common import listing, records
from gamesre.checklists.params import Duration, seconds
from gamesre.checklists.periods import Period
from gamesre.checklists.registry import CheckContext, CheckError, ParamsModel, Verdict, evaluator
from gamesre.checklists.versions import FROM_REQUIREMENTS, check_pin, compare_version


class VersionParams(ParamsModel):
    """components: name -> pin, a PEP 440 specifier (`==2.42.*`) or `requirements.txt` (the exact pin there)."""

    components: Annotated[dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")], str], Field(min_length=1)]

    @field_validator("components")
    @classmethod
    def _pins(cls, components: dict[str, str]) -> dict[str, str]:
        for name, pin in components.items():
            try:
                check_pin(pin)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return components


def _now(params: ParamsModel, period: Period, at: int) -> tuple[int, int]:
    return at, at


@evaluator("stack_versions", params_model=VersionParams, inputs=("versions_running", "pinned_requirements"),
           window=_now)
def stack_versions(ctx: CheckContext, params: VersionParams) -> Verdict:
    """The running Prometheus, Alertmanager, Airflow and provider versions against their pins."""
    running = {canonicalize_name(str(k)): (None if v is None else str(v))
               for k, v in ctx.data("versions_running").items()}
    pinned_reqs = {canonicalize_name(str(k)): str(v) for k, v in ctx.data("pinned_requirements").items()}
    checks = []
    for component, pin in params.components.items():
        name = canonicalize_name(component)
        pinned = pinned_reqs.get(name) if pin == FROM_REQUIREMENTS else pin
        checks.append({**compare_version(component, running.get(name), pinned).to_dict(), "pin_source":
                       FROM_REQUIREMENTS if pin == FROM_REQUIREMENTS else "checklists.yaml"})
    drift = [c for c in checks if c["verdict"] == "drift"]
    unknown = [c for c in checks if c["verdict"] == "unknown"]
    evidence: dict[str, Any] = {"components": checks, "drift_total": len(drift), "unknown_total": len(unknown)}
    if drift or unknown:
        parts = [str(c["detail"]) for c in drift + unknown]
        return Verdict("warn", f"{len(drift)} component(s) differ from their pins, {len(unknown)} unknown: "
                               f"{listing(parts)}", evidence)
    return Verdict("pass", f"all {len(checks)} components run their pinned versions: " +
                   listing([f"{c['component']} {c['running']}" for c in checks], 8), evidence)


class RunbookParams(ParamsModel):
    """A runbook or doc not changed for max_age is listed for review."""

    max_age: Duration = "90d"


@evaluator("runbook_freshness", params_model=RunbookParams, inputs=("runbooks",), window=_now)
def runbook_freshness(ctx: CheckContext, params: RunbookParams) -> Verdict:
    """Runbooks and incident docs older than max_age."""
    documents = ctx.data("runbooks")
    if documents.empty:
        raise CheckError("no runbook found to check")
    stale = stale_documents(documents, ctx.at, seconds(params.max_age))
    rows = records(stale, ("path", "age_days"))
    for row in rows:
        row["age_days"] = None if row["age_days"] != row["age_days"] else round(float(row["age_days"]), 1)
    evidence = {"stale": rows, "stale_total": len(stale), "documents_total": len(documents),
                "thresholds": {"max_age": params.max_age}}
    if stale.empty:
        return Verdict("pass", f"all {len(documents)} runbooks changed within {params.max_age}", evidence)
    return Verdict("warn", f"{len(stale)} of {len(documents)} runbooks unchanged for more than {params.max_age}: "
                           + listing([f"{r['path']} ({'unknown' if r['age_days'] is None else int(r['age_days'])} "
                                      "days)" for r in rows]), evidence)
