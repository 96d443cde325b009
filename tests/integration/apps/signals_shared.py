"""The signals the test services share (same names in every process)."""

from __future__ import annotations

import os

import redis

from busignal import Signal
from busignal.worker.delivery import current_delivery

order_paid = Signal("order_paid")
event = Signal("event")
flaky = Signal("flaky")
slow = Signal("slow")
cache_cleared = Signal("cache_cleared")

_client: redis.Redis | None = None


def record(tag: str) -> None:
    """Write down that this process handled the current delivery under ``tag``."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])
    delivery = current_delivery.get()
    message = delivery.message_id if delivery else "?"
    _client.rpush(f"test:handled:{tag}", f"{message}|{os.getpid()}")


def record_value(tag: str, value: str) -> None:
    """Append ``value`` to the list ``test:handled:TAG`` of the test Redis."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])
    _client.rpush(f"test:handled:{tag}", value)


class Order:
    """A sender class known to the worker processes."""
