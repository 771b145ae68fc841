"""Judgement items: the `manual` evaluator assigns the item to its owner with the steps to go through."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from gamesre.checklists.registry import CheckContext, ParamsModel, Verdict, evaluator

Step = Annotated[str, Field(min_length=1, max_length=300, pattern=r"^[^\x00-\x1f\x7f]*$")]


class ManualParams(ParamsModel):
    """steps: what the owner checks, one line each; links: where to look (dashboards, runbooks, URLs)."""

    steps: Annotated[list[Step], Field(min_length=1)]
    links: list[Annotated[str, Field(pattern=r"^\S+$")]] = Field(default_factory=list)


@evaluator("manual", params_model=ManualParams)
def manual(ctx: CheckContext, params: ManualParams) -> Verdict:
    """A judgement item: assigned to its owner, with its steps and links; never passes by itself."""
    return Verdict("manual", f"assigned to {ctx.owner}: {len(params.steps)} step(s) to review for {ctx.period.label}",
                   {"assignee": ctx.owner, "steps": list(params.steps), "links": list(params.links)})
