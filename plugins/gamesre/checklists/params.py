"""Field types the evaluators' params share: durations as people write them, and the choice of SLOs."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from gamesre.checklists.registry import ParamsModel
from gamesre.core.durations import parse_duration


def _duration(text: str) -> str:
    parse_duration(text)  # ValueError: '5x' is not a duration like 5m, 1h or 3d
    return text


# A duration as PromQL writes whole ones ("5m", "24h", "90d"); `seconds()` reads it. Kept as text so the
# evidence shows the threshold as the YAML wrote it.
Duration = Annotated[str, AfterValidator(_duration)]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
_SLUG = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"


def seconds(duration: str) -> int:
    return parse_duration(duration)


class SloScope(ParamsModel):
    """Which SLOs an item looks at: the named `slos`, the SLOs of the named `services`, else all of them."""

    slos: list[Annotated[str, Field(pattern=_SLUG)]] | None = None
    services: list[Annotated[str, Field(pattern=_SLUG)]] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> SloScope:
        if self.slos is not None and self.services is not None:
            raise ValueError("slos: give slos or services, not both")
        for name in ("slos", "services"):
            if getattr(self, name) == []:
                raise ValueError(f"{name}: an empty list selects nothing; leave the field out to select every SLO")
        return self

    def references(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        if self.slos:
            out["slos"] = list(self.slos)
        if self.services:
            out["services"] = list(self.services)
        return out

    def select(self, slos: Iterable[Any]) -> list[Any]:
        """The selected SLO specs (objects with `name` and `service`), in catalog order."""
        chosen = list(slos)
        if self.slos is not None:
            wanted = set(self.slos)
            return [s for s in chosen if s.name in wanted]
        if self.services is not None:
            wanted = set(self.services)
            return [s for s in chosen if s.service in wanted]
        return chosen


__all__ = ["Duration", "Share", "SloScope", "seconds"]
