"""Receivers of the outbox and worker tests: each reads the database.

Every event is recorded with the attempt it was handled on and what the
worker's own database connection found, so a test sees a query that failed
(the receiver raises) and a retry (attempt 2).
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis

from busignal import current_delivery, receiver
from busignal.signals import post_save

from .models import Order
from .signals import order_shipped

_client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])


def _record(key: str, event: dict[str, Any]) -> None:
    delivery = current_delivery.get()
    event["attempt"] = delivery.attempt if delivery else None
    _client.rpush(f"test:outbox:{key}", json.dumps(event, default=str))


@receiver(post_save, sender="shop.Order")
def order_saved(sender: Any, instance: dict[str, Any], **kwargs: Any) -> None:
    row = Order.objects.filter(pk=instance["pk"]).values_list("status").first()
    _record("post_save", {"status": instance.get("status"), "row": row})


@receiver(order_shipped)
def on_shipped(sender: Any, n: int, **kwargs: Any) -> None:
    _record("order_shipped", {"n": n, "orders": Order.objects.count()})
