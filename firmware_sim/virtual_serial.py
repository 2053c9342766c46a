"""A virtual serial cable: two linked pseudo-terminals with stable paths (socat).

The gateway opens one end with pyserial as it would open /dev/ttyUSB0; an emulator
writes to (and reads from) the other. ``unplug()`` removes both ends, as pulling a USB
adapter does; ``plug()`` brings them back under the same paths.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path


class VirtualSerialPair:
    """Lifecycle: ``plug()`` (also ``__enter__``), any number of ``unplug()``/``plug()``,
    ``unplug()`` at the end (also ``__exit__``)."""

    def __init__(self, device_path: str | Path, emulator_path: str | Path) -> None:
        self.device_path = Path(device_path)
        self.emulator_path = Path(emulator_path)
        self._proc: subprocess.Popen[bytes] | None = None

    def plug(self, timeout_s: float = 5.0) -> None:
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("socat is not installed (Debian package 'socat')")
        self.device_path.parent.mkdir(parents=True, exist_ok=True)
        self.emulator_path.parent.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [
                socat,
                f"pty,raw,echo=0,link={self.device_path}",
                f"pty,raw,echo=0,link={self.emulator_path}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while not (self.device_path.exists() and self.emulator_path.exists()):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.unplug()
                raise RuntimeError(f"socat could not create {self.device_path}")
            time.sleep(0.01)

    def unplug(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        for path in (self.device_path, self.emulator_path):
            path.unlink(missing_ok=True)

    @property
    def plugged(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> VirtualSerialPair:
        self.plug()
        return self

    def __exit__(self, *_: object) -> None:
        self.unplug()
