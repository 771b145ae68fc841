"""SREStore put together from its parts: no part shadows another, none is left out, all use the one engine."""
from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from gamesre.integrations.store import SREStore
from gamesre.integrations.store.chaos import ChaosStore
from gamesre.integrations.store.checklists import ChecklistStore
from gamesre.integrations.store.database import StoreDatabase
from gamesre.integrations.store.deploys import DeployStore
from gamesre.integrations.store.incidents import IncidentStore
from gamesre.integrations.store.ledger import LedgerStore
from gamesre.integrations.store.maintenance import MaintenanceStore
from gamesre.integrations.store.policy import PolicyStore

pytestmark = pytest.mark.integration

# One read per part: (the part, a method it defines, the arguments).
ONE_READ_PER_PART: list[tuple[type[StoreDatabase], str, tuple[Any, ...]]] = [
    (LedgerStore, "ledger_extent", ("availability",)),
    (PolicyStore, "current_state", ("service", "game-server")),
    (MaintenanceStore, "windows", ()),
    (DeployStore, "deployments", ()),
    (ChaosStore, "chaos_runs", ()),
    (IncidentStore, "open_incidents", ()),
    (ChecklistStore, "checklist_runs", ()),
]


def public_names(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


def test_every_part_is_in_the_store_and_no_two_define_the_same_method() -> None:
    parts = [p for p in StoreDatabase.__subclasses__() if p is not SREStore]
    assert set(SREStore.__bases__) == set(parts)  # a part written but not mixed in would lose its methods
    seen: dict[str, str] = {name: StoreDatabase.__name__ for name in public_names(StoreDatabase)}
    for part in parts:
        for name in sorted(public_names(part)):
            assert name not in seen, f"{part.__name__}.{name} shadows {seen[name]}.{name}"
            seen[name] = part.__name__
    assert public_names(SREStore) == set()  # SREStore adds nothing of its own: all of it lives in a part
    assert set(seen) == {n for n in dir(SREStore) if not n.startswith("_")}


def test_every_part_reads_through_the_one_engine_it_was_given(store_url: str) -> None:
    assert {part for part, _, _ in ONE_READ_PER_PART} == set(SREStore.__bases__)
    engine = sa.create_engine(store_url, future=True)
    checkouts: list[object] = []
    sa.event.listen(engine, "checkout", lambda *_: checkouts.append(object()))
    store = SREStore(store_url, engine=engine)
    assert checkouts, "migrating on first use goes through the given engine too"
    for part, method, args in ONE_READ_PER_PART:
        assert method in vars(part)
        before = len(checkouts)
        getattr(store, method)(*args)
        assert len(checkouts) == before + 1, f"{part.__name__}.{method} did not use the store's engine"
    engine.dispose()
