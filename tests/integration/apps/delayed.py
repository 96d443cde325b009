"""Receivers for delayed-event tests: each run is written down with its time.

Every run pushes ``service|n|time|pid`` onto ``delayed:runs``, so a test
can check that no service ran an event early, late, or twice.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from busignal import Signal, receiver
from busignal.worker.delivery import current_delivery

reminder = Signal("delayed_reminder")

_client: redis.Redis | None = None


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"], socket_timeout=10)
    return _client


@receiver(reminder)
def on_reminder(sender: Any, n: int, **kwargs: Any) -> None:
    delivery = current_delivery.get()
    assert delivery is not None
    client().rpush(
        "delayed:runs", f"{delivery.service}|{n}|{time.time()!r}|{os.getpid()}"
    )
