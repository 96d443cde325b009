"""Service ``billing``: charges paid orders and meters page views.

Run it with ``busignal worker busignal.examples.billing --service billing``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from busignal import receiver
from busignal.examples.signals import order_paid, page_viewed

__all__ = ["charge", "meter", "receipt"]

logger = logging.getLogger(__name__)

_usage: dict[str, int] = {}


@receiver(order_paid)
def charge(sender: Any, order_id: int, amount: int, **kwargs: Any) -> dict[str, Any]:
    """Charge the order; refuse a negative amount."""
    if amount < 0:
        raise ValueError(f"order {order_id}: cannot charge a negative amount {amount}")
    logger.info("charged order %s: %s cents", order_id, amount)
    return {"order": order_id, "charged": amount, "pid": os.getpid()}


@receiver(order_paid)
async def receipt(sender: Any, order_id: int, amount: int, **kwargs: Any) -> str:
    """Render the receipt (an async receiver: it runs on the worker's loop)."""
    await asyncio.sleep(0)
    return f"receipt #{order_id}: {amount / 100:.2f} EUR"


@receiver(page_viewed)
def meter(sender: Any, path: str, **kwargs: Any) -> int:
    """Count a page view for metered billing; returns the path's count so far."""
    _usage[path] = _usage.get(path, 0) + 1
    return _usage[path]
