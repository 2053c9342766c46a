"""The store port: what the gateway writes to and the service reads from.

Two adapters implement it (``gateway.stores``): InfluxDB over its
v1-compatible HTTP API, and embedded SQLite. Both keep the raw cumulative indexes;
both answer :meth:`ReadingStore.index_slots` with an aggregation done inside the
database, so the service never pulls raw points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from domain.materials import Material
from domain.readings import Reading
from domain.records import WasteEntry


class StoreError(RuntimeError):
    """The store could not be reached or refused an operation."""


def folder_problem(path: str | Path) -> str | None:
    """Why the file ``path`` (a place a person named: a store, a buffer, a ledger)
    cannot be created where it is asked, or ``None``: its folder must exist. Nothing is
    created here, so that a typo in a path is an error, not a new tree of folders with
    an empty database in it."""
    path = Path(path)
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        return f"{blocking} is not a folder"
    if not path.parent.is_dir():
        return f"folder {path.parent} does not exist: create it first (mkdir -p {path.parent})"
    return None


class StoreRejected(StoreError):
    """The store refused the data itself (a malformed point): retrying the same
    readings cannot succeed, unlike an unreachable or overloaded store."""


@dataclass(frozen=True, slots=True)
class IndexSlot:
    """The last index value seen in one slot ``(end - width, end]``, how many values it
    had, and its highest value when a value above the last came before it (a meter
    replaced inside the slot: the old meter's last reading, whose rise counts)."""

    end: datetime
    last_value: float
    count: int
    #: The slot's highest value when above ``last_value`` (a drop inside the slot), else
    #: ``None``: the counter rules read such a slot as its highest value, then its last.
    max_value: float | None = None
    #: A *run* when above 1 (answered from a rollup, only for one-hour slots and when the
    #: query gives its ``cuts``): the slot stands for ``hours`` consecutive hours ending
    #: at ``end``, each holding a reading, whose hourly last values never drop, and it
    #: follows the slot of the hour before it (its head). ``last_value`` is the last
    #: hour's; ``count`` the readings of all its hours. :mod:`domain.balance` judges it
    #: exactly as the hourly slots it stands for, or asks for them.
    hours: int = 1
    #: For a run: the largest rise between two consecutive hours, from its head through
    #: its last hour [base unit]: what the counter rules need to rule out a spike.
    max_rise: float = 0.0


@dataclass(frozen=True, slots=True)
class SumSlot:
    """The values of one slot ``[start, start + width)`` added up, and how many there were:
    for meters whose values are events (a scale's weighings), not a cumulative index."""

    start: datetime
    total: float
    count: int


@dataclass(frozen=True)
class IndexSeries:
    """A meter's index over a query window, reduced to one value per slot.

    ``baseline`` is the index the window starts from: the last value at or before its
    start, or — for a meter with no reading before the window (newly installed) — its
    first value inside the window, since the energy before that is unknown. ``None``
    when the meter has no reading at all. ``slots`` holds only the slots that had
    readings, sorted by time.
    """

    baseline: float | None
    slots: list[IndexSlot] = field(default_factory=list)
    #: The baseline is the meter's first reading inside the window (none before it).
    starts_inside: bool = False
    #: Time of the baseline's reading (``None``: unknown, or no baseline), so that a gap
    #: across the window's start is split as a longer query splits it.
    baseline_time: datetime | None = None
    #: Time of the meter's first reading after the window's end (``None``: none yet),
    #: so that a gap across the end can be read up to the reading that closes it.
    next_time: datetime | None = None


class ReadingStore(Protocol):
    """Lifecycle: create, call :meth:`write` and queries from any thread, :meth:`close` once.

    Writing the same (site, meter, quantity, time) twice keeps one value (the last):
    MQTT QoS 1 may deliver a message twice, and that must not count twice.
    """

    def write(self, readings: Sequence[Reading]) -> None:
        """Store ``readings`` durably or raise :class:`StoreError` (nothing is half-written
        in a way that loses the rest: the caller may retry the whole batch)."""

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
        """Last index value per slot for each meter in ``(start, end]`` (with the slot's
        highest value when a drop inside it left the last value lower), the baseline
        and its time, and the time of the first reading after ``end``.

        With one-hour slots and ``cuts`` (the period bounds of the query, increasing,
        on whole hours), the adapter may answer stretches of hours between two
        consecutive cuts as runs (:attr:`IndexSlot.hours`) read from its rollups: the
        hours of a run are clean (each holds a reading, none drops), so the service
        judges them at once. Hours before the first cut or after the last one are
        always answered one by one. Without ``cuts``: one slot per slot width.

        Slots are aligned on the epoch: a slot ends at a multiple of ``slot`` since
        1970-01-01T00:00Z, and ``start``/``end`` must fall on slot ends. Meters
        without any reading are present with ``baseline=None`` and no slots.

        The answer is whole: every reading in the window is counted in one slot. An
        adapter that cannot vouch for it (an answer cut by a row limit, a part missing)
        raises :class:`StoreError`: a hole in the answer would pass for a gap in the
        readings and lower energy and coverage without a word.
        """
        ...

    def slot_sums(
        self,
        site: str,
        meters: Sequence[str],
        quantity: str,
        start: datetime,
        end: datetime,
        slot: timedelta,
    ) -> dict[str, list[SumSlot]]:
        """Sum and count of each meter's values per slot ``[k·w, (k+1)·w)`` within
        ``[start, end)``, added up in the database: for values that are events (a waste
        scale's weighings). Slots are aligned on the epoch like :meth:`index_slots`;
        slots without values are left out; every meter asked is a key; whole or a
        :class:`StoreError`, like :meth:`index_slots`."""
        ...

    def hourly_means(
        self, site: str, meter: str, quantity: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, float]]:
        """Mean value per clock hour ``[h, h + 1 h)`` within ``[start, end)``, for a
        sampled quantity such as the grid's carbon intensity; hours without a value are
        left out."""
        ...

    def last_seen(
        self, site: str, meters: Sequence[str], quantity: str
    ) -> dict[str, datetime | None]:
        """Time of each meter's latest reading (``None`` if it never reported)."""
        ...

    def count(self, site: str) -> int:
        """Number of readings stored for ``site`` (all meters and quantities)."""
        ...

    def ping(self) -> None:
        """Raise :class:`StoreError` if the store cannot be used."""

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""


class RollupMaintenance(Protocol):
    """What ``microville rollup`` needs of a store: both adapters keep their rollups
    exact by themselves; these rebuild them (a database from before, data changed
    behind the store's back) and prove them."""

    def rebuild_rollups(
        self,
        site: str | None = None,
        since: datetime | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Recompute the rollups of ``site`` (all: ``None``) from ``since`` on (whole UTC
        days) from the raw readings; the number of days (or series) rebuilt."""
        ...

    def verify_rollups(
        self,
        site: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        """Every rollup slot of ``[since, until)`` that differs from what the raw
        readings give, named; empty when the rollups are exact."""
        ...

    def close(self) -> None: ...


class Ledger(Protocol):
    """Port of the ledger: the renovation's materials and the waste entries of each site,
    kept by id (stores.ledger.SqliteLedger)."""

    def add_materials(self, site: str, materials: Sequence[Material]) -> list[int]: ...

    def materials(self, site: str) -> list[tuple[int, Material]]: ...

    def delete_material(self, site: str, material_id: int) -> bool: ...

    def add_waste_entries(self, site: str, entries: Sequence[WasteEntry]) -> list[int]: ...

    def waste_entries(
        self, site: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[tuple[int, WasteEntry]]: ...

    def waste_records(
        self, site: str, start: datetime | None = None, end: datetime | None = None
    ) -> tuple[list[tuple[int, WasteEntry]], list[tuple[int, str]]]:
        """The entries of ``[start, end)`` and, apart, the stored rows that no longer
        read as an entry (id and why)."""
        ...

    def delete_waste_entry(self, site: str, entry_id: int) -> bool: ...

    def close(self) -> None: ...


class AlertHistory(Protocol):
    """Read port of the alerts' past: what the monthly report lists."""

    def events_between(self, site: str, start: datetime, end: datetime) -> list[dict[str, object]]:
        """Notified events (firing, resolved, reminder) of ``site`` in ``[start, end)``,
        oldest first."""
        ...
