"""
### Run one chaos experiment, guarded: gates → steady state → inject → monitor → recover → verify → verdict

Trigger from the UI with this form (or over the REST API with the same fields as `conf`):

| field | meaning |
|---|---|
| `experiment` | an experiment of `include/config/chaos/*.yaml` |
| `target` | optional: an instance/pod name, or a selector like `track=stable` (default: the experiment's) |
| `duration` | optional: `45s`, `2m` (default: the experiment's; at most the policy's max_duration) |
| `blast_radius` | optional: a count (`1`) or a share (`50%`), capped by the policy |
| `environment` | optional: `dev`, `staging` or `prod` (default: the policy's); prod only when enabled |
| `dry_run` | check the request, the gates and the steady state; inject nothing |

`reap` first recovers faults left behind by crashed runs. `validate` rejects a bad request (unknown field,
experiment or target, a blast radius over the cap, a target another run is injecting) before anything is
touched. `gates` checks every safety gate (evening peak, maintenance/events, error budget above the floor,
firing pages, open incidents, the kill switch, one game-day at a time) and takes the game-day lock; a refusal
skips the rest and is recorded. `steady_state_before` must hold, or nothing is injected. `monitor` is
deferred: its trigger polls the probes, the burn rates and the kill switch and aborts on the first broken
rule. `recover` is a teardown: it runs on every ending, retries the backend, confirms the fault is gone,
releases the lock, and pages the on-call when it cannot. `steady_state_after` waits, deferred, for the steady
state to return within the recovery time. `finalize` records the verdict (pass, fail, aborted, error,
refused, skipped) and the resilience score, writes the Markdown/HTML/JUnit report and tells Slack;
`conclude` fails the run on fail, aborted or error. A task that fails after its retries is reported to the
channel of the experiment's service. See `docs/chaos.md`.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from gamesre.airflow.failure_notifier import TaskFailureNotifier
from gamesre.airflow.operators.chaos import ChaosMonitorSensor
from gamesre.core.config_names import chaos_experiment_ids, chaos_pool

POOL = chaos_pool()
FAILED = TaskFailureNotifier(blocks="this experiment's verdict; a fault that could not be recovered also pages the "
                                    "on-call (recover)")


def _page_unrecovered(context):
    from gamesre.airflow.chaos import page_unrecovered

    page_unrecovered(context)


@dag(
    dag_id="chaos_experiment",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    max_active_runs=4,  # more may wait; the pool and the game-day lock let one inject at a time
    default_args={"owner": "sre", "retries": 1, "retry_delay": timedelta(seconds=10), "on_failure_callback": FAILED},
    params={
        "experiment": Param(chaos_experiment_ids()[0], enum=chaos_experiment_ids(),
                            description="The experiment to run."),
        "target": Param("", type="string", maxLength=300,
                        description="Instance/pod name or selector (track=stable). Empty: the experiment's."),
        "duration": Param("", type="string", maxLength=10, description="e.g. 45s or 2m. Empty: the experiment's."),
        "blast_radius": Param("", type="string", maxLength=10,
                              description="A count (1) or a share (50%). Empty: the experiment's."),
        "environment": Param("", enum=["", "dev", "staging", "prod"], description="Empty: the policy's."),
        "dry_run": Param(False, type="boolean", description="Check request, gates and steady state only."),
        "requested_by": Param("", type="string", maxLength=128, description="Who asks (default: you)."),
    },
    tags=["chaos"],
    doc_md=__doc__,
)
def chaos_experiment():
    @task(retries=2)
    def reap(dag_run=None) -> dict:
        from gamesre.airflow.chaos import reap as reap_leftovers

        return reap_leftovers(current_run_id=dag_run.run_id)

    @task
    def validate(params=None, dag_run=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from gamesre.airflow.chaos import validate as validate_request
        from gamesre.airflow.context import requester
        from gamesre.chaos.request import InvalidChaosRequest

        conf = {k: v for k, v in dict(params).items() if v not in ("", None) or k == "dry_run"}
        for key in ("gameday_id",):  # set by chaos_gameday in the run's conf, not a form field
            if dag_run.conf and dag_run.conf.get(key):
                conf[key] = dag_run.conf[key]
        try:
            return validate_request(conf, dag_run.run_id, requester({}, dag_run))
        except InvalidChaosRequest as exc:
            raise AirflowFailException(str(exc)) from None

    @task(pool=POOL)
    def gates(run: dict, dag_run=None) -> list:
        from airflow.sdk.exceptions import AirflowSkipException

        from gamesre.airflow.chaos import ChaosRefused, check_gates

        try:
            return check_gates(run, dag_run.run_id)
        except ChaosRefused as exc:
            raise AirflowSkipException(str(exc)) from None

    @task
    def steady_state_before(run: dict, gate_results: list, dag_run=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from gamesre.airflow.chaos import SteadyStateBroken
        from gamesre.airflow.chaos import steady_state_before as check

        try:
            return check(run, dag_run.run_id)
        except SteadyStateBroken as exc:
            raise AirflowSkipException(f"steady state broken before injection, nothing injected: {exc}") from None

    @task(pool=POOL)
    def inject(run: dict, before: dict, dag_run=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from gamesre.airflow.chaos import inject as apply

        if run["dry_run"]:
            raise AirflowSkipException("dry run: nothing injected")
        return apply(run, dag_run.run_id)

    @task(retries=3, retry_delay=timedelta(seconds=15), priority_weight=100,
          on_failure_callback=[_page_unrecovered, FAILED])
    def recover(dag_run=None) -> dict:
        from gamesre.airflow.chaos import recover as take_back

        return take_back(dag_run.run_id)

    @task(trigger_rule="all_done")
    def finalize(dag_run=None) -> dict:
        from gamesre.airflow.chaos import finalize as decide

        return decide(dag_run.run_id)

    @task
    def conclude(result: dict) -> str:
        from gamesre.airflow.chaos import conclude as end

        return end(result)

    run = validate()
    gate = gates(run)
    before = steady_state_before(run, gate)
    injected = inject(run, before)
    monitor = ChaosMonitorSensor(task_id="monitor", run=run, before=before, mode="monitor", pool=POOL, retries=0)
    recovered = recover()
    after = ChaosMonitorSensor(task_id="steady_state_after", run=run, before=before, mode="recovery", retries=0)
    result = finalize()
    reap() >> run
    injected >> monitor >> recovered >> after >> result
    recovered.as_teardown(setups=gate, on_failure_fail_dagrun=True)
    conclude(result)


chaos_experiment()
