"""The chaos workflow's layers point one way (docs: DESIGN.md, layers): the domain (gamesre.chaos) and the use case
(gamesre.app.chaos) import neither Airflow, nor an outside system's client, nor the demo; not even for typing."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
FORBIDDEN = ("airflow", "gamesre.airflow", "gamesre.integrations", "demo")
MODULES = [*sorted((PLUGINS / "gamesre" / "chaos").glob("*.py")), PLUGINS / "gamesre" / "app" / "chaos.py"]


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PLUGINS)))
def test_the_chaos_domain_and_use_case_import_no_outer_layer(path: Path) -> None:
    outer = sorted(n for n in imported(path) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN))
    assert outer == [], f"{path.relative_to(PLUGINS)} imports {outer}"
