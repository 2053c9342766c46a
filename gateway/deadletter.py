"""Dead letters: every rejected message, with its reason, counted and kept.

The gateway never stops on bad input; it records what it refused here so that a
facility manager can see it (and a later fix can replay it).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)


#: Bytes of a rejected payload kept (in memory and in the file): an oversized message
#: must not make the log itself a memory hog.
KEEP_PAYLOAD_BYTES = 4096
#: Distinct reason kinds counted; beyond, a kind is counted as "other" (a flood of
#: hostile messages must not grow the counters or the metrics' label set).
MAX_REASON_KINDS = 200

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"(?<![\w-])[-+]?\d[\d.eE+-]*")
_LOCATION = re.compile(r"^(meter \S+|\w+ payload on .*|SenML record \d+|time field .*|group \S+)$")


def reason_kind(reason: str) -> str:
    """The reason without its particulars: the first clause after the location
    (``meter s1/pv: …``, ``senml payload on 'topic': …``, TIC ``group EAST: …``), quoted
    names and numbers blanked — ``not JSON``, ``negative index N``, ``unknown topic
    '…'``, ``bad checksum '…' (expected '…')``."""
    parts = reason.split(": ")
    if len(parts) > 1 and _LOCATION.match(parts[0]):
        parts = parts[1:]
    return _NUMBER.sub("N", _QUOTED.sub("'…'", parts[0])).strip()[:80] or "unspecified"


@dataclass(frozen=True)
class DeadLetter:
    received_at: datetime
    origin: str  # MQTT topic, serial port or Modbus bus
    reason: str
    payload: bytes
    #: Size of the payload as received (``payload`` may be cut to KEEP_PAYLOAD_BYTES).
    size: int = -1

    def to_json(self) -> str:
        record = asdict(self)
        record["received_at"] = self.received_at.isoformat()
        record["kind"] = reason_kind(self.reason)
        try:
            record["payload"] = self.payload.decode("utf-8")
        except UnicodeDecodeError:
            record["payload_base64"] = base64.b64encode(self.payload).decode()
            del record["payload"]
        return json.dumps(record, ensure_ascii=False)


class DeadLetterLog:
    """Counts rejects by reason kind, keeps the last ``keep`` in memory and appends all to
    an optional JSON-lines file, rotated to ``<file>.1`` beyond ``max_file_bytes``.

    Memory is bounded: ``keep`` letters of at most KEEP_PAYLOAD_BYTES payload bytes and
    MAX_REASON_KINDS counters.
    """

    def __init__(
        self, path: str | Path | None = None, keep: int = 1000, max_file_bytes: int = 64 << 20
    ) -> None:
        self.path = Path(path) if path else None
        self.max_file_bytes = max_file_bytes
        self.total = 0
        self.by_reason: Counter[str] = Counter()
        self.recent: deque[DeadLetter] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._last_warning = 0.0
        self._quiet = 0

    def add(self, letter: DeadLetter) -> None:
        if len(letter.payload) > KEEP_PAYLOAD_BYTES:
            letter = replace(
                letter, payload=letter.payload[:KEEP_PAYLOAD_BYTES], size=len(letter.payload)
            )
        elif letter.size < 0:
            letter = replace(letter, size=len(letter.payload))
        with self._lock:
            self._warn(letter)
            self.total += 1
            kind = reason_kind(letter.reason)
            if kind not in self.by_reason and len(self.by_reason) >= MAX_REASON_KINDS:
                kind = "other"
            self.by_reason[kind] += 1
            self.recent.append(letter)
            if self.path is not None:
                self._append(letter)

    def counts_by_reason(self) -> dict[str, int]:
        with self._lock:
            return dict(self.by_reason)

    def _warn(self, letter: DeadLetter) -> None:
        # At most one warning a second: a flood of bad messages must not flood the log.
        now = time.monotonic()
        if now - self._last_warning >= 1.0:
            more = f" (and {self._quiet} more since the last warning)" if self._quiet else ""
            log.warning("rejected message on %.200s: %.300s%s", letter.origin, letter.reason, more)
            self._last_warning, self._quiet = now, 0
        else:
            self._quiet += 1

    def _append(self, letter: DeadLetter) -> None:
        assert self.path is not None
        try:
            if self.path.exists() and self.path.stat().st_size >= self.max_file_bytes:
                self.path.replace(self.path.with_name(self.path.name + ".1"))
            with self.path.open("a", encoding="utf-8") as f:
                f.write(letter.to_json() + "\n")
        except OSError as exc:
            log.error("cannot append to dead-letter file %s: %s", self.path, exc)
