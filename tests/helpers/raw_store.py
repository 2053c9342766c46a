"""The raw path as an oracle: a store in memory that answers index slots from the raw
readings themselves, in plain Python, never from a rollup (the rollup tests compare
the stores against it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from domain.readings import Reading
from domain.store import IndexSeries, IndexSlot

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RawStore:
    """Keeps the last value written for each (site, meter, quantity, time)."""

    def __init__(self) -> None:
        self.points: dict[tuple[str, str, str], dict[int, float]] = {}

    def write(self, readings: Sequence[Reading]) -> None:
        for r in readings:
            self.points.setdefault((r.site, r.meter, r.quantity), {})[r.time_ms] = r.value

    def index_slots(
        self,
        site: str,
        meters: Sequence[str],
        quantity: str,
        start: datetime,
        end: datetime,
        slot: timedelta,
        cuts: Sequence[datetime] = (),
    ) -> dict[str, IndexSeries]:
        width = slot // timedelta(milliseconds=1)
        a, b = (round((t - _EPOCH) / timedelta(milliseconds=1)) for t in (start, end))
        out = {}
        for meter in meters:
            points = sorted(self.points.get((site, meter, quantity), {}).items())
            before = [p for p in points if p[0] <= a]
            inside = [p for p in points if a < p[0] <= b]
            after = [t for t, _ in points if t > b]
            base = before[-1] if before else (inside[0] if inside else None)
            slots: dict[int, list[float]] = {}
            for t, v in inside:
                slots.setdefault((t - 1) // width, []).append(v)
            out[meter] = IndexSeries(
                baseline=None if base is None else base[1],
                starts_inside=not before and bool(inside),
                baseline_time=None if base is None else _time(base[0]),
                next_time=_time(after[0]) if after else None,
                slots=[
                    IndexSlot(
                        _time((k + 1) * width),
                        vs[-1],
                        len(vs),
                        max(vs) if max(vs) > vs[-1] else None,
                    )
                    for k, vs in sorted(slots.items())
                ],
            )
        return out


def _time(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)
