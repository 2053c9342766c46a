"""Batch writer: readings are written in batches bounded by size and by time; what the
store cannot take goes to the store-and-forward buffer and is replayed in order."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from microville.domain.readings import Reading
from microville.domain.store import ReadingStore, StoreError, StoreRejected
from microville.gateway.buffer import BufferError, ReadingBuffer

log = logging.getLogger(__name__)

#: Called once the readings added with it (and all added before) are safe.
OnSafe = Callable[[], None]
#: Called with a reading the store refused for good, and the store's reason.
OnRefused = Callable[[Reading, str], None]


class BatchWriter:
    """Collects readings from any thread and writes them from one background thread.

    A batch is written when it holds ``max_size`` readings or its oldest reading has
    waited ``max_delay_s``. Where a batch goes:

    - the store, when it takes it;
    - the on-disk ``buffer`` when the store fails for a transient reason
      (:class:`StoreError`: unreachable, overloaded), and every later batch too while
      the buffer holds readings, so that the store receives them in order. The buffer
      is replayed, oldest first, with exponential backoff (``max_backoff_s``);
    - readings the store refuses for good (:class:`StoreRejected`, e.g. a bad point)
      are isolated by splitting the batch, and reported to ``on_refused``: never
      retried, never blocking the others. Re-writing the good ones is harmless: writes
      are idempotent (same site, meter, quantity and time overwrite).

    Without a buffer, or when it is full, a failed batch stays in memory and is
    retried; ``add`` then blocks once ``max_pending`` readings wait (backpressure: an
    MQTT message not yet acknowledged stays with the broker).

    ``add(readings, on_safe)`` calls ``on_safe`` once those readings and every reading
    added before are in the store, the buffer, or refused — the moment a source may
    acknowledge them (MQTT PUBACK). Callbacks run in the order they were added.

    Lifecycle: ``start()`` once, ``add()`` from any thread, ``flush()`` to wait until
    everything added so far is safe, ``stop()`` once (saves what is left: store or buffer).
    """

    def __init__(
        self,
        store: ReadingStore,
        max_size: int = 5000,
        max_delay_s: float = 1.0,
        max_backoff_s: float = 10.0,
        buffer: ReadingBuffer | None = None,
        max_pending: int | None = None,
        on_refused: OnRefused | None = None,
        on_write: Callable[[float], None] | None = None,
    ) -> None:
        self._store = store
        self._buffer = buffer
        self._max_size = max_size
        self._max_delay_s = max_delay_s
        self._max_backoff_s = max_backoff_s
        self._max_pending = max_pending or 4 * max_size
        self._on_refused = on_refused
        self._on_write = on_write
        self._pending: list[Reading] = []
        self._cond = threading.Condition()
        self._oldest: float | None = None
        self._stopping = False
        self._in_flight = 0
        # Readings counted from the start: added, and made safe (stored, buffered,
        # refused). A callback waits for ``_safe`` to reach the count at its ``add``.
        self._added = 0
        self._safe = 0
        self._callbacks: deque[tuple[int, OnSafe]] = deque()
        self._backoff_s = 0.5
        self._retry_at = 0.0  # monotonic time of the next replay attempt
        self._buffer_full_logged = False
        self._thread = threading.Thread(target=self._run, name="batch-writer", daemon=True)
        self.written = 0  # readings the store took (replayed ones included)
        self.buffered = 0  # readings that went to the buffer
        self.replayed = 0  # readings replayed from the buffer into the store
        self.refused = 0  # readings the store refused for good
        self.write_errors = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def add(self, readings: Iterable[Reading], on_safe: OnSafe | None = None) -> None:
        ready: OnSafe | None = None
        with self._cond:
            # Backpressure, except for the writer itself and during shutdown.
            while (
                len(self._pending) >= self._max_pending
                and not self._stopping
                and threading.current_thread() is not self._thread
            ):
                self._cond.wait(0.5)
            before = len(self._pending)
            self._pending.extend(readings)
            self._added += len(self._pending) - before
            if before == 0 and self._pending:
                self._oldest = time.monotonic()
            if len(self._pending) >= self._max_size:
                self._cond.notify_all()
            if on_safe is not None:
                if self._added <= self._safe and not self._callbacks:
                    ready = on_safe
                else:
                    self._callbacks.append((self._added, on_safe))
        if ready is not None:
            ready()

    @property
    def backlog(self) -> int:
        """Readings in memory, not yet in the store or the buffer."""
        with self._cond:
            return len(self._pending) + self._in_flight

    @property
    def buffer_depth(self) -> int:
        return self._buffer.depth if self._buffer is not None else 0

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every reading added so far is safe (store or buffer); False on timeout."""
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

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything added so far is in the store (buffer replayed too)."""
        deadline = time.monotonic() + timeout_s
        if not self.flush(timeout_s):
            return False
        while self.buffer_depth:
            if time.monotonic() > deadline:
                return False
            with self._cond:
                self._retry_at = 0.0
                self._cond.notify_all()
            time.sleep(0.05)
        return True

    def stop(self, timeout_s: float = 30.0) -> None:
        """Save what is pending (into the store, or the buffer if the store fails) and
        end the writer thread; the buffer keeps the rest for the next start."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout_s)

    # --- writer thread ------------------------------------------------------------

    def _take_batch(self) -> list[Reading] | None:
        """The next batch; ``[]`` when it is time to replay the buffer; ``None`` to end."""
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
                        self._cond.notify_all()  # room for a blocked add()
                        return batch
                    wait = due - time.monotonic()
                elif self._stopping:
                    return None
                else:
                    wait = 0.5
                if self._replay_due():
                    return []
                if self.buffer_depth:
                    wait = min(wait, self._retry_at - time.monotonic())
                self._cond.wait(max(0.0, wait))

    def _replay_due(self) -> bool:
        return bool(self.buffer_depth) and not self._stopping and time.monotonic() >= self._retry_at

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            if batch:
                self._mark_safe(len(batch), saved=self._save(batch))
            else:
                self._replay()

    def _mark_safe(self, n: int, saved: bool) -> None:
        ready: list[OnSafe] = []
        with self._cond:
            self._in_flight = 0
            if not saved:  # shutdown: nothing is acknowledged, the broker keeps it
                self._cond.notify_all()
                return
            self._safe += n
            while self._callbacks and self._callbacks[0][0] <= self._safe:
                ready.append(self._callbacks.popleft()[1])
            self._cond.notify_all()
        for callback in ready:
            try:
                callback()
            except Exception:  # a source's bug must not stop the writer
                log.exception("on_safe callback failed")

    def _save(self, batch: list[Reading]) -> bool:
        """Put ``batch`` in the store or the buffer; False only if shutdown came first."""
        while True:
            if self.buffer_depth:
                # Older readings wait in the buffer: queue behind them, keep the order.
                if self._to_buffer(batch):
                    return True
            else:
                try:
                    self._write(batch)
                    return True
                except StoreError as exc:
                    self._failed(exc, len(batch))
                    self._retry_at = time.monotonic() + self._next_backoff()
                    if self._to_buffer(batch):
                        return True
            # Neither the store nor the buffer (full) took it: keep it in memory.
            if self._stopping:
                log.error("shutting down with %d readings neither stored nor buffered", len(batch))
                return False
            if self.buffer_depth and time.monotonic() >= self._retry_at:
                self._replay(yield_to_new=False)
            else:
                self._sleep(self._next_backoff())

    def _to_buffer(self, batch: list[Reading]) -> bool:
        if self._buffer is None:
            return False
        try:
            self._buffer.append(batch)
        except BufferError as exc:
            if not self._buffer_full_logged:
                log.error("cannot buffer %d readings, holding them in memory: %s", len(batch), exc)
                self._buffer_full_logged = True
            return False
        self._buffer_full_logged = False
        self.buffered += len(batch)
        return True

    def _replay(self, yield_to_new: bool = True) -> None:
        """Write the buffer's oldest readings to the store until it is empty, the store
        fails again, or (``yield_to_new``) new readings wait to be queued behind them."""
        assert self._buffer is not None
        while self._buffer.depth:
            readings, last_key = self._buffer.peek(self._max_size)
            try:
                self._write(readings)
            except StoreError as exc:
                self._failed(exc, self._buffer.depth)
                self._retry_at = time.monotonic() + self._next_backoff()
                return
            self._buffer.drop_through(last_key)
            self.replayed += len(readings)
            if not self._buffer.depth:
                log.info("buffer replayed: the store has every reading again")
            self._backoff_s = 0.5
            self._retry_at = 0.0
            with self._cond:
                if yield_to_new and (self._pending or self._stopping):
                    return

    def _write(self, readings: list[Reading]) -> None:
        """Write to the store; readings it refuses for good are isolated and reported.
        Raises :class:`StoreError` for a transient failure."""
        try:
            started = time.monotonic()
            self._store.write(readings)
            if self._on_write is not None:
                self._on_write(time.monotonic() - started)
            self.written += len(readings)
            if self.last_error is not None:
                log.info("store is back")
                self.last_error = None
        except StoreRejected as exc:
            if len(readings) == 1:
                self.refused += 1
                log.error("store refused %s: %s", readings[0], exc)
                if self._on_refused is not None:
                    self._on_refused(readings[0], str(exc))
                return
            # Find the bad readings by halves; the good ones of a half that is written
            # twice overwrite themselves.
            half = len(readings) // 2
            self._write(readings[:half])
            self._write(readings[half:])

    def _failed(self, exc: StoreError, kept: int) -> None:
        self.write_errors += 1
        if self.last_error is None:
            log.error("store write failed (%d readings kept): %s", kept, exc)
        self.last_error = str(exc)

    def _next_backoff(self) -> float:
        backoff = self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, self._max_backoff_s)
        return backoff

    def _sleep(self, seconds: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._stopping, seconds)
