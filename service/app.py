"""FastAPI application factory: ``create_app(settings)``, no import-time globals."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from microville import __version__
from microville.domain.periods import Step, localize
from microville.domain.site import Site, SitesConfig, read_sites
from microville.domain.store import ReadingStore, StoreError
from microville.mqtt import MqttSettings
from microville.service.schemas import BalanceOut, HealthOut, MeterOut, SiteOut
from microville.service.usecases import QueryError, electricity_balance
from microville.settings import Settings
from microville.stores import open_store


def _sites(request: Request) -> SitesConfig:
    sites: SitesConfig = request.app.state.sites
    return sites


def _store(request: Request) -> ReadingStore:
    store: ReadingStore = request.app.state.store
    return store


SitesDep = Annotated[SitesConfig, Depends(_sites)]
StoreDep = Annotated[ReadingStore, Depends(_store)]


def _site(site: str, sites: SitesDep) -> Site:
    found = sites.site(site)
    if found is None:
        raise HTTPException(
            404, f"unknown site {site!r}; known: {', '.join(s.id for s in sites.sites)}"
        )
    return found


SiteDep = Annotated[Site, Depends(_site)]


def _parse_time(value: str | None, name: str, default: datetime, site: Site) -> datetime:
    if value is None:
        return default
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(
            422, f"{name}: {value!r} is not an ISO 8601 date or date-time (e.g. 2026-10-01)"
        ) from None
    return localize(parsed, site.tz)


def _broker_reachable(mqtt: MqttSettings, timeout_s: float = 2.0) -> str:
    try:
        with socket.create_connection((mqtt.host, mqtt.port), timeout=timeout_s):
            return "ok"
    except OSError as exc:
        return f"unreachable: {exc}"


def create_app(
    settings: Settings, store: ReadingStore | None = None, sites: SitesConfig | None = None
) -> FastAPI:
    """Build the API for ``sites`` (read from ``settings.config`` when not given) over
    ``store`` (opened from ``settings.store_url`` when not given; then closed with the app)."""
    sites = sites if sites is not None else read_sites(settings.config)
    owned = store is None
    mqtt = MqttSettings(url=settings.mqtt_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            app.state.store.close()

    app = FastAPI(
        title="Microville Monitor",
        version=__version__,
        summary="Energy balance and proof indicators of eco-renovated buildings.",
        lifespan=lifespan,
    )
    app.state.sites = sites
    app.state.store = (
        store if store is not None else open_store(settings.store_url, settings.influx_token)
    )

    @app.get("/api/v1/sites", response_model=list[SiteOut])
    def list_sites(sites: SitesDep) -> list[SiteOut]:
        return [
            SiteOut(
                id=s.id,
                name=s.name,
                timezone=s.timezone,
                lat=s.location.lat,
                lon=s.location.lon,
                floor_area_m2=s.floor_area_m2,
                meters=[
                    MeterOut(
                        id=m.id,
                        name=m.name,
                        carrier=m.carrier,
                        role=m.role,
                        unit=m.unit,
                        source=m.source.summary,
                    )
                    for m in s.meters
                ],
            )
            for s in sites.sites
        ]

    @app.get("/api/v1/sites/{site}/balance", response_model=BalanceOut)
    def get_balance(
        site: SiteDep,
        store: StoreDep,
        start: Annotated[
            str | None,
            Query(
                description="ISO date or date-time, local time unless an offset is given."
                " Default: first of this month"
            ),
        ] = None,
        end: Annotated[
            str | None, Query(description="ISO date or date-time, exclusive. Default: now")
        ] = None,
        step: Step = Step.DAY,
    ) -> BalanceOut:
        now = datetime.now(site.tz)
        month_start = localize(datetime(now.year, now.month, 1), site.tz)
        t0 = _parse_time(start, "start", month_start, site)
        t1 = _parse_time(end, "end", now.replace(microsecond=0) + timedelta(seconds=1), site)
        try:
            report = electricity_balance(site, store, t0, t1, step)
        except QueryError as exc:
            raise HTTPException(422, str(exc)) from None
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        return BalanceOut.of(report)

    @app.get("/health", response_model=HealthOut)
    async def health(store: StoreDep) -> HealthOut:
        try:
            await run_in_threadpool(store.ping)
            store_state = "ok"
        except StoreError as exc:
            store_state = f"error: {exc}"
        broker_state = await run_in_threadpool(_broker_reachable, mqtt)
        ok = store_state == "ok" and broker_state == "ok"
        return HealthOut(status="ok" if ok else "degraded", store=store_state, broker=broker_state)

    return app
