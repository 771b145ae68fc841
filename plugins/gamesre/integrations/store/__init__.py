"""The SRE store: the SLO ledger, policy states, maintenance, deploy, chaos, incident and checklist records.

SQLAlchemy over SQLite or PostgreSQL. Callers create one object, `SREStore(url)`; it is put together from one
part per concern, each in its own module and each a subclass of `StoreDatabase` (database.py: the engine, the
tables and the helpers every part shares):

- ledger.py: the SLO ledger and its packed days; policy.py: snapshots, published states and their history;
  maintenance.py: maintenance windows and budget exclusions; deploys.py: deployments, verdicts, the deploy lock;
  chaos.py: chaos runs, game-days, the game-day lock; incidents.py; checklists.py: checklist runs and results.
- schema.py: the schema's Alembic revisions (migrations/versions/) applied once under a database lock, on first
  use and by `python -m gamesre db upgrade`; errors.py: StoreError.

Why mixins rather than composition: callers reach 43 public methods and properties on one object
(`store.ledger(...)`, `store.deploy_lock(...)`). Composition would have SREStore hold the parts and forward each
method by hand, every signature written twice and kept in step, or forward through `__getattr__`, which hides the
methods from mypy and from readers. With the parts as mixins over one base, SREStore *is* each part: the methods
are the parts' own (same signatures, same docstrings), `self.engine` is the one engine (one connection pool) they
all use, and a reader finds "how a deploy lock is taken" in deploys.py. The price, a name defined in two parts
silently shadowing the other, is checked by tests/integration/store/test_store_parts.py.
"""
from __future__ import annotations

from gamesre.integrations.store.chaos import ChaosStore
from gamesre.integrations.store.checklists import ChecklistStore
from gamesre.integrations.store.database import (
    chaos_gameday,
    chaos_lock,
    chaos_run,
    checklist_result,
    checklist_run,
    deploy_control,
    deploy_lock,
    deploy_verdict,
    deployment,
    incident,
    maintenance_window,
    metadata,
    policy_action,
    policy_state,
    policy_state_history,
    slo_ledger,
    slo_ledger_day,
    slo_snapshot,
)
from gamesre.integrations.store.deploys import DeployStore
from gamesre.integrations.store.errors import StoreError
from gamesre.integrations.store.incidents import IncidentStore
from gamesre.integrations.store.ledger import DAY_SECONDS, SLICE_SECONDS, LedgerSlices, LedgerStore
from gamesre.integrations.store.maintenance import MaintenanceStore
from gamesre.integrations.store.policy import PolicyStore

__all__ = [
    "DAY_SECONDS",
    "SLICE_SECONDS",
    "LedgerSlices",
    "SREStore",
    "StoreError",
    "chaos_gameday",
    "chaos_lock",
    "chaos_run",
    "checklist_result",
    "checklist_run",
    "deploy_control",
    "deploy_lock",
    "deploy_verdict",
    "deployment",
    "incident",
    "maintenance_window",
    "metadata",
    "policy_action",
    "policy_state",
    "policy_state_history",
    "slo_ledger",
    "slo_ledger_day",
    "slo_snapshot",
]

class SREStore(LedgerStore, PolicyStore, MaintenanceStore, DeployStore, ChaosStore, IncidentStore, ChecklistStore):
    """Typed access to the store; create with a SQLAlchemy URL. Thread-safe; upgrades the schema on first use."""
