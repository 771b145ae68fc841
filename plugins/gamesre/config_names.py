"""Cheap reads of names from the declarative files, for Params forms built while a DAG file is parsed.

No validation and no heavy imports: the full, validated models are gamesre.services and gamesre.slo.spec.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from gamesre.paths import CONFIG_DIR


def service_names(path: Path = CONFIG_DIR / "services.yaml") -> list[str]:
    raw = yaml.safe_load(path.read_text()) or {}
    return sorted((raw.get("services") or {}).keys())
