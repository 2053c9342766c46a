"""An embedded MQTT broker (amqtt) for ``microville demo``: no service to install."""

from __future__ import annotations

import asyncio
import logging
import threading

from amqtt.broker import Broker


class EmbeddedBroker:
    """amqtt broker on ``host:port`` in a background thread with its own event loop.

    Lifecycle: ``start()`` returns once the port accepts connections; ``stop()`` once.
    For demos and quick trials; production uses Mosquitto.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 1884) -> None:
        self.host, self.port = host, port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="amqtt", daemon=True)
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._thread.start()

        async def _start() -> Broker:
            broker = Broker(config)
            await broker.start()
            return broker

        # Broker.start() returns once its listeners are bound.
        self._broker = asyncio.run_coroutine_threadsafe(_start(), self._loop).result(timeout_s)

    def stop(self) -> None:
        if self._broker is not None:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
