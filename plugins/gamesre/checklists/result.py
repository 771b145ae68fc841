"""The result of one checklist item: status, summary, evidence and owner, as stored and reported.

Statuses:
    fail    the check ran and something is wrong: act on it
    error   the check could not run (its data was unavailable or malformed, or the evaluator broke): the
            reason is in the summary; never read as a pass
    warn    the check ran and something deserves a look
    manual  a judgement item, assigned to its owner
    pass    the check ran on enough data and nothing is wrong

Evidence is plain JSON (numbers, strings, lists, mappings): it is normalised when the result is made, so
that a result survives a JSON round trip unchanged (numpy numbers become Python numbers, NaN and infinity
become null, instants become ISO 8601 UTC strings).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, cast

Status = Literal["pass", "warn", "fail", "manual", "error"]
# Report order: what needs action first.
REPORT_ORDER: tuple[Status, ...] = ("fail", "error", "warn", "manual", "pass")
STATUSES: frozenset[str] = frozenset(REPORT_ORDER)
_FIELDS = ("item_id", "title", "cadence", "status", "summary", "evidence", "owner", "checked_at")


def status_rank(status: str) -> int:
    """0 for fail, the first in a report; an unknown status ranks first too (fail safe)."""
    return REPORT_ORDER.index(status) if status in STATUSES else -1  # type: ignore[arg-type]


def worst_status(statuses: Iterable[str], default: Status = "pass") -> Status:
    """The status that comes first in a report (fail before error before warn ...)."""
    return cast(Status, min(statuses, key=status_rank, default=default))


def iso_utc(value: datetime) -> str:
    """An aware instant as ISO 8601 UTC with a Z, as stored and reported."""
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no timezone; use an aware datetime")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def jsonable(value: Any, path: str = "evidence") -> Any:
    """`value` as plain JSON types; TypeError naming the path of anything that has no JSON form."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, datetime):
        if value != value:  # pandas NaT
            return None
        if value.tzinfo is None:
            raise TypeError(f"{path}: naive datetime {value.isoformat()} has no JSON form; use an aware one")
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and getattr(value, "shape", None) == ():
        return jsonable(item(), path)
    tolist = getattr(value, "tolist", None)  # numpy arrays, pandas Series
    if callable(tolist) and not isinstance(value, Mapping):
        return jsonable(tolist(), path)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, set | frozenset):
        return [jsonable(v, f"{path}[{i}]") for i, v in enumerate(sorted(value, key=str))]
    raise TypeError(f"{path}: {type(value).__name__} has no JSON form")


@dataclass(frozen=True)
class ItemResult:
    """What one checklist item found."""

    item_id: str
    title: str
    cadence: str
    status: Status
    summary: str
    evidence: dict[str, Any]
    owner: str
    checked_at: datetime

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"item {self.item_id!r}: status {self.status!r} is not one of {', '.join(REPORT_ORDER)}")
        if not isinstance(self.evidence, Mapping):
            raise TypeError(f"item {self.item_id!r}: evidence must be a mapping")
        if not isinstance(self.checked_at, datetime) or self.checked_at.tzinfo is None:
            raise ValueError(f"item {self.item_id!r}: checked_at must be an aware datetime")
        object.__setattr__(self, "evidence", jsonable(self.evidence))
        object.__setattr__(self, "checked_at", self.checked_at.astimezone(UTC))

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "cadence": self.cadence,
            "status": self.status,
            "summary": self.summary,
            "evidence": self.evidence,
            "owner": self.owner,
            "checked_at": iso_utc(self.checked_at),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ItemResult:
        """A result from `to_dict()`'s shape; ValueError names what is missing or wrong."""
        missing = [f for f in _FIELDS if f not in doc]
        extra = sorted(set(doc) - set(_FIELDS))
        if missing or extra:
            raise ValueError(f"not an item result: missing {missing}, unknown {extra}")
        for name in ("item_id", "title", "cadence", "status", "summary", "owner", "checked_at"):
            if not isinstance(doc[name], str):
                raise ValueError(f"item result field {name}: expected a string, got {type(doc[name]).__name__}")
        checked_at = datetime.fromisoformat(str(doc["checked_at"]).replace("Z", "+00:00"))
        return cls(
            item_id=doc["item_id"],
            title=doc["title"],
            cadence=doc["cadence"],
            status=doc["status"],
            summary=doc["summary"],
            evidence=dict(doc["evidence"]),
            owner=doc["owner"],
            checked_at=checked_at,
        )

    @classmethod
    def from_json(cls, text: str) -> ItemResult:
        return cls.from_dict(json.loads(text))


def order_for_report(results: Iterable[ItemResult], item_order: Sequence[str] | None = None) -> list[ItemResult]:
    """Failing items first: fail, error, warn, manual, pass; within a status by `item_order` (the checklist
    file's order), else in the order given. Ids missing from `item_order` follow the known ones."""
    listed = list(results)
    position = {item_id: i for i, item_id in enumerate(item_order or ())}
    return [
        r
        for _, r in sorted(
            enumerate(listed),
            key=lambda pair: (status_rank(pair[1].status), position.get(pair[1].item_id, len(position)), pair[0]),
        )
    ]


__all__ = ["REPORT_ORDER", "STATUSES", "ItemResult", "Status", "jsonable", "order_for_report", "status_rank",
           "worst_status"]
