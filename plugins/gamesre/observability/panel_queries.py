"""The queries of the committed Grafana dashboards, and the series selectors behind them (pure; no Grafana SDK).

The SLO checklists' freshness item reads these: every series a dashboard panel plots must have fresh samples.
A panel query such as `sum by (code) (rate(game_action_requests_total{track=~"$track"}[$__rate_interval]))`
reads the selector `game_action_requests_total{track=~".*"}`: template variables at their All value (`.*`, as
the generator sets `allValue`), Grafana's interval variables dropped with the range they size.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from gamesre.core.paths import PROMETHEUS_DIR, REPO_ROOT

DASHBOARDS_DIR = REPO_ROOT / "include" / "grafana" / "dashboards"
SLO_RULES = PROMETHEUS_DIR / "slo_rules.yml"
_STRING = r'"(?:[^"\\]|\\.)*"'
_MATCHERS = rf"\{{(?:[^{{}}\"]|{_STRING})*\}}"
_TOKEN = re.compile(rf"{_STRING}|(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*({_MATCHERS})?")
_VARIABLE = re.compile(r"\$\{?([a-zA-Z_]\w*)\}?")


class PanelQueryError(ValueError):
    """A dashboard or rule file cannot be read; the message names the file."""


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # uid
    panel: str  # title
    expr: str  # as written in the dashboard


def recorded_series(path: Path = SLO_RULES) -> set[str]:
    """Names the generated recording rules write (dashboards may read them besides the contract series)."""
    try:
        groups = yaml.safe_load(path.read_text())["groups"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise PanelQueryError(f"{path}: cannot read the recording rules: {exc}") from exc
    return {r["record"] for g in groups for r in g["rules"] if "record" in r}


def load_dashboards(folder: Path = DASHBOARDS_DIR) -> list[dict]:
    boards = []
    for path in sorted(folder.glob("*.json")):
        try:
            board = json.loads(path.read_text())
            board["uid"], board["panels"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PanelQueryError(f"{path}: not a dashboard: {exc}") from exc
        boards.append(board)
    return boards


def panel_queries(boards: Iterable[dict]) -> Iterator[PanelQuery]:
    for board in boards:
        for panel in board["panels"]:
            for target in panel.get("targets") or ():
                if target.get("expr"):
                    yield PanelQuery(str(board["uid"]), str(panel.get("title", "")), str(target["expr"]))


def selectors(expr: str, series: set[str]) -> list[str]:
    """The selectors of `series` in a PromQL expression, template variables at All (`.*`), in order, once each."""
    text = _VARIABLE.sub(lambda m: ".*" if not m.group(1).startswith("__") else m.group(0), expr)
    found: list[str] = []
    for match in _TOKEN.finditer(text):
        name, matchers = match.group(1), match.group(2) or ""
        if name in series:
            selector = f"{name}{matchers}"
            if selector not in found:
                found.append(selector)
    return found


def dashboard_selectors(series: set[str], boards: Iterable[dict] | None = None) -> dict[str, list[str]]:
    """Selector -> the 'dashboard / panel' places that read it, over every committed dashboard."""
    out: dict[str, list[str]] = {}
    for query in panel_queries(load_dashboards() if boards is None else boards):
        for selector in selectors(query.expr, series):
            out.setdefault(selector, []).append(f"{query.dashboard} / {query.panel}")
    return out
