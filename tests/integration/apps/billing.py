"""Service 'billing': sync and async receivers, one that raises, a filtered one."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from busignal import receiver
from signals_shared import Order, event, order_paid, record, slow


@receiver(order_paid)
def charge(sender: Any, amount: int, **kwargs: Any) -> dict[str, Any]:
    record("billing.charge")
    if amount < 0:
        raise ValueError(f"negative amount {amount}")
    return {"charged": amount, "pid": os.getpid()}


@receiver(order_paid)
async def receipt(sender: Any, amount: int, **kwargs: Any) -> str:
    await asyncio.sleep(0)
    record("billing.receipt")
    return f"receipt for {amount}"


@receiver(order_paid, sender=Order)
def only_orders(sender: Any, **kwargs: Any) -> str:
    record("billing.only_orders")
    return f"sender is {sender!r}"


@receiver(event)
def count(sender: Any, n: int, **kwargs: Any) -> int:
    record("billing.event")
    return n


@receiver(slow)
def take_time(sender: Any, seconds: float, **kwargs: Any) -> float:
    record("billing.slow.start")
    time.sleep(seconds)
    record("billing.slow.end")
    return seconds
