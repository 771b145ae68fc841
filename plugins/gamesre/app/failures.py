"""A task that failed for good, told to the team that owns the run, and a page when the failure lets the error-budget
policy state go stale.

The notice goes to the owning team's Slack channel: the service's team for a run about one service (a deploy, a
chaos experiment), the SRE channel otherwise. It names the DAG, the task, the error, the log and what the failure
blocks. For the DAGs that keep the published policy state fresh (slo_ingest, error_budget_report) that is computed
from the store: the state goes stale `state.stale_after` after it was published, and the deploy and chaos gates
then block. When it is stale already, or will be within PAGE_LEAD, the on-call is paged (PagerDuty Events v2) with
one dedup key per DAG, so repeated failures add to the open incident instead of paging again. A notice the team's
channel refuses goes to the incoming webhook's one channel. Neither Slack nor PagerDuty failing ever raises: the
callback of a failed task must not fail in turn.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from gamesre.app.ports import Clock, Notifier
from gamesre.core.services import ServiceCatalog
from gamesre.reports.failure_notice import TaskFailure, failure_notice, staleness
from gamesre.slo.policy import page_before_stale, stale_at
from gamesre.slo.spec import Policy

log = logging.getLogger(__name__)

PAGE_LEAD = timedelta(minutes=30)  # page when the policy state goes stale sooner than this


class PolicyStateStore(Protocol):
    def current_state(self, scope: str, name: str) -> dict[str, Any] | None: ...


class Pager(Protocol):
    """PagerDuty's Events API v2: trigger an alert; a trigger with the dedup key of an open alert joins it."""

    def trigger(self, *, summary: str, source: str, dedup_key: str, severity: str,
                details: Mapping[str, Any]) -> str: ...


@dataclass
class FailurePorts:
    notifier: Notifier
    fixed_channel: Callable[[str], bool]  # the incoming webhook's one channel: a notice the team's channel refused
    pager: Callable[[], Pager]  # opened only to page
    store: Callable[[], PolicyStateStore]  # opened only for the DAGs that keep the policy state fresh
    clock: Clock
    services: ServiceCatalog
    policy: Policy


def dedup_key(dag_id: str) -> str:
    """One PagerDuty alert per DAG whose failure lets the policy state go stale."""
    return f"gamesre/{dag_id}/policy-state-stale"


@dataclass(frozen=True)
class PolicyFreshness:
    """The facts the page decision needs: when the state was published, when it goes stale, what is known."""

    published_at: datetime | None
    stale_at: datetime | None
    unreadable: str = ""  # why the store could not be read (then nothing is known to be fresh)


def policy_freshness(ports: FailurePorts) -> PolicyFreshness:
    """Read every service's published state (the deploy gate reads those); the oldest goes stale first."""
    try:
        store = ports.store()
        rows = [store.current_state("service", name) for name in ports.services.names]
    except Exception as exc:  # an unreadable store: the gates cannot read it either
        return PolicyFreshness(None, None, unreadable=f"{type(exc).__name__}: {exc}")
    published: list[datetime] = [row["computed_at"] for row in rows if row is not None and row.get("computed_at")]
    if not published or len(published) < len(rows):
        return PolicyFreshness(None, None)  # a service without a state is blocked already
    return PolicyFreshness(min(published), stale_at(published, ports.policy))


def report_failure(ports: FailurePorts, failure: TaskFailure, *, blocks: str = "",
                   guards_policy_state: bool = False, page_lead: timedelta = PAGE_LEAD) -> dict[str, Any]:
    """Tell the owning team; page when `guards_policy_state` and the state goes stale within `page_lead`."""
    now = ports.clock()
    result: dict[str, Any] = {"channel_id": ports.services.channel_id(failure.service), "paged": False}
    paged = ""
    if guards_policy_state:
        fresh = policy_freshness(ports)
        blocks = (f"the published policy state could not be read ({fresh.unreadable}); deploys and game-days are "
                  "blocked while the gates cannot read it either" if fresh.unreadable else
                  staleness(fresh.published_at, fresh.stale_at, ports.policy.state.stale_after, now))
        result["stale_at"] = fresh.stale_at.isoformat() if fresh.stale_at else None
        if page_before_stale(fresh.stale_at, now, page_lead):
            key = dedup_key(failure.dag_id)
            result["dedup_key"] = key
            try:
                ports.pager().trigger(summary=f"{failure.dag_id} failed: {blocks}"[:1024],
                                      source=f"airflow/{failure.dag_id}", dedup_key=key, severity="critical",
                                      details={"dag_id": failure.dag_id, "task_id": failure.task_id,
                                               "run_id": failure.run_id, "error": failure.error[:1000],
                                               "log_url": failure.log_url, "stale_at": result["stale_at"]})
                result["paged"] = True
                paged = f"the on-call, through PagerDuty (dedup key {key})"
            except Exception as exc:  # a page that cannot be sent is said in the notice, never raised
                log.warning("page for %s not sent (%s: %s)", failure.dag_id, type(exc).__name__, exc)
                paged = f"NOT paged: PagerDuty could not be reached ({type(exc).__name__}: {exc})"
    text = failure_notice(failure, blocks=blocks, paged=paged)
    result["delivered"] = ports.notifier.message(text, channel_id=result["channel_id"])
    if not result["delivered"]:  # e.g. channel_not_found: the notice must still reach someone
        result["delivered_to_fixed_channel"] = ports.fixed_channel(text)
    result["text"] = text
    return result
