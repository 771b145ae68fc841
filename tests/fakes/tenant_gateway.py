"""A stand-in for the gateway of a multi-tenant Prometheus (Grafana Mimir, Cortex) in front of a real Prometheus.

It serves under a path prefix (`/prometheus`, as Mimir does), answers HTTP 401 `no org id` to a request without
an `X-Scope-OrgID` header (Mimir's answer), and, when given a `bearer_token`, 401 to a request without
`Authorization: Bearer <token>`. Everything else goes to the upstream Prometheus with the prefix stripped and
the gateway's own upstream credentials, and the answer comes back as it is. `tenants` lists the X-Scope-OrgID
of every request it let through.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from demo.procs import free_port
from tests.fakes.serving import serving_in_background


class TenantGateway:
    def __init__(self, upstream: str, *, prefix: str = "/prometheus", upstream_auth: tuple[str, str] | None = None,
                 upstream_verify: bool | str = True, bearer_token: str | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.prefix = prefix
        self.tenants: list[str] = []
        self._upstream = requests.Session()
        self._upstream.auth = upstream_auth
        self._verify = upstream_verify  # given with each request: REQUESTS_CA_BUNDLE would override the session's
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.startswith(gateway.prefix + "/"):
                    self._send(404, "text/plain", b"404 page not found\n")
                    return
                tenant = self.headers.get("X-Scope-OrgID")
                if not tenant:
                    self._send(401, "text/plain", b"no org id\n")
                    return
                if bearer_token and self.headers.get("Authorization") != f"Bearer {bearer_token}":
                    self._send(401, "text/plain", b"authentication required\n")
                    return
                gateway.tenants.append(tenant)
                headers = {k: v for k, v in self.headers.items() if k.lower() == "content-type"}
                answer = gateway._upstream.request(self.command, gateway.upstream + self.path[len(gateway.prefix):],
                                                   headers=headers, data=body, verify=gateway._verify,
                                                   timeout=30)
                self._send(answer.status_code, answer.headers.get("Content-Type", "text/plain"), answer.content)

            def _send(self, status: int, content_type: str, raw: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                with contextlib.suppress(ConnectionError):
                    self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{prefix}"

    @contextlib.contextmanager
    def serving(self) -> Iterator[TenantGateway]:
        with self._upstream, serving_in_background(self.server):
            yield self
