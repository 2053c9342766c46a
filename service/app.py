"""FastAPI application factory: ``create_app(settings)``, no import-time globals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from anyio import to_thread
from fastapi import Depends, FastAPI

from domain.clock import Clock, system_clock
from domain.site import SitesConfig, read_sites
from domain.store import Ledger, ReadingStore
from microville import __version__
from microville.mqtt import MqttSettings
from microville.settings import Settings, reveal
from service.access.auth import Authenticator, authorize
from service.alerts.engine import AlertEngine
from service.alerts.outbox import Outbox
from service.api.alerts import router as alerts_router
from service.api.docs import router as docs_router
from service.api.errors import add_error_handlers
from service.api.health import HealthProbe, broker_reachable, health_of, store_state
from service.api.health import router as health_router
from service.api.indicators import router as indicators_router
from service.api.limits import BodyGuardMiddleware
from service.api.records import router as records_router
from service.api.reports import router as reports_router
from service.api.sites import router as sites_router
from service.metrics import RequestMetricsMiddleware, ServiceMetrics, TimedStore
from service.metrics import router as metrics_router
from service.monthly_report.make import ReportScheduler
from stores import open_store
from stores.ledger import SqliteLedger
from stores.reports import ReportArchive


def _mqtt_for(settings: Settings) -> MqttSettings:
    return MqttSettings(
        url=settings.mqtt_url,
        username=settings.mqtt_username,
        password=reveal(settings.mqtt_password),
        ca_file=settings.mqtt_ca_file,
    )


@dataclass(frozen=True)
class _Owned:
    """What the app opened itself, and so closes when it stops."""

    store: bool
    ledger: bool
    alerts: bool
    auth: bool


def _lifespan(
    settings: Settings, sites: SitesConfig, owned: _Owned, clock: Clock
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync handlers run on this pool: 40 threads (anyio's default) of CPU-bound
        # queries fight over the GIL with the event loop (and /health); a few keep up the
        # throughput of a couple of cores and let the loop answer.
        to_thread.current_default_thread_limiter().total_tokens = settings.api_query_threads
        if owned.alerts and app.state.alerts is not None:
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
        if owned.alerts and app.state.alerts is not None:
            app.state.alerts.stop()
            app.state.alerts.outbox.close()
        if owned.store:
            app.state.store.close()
        if owned.ledger:
            app.state.ledger.close()
        if owned.auth:
            app.state.auth.close()
        app.state.health.close()

    return lifespan


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
    Access control comes from ``auth`` or else the settings' token file (service/access/auth.py).
    ``clock`` is the app's time: default periods, alert evaluations, report runs and
    reading ages are read from it."""
    sites = sites if sites is not None else read_sites(settings.config)
    owned = _Owned(
        store=store is None, ledger=ledger is None, alerts=alerts is None, auth=auth is None
    )
    mqtt = _mqtt_for(settings)  # the health check logs in as the service does

    app = FastAPI(
        title="Microville Monitor",
        version=__version__,
        summary="Energy balance and proof indicators of eco-renovated buildings.",
        lifespan=_lifespan(settings, sites, owned, clock),
        # Every route, present or future, checks the caller (service/access/auth.py).
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
    app.state.ledger = ledger if ledger is not None else SqliteLedger(settings.ledger_path)

    add_error_handlers(app)
    app.include_router(indicators_router)
    app.include_router(records_router)
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
