"""How the simulated game behaves: latency distributions, error mixes, traffic mix and session scale.

One source for the live fleet (which samples from it), the load generator (which sends the traffic mix) and
the history generator (which integrates the same distributions), so backfilled and live data look alike.
Names of actions, modes, tiers and error types are contract label values; `check_against_contract` makes
sure every contract value has parameters here and nothing here is outside the contract.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from gamesre.core.contract import Contract

Z95 = 1.6448536269514722  # standard normal quantile of 0.95


@dataclass(frozen=True)
class LatencyProfile:
    """A log-normal latency distribution given by its median and 95th percentile (seconds)."""

    median_s: float
    p95_s: float

    @property
    def mu(self) -> float:
        return math.log(self.median_s)

    @property
    def sigma(self) -> float:
        return math.log(self.p95_s / self.median_s) / Z95

    def scaled(self, factor: float) -> LatencyProfile:
        return LatencyProfile(self.median_s * factor, self.p95_s * factor)

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(self.mu, self.sigma)


# --- game-server -------------------------------------------------------------------------------------------
ACTION_LATENCY: dict[str, LatencyProfile] = {
    "login": LatencyProfile(0.080, 0.240),
    "move": LatencyProfile(0.045, 0.150),
    "attack": LatencyProfile(0.060, 0.190),
    "purchase": LatencyProfile(0.090, 0.250),
    "chat": LatencyProfile(0.035, 0.150),
}
SAVE_LATENCY = LatencyProfile(0.020, 0.070)
ACTION_TIMEOUT_S = 5.0  # the server gives up on an action after this long and answers 504
SAVE_TIMEOUT_S = 2.5  # a save waiting longer on the database fails

# error_type -> HTTP status code the player sees.
ERROR_CODE: dict[str, str] = {
    "internal": "500",
    "database": "500",
    "dependency": "502",
    "overload": "503",
    "timeout": "504",
}
SUCCESS_CODE = "200"
BASE_ERROR_RATE = 0.0002  # 0.02 % of actions fail on a good day, well inside a 0.1 % budget
# Saves go through a durable write-behind queue: 0.002 % fail on a good day, a fifth of a 99.99 % budget.
BASE_SAVE_FAILURE_RATE = 0.00002
# Session admissions (logins) are rejected only when the fleet is full or a fault is injected.
BASE_ERROR_MIX: dict[str, float] = {"internal": 0.40, "dependency": 0.25, "timeout": 0.20, "overload": 0.10,
                                    "database": 0.05}
INJECTED_ERROR_MIX: dict[str, float] = {"internal": 0.70, "dependency": 0.15, "overload": 0.15}

# --- matchmaking -------------------------------------------------------------------------------------------
MATCH_WAIT: dict[str, LatencyProfile] = {
    "ranked": LatencyProfile(8.0, 25.0),
    "casual": LatencyProfile(3.0, 10.0),
    "coop": LatencyProfile(5.0, 16.0),
}
TIER_WAIT_FACTOR: dict[str, float] = {"bronze": 1.1, "silver": 0.9, "gold": 1.0, "platinum": 1.3, "diamond": 2.0}
MATCH_TIMEOUT_S = 60.0  # a ticket still waiting after this long gives up (match_result="timeout")
MATCH_REJECT_S = 0.3  # how long a failed matchmaking request takes before it is answered
BASE_MATCH_FAILURE_RATE = 0.001

# --- traffic -----------------------------------------------------------------------------------------------
DEFAULT_PEAK_RPS = 30.0  # requests/s through HAProxy at load factor 1.0: fits 2 cores with Airflow beside it
# Share of all player requests by kind. "login" and "logout" carry many players each (see PEAK_SESSIONS).
TRAFFIC_SHARE: dict[str, float] = {"action": 0.56, "login": 0.04, "logout": 0.04, "save": 0.14, "match": 0.22}
ACTION_WEIGHT: dict[str, float] = {"move": 0.45, "attack": 0.32, "chat": 0.18, "purchase": 0.05}
MODE_WEIGHT: dict[str, float] = {"ranked": 0.35, "casual": 0.45, "coop": 0.20}
TIER_WEIGHT: dict[str, float] = {"bronze": 0.25, "silver": 0.30, "gold": 0.25, "platinum": 0.13, "diamond": 0.07}

# --- sessions ----------------------------------------------------------------------------------------------
# Session scale: one login/logout request stands for `players` players, so a few requests a second hold
# tens of thousands of concurrent sessions. At load factor 1.0 the fleet holds PEAK_SESSIONS sessions
# (weekends x1.12), against a capacity of 100,000 (the contract's max_concurrent_sessions).
PEAK_SESSIONS = 60_000
SESSION_MEAN_S = 1800.0  # an average play session lasts 30 minutes
MAX_PLAYERS_PER_REQUEST = 10_000


def action_shares(contract: Contract) -> dict[str, float]:
    """Share of all player requests that is each contract action (login comes from session logins)."""
    shares = {}
    for action in contract.label_values["action"]:
        if action == "login":
            shares[action] = TRAFFIC_SHARE["login"]
        else:
            shares[action] = TRAFFIC_SHARE["action"] * ACTION_WEIGHT[action] / sum(ACTION_WEIGHT.values())
    return shares


def match_shares(contract: Contract) -> dict[tuple[str, str], float]:
    """Share of all player requests that is a matchmaking request for each (mode, tier)."""
    mode_total = sum(MODE_WEIGHT[m] for m in contract.label_values["mode"])
    tier_total = sum(TIER_WEIGHT[t] for t in contract.label_values["tier"])
    return {
        (mode, tier): TRAFFIC_SHARE["match"] * MODE_WEIGHT[mode] / mode_total * TIER_WEIGHT[tier] / tier_total
        for mode in contract.label_values["mode"]
        for tier in contract.label_values["tier"]
    }


def match_wait(mode: str, tier: str) -> LatencyProfile:
    return MATCH_WAIT[mode].scaled(TIER_WAIT_FACTOR[tier])


def weighted_choice(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def check_against_contract(contract: Contract) -> None:
    """Raise ValueError when the model and the contract disagree on a label value."""
    values = contract.label_values
    problems = []

    def same(what: str, ours: set[str], theirs: set[str]) -> None:
        if ours != theirs:
            problems.append(f"{what}: model has {sorted(ours)}, contract has {sorted(theirs)}")

    same("action latency", set(ACTION_LATENCY), set(values["action"]))
    same("action weights (+login)", set(ACTION_WEIGHT) | {"login"}, set(values["action"]))
    same("error types", set(ERROR_CODE), set(values["error_type"]))
    same("codes", set(ERROR_CODE.values()) | {SUCCESS_CODE}, set(values["code"]))
    same("modes", set(MATCH_WAIT), set(values["mode"]))
    same("mode weights", set(MODE_WEIGHT), set(values["mode"]))
    same("tiers", set(TIER_WAIT_FACTOR), set(values["tier"]))
    same("tier weights", set(TIER_WEIGHT), set(values["tier"]))
    for mix_name, mix in (("base error mix", BASE_ERROR_MIX), ("injected error mix", INJECTED_ERROR_MIX)):
        if not set(mix) <= set(values["error_type"]):
            problems.append(f"{mix_name}: {sorted(set(mix) - set(values['error_type']))} not in the contract")
    for needed, label in (("success", "match_result"), ("timeout", "match_result"), ("failure", "match_result"),
                          ("success", "save_result"), ("failure", "save_result"),
                          ("accepted", "admission_result"), ("rejected", "admission_result")):
        if needed not in values[label]:
            problems.append(f"{label}: the model needs the value {needed!r}")
    if abs(sum(TRAFFIC_SHARE.values()) - 1.0) > 1e-9:
        problems.append("traffic shares must add up to 1")
    if problems:
        raise ValueError("demo model and metric contract disagree: " + "; ".join(problems))
