"""The one interface every deploy backend implements: how a new version gets traffic and how it loses it.

A deploy is driven step by step by the use case (gamesre.app.deploy); between steps it runs the statistical
analysis. A backend only moves traffic and versions; it never judges. Every method is
idempotent: it reads the current state before acting, so a retried task or a re-run does the right thing.

The strategies map onto the methods like this (`plan` is a gamesre.deploy.plan.RolloutPlan):

canary      prepare(version, plan) -> shift(0..n-1)  [weights plan.weights[i], analysis after each]
            -> promote()
blue-green  prepare(version, plan) [preview: new version up, no player traffic; preview analysis]
            -> shift(0) [switch: all traffic to the new version; post-switch analysis]
            -> (scale-down delay, the old version kept running) -> promote() [old version scaled down]
rolling     prepare(version, plan) -> shift(0..n-1) [batch i moves to the new version; analysis after each]
            -> promote()
any         rollback(reason): all traffic back on the stable version at once, the new version scaled down.

`cohorts()` tells the analysis which Prometheus series belong to the new version (candidate) and which to
the version it is compared with (baseline, None when nothing of the old version serves any more).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gamesre.core.errors import OutsideSystemError
from gamesre.core.registry import Registry


class DeployBackendError(OutsideSystemError):
    """The backend could not do what was asked; the message names the backend, the object and the cause."""


@dataclass(frozen=True)
class Cohorts:
    """Label matchers (exact) that select the new version's series and the baseline's series."""

    candidate: dict[str, str]
    baseline: dict[str, str] | None


@dataclass(frozen=True)
class BackendStatus:
    """What the backend sees now, for the record, the progress log and idempotent steps."""

    stable_version: str | None  # the version serving players before the deploy (None: unknown)
    candidate_version: str | None  # the version being rolled out (None: none running)
    candidate_weight: int  # percent of player traffic on the candidate, 0..100
    ready: bool  # every instance/pod of the candidate passes its readiness check
    detail: str  # one line for people, e.g. "gs-canary-1 1.5.0 weight 22 (10%), ready"
    raw: dict[str, Any] = field(default_factory=dict, compare=False)  # backend specifics, JSON-safe

    def to_dict(self) -> dict[str, Any]:
        return {"stable_version": self.stable_version, "candidate_version": self.candidate_version,
                "candidate_weight": self.candidate_weight, "ready": self.ready, "detail": self.detail,
                "raw": self.raw}


class DeployBackend(ABC):
    """Moves one service's traffic between its stable version and a candidate, in one environment."""

    kind: str = ""  # local | kubernetes | argo-rollouts

    @abstractmethod
    def status(self) -> BackendStatus:
        """The current versions, weights and readiness."""

    @abstractmethod
    def prepare(self, version: str, plan: Any) -> None:
        """Bring the new version up with no player traffic (canary, blue-green preview); rolling: record it."""

    @abstractmethod
    def shift(self, step: int) -> None:
        """Carry out step `step` of the plan: a canary weight, the blue-green switch, or a rolling batch."""

    @abstractmethod
    def promote(self) -> None:
        """Finish: the new version is the stable one everywhere and the old one is scaled down."""

    @abstractmethod
    def rollback(self, reason: str) -> None:
        """Put all traffic back on the stable version at once and scale the new version down (idempotent)."""

    @abstractmethod
    def cohorts(self) -> Cohorts:
        """The label matchers of the candidate's and the baseline's series, for the analysis."""

    def synthetic_traffic(self, seconds: float) -> bool:
        """Start synthetic (smoke) traffic against the candidate for `seconds`, detached; False: not offered.

        Used where the candidate gets no player traffic (a preview, or a stage whose environment has no
        players). The base implementation offers none: the environment's own traffic is what is judged.
        """
        return False


# A backend for one service in one stage's environment: factory(service spec, stage, connections) by services.yaml's
# deploy.backend; the product's kinds register in gamesre.integrations.deploy.* (connections:
# gamesre.integrations.connections.Connections).
DEPLOY_BACKENDS: Registry[DeployBackend] = Registry("deploy")

# Smoke traffic for a candidate no player reaches: a command line (base_url, service, seconds, rps) -> argv.
# The demo registers the `local` kind (its load generator); no other environment offers synthetic traffic.
SmokeCommand = Callable[[str, str, float, float], list[str]]
SMOKE_TRAFFIC: Registry[SmokeCommand] = Registry("synthetic traffic")
