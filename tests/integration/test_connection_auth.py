"""Connections with credentials, TLS and headers, against a real Prometheus and a real Alertmanager that demand them.

A private CA (made with `cryptography`) signs the servers' certificates and a client certificate. Prometheus
(one day of the demo's history) requires TLS and basic auth; Alertmanager requires TLS, basic auth and a client
certificate signed by the CA; both read their --web.config.file with bcrypt-hashed passwords. In front of that
Prometheus, a Mimir-style gateway (tests/fakes/tenant_gateway.py) requires a bearer token and X-Scope-OrgID.

Everything reaches them the way Airflow does: connections in AIRFLOW_CONN_* variables, read by the hooks
(PrometheusHook, AlertmanagerHook) or, asynchronously, by the triggers. Through them: the SLO ingest, the canary
analysis trigger, the chaos monitor trigger and the maintenance silences work; wrong settings fail with one
sentence naming the connection; and no password or token appears in any log line of any test here.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from demo.procs import ProcessGroup, free_port
from demo.services import WebConfig, render_alertmanager_config, start_alertmanager
from gamesre.airflow.hooks.alertmanager import AlertmanagerHook
from gamesre.airflow.hooks.prometheus import PrometheusHook
from gamesre.airflow.triggers.analysis import CanaryAnalysisTrigger
from gamesre.airflow.triggers.chaos import ChaosMonitorTrigger
from gamesre.app.slo import SloPorts, ingest
from gamesre.chaos.catalog import AbortRules, Probe, Tolerance
from gamesre.core.services import load_services
from gamesre.deploy.analysis import Thresholds, slis_for
from gamesre.integrations.alertmanager import AlertmanagerAccessError
from gamesre.integrations.prometheus import PrometheusAccessError
from gamesre.slo.ingest import IngestError
from gamesre.slo.spec import load_policies, load_slos
from tests.conftest import HistoryPrometheus, start_history_prometheus
from tests.fakes.memory_store import memory_store
from tests.fakes.notifier import RecordingNotifier
from tests.fakes.tenant_gateway import TenantGateway
from tests.pki import Issued, PrivateCA, bcrypt_hash

pytestmark = pytest.mark.integration

PROM_USER, AM_USER = "gamesre", "silencer"
PROM_PASSWORD = f"prom-{secrets.token_urlsafe(12)}"
AM_PASSWORD = f"am-{secrets.token_urlsafe(12)}"
WRONG_PASSWORD = f"wrong-{secrets.token_urlsafe(12)}"
GATEWAY_TOKEN = f"tok-{secrets.token_urlsafe(16)}"
SECRETS = (PROM_PASSWORD, AM_PASSWORD, WRONG_PASSWORD, GATEWAY_TOKEN)
TENANT = "game"
def _just_before_now() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)


# The end of the backfilled history, set again when the module's stack is built: the chaos monitor reads its
# probes at the current time, over 15 minutes, and a worker may reach this module long after collecting it.
HISTORY_END = _just_before_now()
REQUESTS_RATE = "sum(rate(game_action_requests_total[15m]))"


# --- the secured stack ------------------------------------------------------------------------------------------


@dataclass
class Secured:
    ca: PrivateCA
    client: Issued  # a client certificate the CA signed
    stranger_ca: PrivateCA  # a CA that signed nothing of this stack
    prometheus: HistoryPrometheus
    alertmanager_url: str
    gateway: TenantGateway


def ready_with(ca_file: Path, auth: tuple[str, str], client: Issued | None = None) -> Callable[[str], bool]:
    """A readiness probe that passes the server's TLS and basic auth."""
    def ready(url: str) -> bool:
        try:
            return requests.get(url, auth=auth, verify=str(ca_file), timeout=2,
                                cert=(str(client.cert), str(client.key)) if client else None).status_code == 200
        except requests.RequestException:
            return False
    return ready


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    global HISTORY_END
    HISTORY_END = _just_before_now()
    workdir = tmp_path_factory.mktemp("secured")
    ca, stranger = PrivateCA(workdir / "pki", "gamesre"), PrivateCA(workdir / "stranger", "stranger")
    server, client = ca.issue("server", server=True), ca.issue("airflow-worker", server=False)
    services = ProcessGroup()
    with services.running():
        prometheus = start_history_prometheus(
            services, workdir / "prometheus", HISTORY_END, 1,
            web=WebConfig(server.cert, server.key, basic_auth_users={PROM_USER: bcrypt_hash(PROM_PASSWORD)}),
            ready=ready_with(ca.cert_file, (PROM_USER, PROM_PASSWORD)))
        am_port = free_port()
        am_web = WebConfig(server.cert, server.key, client_ca_file=ca.cert_file,
                           basic_auth_users={AM_USER: bcrypt_hash(AM_PASSWORD)})
        # nothing fires here: the receivers only need a URL to pass amtool
        config = render_alertmanager_config(f"http://127.0.0.1:{free_port()}/services/T0/B0/unused")
        services.add(start_alertmanager(workdir / "alertmanager", am_port, config, web=am_web,
                                        ready=ready_with(ca.cert_file, (AM_USER, AM_PASSWORD), client)))
        gateway = TenantGateway(prometheus.url, upstream_auth=(PROM_USER, PROM_PASSWORD),
                                upstream_verify=str(ca.cert_file), bearer_token=GATEWAY_TOKEN)
        with gateway.serving():
            yield Secured(ca, client, stranger, prometheus, f"https://127.0.0.1:{am_port}", gateway)


def connections(s: Secured) -> dict[str, dict[str, Any]]:
    """Every connection of these tests, as AIRFLOW_CONN_* JSON documents hold them."""
    prom_port = int(s.prometheus.url.rsplit(":", 1)[1])
    prom = {"conn_type": "http", "host": "127.0.0.1", "port": prom_port, "schema": "https", "login": PROM_USER,
            "password": PROM_PASSWORD, "extra": {"ca_bundle": str(s.ca.cert_file)}}
    am = {"conn_type": "http", "host": s.alertmanager_url, "login": AM_USER, "password": AM_PASSWORD,
          "extra": {"ca_bundle": str(s.ca.cert_file), "cert": str(s.client.cert), "key": str(s.client.key)}}
    mimir_extra = {"token": GATEWAY_TOKEN, "headers": {"X-Scope-OrgID": TENANT}}
    return {
        "prom_secure": prom,
        "prom_wrong_password": prom | {"password": WRONG_PASSWORD},
        "prom_no_credentials": {k: v for k, v in prom.items() if k not in ("login", "password")},
        "prom_stranger_ca": prom | {"extra": {"ca_bundle": str(s.stranger_ca.cert_file)}},
        "prom_system_cas": prom | {"extra": {}},
        "prom_mimir": {"conn_type": "http", "host": s.gateway.url, "extra": mimir_extra},
        "prom_mimir_prefix": {"conn_type": "http", "host": "127.0.0.1", "port": s.gateway.port, "schema": "http",
                              "extra": mimir_extra | {"path_prefix": s.gateway.prefix}},
        "prom_mimir_no_tenant": {"conn_type": "http", "host": s.gateway.url, "extra": {"token": GATEWAY_TOKEN}},
        "am_secure": am,
        "am_wrong_password": am | {"password": WRONG_PASSWORD},
        "am_no_client_certificate": am | {"extra": {"ca_bundle": str(s.ca.cert_file)}},
    }


@pytest.fixture(scope="module")
def stack(secured: Secured) -> Iterator[Secured]:
    """The secured stack with its connections in the environment, where Airflow looks first."""
    with pytest.MonkeyPatch.context() as mp:
        for conn_id, doc in connections(secured).items():
            mp.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(doc))
        mp.setenv("AIRFLOW_VAR_GAMESRE_CHAOS_KILL_SWITCH", "off")
        yield secured


@pytest.fixture(autouse=True)
def no_secret_is_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test here: every log line at any level, with its traceback, is free of the passwords and the token."""
    caplog.set_level(logging.DEBUG)
    yield
    records = [r for when in ("setup", "call", "teardown") for r in caplog.get_records(when)]
    assert records  # the check sees the test's log lines (the hooks log what they use)
    formatter = logging.Formatter()
    leaked = [f"{r.name}: {r.getMessage()[:200]}" for r in records
              if any(secret in formatter.format(r) or secret in str(r.args) for secret in SECRETS)]
    assert not leaked


def assert_alone(exc: BaseException) -> None:
    """The error is the whole story: no library's exception chained behind it (a traceback shows only the one)."""
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


def assert_no_secret(*documents: object) -> None:
    """What leaves a task (XCom, records, events) holds no secret either."""
    text = json.dumps(documents, default=str)
    assert not [secret for secret in SECRETS if secret in text]


# --- the SLO ingest -----------------------------------------------------------------------------------------------


def slo_ports(conn_id: str) -> SloPorts:
    return SloPorts(store=memory_store(), prometheus=PrometheusHook(conn_id).get_conn, notifier=RecordingNotifier(),
                    clock=lambda: datetime.now(UTC), slos=load_slos(), policy=load_policies(),
                    report_channel_id="C0TEST")


def test_the_slo_ingest_reads_prometheus_through_basic_auth_and_a_private_ca(stack: Secured,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    ports = slo_ports("prom_secure")
    end = HISTORY_END - timedelta(minutes=1)

    result = ingest(ports, end - timedelta(minutes=30), end, max_backfill=timedelta(minutes=30))

    assert [r["error"] for r in result["slos"]] == [None] * len(load_slos())
    for slo in load_slos():
        extent = ports.store.ledger_extent(slo.name)
        assert extent is not None and extent[1] - extent[0] >= 25 * 60, slo.name
    assert_no_secret(result)
    # the hook said what it uses: the connection, the URL, the user and the CA; never the password
    assert (f"using Prometheus (connection prom_secure): {stack.prometheus.url}; basic auth as 'gamesre'; "
            f"CA bundle {stack.ca.cert_file}") in caplog.text


def test_the_slo_ingest_with_a_wrong_password_names_the_connection_for_every_slo(stack: Secured) -> None:
    end = HISTORY_END - timedelta(minutes=1)

    with pytest.raises(IngestError) as err:
        ingest(slo_ports("prom_wrong_password"), end - timedelta(minutes=10), end, max_backfill=timedelta(minutes=10))

    assert set(err.value.failures) == {slo.name for slo in load_slos()}
    for reason in err.value.failures.values():
        assert reason == ("PrometheusAccessError: Prometheus (connection prom_wrong_password) refused the "
                          "credentials: HTTP 401 (Unauthorized)")
    assert_no_secret(str(err.value), err.value.failures)


@pytest.mark.parametrize(("conn_id", "expected"), [
    ("prom_no_credentials", "Prometheus (connection prom_no_credentials) asks for credentials, and the connection "
                            "has none: HTTP 401 (Unauthorized)"),
    ("prom_stranger_ca", "Prometheus (connection prom_stranger_ca) TLS verification failed: unable to get local "
                         "issuer certificate"),
    ("prom_system_cas", "Prometheus (connection prom_system_cas) TLS verification failed: unable to get local "
                        "issuer certificate (a private CA? set ca_bundle in the connection's extra)"),
])
def test_prometheus_refusals_are_one_sentence_naming_the_connection(stack: Secured, conn_id: str,
                                                                    expected: str) -> None:
    client = PrometheusHook(conn_id).get_conn()

    for ask in (lambda: client.query(REQUESTS_RATE, HISTORY_END), client.build_info):
        with pytest.raises(PrometheusAccessError) as err:
            ask()
        assert str(err.value) == expected
        assert_alone(err.value)


# --- the triggers, asynchronously, in the triggerer's way ----------------------------------------------------------


def canary_spec() -> dict[str, Any]:
    """Shaped like gamesre.app.deploy.analysis_spec: one game server against the other over the last ten minutes
    of the history (it has no canary), with step times scaled down to seconds."""
    judged, skipped = slis_for(load_slos().for_service("game-server"))
    # a poll's queries time out after 2 x interval_s: 1 s, as a bcrypt-checked request on a loaded machine can take
    # longer than the 0.4 s a 0.2 s interval gave (a timed-out query is an error of the poll, not a pass)
    thresholds = Thresholds(min_samples=40, alpha=0.01, beta=0.05, regression_burn=6, fast_abort_burn=14.4,
                            min_duration_s=0.6, max_duration_s=2.5, interval_s=0.5)
    now = time.time()
    return {"service": "game-server", "stage": "prod", "step": 1, "step_label": "canary 25%",
            "slis": [s.to_dict() for s in judged], "not_judged": skipped,
            "cohorts": {"candidate": {"instance": "gs-stable-1"}, "baseline": {"instance": "gs-stable-2"}},
            "thresholds": asdict(thresholds), "since": HISTORY_END.timestamp() - 600, "step_started": now}


def monitor_spec(*, duration_s: float = 0.5) -> dict[str, Any]:
    """Shaped like gamesre.app.chaos.monitor_spec: two probes on the history, polled every 0.1 s."""
    probes = [Probe(name="requests", query=REQUESTS_RATE, tolerance=Tolerance(type="range", min=0.0)),
              Probe(name="errors", query='sum(rate(game_action_requests_total{code!="200"}[15m]))',
                    tolerance=Tolerance(type="range", min=0.0))]
    return {"mode": "monitor", "run_id": "manual__auth", "experiment": "gs-auth-check",
            "probes": [p.model_dump() for p in probes],
            "abort": AbortRules(consecutive_failures=2, no_data="abort").model_dump(), "baselines": {},
            "started_at": time.time(), "duration_s": duration_s, "interval_s": 0.1, "burn_queries": {},
            "kill_switch_variable": "gamesre_chaos_kill_switch"}


def first_event(trigger: CanaryAnalysisTrigger | ChaosMonitorTrigger, limit_s: float = 20) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        events = trigger.run()
        try:
            return (await asyncio.wait_for(events.__anext__(), timeout=limit_s)).payload
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    event = asyncio.run(run())
    json.dumps(event, allow_nan=False)  # the triggerer stores it as JSON
    assert_no_secret(event, trigger.serialize())
    return event


def test_the_canary_analysis_reads_both_cohorts_through_the_secured_prometheus(stack: Secured) -> None:
    trigger = CanaryAnalysisTrigger(canary_spec(), prometheus_conn_id="prom_secure")
    assert trigger.serialize()[1]["prometheus_conn_id"] == "prom_secure"  # the id, never what it holds

    event = first_event(trigger)

    assert (event["decision"], event["errors"]) == ("pass", 0), event["reason"]
    for verdict in event["slis"]:
        assert verdict["candidate"].get("total", 0) > 0 and verdict["baseline"].get("total", 0) > 0, verdict


def test_the_canary_analysis_with_a_wrong_password_never_passes_and_says_why(stack: Secured) -> None:
    event = first_event(CanaryAnalysisTrigger(canary_spec(), prometheus_conn_id="prom_wrong_password"))

    assert event["decision"] == "timed_out"
    assert event["errors"] == event["polls"] * len(event["slis"])
    for verdict in event["slis"]:
        assert ("Prometheus (connection prom_wrong_password) refused the credentials: HTTP 401 (Unauthorized)"
                in verdict["reason"])


def test_the_chaos_monitor_reads_its_probes_through_the_secured_prometheus(stack: Secured) -> None:
    event = first_event(ChaosMonitorTrigger(monitor_spec(), prometheus_conn_id="prom_secure"))

    assert (event["outcome"], event["errors"]) == ("completed", 0), event["reason"]
    for probe in ("requests", "errors"):
        assert event["samples"][probe] and all(value is not None for _, value, _ in event["samples"][probe])
    assert event["samples"]["requests"][0][1] > 0


def test_the_chaos_monitor_with_a_stranger_ca_aborts_on_no_data_naming_the_tls_failure(stack: Secured) -> None:
    event = first_event(ChaosMonitorTrigger(monitor_spec(duration_s=30), prometheus_conn_id="prom_stranger_ca"))

    assert event["outcome"] == "aborted"
    assert ("Prometheus (connection prom_stranger_ca) TLS verification failed: unable to get local issuer "
            "certificate") in event["reason"]


# --- a multi-tenant gateway: bearer token, X-Scope-OrgID, a path prefix ------------------------------------------


@pytest.mark.parametrize("conn_id", ["prom_mimir", "prom_mimir_prefix"])
def test_queries_through_the_gateway_carry_the_token_and_the_tenant(stack: Secured, conn_id: str) -> None:
    client = PrometheusHook(conn_id).get_conn()
    before = len(stack.gateway.tenants)

    assert client.scalar(REQUESTS_RATE, HISTORY_END) > 0
    assert client.build_info()["version"]
    assert stack.gateway.tenants[before:] == [TENANT, TENANT]


def test_the_chaos_monitor_goes_through_the_gateway_with_the_token_and_the_tenant(stack: Secured) -> None:
    before = len(stack.gateway.tenants)

    event = first_event(ChaosMonitorTrigger(monitor_spec(), prometheus_conn_id="prom_mimir"))

    assert (event["outcome"], event["errors"]) == ("completed", 0), event["reason"]
    assert set(stack.gateway.tenants[before:]) == {TENANT}


def test_without_the_tenant_header_the_gateway_refuses_and_the_error_says_so(stack: Secured) -> None:
    client = PrometheusHook("prom_mimir_no_tenant").get_conn()

    with pytest.raises(PrometheusAccessError) as err:
        client.query(REQUESTS_RATE, HISTORY_END)

    assert str(err.value) == ("Prometheus (connection prom_mimir_no_tenant) refused the credentials: HTTP 401 "
                              "(no org id)")


# --- maintenance silences through Alertmanager's mutual TLS and basic auth --------------------------------------


def test_maintenance_silences_are_made_and_expired_through_the_secured_alertmanager(stack: Secured) -> None:
    am = AlertmanagerHook("am_secure").get_conn()
    window = f"mw-auth-{uuid.uuid4().hex[:8]}"
    matchers = [str(m) for m in load_services().get("game-server").matchers]
    starts, ends = datetime.now(UTC), datetime.now(UTC) + timedelta(hours=1)

    created = am.ensure_silence(window, matchers, starts, ends, "gamesre", "maintenance (auth test)")
    again = am.ensure_silence(window, matchers, starts, ends, "gamesre", "maintenance (auth test)")
    expired = am.expire_window_silences(window)

    assert (created.action, again.action) == ("created", "reused")
    assert again.silence.id == created.silence.id and created.silence.live
    assert expired == [created.silence.id]
    assert am.silence(created.silence.id).state == "expired"
    assert_no_secret(asdict(created), asdict(again))


@pytest.mark.parametrize(("conn_id", "expected"), [
    ("am_wrong_password", "Alertmanager (connection am_wrong_password) refused the credentials: HTTP 401 "
                          "(Unauthorized)"),
    ("am_no_client_certificate", "Alertmanager (connection am_no_client_certificate) TLS verification failed: "),
])
def test_alertmanager_refusals_are_one_sentence_naming_the_connection(stack: Secured, conn_id: str,
                                                                      expected: str) -> None:
    am = AlertmanagerHook(conn_id).get_conn()

    with pytest.raises(AlertmanagerAccessError) as err:
        am.silences(window_id="mw-none")

    assert str(err.value).startswith(expected)
    assert_alone(err.value)


