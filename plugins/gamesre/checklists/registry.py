"""The registry of checklist evaluators: pure functions from fetched data and validated params to a verdict.

A team adds a checklist item without touching any DAG:

    # plugins/gamesre/checklists/evaluators/matchmaking.py (every module of that package is loaded)
    class QueueParams(ParamsModel):
        max_waiting: int = 500

    @evaluator("matchmaking_queue", params_model=QueueParams, inputs=("series_freshness",))
    def matchmaking_queue(ctx: CheckContext, params: QueueParams) -> Verdict:
        frame = ctx.data("series_freshness")
        ...
        return Verdict("pass", "queues drained", {"values": {...}, "thresholds": {...}})

and an entry in include/config/checklists.yaml with `check: matchmaking_queue` and its `params`. The YAML
loader refuses unknown evaluator names and params the model refuses; the run fetches the declared inputs
(over the span `window` returns, by default the item's period) and calls the function.

An evaluator returns pass, warn, fail or manual; it raises `CheckError` when it cannot judge (the item is
then `error` with the reason). Anything else it raises is caught by the runner and reported as `error`
too: one broken item never stops a checklist, and an item that did not run is never a pass.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from gamesre.checklists.inputs import INPUTS, InputData
from gamesre.checklists.periods import Period
from gamesre.core.time import iso

VerdictStatus = Literal["pass", "warn", "fail", "manual"]
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ParamsModel(BaseModel):
    """Base of every evaluator's params: unknown fields are refused, types are strict, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def references(self) -> dict[str, list[str]]:
        """Names this item refers to, checked by the YAML loader: {"slos": [...], "services": [...]}."""
        return {}


class NoParams(ParamsModel):
    """For evaluators that take no params."""


@dataclass(frozen=True)
class Verdict:
    """What an evaluator found: a status, one line for people, and the evidence behind it."""

    status: VerdictStatus
    summary: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in ("pass", "warn", "fail", "manual"):
            raise ValueError(f"an evaluator returns pass, warn, fail or manual, not {self.status!r} "
                             "(raise CheckError when it cannot judge)")


_VERDICT_ORDER: tuple[VerdictStatus, ...] = ("fail", "warn", "manual", "pass")


def combine(statuses: Iterable[str], default: VerdictStatus = "pass") -> VerdictStatus:
    """The worst of several verdict statuses (fail, then warn, manual, pass)."""
    seen = set(statuses)
    return next((s for s in _VERDICT_ORDER if s in seen), default)


class CheckError(Exception):
    """The evaluator cannot judge (missing or malformed data): the item is `error` with this reason."""

    def __init__(self, reason: str, evidence: Mapping[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.evidence = dict(evidence or {})


@dataclass(frozen=True)
class CheckContext:
    """What an evaluator sees: the item, the instant, the period it judges and its declared inputs."""

    item_id: str
    owner: str
    cadence: str
    at: int  # epoch seconds of the run's instant
    period: Period
    inputs: Mapping[str, InputData]

    def data(self, name: str) -> Any:
        """The value of a declared input."""
        try:
            return self.inputs[name].value
        except KeyError:
            raise CheckError(f"input {name!r} is not among the inputs the evaluator declared "
                             f"({', '.join(self.inputs) or 'none'})") from None

    def meta(self, name: str) -> Mapping[str, Any]:
        self.data(name)
        return self.inputs[name].meta

    def links(self, name: str) -> list[str]:
        self.data(name)
        return list(self.inputs[name].links)

    @property
    def at_iso(self) -> str:
        return iso(self.at)


P = TypeVar("P", bound=ParamsModel)
EvaluatorFn = Callable[[CheckContext, Any], Verdict]
# (params, the item's period, the run instant) -> [start, end) of the data the evaluator needs
WindowFn = Callable[[Any, Period, int], tuple[int, int]]


@dataclass(frozen=True)
class Evaluator(Generic[P]):
    """A registered evaluator: the function, its params model, the inputs it needs and over which span."""

    name: str
    func: Callable[[CheckContext, P], Verdict]
    params_model: type[P]
    inputs: tuple[str, ...]
    window: WindowFn | None = None
    description: str = ""

    def parse_params(self, raw: Mapping[str, Any] | None) -> P:
        """The validated params (pydantic's ValidationError when they do not fit the model)."""
        return self.params_model.model_validate(dict(raw or {}))

    def data_window(self, params: P, period: Period, at: int) -> tuple[int, int]:
        """[start, end) of the data this item needs: the window function's, else the item's period."""
        return self.window(params, period, at) if self.window else (period.start, period.end)


class Registry:
    """Evaluators by name."""

    def __init__(self) -> None:
        self._evaluators: dict[str, Evaluator[Any]] = {}

    def register(self, entry: Evaluator[Any]) -> None:
        if not _NAME.match(entry.name):
            raise ValueError(f"evaluator name {entry.name!r} must be lower_snake_case")
        if entry.name in self._evaluators and self._evaluators[entry.name].func is not entry.func:
            raise ValueError(f"evaluator {entry.name!r} is already registered "
                             f"(by {_qualname(self._evaluators[entry.name].func)})")
        unknown = [name for name in entry.inputs if name not in INPUTS]
        if unknown:
            raise ValueError(f"evaluator {entry.name!r}: unknown input(s) {', '.join(unknown)} "
                             f"(the catalog is gamesre.checklists.inputs.INPUTS)")
        if not (isinstance(entry.params_model, type) and issubclass(entry.params_model, ParamsModel)):
            raise TypeError(f"evaluator {entry.name!r}: params_model must subclass ParamsModel")
        self._evaluators[entry.name] = entry

    def evaluator(
        self,
        name: str,
        *,
        params_model: type[P] = NoParams,  # type: ignore[assignment]
        inputs: tuple[str, ...] = (),
        window: WindowFn | None = None,
    ) -> Callable[[Callable[[CheckContext, P], Verdict]], Callable[[CheckContext, P], Verdict]]:
        """Decorator: register `func` under `name`; the function itself is returned unchanged."""

        def register(func: Callable[[CheckContext, P], Verdict]) -> Callable[[CheckContext, P], Verdict]:
            doc = (func.__doc__ or "").strip().splitlines()
            self.register(Evaluator(name, func, params_model, tuple(inputs), window, doc[0] if doc else ""))
            return func

        return register

    def get(self, name: str) -> Evaluator[Any]:
        try:
            return self._evaluators[name]
        except KeyError:
            raise KeyError(f"unknown evaluator {name!r} (known: {', '.join(sorted(self._evaluators))})") from None

    def names(self) -> list[str]:
        return sorted(self._evaluators)

    def __contains__(self, name: object) -> bool:
        return name in self._evaluators

    def __iter__(self) -> Iterator[Evaluator[Any]]:
        return iter(self._evaluators[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._evaluators)


def _qualname(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


REGISTRY = Registry()


def evaluator(
    name: str,
    *,
    params_model: type[P] = NoParams,  # type: ignore[assignment]
    inputs: tuple[str, ...] = (),
    window: WindowFn | None = None,
) -> Callable[[Callable[[CheckContext, P], Verdict]], Callable[[CheckContext, P], Verdict]]:
    """Register an evaluator in the default registry (see the module docstring)."""
    return REGISTRY.evaluator(name, params_model=params_model, inputs=inputs, window=window)


def default_registry() -> Registry:
    """The default registry with every evaluator module of gamesre.checklists.evaluators loaded."""
    import gamesre.checklists.evaluators  # noqa: F401  (registers on import)

    return REGISTRY


__all__ = [
    "REGISTRY",
    "CheckContext",
    "CheckError",
    "Evaluator",
    "NoParams",
    "ParamsModel",
    "Registry",
    "Verdict",
    "VerdictStatus",
    "combine",
    "default_registry",
    "evaluator",
]
