"""Resource faults of a fleet process made real: a CPU-burning thread, held memory, a filled temp file.

Each is sized at run time and released completely when set back to zero (`ResourceFaults.clear`).
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from pathlib import Path

MB = 1024 * 1024
_PAGE = 4096


class CpuBurner:
    """Burns `load` of one core: busy for load x 100 ms, asleep for the rest, in every 100 ms period."""

    PERIOD_S = 0.1

    def __init__(self) -> None:
        self._load = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def load(self) -> float:
        return self._load

    def set_load(self, load: float) -> None:
        self._load = load
        if load > 0 and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="cpu-fault", daemon=True)
            self._thread.start()
        elif load == 0 and self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=1.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            busy_until = start + self._load * self.PERIOD_S
            while time.perf_counter() < busy_until:
                pass  # the point is to use the CPU
            rest = self.PERIOD_S - (time.perf_counter() - start)
            if rest > 0:
                self._stop.wait(rest)


class MemoryHog:
    """Holds `mb` megabytes of memory, every page touched so it counts in the resident set."""

    def __init__(self) -> None:
        self._block: bytearray | None = None

    @property
    def mb(self) -> int:
        return 0 if self._block is None else len(self._block) // MB

    def set_mb(self, mb: int) -> None:
        self._block = None  # release first, so resizing never holds both
        if mb > 0:
            block = bytearray(mb * MB)
            block[::_PAGE] = b"\x01" * len(range(0, len(block), _PAGE))
            self._block = block


class DiskFiller:
    """Keeps a file of `mb` megabytes in a private temp folder; the folder is removed at zero."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._dir: Path | None = None

    @property
    def path(self) -> Path | None:
        return None if self._dir is None else self._dir / "fill.bin"

    @property
    def mb(self) -> int:
        path = self.path
        return 0 if path is None or not path.exists() else path.stat().st_size // MB

    def set_mb(self, mb: int) -> None:
        if mb == 0:
            self.remove()
            return
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix=self._prefix))
        path = self._dir / "fill.bin"
        chunk = b"\xa5" * MB  # real bytes, not a sparse file, so the disk really fills
        with path.open("r+b" if path.exists() else "wb") as f:
            have = f.seek(0, 2) // MB
            if mb < have:
                f.truncate(mb * MB)
            else:
                f.seek(have * MB)
                for _ in range(mb - have):
                    f.write(chunk)
            f.flush()

    def remove(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class ResourceFaults:
    """The CPU, memory and disk faults of one process."""

    def __init__(self, name: str) -> None:
        self.cpu = CpuBurner()
        self.memory = MemoryHog()
        self.disk = DiskFiller(prefix=f"gamesre-fleet-{name}-")
        self._lock = threading.Lock()

    def apply(self, cpu_load: float, memory_mb: int, disk_fill_mb: int) -> None:
        """Resize every resource fault; on a disk error the disk fault is removed and the error raised."""
        with self._lock:
            self.cpu.set_load(cpu_load)
            if memory_mb != self.memory.mb:
                self.memory.set_mb(memory_mb)
            if disk_fill_mb != self.disk.mb:
                try:
                    self.disk.set_mb(disk_fill_mb)
                except OSError:
                    self.disk.remove()
                    raise

    def clear(self) -> None:
        with self._lock:
            self.cpu.set_load(0.0)
            self.memory.set_mb(0)
            with contextlib.suppress(OSError):
                self.disk.remove()
