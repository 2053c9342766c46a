"""Batch writer: readings are written in batches bounded by size and by time."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from microville.domain.readings import Reading
from microville.domain.store import ReadingStore, StoreError

log = logging.getLogger(__name__)


class BatchWriter:
    """Collects readings from any thread and writes them from one background thread.

    A batch is written when it holds ``max_size`` readings or its oldest reading has
    waited ``max_delay_s``. If the store fails, the batch stays in memory and the
    write is retried with exponential backoff (capped at ``max_backoff_s``); nothing
    is dropped while the process lives.

    Lifecycle: ``start()`` once, ``add()`` from any thread, ``flush()`` to wait until
    everything added so far is written, ``stop()`` once (writes what is left).
    """

    def __init__(
        self,
        store: ReadingStore,
        max_size: int = 5000,
        max_delay_s: float = 1.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self._store = store
        self._max_size = max_size
        self._max_delay_s = max_delay_s
        self._max_backoff_s = max_backoff_s
        self._pending: list[Reading] = []
        self._cond = threading.Condition()
        self._oldest: float | None = None
        self._stopping = False
        self._in_flight = 0
        self._thread = threading.Thread(target=self._run, name="batch-writer", daemon=True)
        self.written = 0
        self.write_errors = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def add(self, readings: Iterable[Reading]) -> None:
        with self._cond:
            before = len(self._pending)
            self._pending.extend(readings)
            if before == 0 and self._pending:
                self._oldest = time.monotonic()
            if len(self._pending) >= self._max_size:
                self._cond.notify_all()

    @property
    def backlog(self) -> int:
        with self._cond:
            return len(self._pending) + self._in_flight

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every reading added so far is written; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._cond.notify_all()
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._oldest = 0.0  # due now
                self._cond.notify_all()
                self._cond.wait(min(remaining, 0.05))
        return True

    def stop(self, timeout_s: float = 30.0) -> None:
        self.flush(timeout_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout_s)

    def _take_batch(self) -> list[Reading] | None:
        with self._cond:
            while True:
                if self._pending:
                    due = (self._oldest or 0.0) + self._max_delay_s
                    if (
                        len(self._pending) >= self._max_size
                        or time.monotonic() >= due
                        or self._stopping
                    ):
                        batch = self._pending[: self._max_size]
                        del self._pending[: self._max_size]
                        self._oldest = time.monotonic() if self._pending else None
                        self._in_flight = len(batch)
                        return batch
                    self._cond.wait(max(0.0, due - time.monotonic()))
                elif self._stopping:
                    return None
                else:
                    self._cond.wait(0.5)

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            backoff = 0.5
            while True:
                try:
                    self._store.write(batch)
                    break
                except StoreError as exc:
                    self.write_errors += 1
                    self.last_error = str(exc)
                    log.error(
                        "store write failed (%d readings kept, retry in %.1fs): %s",
                        len(batch),
                        backoff,
                        exc,
                    )
                    time.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff_s)
            with self._cond:
                self.written += len(batch)
                self._in_flight = 0
                self._cond.notify_all()
