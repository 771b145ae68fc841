"""
### Incident response

One run per incident, started by the incident intake when an Alertmanager page opens one (the run id is the
incident id, e.g. `INC-20261207-001`; docs/incidents.md). Re-running a run, or triggering with
`{"incident_id": "INC-..."}`, picks the incident up where it is: every step reads the store first.

1. **declare**: the severity settled with the budget facts (the published state of the incident's SLOs: a burn
   of 14.4x or more is at least Sev1, as `include/config/incidents.yaml` says), written into the timeline.
2. **assemble**: the owning team's on-call from `include/config/oncall.yaml` (Primary, Secondary, Tertiary =
   team lead, Executive = CTO), the roles of the severity (Incident Commander, Operations Lead, Communications
   Lead, Scribe), a Slack channel `#inc-YYYYMMDD-<title>` with the declaration, the team's and the SRE channels
   told, and PagerDuty paged for Sev0 and Sev1 (dedup key = the incident id).
3. **escalate**: deferred (no worker slot held) until the next escalation is due or people change the
   incident: not acknowledged 5 minutes after it opened -> the Secondary; not resolved after 30 minutes -> the
   Tertiary (team lead); after 1 hour -> the Executive (CTO); each a message in the incident's channel and a
   PagerDuty trigger, recorded. It ends when a person resolves the incident.
4. **close**: PagerDuty resolved, MTTA / MTTD / MTTR, the budget each SLO lost (from the ledger), and the
   postmortem draft (timeline with the deploys, chaos experiments, maintenance windows and policy states around
   it), written under the report folder, stored with the incident and announced in its channel.

`refresh_budget_state` (beside `assemble`) computes and publishes the error-budget policy states from the ledger
now, as `error_budget_report` does hourly, and updates the `error_budget_policy_state` asset: the budget policy's
enforcement can roll back a change that spent the budget within minutes of the page rather than at the next hour.

People act through the `incident_action` DAG (its form in the UI, or `conf` over the REST API): acknowledge,
change the severity, hand a role over, add a note, roll the suspect deploy back, abort a chaos experiment,
silence, mark mitigated, resolve.

Slack or PagerDuty being down never stops the run: what was not delivered is recorded with the incident and
said in the timeline; a retry of the task delivers it.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from gamesre.airflow.assets import POLICY_STATE_ASSET
from gamesre.airflow.failure_notifier import TaskFailureNotifier
from gamesre.airflow.operators.incident import IncidentWatchOperator


@dag(
    dag_id="incident_response",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    max_active_runs=50,  # one per open incident
    default_args={"owner": "sre", "retries": 3, "retry_delay": timedelta(seconds=10),
                  "on_failure_callback": TaskFailureNotifier(
                      blocks="this incident's automation: run its steps again from the Airflow UI; the incident "
                             "record and its timeline are in the SRE store")},
    params={"incident_id": Param("", type="string", pattern="^(INC-[0-9]{8}-[0-9]{3})?$",
                                 description="The incident, e.g. INC-20261207-001 (the intake sets it).")},
    tags=["incidents"],
    doc_md=__doc__,
)
def incident_response():
    @task
    def declare(params=None, dag_run=None) -> dict:
        from gamesre.airflow.incidents import declare, incident_of

        return declare(incident_of(params, dag_run))

    @task
    def assemble(declared: dict) -> dict:
        from gamesre.airflow.incidents import assemble

        return assemble(declared["incident"])

    @task
    def close(watched: dict) -> dict:
        from gamesre.airflow.incidents import close

        return close(watched["incident"])

    declared = declare()

    # The page is fresher than the hourly error-budget report: publish the policy states now (beside assemble, so the
    # declaration is not delayed), and the budget policy's enforcement, scheduled on that asset, sees a spent budget
    # or a fast burn after a promotion within minutes.
    @task(outlets=[POLICY_STATE_ASSET])
    def refresh_budget_state(outlet_events=None) -> dict:
        from datetime import UTC, datetime

        from gamesre.airflow.slo import compute_states

        result = compute_states(datetime.now(UTC))
        outlet_events[POLICY_STATE_ASSET].extra = {"at": result["at"], "services": result["services"],
                                                   "slos": {k: v["state"] for k, v in result["slos"].items()}}
        return result

    declared >> refresh_budget_state()
    escalate = IncidentWatchOperator(task_id="escalate", incident_id="{{ params.incident_id }}",
                                     retries=5)
    close(escalate.output)
    assemble(declared) >> escalate


incident_response()
