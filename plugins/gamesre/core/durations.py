"""Durations as the config files write them: '30s', '4m', '1h' (seconds, for steps and timeouts) and '5m', '1h',
'3d' (whole minutes, as PromQL writes windows)."""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

MINUTE = 60
_SECONDS = re.compile(r"^([1-9][0-9]*)(s|m|h)$")
_UNIT = {"s": 1, "m": 60, "h": 3600}
_DURATION = re.compile(r"^([1-9][0-9]*)(m|h|d)$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def parse_seconds(text: object) -> int:
    """Seconds in '30s', '4m' or '1h'; ValueError otherwise."""
    match = _SECONDS.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 4m or 1h")
    return int(match.group(1)) * _UNIT[match.group(2)]


Duration = Annotated[str, Field(pattern=_SECONDS.pattern)]  # a config field holding '30s', '4m' or '1h'


def parse_duration(text: str) -> int:
    """Seconds in a duration written as PromQL writes whole ones: '5m', '1h', '3d'."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 5m, 1h or 3d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(seconds: int) -> str:
    """The shortest whole-unit spelling of a duration: 3600 -> '1h', 5400 -> '90m'."""
    if seconds <= 0 or seconds % MINUTE:
        raise ValueError(f"{seconds} s is not a positive whole number of minutes")
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    raise AssertionError("unreachable: minutes always divide")
