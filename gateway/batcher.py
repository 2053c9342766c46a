"""Batch writer: readings are written in batches bounded by size and by time; what the
store cannot take goes to the store-and-forward buffer and is replayed in order."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from domain.readings import Reading
from domain.store import ReadingStore, StoreError, StoreRejected
from gateway.buffer import BufferError, ReadingBuffer
from microville.backoff import Backoff

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

    The writer thread cannot die silently: a buffer that cannot be read or written
    (disk full, permissions), a store raising something else than :class:`StoreError`,
    a bug in a callback — each is caught, logged once per outage, counted
    (``buffer_errors``, ``internal_errors``) and retried with backoff, while what is not
    safe yet stays in memory, unacknowledged. Should the thread end anyway (a
    ``BaseException``), ``alive`` turns False and ``on_death`` is called: the gateway
    process then exits non-zero for its supervisor to restart it.

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
        on_death: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._buffer = buffer
        self._max_size = max_size
        self._max_delay_s = max_delay_s
        self._max_pending = max_pending or 4 * max_size
        self._on_refused = on_refused
        self._on_write = on_write
        self._on_death = on_death
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
        self._backoff = Backoff(0.5, max_backoff_s)
        self._retry_at = 0.0  # monotonic time of the next replay attempt
        self._buffer_trouble: str | None = None  # the buffer's failure, once per outage
        self._internal_trouble: str | None = None
        self._blocked_logged = False
        self._thread = threading.Thread(target=self._run, name="batch-writer", daemon=True)
        self.written = 0  # readings the store took (replayed ones included)
        self.buffered = 0  # readings that went to the buffer
        self.replayed = 0  # readings replayed from the buffer into the store
        self.refused = 0  # readings the store refused for good
        self.write_errors = 0
        self.buffer_errors = 0  # buffer reads and writes that failed (disk full…)
        self.internal_errors = 0  # unexpected exceptions caught in the writer thread
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        """The writer thread runs (False before ``start()`` and after it ended)."""
        return self._thread.is_alive()

    def add(self, readings: Iterable[Reading], on_safe: OnSafe | None = None) -> None:
        ready: OnSafe | None = None
        with self._cond:
            # Backpressure, except for the writer itself and during shutdown.
            while (
                len(self._pending) >= self._max_pending
                and not self._stopping
                and threading.current_thread() is not self._thread
            ):
                if not self._blocked_logged:
                    log.warning(
                        "%d readings wait for the store and the buffer: new readings are"
                        " held back (MQTT messages stay with the broker)",
                        len(self._pending),
                    )
                    self._blocked_logged = True
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
                        if len(self._pending) < self._max_pending // 2:
                            self._blocked_logged = False
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
        try:
            while (batch := self._take_batch()) is not None:
                if batch:
                    self._mark_safe(len(batch), saved=self._save(batch))
                else:
                    self._guarded(self._replay)
        finally:
            if not self._stopping:
                # Only a BaseException gets here (every Exception is caught below).
                log.critical("the batch writer thread died: nothing more will be stored")
                if self._on_death is not None:
                    self._on_death()

    def _guarded(self, step: Callable[[], None]) -> bool:
        """Run one step of the writer; an unexpected exception is logged once per
        outage, counted and retried after a backoff instead of ending the thread."""
        try:
            step()
        except Exception as exc:
            self.internal_errors += 1
            if self._internal_trouble is None:
                log.exception("batch writer: unexpected error, retrying with backoff")
            self._internal_trouble = f"{type(exc).__name__}: {exc}"
            backoff = self._next_backoff()
            self._retry_at = time.monotonic() + backoff
            self._sleep(backoff)
            return False
        if self._internal_trouble is not None:
            log.info("batch writer recovered from: %s", self._internal_trouble)
            self._internal_trouble = None
        return True

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
        """Put ``batch`` in the store or the buffer; False only if shutdown came first.
        Never raises: until one of them takes it, the batch stays here, unacknowledged."""
        saved = False

        def attempt() -> None:
            nonlocal saved
            saved = self._save_once(batch)

        while True:
            if self._guarded(attempt) and saved:
                return True
            # Neither the store nor the buffer (full, unwritable) took it: keep it in memory.
            if self._stopping:
                log.error("shutting down with %d readings neither stored nor buffered", len(batch))
                return False
            if self.buffer_depth and time.monotonic() >= self._retry_at:
                self._guarded(lambda: self._replay(yield_to_new=False))
            else:
                self._sleep(self._next_backoff())

    def _save_once(self, batch: list[Reading]) -> bool:
        if self.buffer_depth:
            # Older readings wait in the buffer: queue behind them, keep the order.
            return self._to_buffer(batch)
        try:
            self._write(batch)
            return True
        except StoreError as exc:
            self._failed(exc, len(batch))
            self._retry_at = time.monotonic() + self._next_backoff()
            return self._to_buffer(batch)

    def _to_buffer(self, batch: list[Reading]) -> bool:
        if self._buffer is None:
            return False
        try:
            self._buffer.append(batch)
        except BufferError as exc:
            self._buffer_failed(exc, f"cannot buffer {len(batch)} readings, holding them in memory")
            return False
        self._buffer_ok()
        self.buffered += len(batch)
        return True

    def _buffer_failed(self, exc: BufferError, what: str) -> None:
        self.buffer_errors += 1
        if self._buffer_trouble is None:
            log.error("%s: %s (retrying with backoff)", what, exc)
        self._buffer_trouble = str(exc)

    def _buffer_ok(self) -> None:
        if self._buffer_trouble is not None:
            log.info("buffer works again (was: %s)", self._buffer_trouble)
            self._buffer_trouble = None

    def _replay(self, yield_to_new: bool = True) -> None:
        """Write the buffer's oldest readings to the store until it is empty, the store
        fails again, or (``yield_to_new``) new readings wait to be queued behind them."""
        assert self._buffer is not None
        while self._buffer.depth:
            try:
                readings, last_key = self._buffer.peek(self._max_size)
            except BufferError as exc:
                self._buffer_failed(exc, "cannot read the buffer")
                self._retry_at = time.monotonic() + self._next_backoff()
                return
            try:
                self._write(readings)
            except StoreError as exc:
                self._failed(exc, self._buffer.depth)
                self._retry_at = time.monotonic() + self._next_backoff()
                return
            try:
                self._buffer.drop_through(last_key)
            except BufferError as exc:
                # Stored but still buffered (a full disk refuses even a DELETE in WAL):
                # replayed again later, which overwrites the same readings.
                self._buffer_failed(exc, "cannot drop replayed readings from the buffer")
                self._retry_at = time.monotonic() + self._next_backoff()
                return
            self._buffer_ok()
            self.replayed += len(readings)
            if not self._buffer.depth:
                log.info("buffer replayed: the store has every reading again")
            self._backoff.reset()
            self._retry_at = 0.0
            with self._cond:
                if yield_to_new and (self._pending or self._stopping):
                    return

    def _write(self, readings: list[Reading]) -> None:
        """Write to the store; readings it refuses for good are isolated and reported.
        Raises :class:`StoreError` for a transient failure, and for anything else the
        store raises (unknown: retried, never acknowledged)."""
        try:
            started = time.monotonic()
            try:
                self._store.write(readings)
            except StoreError:
                raise
            except Exception as exc:
                raise StoreError(f"unexpected {type(exc).__name__}: {exc}") from exc
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
                    try:
                        self._on_refused(readings[0], str(exc))
                    except Exception:  # the dead-letter log failing must not stop writes
                        log.exception("cannot record the reading the store refused")
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
        return self._backoff.next()

    def _sleep(self, seconds: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._stopping, seconds)
