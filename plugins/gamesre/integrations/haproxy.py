"""HAProxy runtime API client (stdlib sockets): weights, server states, stats and dynamic servers.

Talks to a `stats socket ipv4@HOST:PORT level admin` in non-interactive mode: one connection per command,
HAProxy answers and closes. Every answer HAProxy gives instead of the expected one raises `HAProxyError`
carrying HAProxy's own message and the command that was sent; an unreachable socket raises
`HAProxyConnectionError` naming the address.
"""
from __future__ import annotations

import csv
import io
import re
import socket
import time
from dataclasses import dataclass, field

from gamesre.core.errors import OutsideSystemError

SERVER_STATES = ("ready", "drain", "maint")
MAX_WEIGHT = 256
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # also keeps ';' and newlines (command separators) out
_WEIGHT_ANSWER = re.compile(r"^(\d+) \(initial (\d+)\)$")
# `show stat` type codes
_STAT_TYPES = {"0": "frontend", "1": "backend", "2": "server", "3": "listener"}


class HAProxyError(OutsideSystemError):
    """HAProxy refused or failed a runtime API command."""

    def __init__(self, message: str, command: str):
        super().__init__(f"HAProxy: {message} (command: {command!r})")
        self.message = message
        self.command = command


class HAProxyConnectionError(HAProxyError, ConnectionError):
    """The runtime API socket could not be reached."""


@dataclass(frozen=True)
class StatRow:
    """One row of `show stat`: a frontend, backend, server or listener with its main counters."""

    proxy: str  # pxname: the frontend or backend
    name: str  # svname: the server name, or FRONTEND / BACKEND
    type: str  # frontend | backend | server | listener
    status: str  # e.g. UP, DOWN, MAINT, DRAIN, "UP 1/2" while changing, OPEN for frontends
    weight: int
    current_sessions: int
    total_sessions: int
    check_status: str  # e.g. L7OK, L7STS, L4CON; empty without checks
    address: str  # servers only: host:port
    raw: dict[str, str] = field(repr=False, compare=False)  # every column as HAProxy sent it


def _int(text: str) -> int:
    return int(text) if text.strip().lstrip("-").isdigit() else 0


def parse_stat_csv(text: str) -> list[StatRow]:
    """Parse the CSV of `show stat` (header line starting with '# ')."""
    if not text.startswith("# "):
        raise ValueError("not the CSV output of `show stat`")
    reader = csv.DictReader(io.StringIO(text[2:]))
    rows = []
    for rec in reader:
        if not rec.get("pxname"):
            continue
        rows.append(StatRow(
            proxy=rec["pxname"],
            name=rec["svname"],
            type=_STAT_TYPES.get(rec.get("type", ""), rec.get("type", "")),
            status=rec.get("status", ""),
            weight=_int(rec.get("weight", "")),
            current_sessions=_int(rec.get("scur", "")),
            total_sessions=_int(rec.get("stot", "")),
            check_status=rec.get("check_status", "") or "",
            address=rec.get("addr", "") or "",
            raw={k: v or "" for k, v in rec.items() if k},
        ))
    return rows


class HAProxyRuntime:
    """A client of one HAProxy runtime API socket."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9999, timeout: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    # --- transport -----------------------------------------------------------------------------------------
    def command(self, command: str) -> str:
        """Send one command and return HAProxy's whole answer (no interpretation)."""
        address = f"{self.host}:{self.port}"
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
                sock.sendall(command.encode() + b"\n")
                chunks = []
                while True:
                    data = sock.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
        except ConnectionRefusedError:
            raise HAProxyConnectionError(
                f"connection refused by the runtime API at {address} (is haproxy running with "
                f"`stats socket ipv4@{address} level admin`?)", command) from None
        except TimeoutError:
            raise HAProxyConnectionError(f"no answer from the runtime API at {address} within {self.timeout}s",
                                         command) from None
        except OSError as exc:
            raise HAProxyConnectionError(f"cannot talk to the runtime API at {address}: {exc}", command) from None
        return b"".join(chunks).decode(errors="replace")

    def _expect_empty(self, command: str) -> None:
        answer = self.command(command).strip()
        if answer:
            raise HAProxyError(answer, command)

    @staticmethod
    def _target(backend: str, server: str) -> str:
        for what, name in (("backend", backend), ("server", server)):
            if not _NAME.match(name):
                raise ValueError(f"invalid {what} name {name!r}: letters, digits and _ . : - only")
        return f"{backend}/{server}"

    # --- weights and states --------------------------------------------------------------------------------
    def set_weight(self, backend: str, server: str, weight: int) -> None:
        """Set a server's weight (0..256); 0 keeps it up and checked but sends it no new traffic."""
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise ValueError(f"weight must be an integer in 0..{MAX_WEIGHT}, got {weight!r}")
        self._expect_empty(f"set server {self._target(backend, server)} weight {weight}")

    def get_weight(self, backend: str, server: str) -> int:
        """The server's current weight."""
        command = f"get weight {self._target(backend, server)}"
        answer = self.command(command).strip()
        match = _WEIGHT_ANSWER.match(answer)
        if match is None:
            raise HAProxyError(answer or "empty answer", command)
        return int(match.group(1))

    def set_server_state(self, backend: str, server: str, state: str) -> None:
        """ready: takes traffic; drain: finishes current sessions, takes no new ones; maint: fully out."""
        if state not in SERVER_STATES:
            raise ValueError(f"state must be one of {', '.join(SERVER_STATES)}, got {state!r}")
        self._expect_empty(f"set server {self._target(backend, server)} state {state}")

    # --- stats ---------------------------------------------------------------------------------------------
    def show_stat(self) -> list[StatRow]:
        """Every frontend, backend and server row of `show stat`."""
        return self._stat("show stat")

    def show_servers(self, backend: str) -> list[StatRow]:
        """The server rows of one backend."""
        if not _NAME.match(backend):
            raise ValueError(f"invalid backend name {backend!r}")
        return [r for r in self._stat(f"show stat {backend} 4 -1") if r.type == "server"]

    def server(self, backend: str, server: str) -> StatRow:
        """The stat row of one server; HAProxyError when the backend has no such server."""
        for row in self.show_servers(backend):
            if row.name == server:
                return row
        raise HAProxyError("No such server.", f"show stat {backend} 4 -1")

    def _stat(self, command: str) -> list[StatRow]:
        answer = self.command(command)
        if not answer.startswith("# pxname"):
            raise HAProxyError(answer.strip() or "empty answer", command)
        return parse_stat_csv(answer)

    # --- dynamic servers -----------------------------------------------------------------------------------
    def add_server(self, backend: str, name: str, addr: str, port: int, weight: int = 100, *,
                   check: bool = True, check_options: str = "inter 1s fall 2 rise 2") -> None:
        """Add a server to a running backend and put it in service (health-checked unless check=False).

        HAProxy creates dynamic servers in maintenance, without health checks and without the backend's
        `default-server` settings, so this passes the check timings explicitly, enables the health check,
        then enables the server.
        """
        target = self._target(backend, name)
        if not re.match(r"^[0-9A-Za-z.:\[\]-]{1,255}$", addr):
            raise ValueError(f"invalid address {addr!r}")
        if not 0 < port < 65536:
            raise ValueError(f"invalid port {port}")
        if isinstance(weight, bool) or not 0 <= weight <= MAX_WEIGHT:
            raise ValueError(f"weight must be an integer in 0..{MAX_WEIGHT}, got {weight!r}")
        command = f"add server {target} {addr}:{port} weight {weight}"
        if check:
            command += f" check {check_options}"
        answer = self.command(command).strip()
        if answer != "New server registered.":
            raise HAProxyError(answer or "empty answer", command)
        if check:
            self._expect_empty(f"enable health {target}")
        self._expect_empty(f"enable server {target}")

    def del_server(self, backend: str, name: str, *, wait: float = 10.0) -> None:
        """Put a server in maintenance and delete it, waiting up to `wait` s for its connections to close."""
        target = self._target(backend, name)
        self.set_server_state(backend, name, "maint")
        command = f"del server {target}"
        deadline = time.monotonic() + wait
        while True:
            answer = self.command(command).strip()
            if answer == "Server deleted.":
                return
            still_busy = "connection" in answer.lower() or "queue" in answer.lower()
            if not still_busy or time.monotonic() >= deadline:
                raise HAProxyError(answer or "empty answer", command)
            time.sleep(0.2)
