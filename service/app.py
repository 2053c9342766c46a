"""FastAPI application factory: ``create_app(settings)``, no import-time globals."""

from __future__ import annotations

import math
import socket
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from microville import __version__
from microville.domain.clock import Clock, system_clock
from microville.domain.periods import Step
from microville.domain.site import SitesConfig, read_sites
from microville.domain.store import ReadingStore, StoreError
from microville.mqtt import MqttSettings, make_client
from microville.service.alerts_api import router as alerts_router
from microville.service.alerts_engine import AlertEngine
from microville.service.auth import Authenticator, PrincipalDep, authorize
from microville.service.deps import PeriodDep, SiteDep, SitesDep, StepQuery, StoreDep
from microville.service.metrics import RequestMetricsMiddleware, ServiceMetrics, TimedStore
from microville.service.metrics import router as metrics_router
from microville.service.notify import Outbox
from microville.service.proof_api import router as proof_router
from microville.service.reports import ReportScheduler
from microville.service.reports_api import router as reports_router
from microville.service.schemas import (
    BalanceOut,
    DayProfileOut,
    HealthOut,
    ProfileOut,
    SiteOut,
)
from microville.service.usecases import QueryError, day_profiles, electricity_balance
from microville.settings import Settings, reveal
from microville.stores import open_store
from microville.stores.ledger import Ledger
from microville.stores.reports import ReportArchive


def _json_safe(value: object) -> object:
    """``value`` for a JSON response: non-finite floats as the strings JSON lacks."""
    value = jsonable_encoder(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _broker_reachable(mqtt: MqttSettings, timeout_s: float = 3.0) -> str:
    """ "ok" once the broker accepts an MQTT CONNECT with the service's credentials (and
    TLS), else why not: a TCP connect alone would pass a broker refusing the account."""
    try:
        with socket.create_connection((mqtt.host, mqtt.port), timeout=timeout_s):
            pass
    except OSError as exc:
        return f"unreachable: {exc}"
    answered = threading.Event()
    outcome: list[str] = []

    def on_connect(_c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        failure = getattr(reason, "is_failure", False)
        outcome.append(f"refused: {reason}" if failure else "ok")
        answered.set()

    client = make_client(mqtt, f"microville-health-{uuid.uuid4().hex[:12]}", persistent=False)
    client.on_connect = on_connect
    try:
        client.connect(mqtt.host, mqtt.port, keepalive=10)
        client.loop_start()
        if not answered.wait(timeout_s):
            return "unreachable: no CONNACK"
        return outcome[0]
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        return f"unreachable: {exc}"
    finally:
        client.disconnect()
        client.loop_stop()


def _mqtt_for(settings: Settings) -> MqttSettings:
    return MqttSettings(
        url=settings.mqtt_url,
        username=settings.mqtt_username,
        password=reveal(settings.mqtt_password),
        ca_file=settings.mqtt_ca_file,
    )


def create_app(
    settings: Settings,
    store: ReadingStore | None = None,
    sites: SitesConfig | None = None,
    ledger: Ledger | None = None,
    alerts: AlertEngine | None = None,
    auth: Authenticator | None = None,
    clock: Clock = system_clock,
) -> FastAPI:
    """Build the API for ``sites`` (read from ``settings.config`` when not given) over
    ``store`` (opened from ``settings.store_url`` when not given; then closed with the app).
    Access control comes from ``auth`` or else the settings' token file (service/auth.py).
    ``clock`` is the app's time: default periods, alert evaluations, report runs and
    reading ages are read from it."""
    sites = sites if sites is not None else read_sites(settings.config)
    owned = store is None
    owned_ledger = ledger is None
    owned_alerts = alerts is None
    owned_auth = auth is None
    mqtt = _mqtt_for(settings)  # the health check logs in as the service does

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owned_alerts and app.state.alerts is not None:
            # The outbox's delivery workers always; evaluations every interval (0: on demand).
            app.state.alerts.start(settings.alert_interval_s)
        scheduler: ReportScheduler | None = None
        if app.state.reports is not None and settings.report_interval_s > 0:
            scheduler = ReportScheduler(
                sites,
                app.state.store,
                app.state.ledger,
                app.state.reports,
                app.state.alerts,
                clock=clock,
            )
            scheduler.start(settings.report_interval_s)  # its first run catches up
        yield
        if scheduler is not None:
            scheduler.stop()
        if app.state.reports is not None:
            app.state.reports.close()
        if owned_alerts and app.state.alerts is not None:
            app.state.alerts.stop()
            app.state.alerts.outbox.close()
        if owned:
            app.state.store.close()
        if owned_ledger:
            app.state.ledger.close()
        if owned_auth:
            app.state.auth.close()

    app = FastAPI(
        title="Microville Monitor",
        version=__version__,
        summary="Energy balance and proof indicators of eco-renovated buildings.",
        lifespan=lifespan,
        # Every route, present or future, checks the caller (service/auth.py).
        dependencies=[Depends(authorize)],
    )
    app.state.auth = auth if auth is not None else Authenticator.from_settings(settings)
    app.state.metrics = metrics = ServiceMetrics()
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    app.state.sites = sites
    app.state.clock = clock
    app.state.ledger = ledger if ledger is not None else Ledger(settings.ledger_path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler, but the echoed inputs made JSON-safe: a body holding
        # JSON's Infinity or NaN (Python's parser reads them) is a 422, not a 500.
        return JSONResponse(status_code=422, content={"detail": _json_safe(exc.errors())})

    @app.exception_handler(QueryError)
    async def _unanswerable(_request: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(StoreError)
    async def _store_down(_request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": f"store unavailable: {exc}"})

    app.include_router(proof_router)
    app.include_router(alerts_router)
    app.include_router(reports_router)
    app.state.reports = ReportArchive(settings.reports_dir) if settings.reports_dir else None
    app.include_router(metrics_router)
    app.state.store = TimedStore(
        store
        if store is not None
        else open_store(settings.store_url, reveal(settings.influx_token)),
        metrics,
    )
    metrics.watch_last_readings(sites, app.state.store, clock)
    if alerts is None and settings.alerts_path:
        outbox = Outbox(settings.alerts_path, sites.alert_channels, mqtt=_mqtt_for(settings))
        alerts = AlertEngine(sites, app.state.store, settings.alerts_path, outbox, clock=clock)
    if alerts is not None:
        metrics.instrument_alerts(alerts)
    app.state.alerts = alerts

    @app.get("/api/v1/sites", response_model=list[SiteOut])
    def list_sites(sites: SitesDep, principal: PrincipalDep) -> list[SiteOut]:
        """The sites the caller may read, and their meters."""
        return [SiteOut.of(s) for s in sites.sites if principal.can_read(s.id)]

    @app.get("/api/v1/sites/{site}", response_model=SiteOut)
    def get_site(site: SiteDep) -> SiteOut:
        """One site: its timezone (the dashboards cut their InfluxQL days with it), its
        location and floor area, and its meters."""
        return SiteOut.of(site)

    @app.get("/api/v1/sites/{site}/balance", response_model=BalanceOut)
    def get_balance(
        site: SiteDep, store: StoreDep, period: PeriodDep, step: StepQuery = Step.DAY
    ) -> BalanceOut:
        """Electricity balance per local hour/day/month/year, with its coverage."""
        return BalanceOut.of(electricity_balance(site, store, period.start, period.end, step))

    @app.get("/api/v1/sites/{site}/profile", response_model=ProfileOut)
    def get_profile(
        site: SiteDep,
        store: StoreDep,
        period: PeriodDep,
        flow: Annotated[
            str, Query(description="import, export, production, consumption or net")
        ] = "import",
    ) -> ProfileOut:
        """The heat map of the day: an electricity flow per local clock hour of each local
        day (kWh), DST days included."""
        days = day_profiles(site, store, period.start, period.end, flow)
        return ProfileOut(
            site=site.id,
            timezone=site.timezone,
            flow=flow,
            days=[DayProfileOut.of(d) for d in days],
        )

    @app.get(
        "/health",
        response_model=HealthOut,
        responses={503: {"model": HealthOut, "description": "a dependency does not answer"}},
    )
    async def health(store: StoreDep, response: Response) -> HealthOut:
        """200 when the store and the broker answer, 503 (degraded) otherwise, so that a
        container healthcheck or a load balancer sees it."""
        try:
            await run_in_threadpool(store.ping)
            store_state = "ok"
        except StoreError as exc:
            store_state = f"error: {exc}"
        broker_state = await run_in_threadpool(_broker_reachable, mqtt)
        ok = store_state == "ok" and broker_state == "ok"
        if not ok:
            response.status_code = 503
        return HealthOut(status="ok" if ok else "degraded", store=store_state, broker=broker_state)

    return app
