"""Start, wait for and stop the real processes of the demo stack (shared by `make demo` and the test harness).

Every process runs in its own session (process group), logs to a file, and is stopped with SIGTERM to the
whole group, then SIGKILL after a grace period, so nothing it spawned is left behind.
"""
from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# What each binary is called and which Debian package brings it.
DEBIAN_PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "haproxy": "haproxy",
    "prometheus-node-exporter": "prometheus-node-exporter",
}


class StackError(RuntimeError):
    """A part of the stack could not start; the message is one line saying what to do."""


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        package = DEBIAN_PACKAGES.get(name, name)
        raise StackError(
            f"'{name}' is not installed: run `make debs` (or `sudo apt-get install {package}`) and try again"
        )
    return path


_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback port that is free now, chosen below the kernel's ephemeral range.

    Port 0 would hand out an ephemeral port, the same pool outgoing connections draw from: with Airflow,
    Prometheus and the load generator connecting all the time, one of them can take the port before the
    process meant to listen on it starts. Ports are also never handed out twice by one process.
    """
    lo, _ = _ephemeral_range()
    first, last = 15000, max(lo - 1, 15001)
    # GAMESRE_PORT_SLICE=i/n: only the i-th of n equal slices of the range, so that n test processes running
    # side by side (pytest -n) never pick the same port
    index, _, count = os.environ.get("GAMESRE_PORT_SLICE", "0/1").partition("/")
    if index.isdigit() and count.isdigit() and 0 <= int(index) < int(count):
        width = (last - first + 1) // int(count)
        first, last = first + int(index) * width, first + (int(index) + 1) * width - 1
    for _ in range(200):
        port = random.randint(first, last)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise StackError(f"no free loopback port found between {first} and {last}")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def ensure_port_free(port: int, what: str, env_var: str | None = None) -> None:
    if port_in_use(port):
        hint = f" or set {env_var} to another port" if env_var else ""
        raise StackError(f"port {port} for {what} is already in use: stop what holds it{hint}")


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback only)
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def tcp_open(host: str, port: int) -> Callable[[], bool]:
    return lambda: port_in_use(port, host)


def check_config(cmd: list[str], what: str) -> None:
    """Run a real validator (promtool, amtool, haproxy -c); a failure becomes one clear line."""
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit code {result.returncode}"
        raise StackError(f"{what} is invalid: {reason} (checked with: {' '.join(cmd)})")


@dataclass
class ManagedProcess:
    """One child process in its own process group, with its output in a log file."""

    name: str
    cmd: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        finally:
            log.close()
        return self

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def wait_ready(self, check: Callable[[], bool], timeout: float = 30.0, interval: float = 0.2) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise StackError(
                    f"{self.name} exited with code {self.proc.returncode} while starting: {self.log_tail()} "
                    f"(full log: {self.log_path})"
                )
            if check():
                return
            time.sleep(interval)
        raise StackError(f"{self.name} did not become ready within {timeout:.0f}s (log: {self.log_path})")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def group_alive(self) -> bool:
        """True while any process of the group (the leader or anything it spawned) still exists."""
        if self.proc is None:
            return False
        self.proc.poll()  # reap the leader so a zombie does not count as alive
        try:
            os.killpg(self.proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _wait_group_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.group_alive():
                return True
            time.sleep(0.1)
        return not self.group_alive()

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the whole group, wait for every member to exit, then SIGKILL whatever is left."""
        if self.proc is None:
            return
        self.signal_group(signal.SIGTERM)
        if not self._wait_group_gone(grace):
            self.signal_group(signal.SIGKILL)
            self._wait_group_gone(5.0)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


class ProcessGroup:
    """Processes started in order and stopped in reverse, also when a later start fails."""

    def __init__(self) -> None:
        self.processes: list[ManagedProcess] = []

    def add(self, process: ManagedProcess) -> ManagedProcess:
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    @contextlib.contextmanager
    def running(self) -> Iterator[ProcessGroup]:
        try:
            yield self
        finally:
            self.stop_all()
