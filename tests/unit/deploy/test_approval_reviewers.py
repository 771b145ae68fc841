"""Who may answer a review: the users deploy.yaml names, and the simple auth manager's users of the roles it names."""
from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from gamesre.airflow.operators.approval import resolve_reviewers


def test_roles_add_the_simple_auth_managers_users_of_that_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin, kim:op,lee:OP,park:viewer")
    assert [u["id"] for u in resolve_reviewers(("sre-lead", "kim"), ("op",))] == ["sre-lead", "kim", "lee"]
    assert resolve_reviewers(("sre-lead",), ()) == [{"id": "sre-lead", "name": "sre-lead"}]


def test_a_review_nobody_may_give_and_roles_under_another_auth_manager_fail_naming_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    with pytest.raises(AirflowFailException, match=r"no user has the roles \['security'\]"):
        resolve_reviewers((), ("security",))
    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER",
                       "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager")
    with pytest.raises(AirflowFailException, match="only the simple auth manager can list"):
        resolve_reviewers(("sre-lead",), ("op",))
