"""
### Register or cancel a maintenance window

Fill in the form (**Trigger** in the UI, or `conf` over the REST API):

| field | meaning |
|---|---|
| `action` | `register` a new window or `cancel` one |
| `services` | the affected services |
| `start` | when it starts (Asia/Seoul unless an offset is given) |
| `duration_minutes` | how long, at most 8 hours |
| `reason`, `ticket` | why, and the change ticket (e.g. OPS-1234) |
| `window_id` | for `cancel`: the window's id (from the Slack notice or the store) |

The request is validated first: the end must be after the start, the window at most 8 hours long, the
services known, and there may be no overlap with another maintenance window of a common service. A rejected
request fails the first task with the reason and changes nothing. An accepted one is recorded in the SRE
store (its minutes leave the SLO budgets), silenced in Alertmanager from its start to its end, and announced in
the affected services' Slack channels. Registering the same request twice is harmless. Cancelling expires the
silences. A task that fails after its retries is reported to the SRE channel.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from gamesre.airflow.failure_notifier import TaskFailureNotifier
from gamesre.core.config_names import service_names


@dag(
    dag_id="maintenance_window_request",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    default_args={"owner": "sre", "retries": 2, "retry_delay": timedelta(seconds=15),
                  "on_failure_callback": TaskFailureNotifier(
                      blocks="this request: its window is neither registered nor cancelled; trigger it again once "
                             "the cause is fixed (a repeated request is harmless)")},
    params={
        "action": Param("register", enum=["register", "cancel"], description="Register a window or cancel one."),
        "services": Param(["game-server"], type="array", items={"type": "string", "enum": service_names()},
                          description="Affected services (register)."),
        "start": Param(None, type=["null", "string"], format="date-time",
                       description="Start, e.g. 2026-12-02T03:00:00+09:00 (register)."),
        "duration_minutes": Param(60, type="integer", minimum=1, maximum=480, description="At most 8 hours."),
        "reason": Param("", type="string", maxLength=500, description="Why (register)."),
        "ticket": Param("", type="string", maxLength=64, description="Change ticket, e.g. OPS-1234 (register)."),
        "window_id": Param("", type="string", maxLength=128, description="The window to cancel (cancel)."),
        "requested_by": Param("", type="string", maxLength=128, description="Who asks (default: the trigger's user)."),
    },
    tags=["maintenance"],
    doc_md=__doc__,
)
def maintenance_window_request():
    @task(retries=0)
    def validate(params=None, dag_run=None, logical_date=None) -> dict:
        from gamesre.airflow.context import requester
        from gamesre.airflow.maintenance import validate_request

        return validate_request(dict(params), requester(params, dag_run))

    @task
    def apply(request: dict) -> dict:
        from gamesre.airflow.maintenance import apply_request

        return apply_request(request)

    apply(validate())


maintenance_window_request()
