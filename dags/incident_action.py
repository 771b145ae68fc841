"""
### Act on an incident

What people do to an incident, recorded with who did it and why, and said in the incident's Slack channel. Fill in
the form (**Trigger** in the UI) or send `conf` over the REST API:

| field | meaning |
|---|---|
| `incident_id` | the incident, e.g. `INC-20261207-001` |
| `action` | `acknowledge`, `severity`, `handover`, `note`, `rollback`, `abort_chaos`, `silence`, `mitigated`, |
| | `resolve`; then `postmortem_final` |
| `severity` | the new severity (`severity`) |
| `role`, `person` | the role handed over and who takes it, a person of `include/config/oncall.yaml` (`handover`) |
| `minutes` | how long a silence lasts, 1 to 1440 (`silence`: the incident's alerts in Alertmanager, with an end) |
| `target` | `rollback`: the deployment to undo (default: the latest promoted deploy among the suspects); |
| | `abort_chaos`: the chaos run to stop (default: every experiment injecting into the incident's services) |
| `text` | required: the reason (`severity`, `handover`, `silence`), the note (`note`), how it ended (`resolve`), |
| | where the final postmortem is (`postmortem_final`) |
| `requested_by` | who acts (default: the user who triggers the run) |

`rollback` starts a `game_service_deploy` run of kind `rollback` (task `rollback_run`) back to the version the
deploy replaced, with the incident id as its change ticket; when it ends, its outcome is on the incident's timeline
and in its channel. `abort_chaos` turns on the experiment run's own kill switch: its monitor removes the fault at
the next poll, other experiments go on.

An action that cannot apply (an unknown or resolved incident, a missing reason, an unknown person) fails the task
with the reason and changes nothing. The incident's `incident_response` run sees the change within seconds: an
acknowledgement in time stops the escalation to the Secondary; resolving ends the escalation and writes the
postmortem draft.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task

from gamesre.airflow.failure_notifier import TaskFailureNotifier


@dag(
    dag_id="incident_action",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    # a refusal fails at once (AirflowFailException); the store or Slack away is retried
    default_args={"owner": "sre", "retries": 2, "retry_delay": timedelta(seconds=10),
                  "on_failure_callback": TaskFailureNotifier(
                      blocks="this action on the incident: it was not applied; read the reason in the task log "
                             "and trigger it again")},
    params={
        "incident_id": Param("", type="string", pattern="^INC-[0-9]{8}-[0-9]{3}$",
                             description="The incident, e.g. INC-20261207-001."),
        "action": Param("acknowledge", enum=["acknowledge", "severity", "handover", "note", "rollback", "abort_chaos",
                                             "silence", "mitigated", "resolve", "postmortem_final"],
                        description="What to do."),
        "severity": Param("", enum=["", "sev0", "sev1", "sev2", "sev3"], description="The new severity (severity)."),
        "role": Param("", enum=["", "incident_commander", "operations_lead", "communications_lead", "scribe"],
                      description="The role handed over (handover)."),
        "person": Param("", type="string", maxLength=64,
                        description="Who takes the role, a person of include/config/oncall.yaml (handover)."),
        "minutes": Param(60, type="integer", minimum=1, maximum=1440,
                         description="How long the silence lasts (silence)."),
        "target": Param("", type="string", maxLength=250,
                        description="rollback: the deployment to undo; abort_chaos: the chaos run (default: the "
                                    "suspects)."),
        "text": Param("", type="string", maxLength=2000,
                      description="The reason, the note, or how it ended (required for severity, handover, note, "
                                  "resolve)."),
        "requested_by": Param("", type="string", maxLength=128, description="Who acts (default: the trigger's user)."),
    },
    tags=["incidents"],
    doc_md=__doc__,
)
def incident_action():
    @task(multiple_outputs=True)
    def apply(params=None, dag_run=None) -> dict:
        from gamesre.airflow.context import requester
        from gamesre.airflow.incidents import act

        return act(dict(params), requester(params, dag_run))

    @task.short_circuit
    def starts_a_deploy(action: str) -> bool:
        return action == "rollback"

    result = apply()
    rollback_run = TriggerDagRunOperator(
        task_id="rollback_run", trigger_dag_id="game_service_deploy", trigger_run_id=result["deploy_run_id"],
        conf=result["deploy_conf"], wait_for_completion=False, skip_when_already_exists=True,
        fail_when_dag_is_paused=True)
    starts_a_deploy(result["action"]) >> rollback_run


incident_action()
