"""The checklists as data: models and loader for include/config/checklists.yaml.

Every error raises ChecklistError naming the file, the item and the field, e.g.
`include/config/checklists.yaml: item 'weekly-noisy-alerts': params.min_fires: Input should be greater than
or equal to 1`. Validation has three layers: YAML syntax; the document's shape (cadences, items, slugs,
owners from the metric contract's teams or `sre`); and each item's `check` against the evaluator registry,
with its `params` validated by that evaluator's params model and the SLOs and services they name checked
against slos.yaml and the metric contract.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gamesre.checklists.periods import CADENCES, Cadence
from gamesre.checklists.registry import ParamsModel, Registry, default_registry
from gamesre.core.config import SpecError, display_path, read_yaml
from gamesre.core.contract import Contract, load_contract
from gamesre.core.paths import CONFIG_DIR
from gamesre.core.services import validation_problems
from gamesre.slo.spec import load_slos

CHECKLISTS_PATH = CONFIG_DIR / "checklists.yaml"
SRE_TEAM = "sre"
_SLUG = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
_CRON_FIELD = r"(\d{1,2})"
# The shape each cadence's schedule must have: one run per day, per week, per month, at a fixed minute.
_SCHEDULE_SHAPES: dict[str, tuple[re.Pattern[str], str]] = {
    "daily": (re.compile(rf"^{_CRON_FIELD} {_CRON_FIELD} \* \* \*$"), "'M H * * *' (once a day)"),
    "weekly": (re.compile(rf"^{_CRON_FIELD} {_CRON_FIELD} \* \* ([0-7]|MON|TUE|WED|THU|FRI|SAT|SUN)$"),
               "'M H * * D' (once a week)"),
    "monthly": (re.compile(rf"^{_CRON_FIELD} {_CRON_FIELD} ([1-9]|1[0-9]|2[0-8]) \* \*$"),
                "'M H D * *' with D from 1 to 28 (once a month)"),
}
# Text for people; control characters other than tab and newline are refused (see gamesre.slo.spec).
Text = Annotated[str, Field(min_length=1, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]*$")]


class ChecklistError(SpecError):
    """An invalid checklists.yaml; the message names the file, the item and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CadenceSpec(_Model):
    """When a checklist runs: a cron expression in Asia/Seoul."""

    schedule: str
    timezone: Literal["Asia/Seoul"]
    description: Text

    def check_shape(self, cadence: str) -> str | None:
        pattern, wanted = _SCHEDULE_SHAPES[cadence]
        match = pattern.match(self.schedule)
        if match is None:
            return f"schedule: {self.schedule!r} is not of the form {wanted}"
        minute, hour = int(match.group(1)), int(match.group(2))
        if minute > 59 or hour > 23:
            return f"schedule: {self.schedule!r} has no such time of day"
        return None

    @property
    def time_of_day(self) -> str:
        minute, hour = self.schedule.split()[:2]
        return f"{int(hour):02d}:{int(minute):02d}"


class _ItemDoc(_Model):
    id: Annotated[str, Field(pattern=_SLUG, max_length=63)]
    cadence: Cadence
    title: Annotated[Text, Field(max_length=120)]
    owner: Annotated[str, Field(pattern=_SLUG)]
    check: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    params: dict[str, Any] = Field(default_factory=dict)
    docs: Text

    @field_validator("title")
    @classmethod
    def _one_line(cls, title: str) -> str:
        if "\n" in title or title != title.strip():
            raise ValueError("one line without leading or trailing blanks")
        return title


@dataclass(frozen=True)
class ChecklistItem:
    """One validated item: its evaluator's name and its validated params."""

    id: str
    cadence: Cadence
    title: str
    owner: str
    check: str
    params: ParamsModel
    docs: str
    position: int  # its index in the file: the report's order within a status

    def params_dict(self) -> dict[str, Any]:
        return self.params.model_dump(mode="json")


@dataclass(frozen=True)
class ChecklistSpec:
    """The validated checklists: cadences and items in file order."""

    cadences: Mapping[Cadence, CadenceSpec]
    items: tuple[ChecklistItem, ...]
    source: str = "checklists.yaml"
    _by_id: dict[str, ChecklistItem] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {item.id: item for item in self.items})

    def __iter__(self) -> Iterator[ChecklistItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, item_id: str) -> ChecklistItem:
        try:
            return self._by_id[item_id]
        except KeyError:
            raise KeyError(f"no checklist item {item_id!r} in {self.source}") from None

    def for_cadence(self, cadence: str) -> tuple[ChecklistItem, ...]:
        return tuple(item for item in self.items if item.cadence == cadence)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.items)


def _item_label(item: object, index: int) -> str:
    ident = item.get("id") if isinstance(item, dict) else None
    return f"item {ident!r}" if isinstance(ident, str) and ident else f"item #{index}"


def _reference_problems(params: ParamsModel, known: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for kind, names in params.references().items():
        if kind not in known:
            continue
        valid = list(known[kind])
        for i, name in enumerate(names):
            if name not in valid:
                singular = {"slos": "SLO", "services": "service"}.get(kind, kind)
                problems.append((f"params.{kind}[{i}]", f"unknown {singular} {name!r} (known: {', '.join(valid)})"))
    return problems


def parse_checklists(
    raw: object,
    source: str = "checklists.yaml",
    *,
    registry: Registry | None = None,
    owners: Iterable[str] = (SRE_TEAM,),
    known: Mapping[str, Iterable[str]] | None = None,
) -> ChecklistSpec:
    """Validate a parsed checklists.yaml; every problem in one ChecklistError.

    `owners` are the teams an item may be assigned to; `known` maps reference kinds (slos, services) to
    the names params may use.
    """
    registry = registry if registry is not None else default_registry()
    owners = tuple(owners)
    known = dict(known or {})
    if not isinstance(raw, dict):
        raise ChecklistError(f"{source}: expected a mapping with 'version', 'cadences' and 'items' at the top level")
    lines: list[str] = []
    unknown = sorted(set(raw) - {"version", "cadences", "items"})
    if unknown:
        lines.append(f"{source}: {', '.join(map(str, unknown))}: unknown field")
    if raw.get("version") != 1:
        lines.append(f"{source}: version: must be 1, got {raw.get('version')!r}")

    cadences: dict[Cadence, CadenceSpec] = {}
    docs = raw.get("cadences")
    if not isinstance(docs, dict):
        lines.append(f"{source}: cadences: expected a mapping of {', '.join(CADENCES)} to their schedules")
        docs = {}
    for name in sorted(set(docs) - set(CADENCES), key=str):
        lines.append(f"{source}: cadences.{name}: unknown cadence (use {', '.join(CADENCES)})")
    for name in CADENCES:
        if name not in docs:
            if isinstance(raw.get("cadences"), dict):
                lines.append(f"{source}: cadences.{name}: missing")
            continue
        try:
            spec = CadenceSpec.model_validate(docs[name])
        except ValidationError as exc:
            lines += [f"{source}: cadences.{name}.{path}: {msg}" for path, msg in validation_problems(exc)]
            continue
        problem = spec.check_shape(name)
        if problem:
            lines.append(f"{source}: cadences.{name}.{problem}")
            continue
        cadences[name] = spec

    items_raw = raw.get("items")
    if not isinstance(items_raw, list) or not items_raw:
        lines.append(f"{source}: items: expected a non-empty list of checklist items")
        items_raw = []
    items: list[ChecklistItem] = []
    first_index: dict[str, int] = {}
    for index, doc in enumerate(items_raw):
        label = _item_label(doc, index)
        try:
            parsed = _ItemDoc.model_validate(doc)
        except ValidationError as exc:
            lines += [f"{source}: {label}: {path}: {msg}" for path, msg in validation_problems(exc)]
            continue
        if parsed.id in first_index:
            lines.append(f"{source}: {label}: id: duplicate item id (first defined as item #{first_index[parsed.id]})")
            continue
        first_index[parsed.id] = index
        if parsed.owner not in owners:
            lines.append(f"{source}: {label}: owner: {parsed.owner!r} is not a team of the metric contract "
                         f"or {SRE_TEAM!r} (known: {', '.join(owners)})")
            continue
        if parsed.check not in registry:
            lines.append(f"{source}: {label}: check: unknown evaluator {parsed.check!r} "
                         f"(known: {', '.join(registry.names())})")
            continue
        entry = registry.get(parsed.check)
        try:
            params = entry.parse_params(parsed.params)
        except ValidationError as exc:
            lines += [f"{source}: {label}: params.{path}: {msg}" if path != "(top level)" else
                      f"{source}: {label}: params: {msg}" for path, msg in validation_problems(exc)]
            continue
        refs = _reference_problems(params, known)
        if refs:
            lines += [f"{source}: {label}: {path}: {msg}" for path, msg in refs]
            continue
        items.append(ChecklistItem(parsed.id, parsed.cadence, parsed.title, parsed.owner, parsed.check, params,
                                   parsed.docs.strip(), index))
    for name in cadences:
        if not any(doc.get("cadence") == name for doc in items_raw if isinstance(doc, dict)):
            lines.append(f"{source}: cadences.{name}: no item has this cadence (a checklist with nothing to check)")
    if lines:
        raise ChecklistError("\n".join(lines))
    return ChecklistSpec(cadences, tuple(items), source)


def load_checklists(
    path: Path | str = CHECKLISTS_PATH,
    *,
    registry: Registry | None = None,
    contract: Contract | None = None,
    slo_names: Iterable[str] | None = None,
) -> ChecklistSpec:
    """Read and validate checklists.yaml against the registry, the metric contract's teams and the SLOs."""
    source = display_path(path)
    try:
        raw = read_yaml(path, source)
    except SpecError as exc:
        raise ChecklistError(str(exc)) from exc
    contract = contract if contract is not None else load_contract()
    teams = sorted({s.team for s in contract.services.values()})
    names = list(slo_names) if slo_names is not None else load_slos(contract=contract).names()
    return parse_checklists(raw, source, registry=registry, owners=[*teams, SRE_TEAM],
                            known={"slos": names, "services": list(contract.services)})


__all__ = ["CHECKLISTS_PATH", "CadenceSpec", "ChecklistError", "ChecklistItem", "ChecklistSpec", "load_checklists",
           "parse_checklists"]
