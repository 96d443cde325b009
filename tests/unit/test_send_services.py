"""Whom a send waits for: exactly the services whose groups existed at its add.

No time window: a service that joined a moment ago is waited for, one that
left a moment ago is not, whatever this process saw on its last send.
"""

from __future__ import annotations

import asyncio
import time

from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.testing import running_worker

from .bus_helpers import delivery


def _service(**kwargs: object) -> str:
    return delivery().service


def test_send_right_after_a_service_joins_gets_its_reply(bus: Bus, name: str) -> None:
    sig = Signal(name)
    sig.connect(_service)
    assert sig.using(timeout=2).send(sender=None) == []  # nobody there yet

    with running_worker(bus, "billing", signals=[name]):
        results = sig.using(timeout=2).send(sender=None)

    assert results == [(_service, "billing")]


def test_send_right_after_a_second_service_joins_waits_for_both(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)
    sig.connect(_service)
    with running_worker(bus, "alpha", signals=[name]):
        assert sig.using(timeout=2).send(sender=None) == [(_service, "alpha")]
        with running_worker(bus, "beta", signals=[name]):
            results = sig.using(timeout=2).send_robust(sender=None)

    assert results == [(_service, "alpha"), (_service, "beta")]


def test_send_right_after_a_group_is_destroyed_does_not_wait_for_it(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)
    sig.connect(_service)
    with running_worker(bus, "billing", signals=[name]):
        assert sig.using(timeout=2).send(sender=None) == [(_service, "billing")]
    bus.client.xgroup_destroy(bus.keys.events(name), "billing")

    started = time.monotonic()
    results = sig.using(timeout=5).send(sender=None)

    assert results == []
    assert time.monotonic() - started < 1.0


def test_asend_right_after_a_service_joins_gets_its_reply(bus: Bus, name: str) -> None:
    sig = Signal(name)
    sig.connect(_service)
    assert asyncio.run(sig.using(timeout=2).asend(sender=None)) == []

    with running_worker(bus, "billing", signals=[name]):
        results = asyncio.run(sig.using(timeout=2).asend_robust(sender=None))

    assert results == [(_service, "billing")]


def test_send_with_no_service_adds_its_entry_and_leaves_no_marker(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)

    assert sig.send(sender=None) == []

    assert bus.client.xlen(bus.keys.events(name)) == 1
    assert bus.client.keys(f"{bus.keys.namespace}:*reply*") == []
