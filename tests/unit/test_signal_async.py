"""Async receivers, asend and asend_robust, as in Django 6's dispatcher."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading

import pytest

from busignal.dispatch.signal import Signal

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


def sync_echo(val: object, **kwargs: object) -> object:
    return ("sync", val)


async def async_echo(val: object, **kwargs: object) -> object:
    await asyncio.sleep(0)
    return ("async", val)


async def async_failing(**kwargs: object) -> object:
    raise ValueError("async failure")


def sync_failing(**kwargs: object) -> object:
    raise KeyError("sync failure")


class AsyncCallable:
    async def __call__(self, **kwargs: object) -> str:
        return "called"

    async def method(self, **kwargs: object) -> str:
        return "method"


def test_asend_returns_sync_results_before_async_results() -> None:
    sig = Signal()
    sig.connect(async_echo)
    sig.connect(sync_echo)
    responses = asyncio.run(sig.asend(sender=None, val=1))
    assert responses == [(sync_echo, ("sync", 1)), (async_echo, ("async", 1))]


def test_asend_without_receivers_returns_empty_list() -> None:
    assert asyncio.run(Signal().asend(sender=None)) == []


def test_asend_runs_async_receivers_concurrently() -> None:
    sig = Signal()
    first_ran, second_ran = asyncio.Event(), asyncio.Event()

    async def first(**kwargs: object) -> str:
        first_ran.set()
        await asyncio.wait_for(second_ran.wait(), timeout=5)
        return "first"

    async def second(**kwargs: object) -> str:
        second_ran.set()
        await asyncio.wait_for(first_ran.wait(), timeout=5)
        return "second"

    sig.connect(first)
    sig.connect(second)
    responses = asyncio.run(sig.asend(sender=None))
    assert responses == [(first, "first"), (second, "second")]


def test_asend_runs_async_receivers_after_the_sync_group_returned() -> None:
    """Django 6.1 awaits the sync group before starting any async receiver."""
    sig = Signal()
    events: list[str] = []

    def sync_first(**kwargs: object) -> None:
        events.append("sync started")
        events.append("sync returned")

    async def async_after(**kwargs: object) -> None:
        events.append("async started")

    sig.connect(async_after)
    sig.connect(sync_first)
    asyncio.run(sig.asend(sender=None))
    assert events == ["sync started", "sync returned", "async started"]


def test_asend_runs_sync_group_in_one_worker_thread_in_order() -> None:
    sig = Signal()
    threads: list[tuple[str, int]] = []

    def first(**kwargs: object) -> None:
        threads.append(("first", threading.get_ident()))

    def second(**kwargs: object) -> None:
        threads.append(("second", threading.get_ident()))

    sig.connect(first)
    sig.connect(second)
    asyncio.run(sig.asend(sender=None))
    assert [name for name, _ in threads] == ["first", "second"]
    assert threads[0][1] == threads[1][1] != threading.get_ident()


def test_asend_single_failure_raises_the_exception_itself() -> None:
    sig = Signal()
    sig.connect(async_failing)
    sig.connect(async_echo)
    with pytest.raises(ValueError, match="async failure"):
        asyncio.run(sig.asend(sender=None, val=1))


def test_asend_sync_failure_raises_the_exception_itself() -> None:
    sig = Signal()
    sig.connect(sync_failing)
    sig.connect(async_echo)
    with pytest.raises(KeyError, match="sync failure"):
        asyncio.run(sig.asend(sender=None, val=1))


def test_asend_two_failures_raise_exception_group() -> None:
    sig = Signal()

    async def also_failing(**kwargs: object) -> object:
        raise KeyError("second failure")

    sig.connect(async_failing)
    sig.connect(also_failing)
    with pytest.raises(ExceptionGroup) as caught:
        asyncio.run(sig.asend(sender=None))
    assert caught.group_contains(ValueError)
    assert caught.group_contains(KeyError)


def test_asend_robust_returns_exceptions_as_responses() -> None:
    sig = Signal()
    sig.connect(sync_failing)
    sig.connect(async_failing)
    sig.connect(async_echo)
    responses = asyncio.run(sig.asend_robust(sender=None, val=2))
    assert [recv for recv, _ in responses] == [sync_failing, async_failing, async_echo]
    assert isinstance(responses[0][1], KeyError)
    assert isinstance(responses[1][1], ValueError)
    assert responses[1][1].__traceback__ is not None
    assert responses[2][1] == ("async", 2)


def test_asend_robust_logs_each_failure(caplog: pytest.LogCaptureFixture) -> None:
    sig = Signal()
    sig.connect(sync_failing)
    sig.connect(async_failing)
    with caplog.at_level(logging.ERROR, logger="busignal.dispatch"):
        asyncio.run(sig.asend_robust(sender=None))
    assert [r.getMessage() for r in caplog.records] == [
        "Error calling sync_failing in Signal.send_robust() ('sync failure')",
        "Error calling async_failing in Signal.send_robust() (async failure)",
    ]


def test_send_runs_async_receivers_without_running_loop() -> None:
    sig = Signal()
    sig.connect(async_echo)
    sig.connect(sync_echo)
    responses = sig.send(sender=None, val=3)
    assert responses == [(sync_echo, ("sync", 3)), (async_echo, ("async", 3))]


def test_send_runs_async_receivers_inside_running_loop() -> None:
    sig = Signal()
    sig.connect(async_echo)

    async def main() -> list[tuple[object, object]]:
        return list(sig.send(sender=None, val=4))

    assert asyncio.run(main()) == [(async_echo, ("async", 4))]


def test_send_runs_async_receivers_concurrently() -> None:
    sig = Signal()
    first_ran, second_ran = asyncio.Event(), asyncio.Event()

    async def first(**kwargs: object) -> None:
        first_ran.set()
        await asyncio.wait_for(second_ran.wait(), timeout=5)

    async def second(**kwargs: object) -> None:
        second_ran.set()
        await asyncio.wait_for(first_ran.wait(), timeout=5)

    sig.connect(first)
    sig.connect(second)
    assert sig.send(sender=None) == [(first, None), (second, None)]


def test_send_propagates_async_receiver_exception() -> None:
    sig = Signal()
    sig.connect(async_failing)
    with pytest.raises(ValueError, match="async failure"):
        sig.send(sender=None)


def test_send_robust_collects_async_receiver_exception() -> None:
    sig = Signal()
    sig.connect(async_failing)
    sig.connect(async_echo)
    responses = sig.send_robust(sender=None, val=5)
    assert isinstance(responses[0][1], ValueError)
    assert responses[1] == (async_echo, ("async", 5))


def test_send_robust_inside_running_loop_collects_exception() -> None:
    sig = Signal()
    sig.connect(async_failing)

    async def main() -> object:
        return sig.send_robust(sender=None)[0][1]

    assert isinstance(asyncio.run(main()), ValueError)


def test_asend_receivers_see_caller_context() -> None:
    sig = Signal()

    def sync_reads(**kwargs: object) -> str:
        return request_id.get()

    async def async_reads(**kwargs: object) -> str:
        return request_id.get()

    sig.connect(sync_reads)
    sig.connect(async_reads)

    async def main() -> list[object]:
        request_id.set("req-1")
        return [response for _, response in await sig.asend(sender=None)]

    assert asyncio.run(main()) == ["req-1", "req-1"]


def test_asend_sync_receivers_share_one_context() -> None:
    sig = Signal()

    def writes(**kwargs: object) -> None:
        request_id.set("from-first")

    def reads(**kwargs: object) -> str:
        return request_id.get()

    sig.connect(writes)
    sig.connect(reads)
    responses = asyncio.run(sig.asend(sender=None))
    assert responses[1] == (reads, "from-first")


def test_asend_sync_receiver_changes_visible_to_caller() -> None:
    sig = Signal()

    def writes(**kwargs: object) -> None:
        request_id.set("set-by-receiver")

    sig.connect(writes)

    async def main() -> str:
        request_id.set("before")
        await sig.asend(sender=None)
        return request_id.get()

    assert asyncio.run(main()) == "set-by-receiver"


def test_send_async_receiver_sees_context_inside_running_loop() -> None:
    sig = Signal()

    async def reads(**kwargs: object) -> str:
        return request_id.get()

    sig.connect(reads)

    async def main() -> object:
        request_id.set("loop-ctx")
        return sig.send(sender=None)[0][1]

    assert asyncio.run(main()) == "loop-ctx"


def test_send_async_receiver_sees_context_without_loop() -> None:
    sig = Signal()

    async def reads(**kwargs: object) -> str:
        return request_id.get()

    sig.connect(reads)
    token = request_id.set("no-loop-ctx")
    try:
        assert sig.send(sender=None) == [(reads, "no-loop-ctx")]
    finally:
        request_id.reset(token)


def test_connect_detects_async_callable_object() -> None:
    sig = Signal()
    obj = AsyncCallable()
    sig.connect(obj)
    assert [r.is_async for r in sig.live_registrations()] == [True]
    assert sig.send(sender=None) == [(obj, "called")]


def test_connect_detects_async_bound_method() -> None:
    sig = Signal()
    obj = AsyncCallable()
    sig.connect(obj.method)
    assert [r.is_async for r in sig.live_registrations()] == [True]


def test_connect_detects_partial_of_async_function() -> None:
    sig = Signal()
    bound = functools.partial(async_echo, "p")
    sig.connect(bound)
    assert [r.is_async for r in sig.live_registrations()] == [True]
    assert sig.send(sender=None) == [(bound, ("async", "p"))]


def test_has_listeners_counts_async_receivers() -> None:
    sig = Signal()
    sig.connect(async_echo)
    assert sig.has_listeners()
