"""Text helpers shared by the reports: any evidence value as text, and as one bounded line."""
from __future__ import annotations

import json
from collections.abc import Mapping


def as_text(value: object) -> str:
    """Strings as they are, containers as compact JSON, None as ''."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return "" if value is None else str(value)


def one_line(value: object, limit: int = 400) -> str:
    """as_text on one line (whitespace runs collapsed), cut to `limit` characters with an ellipsis."""
    s = " ".join(as_text(value).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"
