"""include/config/deploy.yaml: stage order and gates, strategy shapes and the analysis settings.

Pure: reads one YAML file. Every error raises DeployConfigError naming the file and the field, e.g.
`include/config/deploy.yaml: analysis.alpha: Input should be less than 0.5`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gamesre.core.config import SpecError, display_path, read_yaml
from gamesre.core.durations import Duration, parse_seconds
from gamesre.core.paths import CONFIG_DIR
from gamesre.core.services import validation_problems
from gamesre.deploy.plan import check_percentages

DEPLOY_PATH = CONFIG_DIR / "deploy.yaml"


class DeployConfigError(SpecError):
    """An invalid deploy.yaml; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


REVIEWS = ("technical", "security", "business")
Review = Literal["technical", "security", "business"]
_USER = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@+-]{1,128}$")]


def _no_repeats(reviews: list[str]) -> list[str]:
    if len(set(reviews)) != len(reviews):
        raise ValueError(f"a review is listed twice: {list(reviews)}")
    return reviews


class StageSettings(_Model):
    gates: list[Literal["lock", "page_alerts", "budget", "calendar", "incident"]]
    strictest: bool = False
    # the reviews a person must give before the stage changes anything (a service may set its own in services.yaml)
    approvals: list[Review] = Field(default_factory=list)
    # a step still inconclusive at its deadline: `rollback` (never promote blind), or `pause` for a person to
    # decide (promote, resume for one more step deadline, abort) within `decide_within`, else rolled back
    on_inconclusive: Literal["rollback", "pause"] = "rollback"
    decide_within: Duration = "30m"

    @property
    def decide_within_s(self) -> int:
        return parse_seconds(self.decide_within)

    @field_validator("approvals")
    @classmethod
    def _approvals(cls, approvals: list[str]) -> list[str]:
        return _no_repeats(approvals)

    @field_validator("gates")
    @classmethod
    def _lock_first(cls, gates: list[str]) -> list[str]:
        if "lock" not in gates:
            raise ValueError("every stage needs the lock gate (one deploy per service at a time)")
        if len(set(gates)) != len(gates):
            raise ValueError(f"a gate is listed twice: {list(gates)}")
        return gates


def _percentages(values: list[int], what: str) -> list[int]:
    """check_percentages for a model field: the message without the field's name, which pydantic's error
    location already gives (else the error would read `strategies.canary.steps.steps: ...`)."""
    try:
        return list(check_percentages(values, what))
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix(f"{what}: ")) from None


class CanarySettings(_Model):
    steps: list[int]

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[int]) -> list[int]:
        return _percentages(steps, "steps")


class BlueGreenSettings(_Model):
    scale_down_delay: Duration

    @property
    def scale_down_delay_s(self) -> int:
        return parse_seconds(self.scale_down_delay)


class RollingSettings(_Model):
    batches: list[int]

    @field_validator("batches")
    @classmethod
    def _batches(cls, batches: list[int]) -> list[int]:
        return _percentages(batches, "batches")


class Strategies(_Model):
    canary: CanarySettings
    blue_green: BlueGreenSettings = Field(alias="blue-green")
    rolling: RollingSettings


class AnalysisSettings(_Model):
    interval: Duration
    min_duration: Duration
    max_duration: Duration
    min_samples: Annotated[int, Field(ge=1, le=1_000_000)]
    alpha: Annotated[float, Field(gt=0, lt=0.5)]
    beta: Annotated[float, Field(gt=0, lt=0.5)]
    regression_burn: Annotated[float, Field(gt=1, le=1000)]
    fast_abort_burn: Annotated[float, Field(gt=1, le=1000)]
    synthetic_traffic: Duration
    max_pause: Duration  # a step paused by a person longer than this is rolled back

    @model_validator(mode="after")
    def _order(self) -> AnalysisSettings:
        if self.interval_s > self.min_duration_s:
            raise ValueError("interval: must not be longer than min_duration")
        if self.min_duration_s >= self.max_duration_s:
            raise ValueError("max_duration: must be longer than min_duration")
        return self

    @property
    def interval_s(self) -> int:
        return parse_seconds(self.interval)

    @property
    def min_duration_s(self) -> int:
        return parse_seconds(self.min_duration)

    @property
    def max_duration_s(self) -> int:
        return parse_seconds(self.max_duration)

    @property
    def max_pause_s(self) -> int:
        return parse_seconds(self.max_pause)

    @property
    def synthetic_traffic_s(self) -> int:
        return parse_seconds(self.synthetic_traffic)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


class Reviewers(_Model):
    """Who may give a review: Airflow user ids, and roles (the simple auth manager's: viewer, user, op, admin)."""

    users: list[_USER] = Field(default_factory=list)
    roles: list[_USER] = Field(default_factory=list)

    @model_validator(mode="after")
    def _someone(self) -> Reviewers:
        if not self.users and not self.roles:
            raise ValueError("name at least one user or role who may give this review")
        return self


class ApprovalSettings(_Model):
    timeout: Duration  # no answer by then: the stage is blocked (a deploy is never approved by silence)
    reviewers: dict[Review, Reviewers]

    @property
    def timeout_s(self) -> int:
        return parse_seconds(self.timeout)


class DeployConfig(_Model):
    stages: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=20)], StageSettings] = Field(
        min_length=1)
    strategies: Strategies
    peak: Literal["stricter", "block"]
    analysis: AnalysisSettings
    approvals: ApprovalSettings | None = None

    @model_validator(mode="after")
    def _reviewers(self) -> DeployConfig:
        named = set(self.approvals.reviewers) if self.approvals else set()
        for stage, settings in self.stages.items():
            missing = [r for r in settings.approvals if r not in named]
            if missing:
                raise ValueError(f"stages.{stage}.approvals: no reviewers for {', '.join(missing)} under "
                                 "approvals.reviewers")
        return self

    @property
    def stage_order(self) -> tuple[str, ...]:
        return tuple(self.stages)


def parse_deploy_config(raw: object, source: str = "deploy.yaml") -> DeployConfig:
    if not isinstance(raw, dict):
        raise DeployConfigError(f"{source}: expected a mapping at the top level")
    lines = [] if raw.get("version") == 1 else [f"{source}: version: must be 1, got {raw.get('version')!r}"]
    body = {k: v for k, v in raw.items() if k != "version"}
    try:
        config = DeployConfig.model_validate(body)
    except ValidationError as exc:
        lines += [f"{source}: {path}: {msg}" for path, msg in validation_problems(exc)]
        raise DeployConfigError("\n".join(lines)) from None
    if lines:
        raise DeployConfigError("\n".join(lines))
    return config


def load_deploy_config(path: Path | str = DEPLOY_PATH) -> DeployConfig:
    """Read and validate deploy.yaml."""
    source = display_path(path)
    try:
        raw = read_yaml(path, source)
    except SpecError as exc:
        raise DeployConfigError(str(exc)) from exc
    return parse_deploy_config(raw, source)
