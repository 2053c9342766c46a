"""FastAPI application factory: ``create_app(settings)``, no import-time globals."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from domain.clock import Clock, system_clock
from domain.materials import MAX_REPORTED_PROBLEMS
from domain.site import SitesConfig, read_sites
from domain.store import ReadingStore, StoreError
from microville import __version__
from microville.mqtt import MqttSettings
from microville.settings import Settings, reveal
from service.alerts_api import router as alerts_router
from service.alerts_engine import AlertEngine
from service.auth import Authenticator, authorize
from service.docs_api import router as docs_router
from service.health import HealthProbe, broker_reachable, health_of, store_state
from service.health import router as health_router
from service.limits import BodyGuardMiddleware
from service.metrics import RequestMetricsMiddleware, ServiceMetrics, TimedStore
from service.metrics import router as metrics_router
from service.notify import Outbox
from service.proof_api import router as proof_router
from service.reports import ReportScheduler
from service.reports_api import router as reports_router
from service.sites_api import router as sites_router
from service.usecases import QueryError
from stores import open_store
from stores.ledger import Ledger
from stores.reports import ReportArchive

#: Validation errors a 422 lists; the rest are counted (``more_errors``).
MAX_REPORTED_ERRORS = MAX_REPORTED_PROBLEMS


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
        # Sync handlers run on this pool: 40 threads (anyio's default) of CPU-bound
        # queries fight over the GIL with the event loop (and /health); a few keep up the
        # throughput of a couple of cores and let the loop answer.
        to_thread.current_default_thread_limiter().total_tokens = settings.api_query_threads
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
        app.state.health.close()

    app = FastAPI(
        title="Microville Monitor",
        version=__version__,
        summary="Energy balance and proof indicators of eco-renovated buildings.",
        lifespan=lifespan,
        # Every route, present or future, checks the caller (service/auth.py).
        dependencies=[Depends(authorize)],
        # FastAPI's pages load Swagger UI and ReDoc from a CDN: served locally instead.
        docs_url=None,
        redoc_url=None,
    )
    app.state.auth = auth if auth is not None else Authenticator.from_settings(settings)
    app.state.metrics = metrics = ServiceMetrics()
    # Inner first: the metrics see the 401s and 413s the body guard answers.
    app.add_middleware(BodyGuardMiddleware, max_body_bytes=settings.api_max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    app.state.max_rows = settings.api_max_rows
    app.state.sites = sites
    app.state.clock = clock
    app.state.ledger = ledger if ledger is not None else Ledger(settings.ledger_path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler, but the echoed inputs made JSON-safe: a body holding
        # JSON's Infinity or NaN (Python's parser reads them) is a 422, not a 500.
        # The first problems only, then a count: a body of a million bad items must not
        # come back a million errors long.
        errors = list(exc.errors())
        shown = errors[:MAX_REPORTED_ERRORS]
        content: dict[str, object] = {"detail": _json_safe(shown)}
        if len(errors) > len(shown):
            content["more_errors"] = len(errors) - len(shown)
        return JSONResponse(status_code=422, content=content)

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

    app.state.health = HealthProbe(
        lambda: health_of(store_state(app.state.store), broker_reachable(mqtt)),
        settings.health_interval_s,
        clock,
    )
    app.include_router(sites_router)
    app.include_router(health_router)
    app.include_router(docs_router)  # /docs, /redoc and their assets, served offline
    return app
