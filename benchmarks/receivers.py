"""The receivers busignal workers run in the benchmarks: ``x + 1``, nothing else.

A trivial handler keeps the figures about busignal's own cost (encoding,
round trips, scheduling), which is what the baseline loop is compared on.
Each scenario has its own signal so its consumer groups never mix.
"""

from __future__ import annotations

from typing import Any

from busignal import Signal, receiver

__all__ = [
    "FAIL_EVERY",
    "adrain",
    "drain",
    "drain2",
    "drain4",
    "fan",
    "ping",
    "sink",
    "soak",
]

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
#: drain rate, sync receiver, four worker processes.
drain4 = Signal("bench.drain4")
#: publish rate: no service reads it.
sink = Signal("bench.sink")
#: the soak (``--soak``): one event in FAIL_EVERY fails, to make dead letters.
soak = Signal("bench.soak")
FAIL_EVERY = 5


@receiver([ping, fan, drain, drain2, drain4])
def plus_one(sender: Any, x: int, **kwargs: Any) -> int:
    """The trivial sync handler."""
    return x + 1


@receiver(adrain)
async def aplus_one(sender: Any, x: int, **kwargs: Any) -> int:
    """The trivial async handler."""
    return x + 1


@receiver(soak)
def plus_one_or_fail(sender: Any, x: int, **kwargs: Any) -> int:
    """``x + 1``, but raises for one ``x`` in ``FAIL_EVERY`` (a dead letter)."""
    if x % FAIL_EVERY == FAIL_EVERY - 1:
        raise ValueError(f"soak: event {x} fails on purpose")
    return x + 1
