"""Airflow connections read into HTTP endpoints (gamesre.airflow.hooks.http_endpoint over
gamesre.integrations.http_endpoint): every field, every refusal, and what the endpoint builds from them."""
from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Connection

from gamesre.airflow.hooks.http_endpoint import aendpoint_for, endpoint_from_connection
from gamesre.airflow.hooks.prometheus import PrometheusHook
from gamesre.airflow.triggers.analysis import CanaryAnalysisTrigger
from gamesre.airflow.triggers.chaos import ChaosMonitorTrigger
from gamesre.integrations.alertmanager import AlertmanagerClient
from gamesre.integrations.http_endpoint import EndpointSettingsError, HttpEndpoint, tls_reason
from gamesre.integrations.prometheus import PrometheusClient
from tests.pki import Issued, PrivateCA

PASSWORD = "pa55:w/rd-é"  # a test's, with characters that URLs and headers encode
TOKEN = "glc_eyJrIjoiZ2FtZXNyZSJ9"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[PrivateCA, Issued]:
    ca = PrivateCA(tmp_path_factory.mktemp("pki"), "unit")
    return ca, ca.issue("client", server=False)


def conn(conn_id: str = "prometheus_default", **fields: Any) -> Connection:
    extra = fields.pop("extra", None)
    return Connection(conn_id=conn_id, conn_type="http",
                      extra=json.dumps(extra) if isinstance(extra, dict | list) else extra, **fields)


def endpoint(**fields: Any) -> HttpEndpoint:
    return endpoint_from_connection(conn(**fields), "Prometheus")


def refused(**fields: Any) -> str:
    with pytest.raises(EndpointSettingsError) as err:
        endpoint(**fields)
    return str(err.value)


# --- the URL: host, schema, port, path prefix ----------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "base_url"), [
    ({"host": "prometheus"}, "http://prometheus"),
    ({"host": "prometheus", "port": 9090, "schema": "http"}, "http://prometheus:9090"),
    ({"host": "prom.example", "port": 9443, "schema": "HTTPS"}, "https://prom.example:9443"),
    ({"host": "::1", "port": 9090}, "http://[::1]:9090"),
    ({"host": "https://mimir.example/prometheus/"}, "https://mimir.example/prometheus"),
    ({"host": "https://mimir.example", "port": 8443}, "https://mimir.example:8443"),
    ({"host": "https://mimir.example:8443/prometheus", "port": 8443, "schema": "https"},
     "https://mimir.example:8443/prometheus"),
    ({"host": "mimir.example", "schema": "https", "extra": {"path_prefix": "prometheus/"}},
     "https://mimir.example/prometheus"),
    ({"host": "https://mimir.example", "extra": {"path_prefix": "/alertmanager"}}, "https://mimir.example/alertmanager"),
    ({"host": "  prometheus  ", "extra": ""}, "http://prometheus"),
])
def test_the_base_url_comes_from_the_host_schema_port_and_path_prefix(fields: dict[str, Any], base_url: str) -> None:
    found = endpoint(**fields)

    assert found.base_url == base_url
    assert found.url("/api/v1/query") == f"{base_url}/api/v1/query"
    assert found.name == "Prometheus (connection prometheus_default)"
    assert (found.basic_auth, found.bearer_token, found.verify, found.headers) == (None, None, True, {})


@pytest.mark.parametrize(("fields", "message"), [
    ({"host": ""}, "host: empty"),
    ({"host": "prom.example/prometheus"}, "host: a host name only, or a full URL"),
    ({"host": "ftp://prom.example"}, "host: the URL's scheme is 'ftp'"),
    ({"host": "https://prom.example/?tenant=game"}, "host: the URL has a query or fragment"),
    ({"host": "https://:9090"}, "host: the URL has no host name"),
    ({"host": "https://prom.example:http"}, "host: the URL's port is not a number"),
    ({"host": "prometheus", "schema": "postgres"}, "schema: 'postgres': the schema of an HTTP connection is its "
                                                   "scheme, http or https"),
    ({"host": "https://prom.example", "schema": "http"}, "schema: 'http', but the host URL says https://"),
    ({"host": "https://prom.example:9091", "port": 9090}, "port: 9090, but the host URL says port 9091"),
    ({"host": "prometheus", "port": 70000}, "port: 70000 is not a TCP port"),
    ({"host": "https://mimir.example/prometheus", "extra": {"path_prefix": "/other"}},
     "extra.path_prefix: given, and the host URL has a path (/prometheus) too"),
    ({"host": "mimir.example", "extra": {"path_prefix": "/prometheus?x=1"}}, "extra.path_prefix: a URL path"),
    ({"host": "mimir.example", "extra": {"path_prefix": 9}}, "extra.path_prefix: a URL path"),
])
def test_a_url_that_cannot_work_or_means_two_things_is_refused_naming_the_field(fields: dict[str, Any],
                                                                                 message: str) -> None:
    assert refused(**fields).startswith(f"Prometheus connection 'prometheus_default': {message}")


def test_credentials_in_the_host_url_are_refused_without_repeating_them() -> None:
    message = refused(host=f"https://gamesre:{PASSWORD}@prom.example")

    assert message == ("Prometheus connection 'prometheus_default': host: the URL carries credentials: put the user "
                       "in login and the password in password")
    assert PASSWORD not in message


# --- credentials -----------------------------------------------------------------------------------------------------


def test_login_and_password_are_basic_auth_kept_out_of_repr_and_text() -> None:
    found = endpoint(host="prometheus", login="gamesre", password=PASSWORD)

    assert found.basic_auth == ("gamesre", PASSWORD)
    assert found.has_credentials
    assert PASSWORD not in repr(found) and PASSWORD not in found.describe()
    assert found.describe() == "Prometheus (connection prometheus_default): http://prometheus; basic auth as 'gamesre'"


@pytest.mark.parametrize("field", ["token", "bearer_token"])
def test_a_token_is_a_bearer_authorization_header(field: str) -> None:
    found = endpoint(host="https://grafana.net/api/prom", extra={field: TOKEN})

    assert found.bearer_token == TOKEN
    assert found.request_headers() == {"Authorization": f"Bearer {TOKEN}"}
    assert TOKEN not in repr(found) and "bearer token" in found.describe() and TOKEN not in found.describe()


@pytest.mark.parametrize(("fields", "message"), [
    ({"login": "gamesre", "password": PASSWORD, "extra": {"token": TOKEN}},
     "login: both login/password (basic auth) and extra.token (a bearer token) are given"),
    ({"extra": {"token": TOKEN, "bearer_token": TOKEN}}, "extra: both token and bearer_token are given"),
    ({"extra": {"token": 12345}}, "extra.token: must be the token itself"),
    ({"extra": {"bearer_token": f" {TOKEN}"}}, "extra.bearer_token: must be the token itself"),
    ({"password": PASSWORD}, "password: a password without a login"),
    ({"login": "gamesre"}, "password: login 'gamesre' has no password"),
    ({"login": "gamesre", "password": PASSWORD, "extra": {"headers": {"authorization": "Basic x"}}},
     "extra.headers.authorization: an Authorization header next to login/password or a token"),
])
def test_ambiguous_or_half_credentials_are_refused_without_repeating_a_secret(fields: dict[str, Any],
                                                                               message: str) -> None:
    text = refused(host="prometheus", **fields)

    assert text.startswith(f"Prometheus connection 'prometheus_default': {message}")
    assert PASSWORD not in text and TOKEN not in text


# --- headers ---------------------------------------------------------------------------------------------------------


def test_headers_are_sent_and_described_by_name_only() -> None:
    found = endpoint(host="https://mimir.example/prometheus",
                     extra={"headers": {"X-Scope-OrgID": "game", "Authorization": f"ApiKey {TOKEN}"}})

    assert found.request_headers() == {"X-Scope-OrgID": "game", "Authorization": f"ApiKey {TOKEN}"}
    assert found.has_credentials
    assert found.describe().endswith("; headers Authorization, X-Scope-OrgID")
    assert "game" not in found.describe().split("; ")[-1] and TOKEN not in repr(found)
    assert found.scrub(f"echo: ApiKey {TOKEN} and {TOKEN}") == "echo: *** and ***"


@pytest.mark.parametrize(("headers", "message"), [
    (["X-Scope-OrgID", "game"], "extra.headers: must be a JSON object of header names to values "
                                '(e.g. {"X-Scope-OrgID": "game"}), got a list'),
    ('{"X-Scope-OrgID": "game"}', "extra.headers: must be a JSON object"),
    ({"X Scope OrgID": "game"}, "extra.headers: 'X Scope OrgID' is not a header name"),
    ({"X-Scope-OrgID": 7}, "extra.headers.X-Scope-OrgID: the value must be a string on one line"),
    ({"X-Scope-OrgID": "game\r\nX-Admin: 1"}, "extra.headers.X-Scope-OrgID: the value must be a string on one line"),
    ({"X-Scope-OrgID": "game", "x-scope-orgid": "ops"}, "extra.headers: x-scope-orgid is given twice"),
])
def test_headers_that_are_not_an_object_of_strings_are_refused(headers: Any, message: str) -> None:
    assert refused(host="prometheus", extra={"headers": headers}).startswith(
        f"Prometheus connection 'prometheus_default': {message}")


# --- TLS -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "verify"), [(False, False), ("false", False), (" TRUE ", True), (True, True)])
def test_verify_is_true_or_false(value: Any, verify: bool) -> None:
    found = endpoint(host="https://prom.example", extra={"verify": value})

    assert found.verify is verify
    assert found.ssl_context() is (True if verify else False)
    assert found.requests_session().verify is verify
    assert ("NOT verified" in found.describe()) is not verify


def test_a_private_ca_and_a_client_certificate_go_to_both_sessions(pki: tuple[PrivateCA, Issued]) -> None:
    ca, client = pki
    found = endpoint(host="https://prom.example", extra={"ca_bundle": str(ca.cert_file), "cert": str(client.cert),
                                                         "key": str(client.key)})

    assert (found.ca_bundle, found.client_cert, found.client_key) == (str(ca.cert_file), str(client.cert),
                                                                      str(client.key))
    session = found.requests_session()
    assert (session.verify, session.cert) == (str(ca.cert_file), (str(client.cert), str(client.key)))
    context = found.ssl_context()
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "unit test CA"),),)]
    assert found.describe().endswith(f"; CA bundle {ca.cert_file}; client certificate {client.cert}")


def test_a_client_certificate_and_key_in_one_file(pki: tuple[PrivateCA, Issued], tmp_path: Path) -> None:
    _, client = pki
    both = tmp_path / "client-and-key.pem"
    both.write_bytes(client.cert.read_bytes() + client.key.read_bytes())

    found = endpoint(host="https://prom.example", extra={"cert": str(both)})

    assert found.requests_session().cert == str(both)
    assert isinstance(found.ssl_context(), ssl.SSLContext)


def test_the_ca_bundle_holds_against_requests_ca_bundle_in_the_environment(pki: tuple[PrivateCA, Issued],
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    ca, _ = pki
    private = endpoint(host="https://prom.example", extra={"ca_bundle": str(ca.cert_file)}).requests_session()
    unverified = endpoint(host="https://prom.example", extra={"verify": False}).requests_session()
    system = endpoint(host="https://prom.example").requests_session()

    def verify(session: Any) -> Any:
        return session.merge_environment_settings("https://prom.example/api/v1/query", {}, None, None, None)["verify"]

    assert verify(private) == str(ca.cert_file)
    assert verify(unverified) is False
    assert verify(system) == "/etc/ssl/certs/ca-certificates.crt"  # nothing of its own: the environment's CAs


def test_tls_files_that_cannot_work_are_refused_naming_the_field(pki: tuple[PrivateCA, Issued],
                                                                 tmp_path: Path) -> None:
    ca, client = pki
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate\n")
    https = "https://prom.example"
    cases = [
        ({"host": https, "extra": {"ca_bundle": str(tmp_path / "missing.pem")}},
         f"extra.ca_bundle: {tmp_path / 'missing.pem'}: no such file"),
        ({"host": https, "extra": {"ca_bundle": str(tmp_path)}}, f"extra.ca_bundle: {tmp_path}: not a file"),
        ({"host": https, "extra": {"ca_bundle": ["a.pem"]}}, "extra.ca_bundle: must be a file path, got a list"),
        ({"host": https, "extra": {"ca_bundle": str(not_pem)}},
         f"extra.ca_bundle: {not_pem} is not a PEM file of CA certificates"),
        ({"host": https, "extra": {"verify": False, "ca_bundle": str(ca.cert_file)}},
         "extra.verify: verify is false and a ca_bundle is given"),
        ({"host": https, "extra": {"verify": "maybe"}}, "extra.verify: must be true or false, got 'maybe'"),
        ({"host": https, "extra": {"key": str(client.key)}}, "extra.key: a client key without a client certificate"),
        ({"host": https, "extra": {"cert": str(tmp_path / "none.pem")}}, "extra.cert: "),
        ({"host": https, "extra": {"cert": str(client.cert), "key": str(ca.cert_file)}},
         f"extra.cert: the client certificate {client.cert} and key {ca.cert_file} cannot be loaded"),
        ({"host": "prom.example", "extra": {"ca_bundle": str(ca.cert_file)}},
         "extra.ca_bundle: TLS settings need an https:// endpoint, and this one is http://"),
    ]
    for fields, message in cases:
        assert refused(**fields).startswith(f"Prometheus connection 'prometheus_default': {message}"), message


# --- the extra as a whole --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "message"), [
    (f'{{"token": "{TOKEN}",}}', "extra: not JSON (Expecting property name enclosed in double quotes at character"),
    ([1, 2], "extra: must be a JSON object, got a list"),
    ({"tokn": TOKEN, "verfy": False}, "extra: unknown field(s) tokn, verfy; the known ones are token, bearer_token, "
                                     "verify, ca_bundle, cert, key, headers, path_prefix"),
])
def test_an_extra_that_is_not_an_object_of_known_fields_is_refused(extra: Any, message: str) -> None:
    text = refused(host="prometheus", extra=extra)

    assert text.startswith(f"Prometheus connection 'prometheus_default': {message}")
    assert TOKEN not in text


# --- what the endpoint says, and keeps to itself ---------------------------------------------------------------------


def test_messages_name_the_connection_and_never_carry_a_secret() -> None:
    found = endpoint_from_connection(conn("prom_prod", host="https://prom.example", login="gamesre",
                                          password=PASSWORD), "Prometheus")
    bare = endpoint_from_connection(conn("prom_bare", host="https://prom.example"), "Prometheus")

    assert found.refused(401, "Unauthorized\n") == ("Prometheus (connection prom_prod) refused the credentials: "
                                                    "HTTP 401 (Unauthorized)")
    assert found.refused(403, f"  user gamesre with {PASSWORD}\n may not  " + "x" * 300).startswith(
        "Prometheus (connection prom_prod) refused the credentials: HTTP 403 (user gamesre with *** may not xxx")
    assert bare.refused(401) == ("Prometheus (connection prom_bare) asks for credentials, and the connection has "
                                 "none: HTTP 401")
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate in certificate chain"
    assert found.tls_failed(OSError(error)) == (
        "Prometheus (connection prom_prod) TLS verification failed: self-signed certificate in certificate chain "
        "(a private CA? set ca_bundle in the connection's extra)")
    basic = "Z2FtZXNyZTpwYTU1OncvcmQtw6k="  # base64 of gamesre:<PASSWORD>
    assert found.scrub(f"{PASSWORD} pa55%3Aw%2Frd-%C3%A9 Basic {basic}") == "*** *** Basic ***"


def test_the_tls_reason_is_the_tls_library_s_own() -> None:
    handshake = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required")
    handshake.reason = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    wrapped = ConnectionError("HTTPSConnectionPool(...)")
    wrapped.__context__ = handshake

    assert tls_reason(wrapped) == "tlsv13 alert certificate required"
    assert tls_reason(ValueError("odd")) == "ValueError: odd"


def test_a_url_with_credentials_keeps_them_out_of_the_url() -> None:
    found = HttpEndpoint.from_url("Prometheus", "https://gamesre:pa55%3Aw%2Frd-%C3%A9@prom.example:9090/prefix/")

    assert (found.base_url, found.basic_auth) == ("https://prom.example:9090/prefix", ("gamesre", PASSWORD))
    assert found.name == "Prometheus at https://prom.example:9090/prefix"
    assert PrometheusClient(found).url == AlertmanagerClient(found).url == "https://prom.example:9090/prefix"
    assert PrometheusClient("http://127.0.0.1:9090/").name == "Prometheus at http://127.0.0.1:9090"


# --- the hook and the triggers read the same connection -------------------------------------------------------


def test_the_hook_and_the_triggers_look_the_connection_up_by_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PROM_TENANT", json.dumps({
        "conn_type": "http", "host": "https://mimir.example/prometheus", "login": "gamesre", "password": PASSWORD,
        "extra": {"headers": {"X-Scope-OrgID": "game"}}}))

    from_hook = PrometheusHook("prom_tenant").endpoint()
    from_trigger = asyncio.run(aendpoint_for("prom_tenant", "Prometheus"))

    assert from_hook == from_trigger
    assert (from_hook.conn_id, from_hook.base_url, from_hook.headers) == (
        "prom_tenant", "https://mimir.example/prometheus", {"X-Scope-OrgID": "game"})


def test_the_analysis_trigger_never_stores_the_store_credentials() -> None:
    with pytest.raises(ValueError, match="sre_store_url must not carry credentials") as err:
        CanaryAnalysisTrigger({}, sre_store_url=f"postgresql+psycopg2://sre:{PASSWORD}@db/sre")
    assert PASSWORD not in str(err.value)


@pytest.mark.parametrize("trigger", [CanaryAnalysisTrigger, ChaosMonitorTrigger])
def test_a_trigger_never_stores_credentials(trigger: type[CanaryAnalysisTrigger | ChaosMonitorTrigger]) -> None:
    with pytest.raises(ValueError, match="prometheus_url must not carry credentials") as err:
        trigger({}, prometheus_url=f"https://gamesre:{PASSWORD}@prom.example")
    assert PASSWORD not in str(err.value)

    stored = trigger({}, prometheus_conn_id="prom_prod").serialize()[1]
    assert {k: v for k, v in stored.items() if not k.startswith("sre_store")} == {
        "spec": {}, "prometheus_conn_id": "prom_prod", "prometheus_url": None}
    assert stored.get("sre_store_url") is None
