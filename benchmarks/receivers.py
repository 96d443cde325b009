"""The receivers busignal workers run in the benchmarks: ``x + 1``, nothing else.

A trivial handler keeps the figures about busignal's own cost (encoding,
round trips, scheduling), which is what the baseline loop is compared on.
Each scenario has its own signal so its consumer groups never mix.
"""

from __future__ import annotations

from typing import Any

from busignal import Signal, receiver

__all__ = ["adrain", "drain", "drain2", "fan", "ping", "sink"]

#: send round trip, one service.
ping = Signal("bench.ping")
#: send round trip, four services.
fan = Signal("bench.fan")
#: drain rate, sync receiver, one worker process.
drain = Signal("bench.drain")
#: drain rate, async receiver, one worker process.
adrain = Signal("bench.adrain")
#: drain rate, sync receiver, two worker processes.
drain2 = Signal("bench.drain2")
#: publish rate: no service reads it.
sink = Signal("bench.sink")


@receiver([ping, fan, drain, drain2])
def plus_one(sender: Any, x: int, **kwargs: Any) -> int:
    """The trivial sync handler."""
    return x + 1


@receiver(adrain)
async def aplus_one(sender: Any, x: int, **kwargs: Any) -> int:
    """The trivial async handler."""
    return x + 1
