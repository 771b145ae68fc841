"""Reading the declarative files: YAML with errors that name the file, line and column, and the error type every
config loader raises (SpecError, naming the file, the item and the field)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gamesre.core.paths import REPO_ROOT


class SpecError(ValueError):
    """An invalid spec; the message names the file, the SLO (or policy item) and the field path."""


def display_path(path: Path | str) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(REPO_ROOT.resolve()))
    except ValueError:
        return str(path)


def read_yaml(path: Path | str, source: str | None = None) -> Any:
    """Parse a YAML file; a syntax error names the file, line and column."""
    source = source or display_path(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpecError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    return parse_yaml_text(text, source)


def yaml_error(exc: yaml.YAMLError, source: str) -> SpecError:
    """A YAML parse error as a SpecError naming the file, line and column."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return SpecError(f"{source}: {where}YAML syntax error: {problem}")


def parse_yaml_text(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise yaml_error(exc, source) from exc


def header_problems(raw: dict[str, Any], source: str, key: str) -> list[str]:
    """Problems with a spec document's top level: fields besides `version` and `key`, a version other than 1."""
    lines: list[str] = []
    unknown = sorted(set(raw) - {"version", key})
    if unknown:
        lines.append(f"{source}: {', '.join(unknown)}: unknown field")
    if raw.get("version") != 1:
        lines.append(f"{source}: version: must be 1, got {raw.get('version')!r}")
    return lines
