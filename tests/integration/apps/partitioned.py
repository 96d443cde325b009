"""Service 'orders': a receiver on a signal partitioned by order id."""

from __future__ import annotations

import os
from typing import Any

from busignal import Signal, current_delivery, receiver
from signals_shared import record_value

order_event = Signal("order_updated", partitions=3, partition_key="order_id")
# (its three partitions hash to the three slot ranges of a 3-master cluster)


@receiver(order_event)
def on_order_event(sender: Any, order_id: int, n: int, **kwargs: Any) -> int:
    delivery = current_delivery.get()
    entry = delivery.entry_id if delivery else "?"
    record_value("orders.event", f"{order_id}|{n}|{os.getpid()}|{entry}")
    return n
