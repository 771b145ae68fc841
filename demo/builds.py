"""The demo's catalog of defective builds (demo/builds.yaml): what a version does wrong while an instance runs it.

A defective build misbehaves the way a bad image would, with no fault injected: its defects are admin
`Faults` (same fields, same validation) that the fleet adds to whatever faults are injected. Versions not
in the catalog are healthy. Parsing is pure; `load_catalog` only reads the file.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from demo.admin import AdminValidationError, Build, Faults, parse_build_update, parse_fault_update

BUILDS_YAML = Path(__file__).resolve().with_name("builds.yaml")
CATALOG_FORMAT = 1
NOTE = "note"


class BuildCatalogError(ValueError):
    """The catalog is malformed; the message names the file, the service, the version and the field."""


@dataclass(frozen=True)
class DefectiveBuild:
    service: str
    version: str
    defects: Faults  # what the build does wrong, as the faults it behaves like
    note: str  # what is wrong, in words

    def to_json(self) -> dict[str, Any]:
        """The defects that are set, and the note: the catalog entry as written."""
        healthy = Faults()
        doc = {f.name: getattr(self.defects, f.name) for f in fields(Faults)
               if getattr(self.defects, f.name) != getattr(healthy, f.name)}
        return {**doc, NOTE: self.note}


@dataclass(frozen=True)
class BuildCatalog:
    builds: dict[tuple[str, str], DefectiveBuild]  # (service, version) -> its defects

    def lookup(self, service: str, version: str) -> DefectiveBuild | None:
        return self.builds.get((service, version))

    def defects(self, service: str, version: str) -> Faults:
        """The defects of a build; no defect (all faults off) for a version not in the catalog."""
        entry = self.lookup(service, version)
        return Faults() if entry is None else entry.defects


def effective_faults(injected: Faults, defects: Faults) -> Faults:
    """What an instance suffers: per field the larger of the injected fault and the build defect (or, for flags)."""
    combined: dict[str, Any] = {}
    for f in fields(Faults):
        a, b = getattr(injected, f.name), getattr(defects, f.name)
        combined[f.name] = (a or b) if isinstance(a, bool) else max(a, b)
    return Faults(**combined)


def parse_catalog(raw: object, services: Collection[str], source: str = "builds.yaml") -> BuildCatalog:
    """Validate a parsed catalog; `services` are the contract's service names."""
    if not isinstance(raw, dict):
        raise _error(source, "top level", "expected a mapping with `version` and `builds`")
    unknown = set(raw) - {"version", "builds"}
    if unknown:
        raise _error(source, "top level", f"unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                                          "(known: version, builds)")
    if raw.get("version") != CATALOG_FORMAT:
        raise _error(source, "version", f"expected {CATALOG_FORMAT}, got {raw.get('version')!r}")
    by_service = raw.get("builds") or {}
    if not isinstance(by_service, dict):
        raise _error(source, "builds", "expected a mapping of service -> version -> defects")
    builds: dict[tuple[str, str], DefectiveBuild] = {}
    for service, versions in by_service.items():
        if service not in services:
            raise _error(source, f"builds.{service}",
                         f"unknown service (the metric contract has: {', '.join(sorted(services))})")
        if not isinstance(versions, dict):
            raise _error(source, f"builds.{service}", "expected a mapping of version -> defects")
        for version, entry in versions.items():
            build = _parse_entry(service, version, entry, source)
            builds[(service, build.version)] = build
    return BuildCatalog(builds)


def _error(source: str, where: str, reason: str) -> BuildCatalogError:
    return BuildCatalogError(f"{source}: {where}: {reason}")


def _parse_entry(service: str, version: object, entry: object, source: str) -> DefectiveBuild:
    where = f'builds.{service}."{version}"'
    if not isinstance(version, str):
        raise _error(source, where, f"the version must be a quoted string, got the {type(version).__name__} "
                                    f"{version!r}")
    try:
        parse_build_update(Build("", ""), {"version": version}, ())  # a version the admin API would accept
    except AdminValidationError as exc:
        raise _error(source, where, exc.reason) from None
    if not isinstance(entry, dict):
        raise _error(source, where, "expected a mapping of defect fields and a note")
    doc = dict(entry)
    note = doc.pop(NOTE, None)
    if not isinstance(note, str) or not note.strip():
        raise _error(source, f"{where}.{NOTE}", "required: say in words what is wrong with this build")
    try:
        defects = parse_fault_update(Faults(), doc)  # the admin API's rules: names, types and ranges
    except AdminValidationError as exc:
        raise _error(source, f"{where}.{exc.field}", exc.reason) from None
    if defects == Faults():
        raise _error(source, where, "no defect given (a version that is not listed is healthy)")
    return DefectiveBuild(service, version, defects, note.strip())


def load_catalog(services: Collection[str], path: Path = BUILDS_YAML) -> BuildCatalog:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BuildCatalogError(f"{path}: cannot read the build catalog: {exc}") from exc
    return parse_catalog(raw, services, str(path))
