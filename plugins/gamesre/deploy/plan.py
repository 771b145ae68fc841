"""The rollout plan of one stage: the ordered steps a backend carries out, each followed by an analysis.

Step kinds:
- `weight`  canary: send `weight` percent of the traffic to the new version (backend.shift(i));
- `preview` blue-green preview, or a stage verified with synthetic traffic: the new version runs with no
            player traffic (backend.prepare did it; no shift);
- `switch`  blue-green: all traffic to the new version (backend.shift(i));
- `batch`   rolling: `weight` percent of the instances run the new version (backend.shift(i)).

`shift_index` is what the step passes to backend.shift(); None for a preview.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

Strategy = Literal["canary", "blue-green", "rolling"]
STRATEGIES: tuple[str, ...] = ("canary", "blue-green", "rolling")
StepKind = Literal["weight", "preview", "switch", "batch"]


@dataclass(frozen=True)
class Step:
    index: int  # position in the plan
    kind: StepKind
    weight: int  # percent of traffic (weight, switch) or of instances (batch) on the new version after the step
    shift_index: int | None  # the backend.shift() argument; None: nothing to shift (preview)

    @property
    def label(self) -> str:
        return {"weight": f"canary {self.weight}%", "preview": "preview", "switch": "switch to new version",
                "batch": f"rolling batch to {self.weight}%"}[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind, "weight": self.weight, "shift_index": self.shift_index,
                "label": self.label}


@dataclass(frozen=True)
class RolloutPlan:
    strategy: str  # canary | blue-green | rolling, or "verify" for a synthetic-traffic stage
    steps: tuple[Step, ...]
    scale_down_delay_s: int = 0  # blue-green: how long the old version keeps running after the switch

    @property
    def weights(self) -> tuple[int, ...]:
        """The shift targets in shift order (canary weights, rolling batch percentages, blue-green's 100)."""
        return tuple(s.weight for s in self.steps if s.shift_index is not None)

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "steps": [s.to_dict() for s in self.steps],
                "scale_down_delay_s": self.scale_down_delay_s}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RolloutPlan:
        steps = tuple(Step(s["index"], s["kind"], s["weight"], s["shift_index"]) for s in raw["steps"])
        return cls(raw["strategy"], steps, raw.get("scale_down_delay_s", 0))


def check_percentages(values: Sequence[int], what: str) -> tuple[int, ...]:
    """Strictly increasing integers in 1..100 ending at 100; ValueError naming `what` otherwise."""
    out = tuple(values)
    if not out:
        raise ValueError(f"{what}: at least one step is needed")
    for v in out:
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 100:
            raise ValueError(f"{what}: {v!r} is not a whole percentage in 1..100")
    if any(b <= a for a, b in pairwise(out)):
        raise ValueError(f"{what}: steps must strictly increase, got {list(out)}")
    if out[-1] != 100:
        raise ValueError(f"{what}: the last step must be 100, got {out[-1]}")
    return out


def build_plan(strategy: str, *, canary_steps: Sequence[int] = (10, 25, 50, 100),
               rolling_batches: Sequence[int] = (50, 100), scale_down_delay_s: int = 0,
               synthetic: bool = False, immediate: bool = False) -> RolloutPlan:
    """The plan of one stage. A synthetic stage (no players) is a single preview whatever the strategy.

    `immediate` (a rollback): one step with all traffic (canary 100%, one rolling batch of every instance, the
    blue-green switch without a preview), so players leave the version rolled back at once."""
    if synthetic:
        return RolloutPlan("verify", (Step(0, "preview", 0, None),))
    if immediate:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
        kind: StepKind = {"canary": "weight", "blue-green": "switch", "rolling": "batch"}[strategy]  # type: ignore[assignment]
        return RolloutPlan(strategy, (Step(0, kind, 100, 0),))
    if strategy == "canary":
        weights = check_percentages(canary_steps, "canary_steps")
        return RolloutPlan(strategy, tuple(Step(i, "weight", w, i) for i, w in enumerate(weights)))
    if strategy == "blue-green":
        return RolloutPlan(strategy, (Step(0, "preview", 0, None), Step(1, "switch", 100, 0)),
                           scale_down_delay_s=scale_down_delay_s)
    if strategy == "rolling":
        batches = check_percentages(rolling_batches, "rolling_batches")
        return RolloutPlan(strategy, tuple(Step(i, "batch", w, i) for i, w in enumerate(batches)))
    raise ValueError(f"strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
