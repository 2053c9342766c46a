"""``GET /health``: the store and the broker probed once per interval, not per call.

The route is anonymous (orchestrators call it without a secret), so a call must cost
nothing: each probe logs in to the broker with the service's account and queries the
store, and a probe per call let anyone open broker connections at will and queue behind
the store's queries. One probe answers every call of its interval; it runs on a thread
of its own, so a threadpool busy with long queries does not delay it.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from domain.clock import Clock
from domain.store import ReadingStore, StoreError
from microville.mqtt import MqttSettings, make_client
from service.api.limits import AuthorizedRoute
from service.api.schemas import HealthOut

__all__ = ["HealthProbe", "broker_reachable", "router", "store_state"]


def broker_reachable(mqtt: MqttSettings, timeout_s: float = 3.0) -> str:
    """ "ok" once the broker accepts an MQTT CONNECT with the service's credentials (and
    TLS), else why not: a TCP connect alone would pass a broker refusing the account."""
    # No bare TCP connect first: a connection closed before its CONNECT is an error in
    # a broker's log (amqtt logs two lines), and paho's own connect says unreachable.
    answered = threading.Event()
    outcome: list[str] = []

    def on_connect(_c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        failure = getattr(reason, "is_failure", False)
        outcome.append(f"refused: {reason}" if failure else "ok")
        answered.set()

    client = make_client(mqtt, f"microville-health-{uuid.uuid4().hex[:12]}", persistent=False)
    client.on_connect = on_connect
    client.connect_timeout = timeout_s
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


def store_state(store: ReadingStore) -> str:
    try:
        store.ping()
    except StoreError as exc:
        return f"error: {exc}"
    return "ok"


def health_of(store: str, broker: str) -> HealthOut:
    ok = store == "ok" and broker == "ok"
    return HealthOut(status="ok" if ok else "degraded", store=store, broker=broker)


@dataclass(frozen=True)
class _Probed:
    at_s: float
    health: HealthOut


class HealthProbe:
    """The last :class:`HealthOut` of ``probe``, probed again once ``interval_s`` (read
    on ``clock``) has passed: at most one probe per interval however many callers, and
    callers of an expired interval wait for that one probe rather than start their own.
    A clock read earlier than the last probe (set back) counts as expired."""

    def __init__(self, probe: Callable[[], HealthOut], interval_s: float, clock: Clock) -> None:
        if interval_s <= 0:
            raise ValueError(f"health interval {interval_s} s must be > 0")
        self._probe = probe
        self.interval_s = interval_s
        self._clock = clock
        self._last: _Probed | None = None
        self._probing = threading.Lock()
        # Its own threads: the app's threadpool may be taken by long queries. Made on
        # demand: an app may be started again after its lifespan closed it.
        self._threads: ThreadPoolExecutor | None = None

    def _clock_s(self) -> float:
        return self._clock().timestamp()

    def _fresh(self) -> HealthOut | None:
        last = self._last
        if last is None:
            return None
        age_s = self._clock_s() - last.at_s
        return last.health if 0 <= age_s < self.interval_s else None

    def current_blocking(self) -> HealthOut:
        with self._probing:  # one probe at a time; the waiters then read its result
            fresh = self._fresh()
            if fresh is not None:
                return fresh
            at_s = self._clock_s()
            health = self._probe()
            self._last = _Probed(at_s, health)
            return health

    async def current(self) -> HealthOut:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        if self._threads is None:
            self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="health")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self.current_blocking)

    def close(self) -> None:
        threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=False)


async def _probe(request: Request) -> HealthProbe:  # async: not on the query threads
    probe: HealthProbe = request.app.state.health
    return probe


HealthProbeDep = Annotated[HealthProbe, Depends(_probe)]

router = APIRouter(tags=["operations"], route_class=AuthorizedRoute)


@router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "a dependency does not answer"}},
)
async def health(probe: HealthProbeDep, response: Response) -> HealthOut:
    """200 when the store and the broker answer, 503 (degraded) otherwise, so that a
    container healthcheck or a load balancer sees it. Probed once per
    ``MICROVILLE_HEALTH_INTERVAL_S``: a dependency down shows within that interval."""
    out = await probe.current()
    if out.status != "ok":
        response.status_code = 503
    return out
