"""The service's Prometheus metrics, in a registry of each app's own (tests build many
apps in one process; the global registry would refuse their duplicate names).

- ``microville_http_requests_total{method,route,status}`` and
  ``microville_http_request_duration_seconds{method,route}``: ``route`` is the route's
  template (``/api/v1/sites/{site}/energy``), never the raw path, so label values stay few;
- ``microville_store_query_duration_seconds{operation}``,
  ``microville_store_errors_total{operation}``: every call through the store port;
- ``microville_alert_evaluations_total{outcome}``,
  ``microville_alert_evaluation_duration_seconds``, ``microville_alert_events_total{event}``;
- ``microville_last_reading_age_seconds{site,meter}``: read from the store at scrape time
  (one ``last_seen`` query per site and quantity), absent for a meter never heard from.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.clock import Clock, system_clock
from domain.readings import Reading
from domain.site import SitesConfig
from domain.store import IndexSeries, ReadingStore, StoreError, SumSlot
from service.alerts.engine import AlertEngine
from service.api.limits import AuthorizedRoute

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["RequestMetricsMiddleware", "ServiceMetrics", "TimedStore", "router"]

#: Request and query durations: a cached figure answers in milliseconds, a year of
#: one-minute data on InfluxDB in seconds.
_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "microville_http_requests",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "microville_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            buckets=_BUCKETS_S,
            registry=self.registry,
        )
        self.store_seconds = Histogram(
            "microville_store_query_duration_seconds",
            "Time of a call through the store port",
            ["operation"],
            buckets=_BUCKETS_S,
            registry=self.registry,
        )
        self.store_errors = Counter(
            "microville_store_errors",
            "Store calls that failed (StoreError)",
            ["operation"],
            registry=self.registry,
        )
        self.alert_evaluations = Counter(
            "microville_alert_evaluations",
            "Evaluations of every site's alert rules, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.alert_seconds = Histogram(
            "microville_alert_evaluation_duration_seconds",
            "Time of one evaluation of every site's alert rules",
            buckets=_BUCKETS_S,
            registry=self.registry,
        )
        self.alert_events = Counter(
            "microville_alert_events",
            "Alert events produced (firing, resolved, reminder)",
            ["event"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return _generate_latest(self.registry)

    def watch_last_readings(
        self, sites: SitesConfig, store: ReadingStore, clock: Clock = system_clock
    ) -> None:
        self.registry.register(_LastReadingAge(sites, store, clock))

    def instrument_alerts(self, engine: AlertEngine) -> None:
        """Count and time ``engine.evaluate``, whether the engine's own thread or the API
        calls it (both go through the instance attribute)."""
        evaluate = engine.evaluate

        @functools.wraps(evaluate)
        def timed() -> list[Any]:
            t0 = time.perf_counter()
            try:
                notifications = evaluate()
            except Exception:
                self.alert_evaluations.labels("error").inc()
                raise
            finally:
                self.alert_seconds.observe(time.perf_counter() - t0)
            self.alert_evaluations.labels("ok").inc()
            for n in notifications:
                self.alert_events.labels(n.event).inc()
            return notifications

        # The engine is shared with code that knows nothing of metrics; wrapping its
        # method keeps it that way.
        engine.evaluate = timed  # type: ignore[method-assign]


class RequestMetricsMiddleware:
    """Pure ASGI middleware: sees the status even of a response that streams, and the
    route the router matched (it writes it into the shared scope)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts
        t0 = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.request_seconds.labels(method, template).observe(time.perf_counter() - t0)


class _LastReadingAge(Collector):
    def __init__(self, sites: SitesConfig, store: ReadingStore, clock: Clock) -> None:
        self.sites = sites
        self.store = store
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "microville_last_reading_age_seconds",
            "Seconds since the newest stored reading of each meter",
            labels=["site", "meter"],
        )
        now = self.clock()
        for site in self.sites.sites:
            by_quantity: dict[str, list[str]] = {}
            for m in site.meters:
                by_quantity.setdefault(m.dimension, []).append(m.id)
            for quantity, meters in by_quantity.items():
                try:
                    seen = self.store.last_seen(site.id, meters, quantity)
                except StoreError:
                    continue  # counted by the store's error counter; the scrape still answers
                for meter, t in seen.items():
                    if t is not None:
                        family.add_metric([site.id, meter], (now - t).total_seconds())
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Describing must not query the store (the registry does it at registration).
        yield GaugeMetricFamily(
            "microville_last_reading_age_seconds",
            "Seconds since the newest stored reading of each meter",
            labels=["site", "meter"],
        )


class TimedStore:
    """The store port, timed: each call observed under its operation name."""

    def __init__(self, store: ReadingStore, metrics: ServiceMetrics) -> None:
        self.inner = store
        self._metrics = metrics

    def _timed(self, operation: str, call: Callable[P, R], *args: P.args, **kw: P.kwargs) -> R:
        t0 = time.perf_counter()
        try:
            return call(*args, **kw)
        except StoreError:
            self._metrics.store_errors.labels(operation).inc()
            raise
        finally:
            self._metrics.store_seconds.labels(operation).observe(time.perf_counter() - t0)

    def write(self, readings: Sequence[Reading]) -> None:
        self._timed("write", self.inner.write, readings)

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
        return self._timed(
            "index_slots", self.inner.index_slots, site, meters, quantity, start, end, slot, cuts
        )

    def slot_sums(
        self,
        site: str,
        meters: Sequence[str],
        quantity: str,
        start: datetime,
        end: datetime,
        slot: timedelta,
    ) -> dict[str, list[SumSlot]]:
        return self._timed(
            "slot_sums", self.inner.slot_sums, site, meters, quantity, start, end, slot
        )

    def hourly_means(
        self, site: str, meter: str, quantity: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, float]]:
        return self._timed(
            "hourly_means", self.inner.hourly_means, site, meter, quantity, start, end
        )

    def last_seen(
        self, site: str, meters: Sequence[str], quantity: str
    ) -> dict[str, datetime | None]:
        return self._timed("last_seen", self.inner.last_seen, site, meters, quantity)

    def count(self, site: str) -> int:
        return self._timed("count", self.inner.count, site)

    def ping(self) -> None:
        self._timed("ping", self.inner.ping)

    def close(self) -> None:
        self.inner.close()


router = APIRouter(tags=["operations"], route_class=AuthorizedRoute)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request) -> Response:
    """Prometheus metrics of this service. Needs a token that reads every site (a read
    token made with --all-sites, or an admin's): the labels name every site's meters."""
    service_metrics: ServiceMetrics = request.app.state.metrics
    return Response(service_metrics.render(), media_type=CONTENT_TYPE_LATEST)
