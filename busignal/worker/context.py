"""What every part of a worker is given: ``WorkerContext``.

The lane, liveness, settling and the broadcast reader each receive this
(and the few callables they call back through) instead of the worker, so
none of them imports it or reads its attributes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from busignal.bus.bus import Bus
from busignal.wire.keys import Keys
from busignal.worker.config import WorkerConfig
from busignal.worker.observe import Observer
from busignal.worker.routes import Routes

__all__ = ["HandledCount", "WorkerContext"]


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """One worker's identity and settings, fixed for its life.

    ``routes`` grows as partitions are discovered (on the loop) and
    ``observers`` may be appended to before the worker serves; the context
    itself never changes.
    """

    bus: Bus
    config: WorkerConfig
    keys: Keys
    #: This worker's consumer name in its service's groups.
    consumer: str
    routes: Routes
    observers: list[Observer]


class HandledCount:
    """How many jobs a worker has handled (its heartbeat reports it).

    Written by the loop thread and the lane thread, each adding a batch's
    count under the lock; read from any thread as ``value``.
    """

    __slots__ = ("_lock", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def add(self, count: int) -> None:
        with self._lock:
            self._value += count

    @property
    def value(self) -> int:
        return self._value
