"""The budget policy's enforcement rules (gamesre.slo.enforcement): the suspect, the evidence, and the rules that
keep it from flapping, over generated deploy histories and burn series."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesre.core.services import load_services
from gamesre.slo.enforcement import Settings, SloMinutes, decide, episode_start
from gamesre.slo.spec import load_policies

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
SETTINGS = Settings(mode="act")


def ledger(burn_from: datetime | None, *, hours: int = 10, target: float = 0.999, bad: float = 0.02) -> SloMinutes:
    """1,000 events a minute for `hours` before NOW; from `burn_from` on, `bad` of them fail."""
    minutes = [int((NOW - timedelta(minutes=m)).timestamp()) for m in range(hours * 60, -1, -1)]
    start = None if burn_from is None else burn_from.timestamp()
    good = [1000.0 * (1 - bad) if start is not None and m >= start else 1000.0 for m in minutes]
    return SloMinutes("availability", target, minutes, good, [1000.0] * len(minutes))


def deploy(deployment_id: str, promoted: datetime, *, version: str = "1.6.66", kind: str = "deploy",
           outcome: str = "promoted") -> dict[str, Any]:
    return {"id": deployment_id, "service": "game-server", "version": version, "previous_version": "1.6.65",
            "kind": kind, "outcome": outcome, "dry_run": False, "requested_at": promoted - timedelta(minutes=5),
            "finished_at": promoted}


def states(*pairs: tuple[float, str]) -> list[dict[str, Any]]:
    """(hours before NOW, state) publications, oldest first."""
    return [{"computed_at": NOW - timedelta(hours=h), "state": s} for h, s in pairs]


SPENT = states((3, "normal"), (2, "deploy_freeze"), (1, "rollback"), (0, "rollback"))


def test_a_burn_that_began_after_the_promotion_rolls_the_change_back_with_the_evidence() -> None:
    promoted = NOW - timedelta(hours=2)
    d = decide("game-server", NOW, SPENT, [deploy("d0", NOW - timedelta(days=2)), deploy("d1", promoted)],
               [ledger(promoted + timedelta(minutes=3))], SETTINGS, consumed=0.83)
    assert (d.action, d.suspect["id"], d.episode_start) == ("rollback", "d1", NOW - timedelta(hours=1))
    assert d.reason == ("83% of the budget consumed; the burn began at 01:03 UTC, after 1.6.66 was promoted at 01:00 "
                        "UTC (availability 0.0x before -> 19.5x after): roll back to 1.6.65")
    slo = d.evidence["slos"]["availability"]
    assert slo["burn_before"] == 0.0 and slo["burn_after"] == pytest.approx(20.0 * 118 / 121)
    assert slo["burn_began"] == "2026-12-07T01:03:00+00:00"


@pytest.mark.parametrize(("mode", "action"), [("act", "rollback"), ("propose", "propose"), ("notify", "notify")])
def test_the_services_mode_decides_what_is_done_with_a_suspect(mode: str, action: str) -> None:
    promoted = NOW - timedelta(hours=1)
    d = decide("game-server", NOW, SPENT, [deploy("d1", promoted)], [ledger(promoted)],
               Settings(mode="notify", modes={"game-server": mode}))  # type: ignore[dict-item]
    assert d.action == action


@pytest.mark.parametrize(("history", "deployments", "burn", "action", "says"), [
    (states((1, "deploy_freeze")), [deploy("d1", NOW - timedelta(hours=1))], NOW, "none",
     "state deploy_freeze: nothing to enforce"),
    (SPENT, [], NOW, "page", "no change to roll back: no promoted deploy is recorded; the deploy freeze stays"),
    (SPENT, [deploy("d1", NOW - timedelta(hours=7))], NOW, "page", "is older than the look-back (6:00:00)"),
    (SPENT, [deploy("d1", NOW - timedelta(hours=3)), deploy("r1", NOW - timedelta(hours=1), kind="rollback")], NOW,
     "page", "the latest change is the rollback to 1.6.66"),
    (SPENT, [deploy("d1", NOW - timedelta(hours=1))], NOW - timedelta(hours=2), "page",
     "the burn began at 01:00 UTC, before 1.6.66 was promoted at 02:00 UTC: the change did not cause it"),
    (SPENT, [deploy("d1", NOW - timedelta(hours=1))], None, "page", "no SLO of the service burns now"),
    (states((0, "fast_burn")), [deploy("d1", NOW - timedelta(hours=3))], NOW - timedelta(minutes=30), "none",
     "fast burn 3:00:00 after the promotion of 1.6.66, later than 2:00:00: the page stands"),
    (states((0, "fast_burn")), [deploy("d1", NOW - timedelta(hours=1))], NOW - timedelta(hours=2), "none",
     "before 1.6.66 was promoted"),  # a fast burn without a suspect: the page is the alert's, not the policy's
])
def test_no_rollback_unless_the_evidence_points_at_a_recent_change(history: list[dict[str, Any]],
                                                                     deployments: list[dict[str, Any]],
                                                                     burn: datetime | None, action: str,
                                                                     says: str) -> None:
    d = decide("game-server", NOW, history, deployments, [ledger(burn)], SETTINGS)
    assert d.action == action and says in d.reason and d.suspect is None


def test_one_decision_per_episode_and_a_new_episode_after_any_other_state() -> None:
    promoted = NOW - timedelta(hours=1)
    history = states((4, "rollback"), (3, "deploy_freeze"), (2, "rollback"), (1, "fast_burn"), (0, "rollback"))
    assert episode_start(history) == NOW - timedelta(hours=2)
    decided = decide("game-server", NOW, history, [deploy("d1", promoted)], [ledger(promoted)], SETTINGS,
                     decided_episodes=[NOW - timedelta(hours=2)])
    assert decided.action == "none" and "was decided already: one decision per episode" in decided.reason
    assert decide("game-server", NOW, history, [deploy("d1", promoted)], [ledger(promoted)], SETTINGS,
                  decided_episodes=[NOW - timedelta(hours=4)]).action == "rollback"


def test_the_settings_come_from_policies_yaml_and_refuse_an_unknown_service() -> None:
    enforcement = load_policies().enforcement
    loaded = Settings.from_policy(enforcement, load_services().names)
    assert (loaded.mode_of("game-server"), loaded.mode_of("matchmaking")) == ("act", "propose")
    assert loaded.look_back == timedelta(hours=6) and loaded.propose_default == "keep"
    with pytest.raises(ValueError, match=r"enforcement\.services: unknown service"):
        Settings.from_policy(enforcement.model_copy(update={"services": {"raid": "act"}}), load_services().names)


# --- properties over generated histories -------------------------------------------------------------------

minutes_before = st.integers(min_value=0, max_value=9 * 60)


@settings(max_examples=200, deadline=None)
@given(promotions=st.lists(minutes_before, min_size=0, max_size=4), burn=st.one_of(st.none(), minutes_before),
       kinds=st.lists(st.sampled_from(["deploy", "rollback"]), min_size=4, max_size=4),
       state=st.sampled_from(["rollback", "fast_burn", "deploy_freeze", "normal"]))
def test_a_rollback_is_only_of_the_latest_change_promoted_before_the_burn_within_the_look_back(
        promotions: list[int], burn: int | None, kinds: list[str], state: str) -> None:
    deployments = [deploy(f"d{i}", NOW - timedelta(minutes=m), kind=kinds[i]) for i, m in enumerate(promotions)]
    burn_from = None if burn is None else NOW - timedelta(minutes=burn)
    d = decide("game-server", NOW, states((0, state)), deployments, [ledger(burn_from)], SETTINGS)
    if d.action != "rollback":
        assert d.suspect is None
        return
    promoted = d.suspect["finished_at"]
    assert state in ("rollback", "fast_burn") and burn_from is not None
    assert burn_from >= promoted - timedelta(minutes=1)  # never a promotion after the burn began
    assert NOW - promoted <= SETTINGS.look_back  # never beyond the look-back
    assert d.suspect["kind"] == "deploy" and promoted == max(x["finished_at"] for x in deployments)
    if state == "fast_burn":
        assert NOW - promoted <= SETTINGS.fast_burn_after_promotion


@settings(max_examples=200, deadline=None)
@given(published=st.lists(st.sampled_from(["normal", "deploy_freeze", "rollback", "fast_burn"]), min_size=1,
                          max_size=30))
def test_never_two_decisions_in_one_episode_however_the_states_come(published: list[str]) -> None:
    """Hourly publications; the enforcement runs after each and records what it decided, as the use case does."""
    start = NOW - timedelta(hours=len(published) - 1)
    promoted = start - timedelta(minutes=30)
    decided: list[datetime] = []
    acted_in: dict[datetime, int] = {}
    for i in range(len(published)):
        at = start + timedelta(hours=i)
        history = [{"computed_at": start + timedelta(hours=k), "state": s} for k, s in enumerate(published[:i + 1])]
        d = decide("game-server", at, history, [deploy("d1", promoted)], [ledger(promoted)],
                   Settings(mode="act", look_back=timedelta(days=3), fast_burn_after_promotion=timedelta(days=3)),
                   decided_episodes=decided)
        if d.action != "none":
            assert d.episode_start is not None
            decided.append(d.episode_start)
            acted_in[d.episode_start] = acted_in.get(d.episode_start, 0) + 1
    assert all(n == 1 for n in acted_in.values())
    episodes = {episode_start([{"computed_at": start + timedelta(hours=k), "state": s}
                               for k, s in enumerate(published[:i + 1])]) for i in range(len(published))} - {None}
    assert set(decided) == episodes  # and every episode got its one decision
