"""The layers hold: dependencies run one way (docs/architecture.md).

dags -> airflow -> app -> domain and core <- integrations; demo -> product, never the reverse. Every import in
every module counts, the ones inside functions too.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ("core", "slo", "calendar", "checklists", "deploy", "chaos", "incidents", "reports", "observability")

# what each layer must not import (module name prefixes)
FORBIDDEN = {
    "domain": ("gamesre.app", "gamesre.integrations", "gamesre.airflow", "airflow", "demo"),
    "app": ("gamesre.integrations", "gamesre.airflow", "airflow", "demo"),
    "integrations": ("gamesre.app", "gamesre.airflow", "airflow", "demo"),
    "airflow": ("demo",),
    "entry": ("gamesre.airflow", "airflow", "demo"),  # the CLI and the package root
    "dags": ("demo",),
}


def layer(root: Path, path: Path) -> str:
    if path.is_relative_to(root / "dags"):
        return "dags"
    part = path.relative_to(root / "plugins" / "gamesre").parts[0]
    if part in DOMAIN:
        return "domain"
    if part in ("app", "integrations", "airflow"):
        return part
    return "entry"


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def violations(root: Path) -> list[str]:
    out = []
    for path in sorted([*(root / "plugins" / "gamesre").rglob("*.py"), *(root / "dags").glob("*.py")]):
        where = layer(root, path)
        for name in sorted(imports(path)):
            if any(name == b or name.startswith(b + ".") for b in FORBIDDEN[where]):
                out.append(f"{path.relative_to(root)} ({where}) imports {name}")
    return out


def test_dependencies_run_one_way() -> None:
    assert violations(ROOT) == []


def test_the_check_sees_a_forbidden_import_even_inside_a_function(tmp_path: Path) -> None:
    (tmp_path / "plugins" / "gamesre" / "deploy").mkdir(parents=True)
    (tmp_path / "dags").mkdir()
    (tmp_path / "plugins" / "gamesre" / "deploy" / "bad.py").write_text(
        "def f():\n    from gamesre.integrations.store import SREStore\n")
    (tmp_path / "plugins" / "gamesre" / "cli.py").write_text("import demo.run\n")
    (tmp_path / "dags" / "ok.py").write_text("from gamesre.airflow.deps import store\n")
    assert violations(tmp_path) == [
        "plugins/gamesre/cli.py (entry) imports demo.run",
        "plugins/gamesre/deploy/bad.py (domain) imports gamesre.integrations.store"]
