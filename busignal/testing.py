"""Helpers for users' own tests: a real worker inside the test process.

With a ``memory://`` bus (fakeredis) these exercise the real encode, route,
run and collect path without a Redis server::

    bus = busignal.configure(url="memory://my-tests")
    with running_worker(bus, service="billing"):
        results = order_paid.send(sender=Order, order_id=7)

``drain()`` runs a worker in burst mode instead: it handles everything
queued and returns, so a test needs no waiting at all.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from busignal.bus.bus import Bus
from busignal.bus.default import get_bus
from busignal.errors import ConfigurationError
from busignal.worker.worker import Worker, WorkerConfig

__all__ = ["drain", "running_worker"]


def _resolve(bus: Bus | None) -> Bus:
    resolved = bus or get_bus()
    if resolved is None:
        raise ConfigurationError(
            "no bus: pass one or call busignal.configure(url='memory://') first"
        )
    return resolved


@contextmanager
def running_worker(
    bus: Bus | None = None,
    service: str = "tests",
    *,
    signals: Iterable[str] | None = None,
    **options: Any,
) -> Iterator[Worker]:
    """Run a worker of ``service`` in a background thread while the block runs.

    The worker has joined its consumer groups when the block starts, and has
    finished and acknowledged what it holds when the block ends.
    """
    options.setdefault("block_ms", 50)
    options.setdefault("heartbeat_interval", 0.5)
    worker = Worker(
        _resolve(bus), WorkerConfig(service, **options), signals_to_serve=signals
    )
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            asyncio.run(worker.serve())
        except BaseException as exc:
            failure.append(exc)
            worker.ready.set()

    thread = threading.Thread(
        target=serve, name=f"busignal-worker-{service}", daemon=True
    )
    thread.start()
    worker.ready.wait(10)
    if failure:
        raise failure[0]
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(30)
    if failure:
        raise failure[0]


def drain(
    bus: Bus | None = None,
    service: str = "tests",
    *,
    signals: Iterable[str] | None = None,
    **options: Any,
) -> int:
    """Handle every event queued for ``service`` and return how many were handled."""
    worker = Worker(
        _resolve(bus), WorkerConfig(service, **options), signals_to_serve=signals
    )
    asyncio.run(worker.serve(burst=True))
    return worker.handled
