"""send and send_robust over a memory:// bus, with real workers in threads."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable

import pytest

from busignal import tracing
from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.errors import SerializationError
from busignal.names import receiver_id
from busignal.testing import running_worker
from busignal.wire.remote import RemoteReceiver
from busignal.worker.worker import Worker, WorkerConfig

from .bus_helpers import WAIT_SECONDS, Recorder, delivery


class Order:
    """A sender class the worker knows from a registration."""


class Refund:
    """A sender class no receiver is connected with."""


# -- fan-out --------------------------------------------------------------------


def test_send_fan_out_returns_results_of_every_service_sorted(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)

    def first(**kwargs: object) -> str:
        return f"{delivery().service}:first"

    def second(**kwargs: object) -> str:
        return f"{delivery().service}:second"

    sig.connect(first)
    sig.connect(second)
    with (
        running_worker(bus, "beta", signals=[name]),
        running_worker(bus, "alpha", signals=[name]),
    ):
        results = sig.send(sender=None)

    assert results == [
        (first, "alpha:first"),
        (second, "alpha:second"),
        (first, "beta:first"),
        (second, "beta:second"),
    ]


def test_send_fan_out_runs_receivers_once_per_service(bus: Bus, name: str) -> None:
    sig = Signal(name)
    calls: Recorder[str] = Recorder()

    def handler(**kwargs: object) -> None:
        calls.add(delivery().service)

    sig.connect(handler)
    with (
        running_worker(bus, "alpha", signals=[name]),
        running_worker(bus, "beta", signals=[name]),
    ):
        sig.send(sender=None)

    assert sorted(calls.items) == ["alpha", "beta"]


def test_send_fan_out_gathers_replies_that_arrive_together(bus: Bus, name: str) -> None:
    # All four services answer at once (a barrier), so after the first reply
    # the rest are already waiting: they are taken in the same round trip.
    sig = Signal(name)
    services = ["a", "b", "c", "d"]
    together = threading.Barrier(len(services), timeout=10)

    def handler(n: int, **kwargs: object) -> str:
        together.wait()
        return f"{delivery().service}:{n}"

    sig.connect(handler)
    with contextlib.ExitStack() as stack:
        for service in services:
            stack.enter_context(running_worker(bus, service, signals=[name]))
        answers = [sig.send(sender=None, n=n) for n in range(5)]
        answers.append(asyncio.run(sig.asend(sender=None, n=5)))

    for n, results in enumerate(answers):
        assert results == [(handler, f"{s}:{n}") for s in services]


def test_send_result_receiver_is_the_local_function(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def handler(**kwargs: object) -> int:
        return 1

    sig.connect(handler)
    with running_worker(bus, "svc", signals=[name]):
        [(got, _)] = sig.send(sender=None)

    assert got is handler


def test_send_passes_kwargs_and_signal_to_receivers(bus: Bus, name: str) -> None:
    sig = Signal(name)
    seen: Recorder[tuple[object, dict[str, object]]] = Recorder()

    def handler(signal: object, **kwargs: object) -> None:
        seen.add((signal, kwargs))

    sig.connect(handler)
    with running_worker(bus, "svc", signals=[name]):
        sig.send(sender=None, order_id=7, items=["a", "b"])

    assert seen.items == [(sig, {"sender": None, "order_id": 7, "items": ["a", "b"]})]


# -- load balancing -------------------------------------------------------------


def test_publish_load_balances_within_a_service(bus: Bus, name: str) -> None:
    sig = Signal(name)
    handled: Recorder[str] = Recorder()
    # The first two events wait for each other: a worker reads one entry at a
    # time (batch=1), so the second one must go to the other worker.
    both_busy = threading.Barrier(2, timeout=10)

    def handler(**kwargs: object) -> None:
        if kwargs["n"] in (0, 1):
            both_busy.wait()
        handled.add(delivery().message_id)

    sig.connect(handler)
    with (
        running_worker(bus, "svc", signals=[name], batch=1) as one,
        running_worker(bus, "svc", signals=[name], batch=1) as two,
    ):
        for n in range(10):
            sig.publish(sender=None, n=n)
        handled.wait_for(10)

    assert one.handled >= 1
    assert two.handled >= 1
    assert one.handled + two.handled == 10


def test_publish_each_event_handled_once_per_service(bus: Bus, name: str) -> None:
    sig = Signal(name)
    handled: Recorder[str] = Recorder()

    def handler(**kwargs: object) -> None:
        handled.add(delivery().message_id)

    sig.connect(handler)
    with (
        running_worker(bus, "svc", signals=[name], batch=2) as one,
        running_worker(bus, "svc", signals=[name], batch=2) as two,
    ):
        for n in range(20):
            sig.publish(sender=None, n=n)
        handled.wait_for(20)

    assert len(set(handled.items)) == len(handled.items) == 20
    assert one.handled + two.handled == 20


# -- errors: fail-fast and robust --------------------------------------------------


def test_send_raises_remote_error_as_its_builtin_class(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def failing(**kwargs: object) -> None:
        raise ValueError("out of stock")

    sig.connect(failing)
    with (
        running_worker(bus, "svc", signals=[name]),
        pytest.raises(ValueError, match="out of stock") as info,
    ):
        sig.send(sender=None)

    assert type(info.value) is ValueError


def test_send_error_note_carries_remote_traceback(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def failing(**kwargs: object) -> None:
        raise ValueError("out of stock")

    sig.connect(failing)
    with (
        running_worker(bus, "svc", signals=[name]),
        pytest.raises(ValueError, match="out of stock") as info,
    ):
        sig.send(sender=None)

    notes = "\n".join(info.value.__notes__)
    assert "service 'svc'" in notes
    assert "Traceback (most recent call last)" in notes
    assert 'raise ValueError("out of stock")' in notes


def test_send_fail_fast_skips_later_receivers_of_the_service(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)
    later: Recorder[str] = Recorder()

    def failing(**kwargs: object) -> None:
        raise ValueError("first")

    def after(**kwargs: object) -> None:
        later.add("ran")

    sig.connect(failing)
    sig.connect(after)
    with (
        running_worker(bus, "svc", signals=[name]),
        pytest.raises(ValueError, match="first"),
    ):
        sig.send(sender=None)

    assert later.items == []


def test_send_robust_returns_exception_as_response(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def failing(**kwargs: object) -> None:
        raise KeyError("sku")

    sig.connect(failing)
    with running_worker(bus, "svc", signals=[name]):
        [(got, response)] = sig.send_robust(sender=None)

    assert got is failing
    assert isinstance(response, KeyError)
    assert response.args == ("sku",)


def test_send_robust_runs_every_receiver(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def failing(**kwargs: object) -> None:
        raise ValueError("first")

    def after(**kwargs: object) -> str:
        return "ran"

    sig.connect(failing)
    sig.connect(after)
    with running_worker(bus, "svc", signals=[name]):
        results = sig.send_robust(sender=None)

    assert [r for r, _ in results] == [failing, after]
    assert results[1] == (after, "ran")


def test_send_robust_unencodable_return_value_is_serialization_error(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)

    def returns_lock(**kwargs: object) -> object:
        return threading.Lock()

    def plain(**kwargs: object) -> int:
        return 42

    sig.connect(returns_lock)
    sig.connect(plain)
    with running_worker(bus, "svc", signals=[name]):
        results = sig.send_robust(sender=None)

    (first, error), second = results
    assert first is returns_lock
    assert isinstance(error, SerializationError)
    assert "lock" in str(error)
    assert second == (plain, 42)


# -- sync and async receivers ---------------------------------------------------


def test_send_runs_sync_receivers_before_async_ones(bus: Bus, name: str) -> None:
    sig = Signal(name)

    async def async_first(**kwargs: object) -> str:
        return "async_first"

    def sync_first(**kwargs: object) -> str:
        return "sync_first"

    async def async_second(**kwargs: object) -> str:
        return "async_second"

    def sync_second(**kwargs: object) -> str:
        return "sync_second"

    for each in (async_first, sync_first, async_second, sync_second):
        sig.connect(each)
    with running_worker(bus, "svc", signals=[name]):
        results = sig.send(sender=None)

    assert results == [
        (sync_first, "sync_first"),
        (sync_second, "sync_second"),
        (async_first, "async_first"),
        (async_second, "async_second"),
    ]


# -- senders ----------------------------------------------------------------------


def test_send_sender_filtered_receiver_runs_for_its_sender(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def on_order(**kwargs: object) -> str:
        return "order"

    sig.connect(on_order, sender=Order)
    with running_worker(bus, "svc", signals=[name]):
        results = sig.send(sender=Order)

    assert results == [(on_order, "order")]


def test_send_sender_filtered_receiver_skips_other_senders(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def on_order(**kwargs: object) -> str:
        return "order"

    def on_any(**kwargs: object) -> str:
        return "any"

    sig.connect(on_order, sender=Order)
    sig.connect(on_any)
    with running_worker(bus, "svc", signals=[name]):
        results = sig.send(sender=Refund)

    assert results == [(on_any, "any")]


def test_send_passes_sender_object_the_worker_knows(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def on_order(sender: object, **kwargs: object) -> object:
        return sender is Order

    sig.connect(on_order, sender=Order)
    with running_worker(bus, "svc", signals=[name]):
        results = sig.send(sender=Order)

    assert results == [(on_order, True)]


def test_send_passes_sender_name_when_worker_does_not_know_it(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)

    def on_any(sender: object, **kwargs: object) -> object:
        return sender

    sig.connect(on_any)
    with running_worker(bus, "svc", signals=[name]):
        results = sig.send(sender=Refund)

    assert results == [(on_any, f"{__name__}.Refund")]


# -- broadcast ------------------------------------------------------------------


def test_broadcast_receiver_runs_in_every_worker(bus: Bus, name: str) -> None:
    sig = Signal(name)
    seen: Recorder[int] = Recorder()

    def invalidate(**kwargs: object) -> None:
        seen.add(threading.get_ident())

    def handler(**kwargs: object) -> None:
        pass

    sig.connect(invalidate, broadcast=True)
    sig.connect(handler)
    # One receiver thread per worker, so a thread identifies a worker.
    with (
        running_worker(bus, "svc", signals=[name], concurrency=1),
        running_worker(bus, "svc", signals=[name], concurrency=1),
    ):
        sig.send(sender=None)
        seen.wait_for(2)

    assert len(set(seen.items)) == 2


def test_broadcast_receiver_is_not_in_send_results(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def invalidate(**kwargs: object) -> str:
        return "broadcast"

    def handler(**kwargs: object) -> str:
        return "handled"

    sig.connect(invalidate, broadcast=True)
    sig.connect(handler)
    with running_worker(bus, "svc", signals=[name]):
        results = sig.send(sender=None)

    assert results == [(handler, "handled")]


class _PublishWhenReady(threading.Event):
    """A worker's ``ready`` event that publishes an event just as it is set."""

    def __init__(self, publish: Callable[[], object]) -> None:
        super().__init__()
        self._publish = publish

    def set(self) -> None:
        self._publish()
        super().set()


def test_broadcast_receiver_sees_event_sent_once_worker_is_ready(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)
    broadcast: Recorder[int] = Recorder()
    handled: Recorder[int] = Recorder()

    def invalidate(n: int, **kwargs: object) -> None:
        broadcast.add(n)

    def handler(n: int, **kwargs: object) -> None:
        handled.add(n)

    sig.connect(invalidate, broadcast=True)
    sig.connect(handler)
    worker = Worker(bus, WorkerConfig("svc", block_ms=50), signals_to_serve=[name])
    worker.ready = _PublishWhenReady(lambda: sig.publish(sender=None, n=0))
    thread = threading.Thread(target=lambda: asyncio.run(worker.serve()))
    thread.start()
    try:
        assert worker.ready.wait(WAIT_SECONDS)
        handled.wait_for(1)
        sig.publish(sender=None, n=1)
        broadcast.wait_for(2)
    finally:
        worker.stop()
        thread.join(WAIT_SECONDS)

    assert broadcast.items == [0, 1]


# -- no services, remote receivers -------------------------------------------------


def test_send_with_no_services_returns_empty_list(bus: Bus, name: str) -> None:
    sig = Signal(name)

    assert sig.using(timeout=0.2).send(sender=None) == []


def test_send_with_no_services_returns_immediately(bus: Bus, name: str) -> None:
    sig = Signal(name)

    started = time.monotonic()
    sig.using(timeout=1.0).send(sender=None)

    assert time.monotonic() - started < 0.5


def test_send_result_is_remote_receiver_when_caller_lacks_it(
    bus: Bus, name: str
) -> None:
    served = Signal(name)
    calling = Signal(name)

    def handler(**kwargs: object) -> str:
        return "remote"

    served.connect(handler)
    with running_worker(bus, "svc", signals=[name]) as worker:
        [(got, response)] = calling.send(sender=None)

    assert got == RemoteReceiver(receiver_id(handler), "svc", worker.consumer)
    assert response == "remote"


# -- what a receiver sees ---------------------------------------------------------


def test_current_delivery_in_receiver_names_message_attempt_and_service(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)

    def handler(**kwargs: object) -> list[object]:
        current = delivery()
        return [current.signal, current.service, current.attempt, current.message_id]

    sig.connect(handler)
    with running_worker(bus, "billing", signals=[name]):
        [(_, response)] = sig.send(sender=None)

    assert isinstance(response, list)
    assert response[:3] == [name, "billing", 1]
    assert isinstance(response[3], str)
    assert len(response[3]) == 32


def test_trace_context_of_sender_is_visible_in_receiver(bus: Bus, name: str) -> None:
    sig = Signal(name)
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    def handler(**kwargs: object) -> str:
        return tracing.traceparent.get()

    sig.connect(handler)
    with running_worker(bus, "svc", signals=[name]), tracing.continuing(parent):
        results = sig.send(sender=None)

    assert results == [(handler, parent)]


def test_async_receiver_whose_call_raises_is_a_receiver_error(
    bus: Bus, name: str
) -> None:
    # Calling it raises TypeError before any coroutine exists; that is the
    # receiver's failure, reported like any other, and the worker goes on.
    sig = Signal(name)

    async def strict(sender: object, expected: int, **kwargs: object) -> int:
        return expected

    sig.connect(strict)
    with running_worker(bus, "svc", signals=[name]):
        [(receiver, response)] = sig.send_robust(sender=None, other=1)
        [(_, later)] = sig.send_robust(sender=None, expected=2)

    assert receiver is strict
    assert isinstance(response, TypeError)
    assert "expected" in str(response)
    assert later == 2
