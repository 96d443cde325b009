"""The asyncio plumbing of in-process dispatch, private to ``busignal.dispatch.local``.

Running async receivers concurrently with Django's error semantics (one
failure raises itself, not an ExceptionGroup), running the sync group in a
thread with its context copied back, and running a coroutine from sync
code whether or not a loop is running. Kept apart so that
``busignal.dispatch.local`` is about calling receivers.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from busignal.dispatch.types import Receiver, Responses

__all__ = ["dispatch", "gather", "restore_context", "run_coroutine"]

T = TypeVar("T")


async def gather(*coros: Coroutine[Any, Any, T]) -> list[T]:
    """Await ``coros`` concurrently; return their results in order.

    When exactly one fails, its own exception is raised rather than an
    ExceptionGroup, as Django's dispatcher does.
    """
    if not coros:
        return []
    if len(coros) == 1:
        return [await coros[0]]
    results: dict[int, T] = {}

    async def run(index: int, coro: Coroutine[Any, Any, T]) -> None:
        results[index] = await coro

    try:
        async with asyncio.TaskGroup() as group:
            for index, coro in enumerate(coros):
                group.create_task(run(index, coro))
    except BaseExceptionGroup as exc_group:
        if len(exc_group.exceptions) == 1:
            raise exc_group.exceptions[0]  # noqa: B904  # the receiver's own error, as Django
        raise
    return [results[index] for index in range(len(coros))]


async def dispatch(
    call_sync: Callable[[], Responses] | None,
    async_receivers: list[Receiver],
    calls: list[Coroutine[Any, Any, object]],
) -> Responses:
    """Run the sync group in a thread while the async calls run; merge results.

    The sync group runs in one copy of the caller's context, and what it
    sets there is copied back to the caller, as asgiref's sync_to_async does.
    """
    context = contextvars.copy_context()

    async def sync_group() -> list[Any]:
        if call_sync is None:
            return []
        run = functools.partial(context.run, call_sync)
        return await asyncio.get_running_loop().run_in_executor(None, run)

    async def async_group() -> list[Any]:
        return await gather(*calls)

    try:
        sync_responses, async_responses = await gather(sync_group(), async_group())
    finally:
        if call_sync is not None:
            restore_context(context)
    return [*sync_responses, *zip(async_receivers, async_responses, strict=True)]


def restore_context(context: contextvars.Context) -> None:
    """Set in the current context every variable ``context`` changed."""
    for var, value in context.items():
        try:
            if var.get() is value:
                continue
        except LookupError:
            pass
        var.set(value)


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code and return its result.

    With no loop running in this thread, ``asyncio.run``; otherwise (send()
    called from async code) a fresh thread runs its own loop, in a copy of
    the caller's context, while this thread waits.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    context = contextvars.copy_context()

    def run() -> T:
        return asyncio.run(factory())

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="busignal-send") as pool:
        return pool.submit(context.run, run).result()
