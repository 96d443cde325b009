"""What the fault-test receiver modules share: signals and the side-effect store.

No receivers here, so importing it connects nothing.
"""

from __future__ import annotations

import os

import redis

from busignal import Signal
from busignal.worker.delivery import current_delivery

tick = Signal("faults_tick")
gated = Signal("faults_gated")
poison = Signal("faults_poison")
slow = Signal("faults_slow")

_client: redis.Redis | None = None


def client() -> redis.Redis:
    """The test Redis (the receivers' side-effect store)."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"], socket_timeout=10)
    return _client


def entry_id() -> str:
    """The stream entry id of the delivery being run."""
    delivery = current_delivery.get()
    assert delivery is not None, "receivers run inside a delivery"
    return delivery.entry_id
