"""Service 'faults': receivers that write down every execution, for fault tests.

Every execution adds one to ``faults:ledger:faults`` under the stream entry
id, so a test can count what was handled, lost and duplicated.
"""

from __future__ import annotations

import os
import time
from typing import Any

from faults_common import client, entry_id, gated, poison, slow, tick

from busignal import receiver
from busignal.worker.delivery import current_delivery

__all__ = ["gated", "poison", "slow", "tick"]


def ledger() -> None:
    """Count one execution of the current delivery (keyed by stream entry id)."""
    client().hincrby("faults:ledger:faults", entry_id(), 1)


@receiver(tick)
def on_tick(sender: Any, delay: float = 0.0, **kwargs: Any) -> None:
    if delay:
        time.sleep(delay)
    ledger()


@receiver(gated)
def on_gated(sender: Any, **kwargs: Any) -> None:
    """Say who started, wait for the test to open the gate, then count."""
    entry = entry_id()
    client().set(f"faults:started:{entry}", os.getpid())
    client().blpop([f"faults:gate:{entry}"], timeout=30)
    client().rpush(f"faults:done:{entry}", os.getpid())
    ledger()


@receiver(poison)
def on_poison(sender: Any, **kwargs: Any) -> str:
    """Raise, until the test sets ``faults:poison:fixed``."""
    delivery = current_delivery.get()
    assert delivery is not None
    client().rpush(
        f"faults:tries:{delivery.message_id}", f"{delivery.attempt}|{os.getpid()}"
    )
    if not client().exists("faults:poison:fixed"):
        raise RuntimeError("poisoned on purpose")
    ledger()
    return "ok"


@receiver(slow)
def on_slow(sender: Any, seconds: float, **kwargs: Any) -> float:
    entry = entry_id()
    client().set(f"faults:started:{entry}", os.getpid())
    time.sleep(seconds)
    client().rpush(f"faults:done:{entry}", os.getpid())
    ledger()
    return seconds
