"""Helpers for the unit tests of the distributed path on ``memory://``.

Receivers run in worker threads, so what they saw is recorded under a lock
and tests wait on a condition instead of sleeping.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Generic, TypeVar

from busignal.dispatch.signal import Signal
from busignal.worker.delivery import Delivery, current_delivery

T = TypeVar("T")

WAIT_SECONDS = 10.0


def unique(prefix: str) -> str:
    """A name no other test uses: signals register process-wide by name."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


class Recorder(Generic[T]):
    """A thread-safe list that tests can wait on."""

    def __init__(self) -> None:
        self._items: list[T] = []
        self._changed = threading.Condition()

    def add(self, item: T) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    @property
    def items(self) -> list[T]:
        with self._changed:
            return list(self._items)

    def __len__(self) -> int:
        with self._changed:
            return len(self._items)

    def reaches(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` items were added; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._items) >= count, timeout)

    def wait_for(self, count: int, timeout: float = WAIT_SECONDS) -> list[T]:
        """Wait until at least ``count`` items were added; return them all."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._items) >= count, timeout):
                raise AssertionError(
                    f"expected {count} items within {timeout}s, got {self._items!r}"
                )
            return list(self._items)


def delivery() -> Delivery:
    """The delivery the calling receiver runs for (it must run in a worker)."""
    current = current_delivery.get()
    assert current is not None, "not running inside a worker"
    return current


@dataclass(frozen=True, slots=True)
class Served(Generic[T]):
    """A signal and what its receiver recorded.

    Named signals are registered weakly, so a fixture hands the signal out
    with the recorder to keep it alive (and served) for the whole test; its
    receiver is connected with ``weak=False`` for the same reason.
    """

    signal: Signal
    seen: Recorder[T]
