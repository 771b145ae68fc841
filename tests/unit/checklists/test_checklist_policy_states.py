"""Time in each policy state and the entries into deploy freeze and rollback, from published states."""
from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesre.checklists.analytics import (
    STALE,
    UNKNOWN,
    DataError,
    state_at,
    state_entries,
    state_segments,
    time_in_states,
)
from gamesre.checklists.runner import run_item
from gamesre.checklists.spec import ChecklistSpec
from gamesre.slo.policy import STATES
from gamesre.slo.spec import Policy
from tests.unit.checklists.conftest import AT

H = 3600


def history(*rows: tuple[int, str]) -> pd.DataFrame:
    return pd.DataFrame({"scope": "service", "name": "game-server", "state": [s for _, s in rows],
                         "computed_at": [t for t, _ in rows]})


def test_each_state_holds_until_the_next_and_time_before_any_is_unknown() -> None:
    h = history((2 * H, "normal"), (5 * H, "deploy_freeze"), (6 * H, "rollback"), (8 * H, "normal"))
    segments = state_segments(h, 0, 10 * H)
    assert segments[["state", "start", "end"]].values.tolist() == [
        [UNKNOWN, 0, 2 * H], ["normal", 2 * H, 5 * H], ["deploy_freeze", 5 * H, 6 * H], ["rollback", 6 * H, 8 * H],
        ["normal", 8 * H, 10 * H]]
    assert time_in_states(segments) == {"rollback": 2 * H, "deploy_freeze": H, "normal": 5 * H, UNKNOWN: 2 * H}


def test_a_state_published_before_the_period_holds_into_it_and_goes_stale() -> None:
    h = history((-H, "slow_burn"), (4 * H, "normal"))
    assert time_in_states(state_segments(h, 0, 10 * H, stale_after=2 * H)) == {
        "slow_burn": H, "normal": 2 * H, STALE: 7 * H}
    assert time_in_states(state_segments(h, 0, 10 * H)) == {"slow_burn": 4 * H, "normal": 6 * H}
    assert state_at(h, 5 * H, 2 * H) == ("normal", 4 * H)
    assert state_at(h, 7 * H, 2 * H) == (STALE, 4 * H)
    assert state_at(h, -2 * H) == (UNKNOWN, None)


def test_entries_count_a_state_worse_than_the_one_before() -> None:
    h = history((0, "normal"), (H, "deploy_freeze"), (2 * H, "deploy_freeze"), (3 * H, "rollback"),
                (4 * H, "deploy_freeze"), (5 * H, "normal"), (6 * H, "fast_burn"), (7 * H, "deploy_freeze"))
    entries = state_entries(h, 0, 10 * H)
    assert entries[["state", "at", "previous"]].values.tolist() == [
        ["deploy_freeze", H, "normal"], ["rollback", 3 * H, "deploy_freeze"], ["deploy_freeze", 7 * H, "fast_burn"]]
    # an entry is counted in the period it happened in; the state before the period still counts as previous
    assert state_entries(h, 2 * H, 10 * H)["at"].tolist() == [3 * H, 7 * H]
    assert state_entries(history((0, "deploy_freeze")), 0, H)["previous"].tolist() == [None]


def test_bad_history_is_refused() -> None:
    with pytest.raises(DataError, match="naive timestamps"):
        state_segments(history((0, "normal")).assign(computed_at=pd.Timestamp("2026-01-01")), 0, H)
    with pytest.raises(DataError, match="a row has no computed_at"):
        state_segments(history((0, "normal")).assign(computed_at=[None]), 0, H)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(-20, 120), st.sampled_from(STATES)), max_size=30),
       st.none() | st.integers(1, 50))
def test_the_time_in_states_adds_up_to_the_period(rows: list[tuple[int, str]], stale: int | None) -> None:
    segments = state_segments(history(*[(t * 600, s) for t, s in rows]), 0, 100 * 600,
                              None if stale is None else stale * 600)
    assert sum(time_in_states(segments).values()) == 100 * 600
    assert (segments["seconds"] > 0).all()
    assert (segments["start"].iloc[1:].to_numpy() == segments["end"].iloc[:-1].to_numpy()).all()


def test_the_monthly_policy_review(checklists: ChecklistSpec, policy: Policy) -> None:
    item = checklists.get("monthly-budget-policy-review")
    feb = int(pd.Timestamp("2026-01-31T15:00:00Z").timestamp())  # 1 February 00:00 KST
    hourly = [(feb - 86_400 + k * H, "normal") for k in range(24 + 28 * 24)]
    rows = [(t, "deploy_freeze" if feb + 10 * 86_400 <= t < feb + 12 * 86_400 else s) for t, s in hourly]
    frame = pd.DataFrame([{"scope": scope, "name": name, "state": s, "computed_at": t} for t, s in rows
                          for scope, name in (("service", "game-server"), ("slo", "availability"))])
    r = run_item(item, {"policy": policy, "policy_history": frame}, AT)
    assert r.status == "warn"
    game_server = next(x for x in r.evidence["rows"] if x["name"] == "game-server")
    assert game_server["entries"] == {"deploy_freeze": 1, "rollback": 0}
    assert game_server["seconds_in_state"] == {"deploy_freeze": 2 * 86_400, "normal": 26 * 86_400}
    assert game_server["time_in_state"]["deploy_freeze"] == "2d 0h"
    assert game_server["entry_times"] == [{"state": "deploy_freeze", "at": "2026-02-10T15:00:00Z",
                                           "previous": "normal"}]
    assert r.summary.startswith("service game-server: 1 freeze and 0 rollback entr(ies)")
    calm = frame.assign(state="normal")
    r = run_item(item, {"policy": policy, "policy_history": calm}, AT)
    assert r.status == "pass" and r.summary.startswith("0 deploy freeze or rollback entr(ies) in 2026-02 KST")
    # the report stopped publishing on the 21st: stale 2 h after its last state, 191 of 672 hours
    unpublished = calm[calm["computed_at"] < feb + 20 * 86_400]
    r = run_item(item, {"policy": policy, "policy_history": unpublished}, AT)
    assert r.status == "warn" and "no fresh published state for 28.4% of the month" in r.summary
    empty = run_item(item, {"policy": policy, "policy_history": frame.iloc[0:0]}, AT)
    assert (empty.status, empty.summary) == ("warn", "no policy state was published for service, slo in 2026-02 KST")
