"""How long a signal lives, and its in-process door, as a user relies on them."""

from __future__ import annotations

import gc

from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal, named_signals, receiver

from .bus_helpers import unique


def handle(**kwargs: object) -> str:
    return "handled"


def test_signal_kept_only_by_its_receiver_stays_named() -> None:
    # A worker module may write @receiver(Signal("name")) without keeping the
    # signal: as with Django, a live receiver keeps its signal alive.
    name = unique("sig")
    receiver(Signal(name))(handle)
    gc.collect()

    assert name in named_signals()


def test_in_process_send_calls_receivers_here_despite_a_bus() -> None:
    sig = Signal(unique("sig"), bus=Bus("memory://"))
    sig.connect(handle)

    assert sig.in_process.send(sender=None) == [(handle, "handled")]
