"""The worker's receivers: they write down what they were given, in Redis."""

from __future__ import annotations

import json
import os
from typing import Any

import redis

from busignal import receiver
from busignal.signals import post_delete, post_save

from .models import Order

_client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])


def _record(key: str, event: dict[str, Any]) -> None:
    _client.rpush(f"test:django:{key}", json.dumps(event, default=str))


@receiver(post_save, sender="shop.Order")
def order_saved(sender: Any, instance: dict[str, Any], **kwargs: Any) -> None:
    # The worker has Django set up: it can read the row the web process wrote.
    note = Order.objects.get(pk=instance["pk"]).note
    _record(
        "post_save",
        {
            "sender": sender,
            "instance": instance,
            "created": kwargs["created"],
            "update_fields": sorted(kwargs["update_fields"] or []),
            "note": note,
        },
    )


@receiver(post_delete, sender="shop.Order")
def order_deleted(sender: Any, instance: dict[str, Any], **kwargs: Any) -> None:
    _record("post_delete", {"sender": sender, "instance": instance})
