"""Child processes of the bench: their memory, and waiting for what they log."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path


def status_kib(pid: int, field: str) -> int | None:
    """A ``VmHWM``/``VmRSS`` line of /proc/<pid>/status in KiB; None if gone (Linux only)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mib(pid: int) -> float | None:
    kib = status_kib(pid, "VmHWM")
    return None if kib is None else round(kib / 1024, 1)


class LogWatcher:
    """Copies a child's output to a file and notes when a given text first appears."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path, marker: str) -> None:
        self.marker = marker.encode()
        self.seen_at: float | None = None
        self._seen = threading.Event()
        self._log = log
        log.unlink(missing_ok=True)  # this run's output only
        self._proc = proc
        self._thread = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self._thread.start()

    def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with self._log.open("ab") as out:
            for line in proc.stdout:
                if self.seen_at is None and self.marker in line:
                    self.seen_at = time.monotonic()
                    self._seen.set()
                out.write(line)
                out.flush()

    def wait(self, timeout_s: float) -> bool:
        """True once the marker is seen; False on timeout or if the process exits first."""
        deadline = time.monotonic() + timeout_s
        while not self._seen.wait(0.2):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                return self._seen.is_set()
        return True

    def tail(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-1500:]
        except OSError:
            return ""
