"""How this project reaches one outside HTTP API (Prometheus, Alertmanager): the base URL with any path prefix,
the credentials, TLS and extra headers, described once and turned into the sessions that use them (`requests`
for the clients, `aiohttp` for the triggers), with error texts that name the endpoint and never a secret.

An endpoint comes from a connection's fields (`endpoint_from_fields`, read the way Airflow's HTTP connections
are; the Airflow hooks hand a connection's fields over) or from a plain URL (`HttpEndpoint.from_url`: the CLI,
the tests, the benchmarks). Settings that cannot work, or that could mean two things, are refused with
`EndpointSettingsError`, naming the connection and the field.

Secrets (the password, the token, an Authorization header) live only in fields that repr() leaves out; text that
could carry one back (a server's error body, a library's exception) goes through `scrub` before it is shown.
"""
from __future__ import annotations

import base64
import json
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

if TYPE_CHECKING:
    import aiohttp
    from urllib3.util.retry import Retry

EXTRA_FIELDS = ("token", "bearer_token", "verify", "ca_bundle", "cert", "key", "headers", "path_prefix")
ACCESS_DENIED = (401, 403)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token


class EndpointSettingsError(ValueError):
    """A connection's settings cannot describe an endpoint; the message names the connection and the field."""


@dataclass(frozen=True)
class HttpEndpoint:
    """One HTTP API: `base_url` (scheme, host, port and path prefix; never credentials) and how to talk to it.

    `verify` False turns certificate checks off; `ca_bundle` is a PEM file of the CAs to trust instead of the
    system's; `client_cert` (and `client_key` when the key is in a file of its own) a client certificate.
    """

    system: str  # what it is, for messages: Prometheus, Alertmanager
    base_url: str
    conn_id: str | None = None  # the connection it was read from, named in every message
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    verify: bool = True
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_url(cls, system: str, url: str) -> HttpEndpoint:
        """An endpoint from a URL; a user and password in it become basic auth and leave the URL."""
        parts = urlsplit(url.strip())
        auth = None
        if parts.username is not None:
            auth = (unquote(parts.username), unquote(parts.password or ""))
        netloc = parts.netloc.rpartition("@")[2]
        base = urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")).rstrip("/")
        return cls(system, base, basic_auth=auth)

    @classmethod
    def of(cls, system: str, target: HttpEndpoint | str) -> HttpEndpoint:
        """`target` itself, or the endpoint of a URL: what a client takes."""
        return target if isinstance(target, HttpEndpoint) else cls.from_url(system, target)

    # --- naming, for messages and logs ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """`Prometheus (connection prometheus_default)`, or `Prometheus at http://...` without a connection."""
        return f"{self.system} (connection {self.conn_id})" if self.conn_id else f"{self.system} at {self.base_url}"

    @property
    def label(self) -> str:
        """`Prometheus (connection prometheus_default)`, or just `Prometheus` (for texts that give the URL apart)."""
        return f"{self.system} (connection {self.conn_id})" if self.conn_id else self.system

    @property
    def has_credentials(self) -> bool:
        return bool(self.basic_auth or self.bearer_token
                    or any(k.lower() == "authorization" for k in self.headers))

    def describe(self) -> str:
        """What is used, for a log line: the URL, the kind of auth, the TLS files and the header names; never a
        secret or a header's value."""
        parts = [f"{self.name}: {self.base_url}"]
        if self.basic_auth:
            parts.append(f"basic auth as {self.basic_auth[0]!r}")
        if self.bearer_token:
            parts.append("bearer token")
        if not self.verify:
            parts.append("TLS certificates NOT verified")
        if self.ca_bundle:
            parts.append(f"CA bundle {self.ca_bundle}")
        if self.client_cert:
            parts.append(f"client certificate {self.client_cert}")
        if self.headers:
            parts.append("headers " + ", ".join(sorted(self.headers)))
        return "; ".join(parts)

    def url(self, path: str) -> str:
        """The URL of an API path, e.g. url("/api/v1/query"), below the base URL (and its path prefix)."""
        return f"{self.base_url}/{path.lstrip('/')}"

    # --- secrets kept out of text -----------------------------------------------------------------------------
    def _secrets(self) -> list[str]:
        found: list[str] = []
        if self.basic_auth:
            login, password = self.basic_auth
            found += [password, quote(password, safe=""), _basic_credentials(login, password)]
        if self.bearer_token:
            found.append(self.bearer_token)
        for name, value in self.headers.items():
            if name.lower() == "authorization":
                found += [value, value.partition(" ")[2]]
        return sorted({s for s in found if s}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """`text` with every secret of this endpoint replaced by ***."""
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    # --- what went wrong, in one sentence ---------------------------------------------------------------------
    def refused(self, status: int, detail: str = "") -> str:
        """The text for an HTTP 401 or 403: the credentials were refused (or there were none to send)."""
        what = ("refused the credentials" if self.has_credentials
                else "asks for credentials, and the connection has none")
        short = " ".join(detail.split())[:200]
        return self.scrub(f"{self.name} {what}: HTTP {status}" + (f" ({short})" if short else ""))

    def tls_failed(self, exc: BaseException) -> str:
        """The text for a TLS failure (an unknown CA, a name mismatch, a client certificate refused)."""
        hint = "" if self.ca_bundle or not self.verify else " (a private CA? set ca_bundle in the connection's extra)"
        return self.scrub(f"{self.name} TLS verification failed: {tls_reason(exc)}{hint}")

    # --- the sessions -----------------------------------------------------------------------------------------
    def request_headers(self) -> dict[str, str]:
        """The headers every request carries: the extra headers and, with a token, the bearer Authorization."""
        headers = dict(self.headers)
        if self.bearer_token:
            headers["Authorization"] = f"Bearer {self.bearer_token}"
        return headers

    def requests_session(self, retry: Retry | None = None) -> requests.Session:
        """A `requests` session with this endpoint's auth, headers and TLS settings (and `retry` when given)."""
        session = EndpointSession()
        session.headers.update(self.request_headers())
        if self.basic_auth:
            session.auth = self.basic_auth
        session.verify = self.ca_bundle or self.verify
        if self.client_cert:
            session.cert = (self.client_cert, self.client_key) if self.client_key else self.client_cert
        if retry is not None:
            session.mount("http://", HTTPAdapter(max_retries=retry))
            session.mount("https://", HTTPAdapter(max_retries=retry))
        return session

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What aiohttp takes as `ssl`: False when verification is off, else a context with the CA bundle and the
        client certificate (True, aiohttp's default, when there is nothing to add)."""
        if not self.verify:
            return False
        if not (self.ca_bundle or self.client_cert):
            return True
        context = ssl.create_default_context(cafile=self.ca_bundle)
        if self.client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context

    async def aiohttp_session(self) -> aiohttp.ClientSession:
        """An aiohttp session with this endpoint's auth, headers and TLS settings (its files read off the event
        loop); the caller closes it (`async with`)."""
        import asyncio

        import aiohttp

        tls = await asyncio.to_thread(self.ssl_context)
        headers = self.request_headers()
        if self.basic_auth:
            headers["Authorization"] = f"Basic {_basic_credentials(*self.basic_auth)}"
        return aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(ssl=tls))


def _basic_credentials(login: str, password: str) -> str:
    """What follows `Basic ` in the Authorization header (RFC 7617, UTF-8)."""
    return base64.b64encode(f"{login}:{password}".encode()).decode()


class EndpointSession(requests.Session):
    """A session whose certificate checks are the endpoint's own: requests lets REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE
    replace a session's CA bundle, or turn verify=False back on, for every request that does not repeat `verify`
    (psf/requests#3829)."""

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> Any:  # requests' settings dict
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:
            settings["verify"] = self.verify
        return settings


def tls_reason(exc: BaseException) -> str:
    """The TLS library's own reason behind an exception of requests, urllib3 or aiohttp (which wrap it)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    fallback = ""
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if getattr(e, "verify_message", None):  # ssl.SSLCertVerificationError; aiohttp's subclasses lack it
            return str(getattr(e, "verify_message"))  # noqa: B009
        if isinstance(e, ssl.SSLError) and not fallback:  # e.g. TLSV13_ALERT_CERTIFICATE_REQUIRED
            reason = getattr(e, "reason", None)
            fallback = str(reason).lower().replace("_", " ") if isinstance(reason, str) else str(e)
        nested = [*e.args, e.__cause__, e.__context__,
                  *(getattr(e, a, None) for a in ("reason", "certificate_error", "os_error"))]
        todo.extend(n for n in nested if isinstance(n, BaseException))
    return fallback or f"{type(exc).__name__}: {exc}"


# --- a connection's fields, read into an endpoint --------------------------------------------------------------


def endpoint_from_fields(system: str, conn_id: str, *, host: str | None, port: int | None = None,
                         schema: str | None = None, login: str | None = None, password: str | None = None,
                         extra: str | Mapping[str, Any] | None = None) -> HttpEndpoint:
    """An endpoint from an HTTP-style connection: `host` a name (with `schema` http or https and `port`) or a full
    URL with an optional path prefix; `login`/`password` basic auth; the extra's fields as EXTRA_FIELDS lists them
    (docs/connections.md). Anything ambiguous or broken raises EndpointSettingsError naming the field."""
    reader = _Reader(system, conn_id)
    options = reader.extra_fields(extra)
    base_url = reader.base_url(host, port, schema, options.get("path_prefix"))
    https = base_url.startswith("https://")
    basic_auth, token = reader.credentials(login, password, options)
    headers = reader.headers(options.get("headers"), has_auth=bool(basic_auth or token))
    verify = reader.verify(options.get("verify"))
    ca_bundle = reader.existing_file(options.get("ca_bundle"), "extra.ca_bundle")
    cert = reader.existing_file(options.get("cert"), "extra.cert")
    key = reader.existing_file(options.get("key"), "extra.key")
    tls_given = [f"extra.{name}" for name, value in (("ca_bundle", ca_bundle), ("cert", cert), ("key", key)) if value]
    if tls_given and not https:
        reader.refuse(", ".join(tls_given), "TLS settings need an https:// endpoint, and this one is "
                                            f"{base_url.partition(':')[0]}://")
    if ca_bundle and not verify:
        reader.refuse("extra.verify", "verify is false and a ca_bundle is given: either verify with the CA bundle "
                                      "or do not verify at all")
    if key and not cert:
        reader.refuse("extra.key", "a client key without a client certificate (extra.cert)")
    if ca_bundle:
        reader.check_tls(lambda: ssl.create_default_context(cafile=ca_bundle), "extra.ca_bundle",
                         f"{ca_bundle} is not a PEM file of CA certificates")
    if cert:
        reader.check_tls(lambda: ssl.create_default_context().load_cert_chain(cert, key), "extra.cert",
                         f"the client certificate {cert}" + (f" and key {key}" if key else "")
                         + " cannot be loaded (a PEM certificate, with its private key in extra.key or in the same "
                           "file)")
    return HttpEndpoint(system, base_url, conn_id, basic_auth=basic_auth, bearer_token=token, verify=verify,
                        ca_bundle=ca_bundle, client_cert=cert, client_key=key, headers=headers)


@dataclass(frozen=True)
class _Reader:
    """Reads one connection's fields; every refusal names the connection and the field."""

    system: str
    conn_id: str

    def refuse(self, where: str, why: str) -> NoReturn:
        raise EndpointSettingsError(f"{self.system} connection {self.conn_id!r}: {where}: {why}")

    def extra_fields(self, extra: str | Mapping[str, Any] | None) -> dict[str, Any]:
        if extra is None or extra == "":
            return {}
        if isinstance(extra, str):
            try:
                extra = json.loads(extra)
            except json.JSONDecodeError as exc:  # the message says where, never the text (it may hold a token)
                self.refuse("extra", f"not JSON ({exc.msg} at character {exc.pos})")
        if not isinstance(extra, Mapping):
            self.refuse("extra", f"must be a JSON object, got a {_json_kind(extra)}")
        options = dict(extra)
        unknown = sorted(set(options) - set(EXTRA_FIELDS))
        if unknown:
            self.refuse("extra", f"unknown field(s) {', '.join(unknown)}; the known ones are {', '.join(EXTRA_FIELDS)}")
        return options

    def base_url(self, host: str | None, port: int | None, schema: str | None, path_prefix: Any) -> str:
        host = (host or "").strip()
        if not host:
            self.refuse("host", "empty: give the server's host name, or its full URL (https://prometheus.example/prefix)")
        if port is not None and not (isinstance(port, int) and 0 < port < 65536):
            self.refuse("port", f"{port!r} is not a TCP port (1-65535)")
        schema = (schema or "").strip().lower() or None
        if schema is not None and schema not in ("http", "https"):
            self.refuse("schema", f"{schema!r}: the schema of an HTTP connection is its scheme, http or https")
        prefix = self.path_prefix(path_prefix)
        if "://" not in host:
            if any(c in host for c in "/@?#"):
                self.refuse("host", "a host name only, or a full URL starting with http:// or https://")
            netloc = f"[{host}]" if ":" in host and not host.startswith("[") else host
            return f"{schema or 'http'}://{netloc}" + (f":{port}" if port else "") + prefix
        parts = urlsplit(host)
        if parts.scheme not in ("http", "https"):
            self.refuse("host", f"the URL's scheme is {parts.scheme!r}; only http and https are possible")
        if "@" in host:  # also a password with an unencoded / in it, which urlsplit reads as a path
            self.refuse("host", "the URL carries credentials: put the user in login and the password in password")
        if parts.query or parts.fragment:
            self.refuse("host", "the URL has a query or fragment; give the base URL only")
        if not parts.hostname:
            self.refuse("host", "the URL has no host name")
        if schema is not None and schema != parts.scheme:
            self.refuse("schema", f"{schema!r}, but the host URL says {parts.scheme}://: leave one of them out")
        try:
            url_port = parts.port
        except ValueError:
            self.refuse("host", "the URL's port is not a number from 1 to 65535")
        netloc = parts.netloc
        if port is not None:
            if url_port is not None and url_port != port:
                self.refuse("port", f"{port}, but the host URL says port {url_port}: leave one of them out")
            netloc = f"{parts.netloc}:{port}" if url_port is None else netloc
        path = parts.path.rstrip("/")
        if path and prefix:
            self.refuse("extra.path_prefix", f"given, and the host URL has a path ({path}) too: leave one of them out")
        return f"{parts.scheme}://{netloc}{path or prefix}"

    def path_prefix(self, value: Any) -> str:
        if value is None or value == "":
            return ""
        if not isinstance(value, str) or any(c in value for c in "?#@ ") or "://" in value:
            self.refuse("extra.path_prefix", "a URL path such as /prometheus (no scheme, host, query or spaces)")
        return "/" + value.strip("/") if value.strip("/") else ""

    def credentials(self, login: str | None, password: str | None,
                    options: Mapping[str, Any]) -> tuple[tuple[str, str] | None, str | None]:
        tokens = [name for name in ("token", "bearer_token") if options.get(name) not in (None, "")]
        if len(tokens) > 1:
            self.refuse("extra", "both token and bearer_token are given: keep one")
        token = options.get(tokens[0]) if tokens else None
        if token is not None and (not isinstance(token, str) or token != token.strip() or not token):
            self.refuse(f"extra.{tokens[0]}", "must be the token itself, a string without surrounding spaces")
        if login and token:
            self.refuse("login", f"both login/password (basic auth) and extra.{tokens[0]} (a bearer token) are "
                                 "given: a request carries one Authorization, keep one of them")
        if password and not login:
            self.refuse("password", "a password without a login: for a bearer token use extra.token")
        if login and not password:
            self.refuse("password", f"login {login!r} has no password")
        return ((login, password) if login and password else None), token

    def headers(self, value: Any, *, has_auth: bool) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.refuse("extra.headers", f"must be a JSON object of header names to values "
                                         f'(e.g. {{"X-Scope-OrgID": "game"}}), got a {_json_kind(value)}')
        headers: dict[str, str] = {}
        seen: set[str] = set()
        for name, header_value in value.items():
            if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
                self.refuse("extra.headers", f"{name!r} is not a header name")
            if name.lower() in seen:
                self.refuse("extra.headers", f"{name} is given twice (header names ignore case)")
            seen.add(name.lower())
            if not isinstance(header_value, str) or any(c in header_value for c in "\r\n\0"):
                self.refuse(f"extra.headers.{name}", "the value must be a string on one line")
            if name.lower() == "authorization" and has_auth:
                self.refuse(f"extra.headers.{name}", "an Authorization header next to login/password or a token: "
                                                     "keep one of them")
            headers[name] = header_value
        return headers

    def verify(self, value: Any) -> bool:
        if value is None:
            return True
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        self.refuse("extra.verify", f"must be true or false, got {value!r} (a CA file goes in extra.ca_bundle)")

    def existing_file(self, value: Any, where: str) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.refuse(where, f"must be a file path, got a {_json_kind(value)}")
        if not os.path.isfile(value):
            self.refuse(where, f"{value}: {'not a file' if os.path.exists(value) else 'no such file'}")
        return str(value)

    def check_tls(self, load: Any, where: str, what: str) -> None:
        try:
            load()
        except (ssl.SSLError, OSError) as exc:
            self.refuse(where, f"{what}: {exc}")


def _json_kind(value: Any) -> str:
    kinds = {str: "string", bool: "boolean", int: "number", float: "number", list: "list", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)
