"""Energy and carbon endpoints on both stores: index spikes and comebacks, gas in m³,
sub-meters per carrier, and the autumn clock change (issue #4 audit)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support import SITE_S1

from microville.domain.readings import Reading
from microville.domain.store import ReadingStore
from microville.service.app import create_app
from microville.settings import Settings
from microville.stores.ledger import Ledger

H = timedelta(hours=1)
# 2026-01-05 00:00 in Paris.
T0 = datetime(2026, 1, 4, 23, tzinfo=UTC)
DAY = {"start": "2026-01-05", "end": "2026-01-06", "step": "day"}

IMPORT_METER = """
[[sites.meters]]
id = "in"
role = "grid_import"
source = { topic = "s1/in", format = "number" }
"""

Client = Callable[[str], TestClient]


@pytest.fixture
def client_for(tmp_path: Path, store: ReadingStore) -> Iterator[Client]:
    """A client of an app on ``store`` for the site file ``SITE_S1 + meters``."""
    ledger = Ledger(tmp_path / "ledger.db")
    clients: list[TestClient] = []

    def make(meters: str) -> TestClient:
        config = tmp_path / "sites.toml"
        config.write_text(SITE_S1 + meters)
        app = create_app(Settings(config=str(config)), store=store, ledger=ledger)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)
    ledger.close()


def _write(
    store: ReadingStore, meter: str, quantity: str, start: datetime, values: list[float]
) -> None:
    store.write([Reading("s1", meter, quantity, v, start + i * H) for i, v in enumerate(values)])


# ---------------------------------------------------------------- 1. spikes, comebacks


def test_drop_to_zero_and_spike_are_not_energy_on_the_store(
    client_for: Client, store: ReadingStore
) -> None:
    # Hourly readings from 00:00 local: 1 000 Wh an hour, with a reading of 0 at 03:00
    # (back at the index at 04:00) and a spike at 24:00, the day's last reading, undone
    # at 01:00 the next day: the slot past the day's end is read to judge it.
    values = [1_000_000.0 + 1000 * h for h in range(26)]
    values[3] = 0.0
    values[24] = 99_999_999.0
    _write(store, "in", "energy", T0, values)
    body = _get_energy(client_for(IMPORT_METER), DAY)
    meters = {m["id"]: m for m in body["meters"]}
    # 24 h × 1 kWh, the last hour's reading ignored: 23 kWh. Before the fix: 0 a reset
    # (+1 004 000 Wh at 04:00) and the spike counted: about 100 001 kWh.
    assert meters["in"]["energy_kwh"] == pytest.approx(23.0)  # 00:00 → 23:00 reading
    assert (meters["in"]["resets"], meters["in"]["glitches"], meters["in"]["spikes"]) == (
        0,
        1,
        1,
    )
    assert body["total"]["carriers"]["electricity"]["import_kwh"] == pytest.approx(23.0)


def _get_energy(client: TestClient, params: dict[str, str]) -> dict:  # type: ignore[type-arg]
    resp = client.get("/api/v1/sites/s1/energy", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]
