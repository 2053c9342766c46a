"""Dead letters: every rejected message, with its reason, counted and kept.

The gateway never stops on bad input; it records what it refused here so that a
facility manager can see it (and a later fix can replay it).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    received_at: datetime
    origin: str  # MQTT topic, serial port or Modbus bus
    reason: str
    payload: bytes

    def to_json(self) -> str:
        record = asdict(self)
        record["received_at"] = self.received_at.isoformat()
        try:
            record["payload"] = self.payload.decode("utf-8")
        except UnicodeDecodeError:
            record["payload_base64"] = base64.b64encode(self.payload).decode()
            del record["payload"]
        return json.dumps(record, ensure_ascii=False)


class DeadLetterLog:
    """Counts rejects by reason, keeps the last ``keep`` in memory and appends all to
    an optional JSON-lines file."""

    def __init__(self, path: str | Path | None = None, keep: int = 1000) -> None:
        self.path = Path(path) if path else None
        self.total = 0
        self.by_reason: Counter[str] = Counter()
        self.recent: deque[DeadLetter] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, letter: DeadLetter) -> None:
        log.warning("rejected message on %s: %s", letter.origin, letter.reason)
        with self._lock:
            self.total += 1
            # Count by the reason's kind (before the first colon) to keep the set small.
            self.by_reason[letter.reason.split(":", 1)[0]] += 1
            self.recent.append(letter)
            if self.path is not None:
                try:
                    with self.path.open("a", encoding="utf-8") as f:
                        f.write(letter.to_json() + "\n")
                except OSError as exc:
                    log.error("cannot append to dead-letter file %s: %s", self.path, exc)
