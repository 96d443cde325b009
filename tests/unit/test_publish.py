"""publish, durability while no worker runs, timeouts and the async forms."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from busignal import tracing
from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.errors import SignalTimeout
from busignal.testing import drain, running_worker
from busignal.wire.remote import RemoteReceiver

from .bus_helpers import Recorder, delivery

# -- publish and burst drain -------------------------------------------------------


def test_publish_returns_the_stream_entry_id(bus: Bus, name: str) -> None:
    sig = Signal(name)

    entry_id = sig.publish(sender=None, n=1)

    entries: Any = bus.client.xrange(bus.keys.events(name))
    assert [stored.decode() for stored, _ in entries] == [entry_id]


def test_publish_events_queued_while_no_worker_runs_are_drained_later(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)
    seen: Recorder[int] = Recorder()

    def handler(n: int, **kwargs: object) -> None:
        seen.add(n)

    sig.connect(handler)
    drain(bus, "svc", signals=[name])  # the service's group exists from now on
    for n in range(3):
        sig.publish(sender=None, n=n)

    handled = drain(bus, "svc", signals=[name])

    assert (handled, seen.items) == (3, [0, 1, 2])


def test_publish_every_service_gets_the_event(bus: Bus, name: str) -> None:
    sig = Signal(name)
    seen: Recorder[str] = Recorder()

    def handler(**kwargs: object) -> None:
        seen.add(delivery().service)

    sig.connect(handler)
    drain(bus, "alpha", signals=[name])
    drain(bus, "beta", signals=[name])
    sig.publish(sender=None)

    drain(bus, "beta", signals=[name])
    drain(bus, "alpha", signals=[name])

    assert seen.items == ["beta", "alpha"]


def test_drain_handles_nothing_twice(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def handler(**kwargs: object) -> None:
        pass

    sig.connect(handler)
    drain(bus, "svc", signals=[name])
    sig.publish(sender=None)
    drain(bus, "svc", signals=[name])

    assert drain(bus, "svc", signals=[name]) == 0


def test_publish_many_events_are_handled_in_order(bus: Bus, name: str) -> None:
    sig = Signal(name)
    seen: Recorder[int] = Recorder()

    def handler(n: int, **kwargs: object) -> None:
        seen.add(n)

    sig.connect(handler)
    drain(bus, "svc", signals=[name])

    ids = sig.publish_many(None, [{"n": n} for n in range(5)])
    drain(bus, "svc", signals=[name])

    assert len(ids) == len(set(ids)) == 5
    assert seen.items == [0, 1, 2, 3, 4]


def test_publish_many_with_empty_batch_writes_nothing(bus: Bus, name: str) -> None:
    sig = Signal(name)

    assert sig.publish_many(None, []) == []
    assert bus.client.exists(bus.keys.events(name)) == 0


# -- a service with no live worker -------------------------------------------------


def test_send_to_service_without_worker_raises_signal_timeout(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)

    def handler(**kwargs: object) -> None:
        pass

    sig.connect(handler)
    drain(bus, "billing", signals=[name])

    with pytest.raises(SignalTimeout, match="billing") as info:
        sig.using(timeout=0.3).send(sender=None)

    assert (info.value.signal, info.value.services) == (name, ["billing"])


def test_send_that_timed_out_is_still_handled_by_a_later_drain(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)
    seen: Recorder[int] = Recorder()

    def handler(n: int, **kwargs: object) -> None:
        seen.add(n)

    sig.connect(handler)
    drain(bus, "billing", signals=[name])
    with pytest.raises(SignalTimeout):
        sig.using(timeout=0.3).send(sender=None, n=7)

    handled = drain(bus, "billing", signals=[name])

    assert (handled, seen.items) == (1, [7])


def test_send_robust_returns_timeout_for_service_without_worker(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)

    def handler(**kwargs: object) -> None:
        pass

    sig.connect(handler)
    drain(bus, "billing", signals=[name])

    [(got, response)] = sig.using(timeout=0.3).send_robust(sender=None)

    assert got == RemoteReceiver("", "billing", None)
    assert isinstance(response, SignalTimeout)
    assert response.services == ["billing"]


def test_send_robust_mixes_answers_and_timeouts_by_service(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def handler(**kwargs: object) -> str:
        return delivery().service

    sig.connect(handler)
    drain(bus, "billing", signals=[name])
    with running_worker(bus, "alpha", signals=[name]):
        results = sig.using(timeout=0.5).send_robust(sender=None)

    assert results[0] == (handler, "alpha")
    assert results[1][0] == RemoteReceiver("", "billing", None)
    assert isinstance(results[1][1], SignalTimeout)


# -- async forms ----------------------------------------------------------------------


def test_asend_returns_results_of_the_worker(bus: Bus, name: str) -> None:
    sig = Signal(name)

    async def handler(n: int, **kwargs: object) -> int:
        return n * 2

    sig.connect(handler)
    with running_worker(bus, "svc", signals=[name]):
        results = asyncio.run(sig.asend(sender=None, n=21))

    assert results == [(handler, 42)]


def test_asend_raises_remote_error(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def failing(**kwargs: object) -> None:
        raise ValueError("async caller")

    sig.connect(failing)
    with (
        running_worker(bus, "svc", signals=[name]),
        pytest.raises(ValueError, match="async caller"),
    ):
        asyncio.run(sig.asend(sender=None))


def test_asend_robust_returns_exception_as_response(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def failing(**kwargs: object) -> None:
        raise ValueError("async caller")

    def plain(**kwargs: object) -> str:
        return "ok"

    sig.connect(failing)
    sig.connect(plain)
    with running_worker(bus, "svc", signals=[name]):
        results = asyncio.run(sig.asend_robust(sender=None))

    (first, error), second = results
    assert first is failing
    assert isinstance(error, ValueError)
    assert second == (plain, "ok")


def test_asend_to_service_without_worker_raises_signal_timeout(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)

    def handler(**kwargs: object) -> None:
        pass

    sig.connect(handler)
    drain(bus, "billing", signals=[name])

    with pytest.raises(SignalTimeout, match="billing"):
        asyncio.run(sig.using(timeout=0.3).asend(sender=None))


def test_apublish_event_is_handled_by_drain(bus: Bus, name: str) -> None:
    sig = Signal(name)
    seen: Recorder[int] = Recorder()

    def handler(n: int, **kwargs: object) -> None:
        seen.add(n)

    sig.connect(handler)
    drain(bus, "svc", signals=[name])

    entry_id = asyncio.run(sig.apublish(sender=None, n=5))
    drain(bus, "svc", signals=[name])

    assert isinstance(entry_id, str)
    assert seen.items == [5]


def test_asend_works_from_two_event_loops_in_turn(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def handler(n: int, **kwargs: object) -> int:
        return n

    sig.connect(handler)
    with running_worker(bus, "svc", signals=[name]):
        first = asyncio.run(sig.asend(sender=None, n=1))
        second = asyncio.run(sig.asend(sender=None, n=2))

    assert (first, second) == ([(handler, 1)], [(handler, 2)])


def test_publish_trace_context_reaches_receiver_in_drain(bus: Bus, name: str) -> None:
    sig = Signal(name)
    seen: Recorder[str] = Recorder()
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    def handler(**kwargs: object) -> None:
        seen.add(tracing.traceparent.get())

    sig.connect(handler)
    drain(bus, "svc", signals=[name])
    with tracing.continuing(parent):
        sig.publish(sender=None)

    drain(bus, "svc", signals=[name])

    assert seen.items == [parent]
