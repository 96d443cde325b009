"""Service 'notifications': one receiver on order_paid, and a broadcast one."""

from __future__ import annotations

from typing import Any

from busignal import receiver
from signals_shared import cache_cleared, order_paid, record


@receiver(order_paid)
def email(sender: Any, amount: int, **kwargs: Any) -> str:
    record("notifications.email")
    return f"emailed about {amount}"


@receiver(cache_cleared, broadcast=True)
def clear_local_cache(sender: Any, key: str, **kwargs: Any) -> None:
    record(f"notifications.cache.{key}")
