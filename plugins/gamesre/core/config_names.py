"""Cheap reads of names from the declarative files, for Params forms built while a DAG file is parsed.

No validation and no heavy imports: the full, validated models are gamesre.core.services and gamesre.slo.spec.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from gamesre.core.paths import CONFIG_DIR


def service_names(path: Path = CONFIG_DIR / "services.yaml") -> list[str]:
    raw = yaml.safe_load(path.read_text()) or {}
    return sorted((raw.get("services") or {}).keys())


def chaos_experiment_ids(directory: Path = CONFIG_DIR / "chaos") -> list[str]:
    ids: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text()) or {}
        if raw.get("kind") == "experiments":
            ids += [str(e.get("id")) for e in raw.get("experiments") or [] if isinstance(e, dict)]
    return sorted(ids)


def chaos_suite_names(directory: Path = CONFIG_DIR / "chaos") -> list[str]:
    names: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text()) or {}
        if raw.get("kind") == "suites":
            names += [str(n) for n in (raw.get("suites") or {})]
    return sorted(names)


def chaos_pool(path: Path = CONFIG_DIR / "chaos" / "policy.yaml") -> str:
    raw = yaml.safe_load(path.read_text()) or {}
    return str((raw.get("policy") or {}).get("pool") or "chaos_gameday")


def checklist_schedules(path: Path = CONFIG_DIR / "checklists.yaml") -> dict[str, str]:
    """cadence -> cron expression (Asia/Seoul) of include/config/checklists.yaml."""
    raw = yaml.safe_load(path.read_text()) or {}
    return {str(c): str(spec.get("schedule")) for c, spec in (raw.get("cadences") or {}).items()}


def enforcement_timing(path: Path = CONFIG_DIR / "policies.yaml") -> tuple[int, str]:
    """(propose_timeout in seconds, propose_default) of include/config/policies.yaml `enforcement`."""
    from gamesre.core.durations import parse_duration

    raw = (yaml.safe_load(path.read_text()) or {}).get("enforcement") or {}
    return parse_duration(str(raw.get("propose_timeout") or "15m")), str(raw.get("propose_default") or "keep")
