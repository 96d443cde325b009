"""The asyncio plumbing of in-process dispatch, private to ``busignal.dispatch.local``.

It reproduces Django 6.1's dispatcher: all receivers of one send share one
context, so a ``ContextVar`` set by one receiver is seen by the next and by
the caller once the send returns (also when a receiver raised). Async
receivers run concurrently in one ``asyncio.TaskGroup`` whose tasks share a
single copy of the context; a lone failure raises itself, not an
ExceptionGroup. Sync code is bridged with asgiref's ``async_to_sync`` and
``sync_to_async`` (thread-sensitive) where asgiref is installed, as it is
wherever Django is, so receivers run in the threads Django would run them
in (a sync receiver under ``asend`` from a sync view wrapped in
``async_to_sync`` runs in the view's thread, on its database connection).
Without asgiref, equivalent stdlib code shares the context the same way.
Kept apart so that ``busignal.dispatch.local`` is about calling receivers.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

try:
    from asgiref.sync import async_to_sync, sync_to_async
except ImportError:  # pragma: no cover - asgiref comes with Django
    ASGIREF = False
else:
    ASGIREF = True

__all__ = ["restore_context", "run_coroutine", "run_parallel", "run_sync"]

T = TypeVar("T")


async def run_parallel(*coros: Coroutine[Any, Any, T]) -> list[T]:
    """Await ``coros`` concurrently in one shared context; results in order.

    Every task runs in the same copy of the current context, and what they
    set there is copied back into the current context afterwards, whether
    they succeeded or not. When exactly one fails, its own exception is
    raised rather than an ExceptionGroup. (Django's ``_run_parallel``.)
    """
    context = contextvars.copy_context()
    if not coros:
        return []
    results: list[Any] = [None] * len(coros)

    async def run(index: int, coro: Coroutine[Any, Any, T]) -> None:
        results[index] = await coro

    try:
        async with asyncio.TaskGroup() as group:
            for index, coro in enumerate(coros):
                group.create_task(run(index, coro), context=context)
    except BaseExceptionGroup as exc_group:
        if len(exc_group.exceptions) == 1:
            raise exc_group.exceptions[0]  # noqa: B904  # the receiver's own error, as Django
        raise
    finally:
        restore_context(context)
    return results


async def run_sync(call: Callable[[], T]) -> T:
    """Run blocking ``call`` off the event loop, in (a copy of) this context.

    asgiref's thread-sensitive ``sync_to_async`` where it is installed, as
    Django's ``asend`` does; else the loop's default executor. Either way
    what ``call`` sets in the context is copied back here, even if it raised.
    """
    if ASGIREF:
        return await sync_to_async(call, thread_sensitive=True)()
    context = contextvars.copy_context()
    try:
        return await asyncio.get_running_loop().run_in_executor(None, context.run, call)
    finally:
        restore_context(context)


def restore_context(context: contextvars.Context) -> None:
    """Set in the current context every variable ``context`` changed.

    Compared with ``!=``, as Django and asgiref compare.
    """
    for var, value in context.items():
        try:
            if var.get() != value:
                var.set(value)
        except LookupError:
            var.set(value)


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code and return its result.

    What the coroutine sets in the context is copied back to the caller,
    even if it raised. With no loop running in this thread: asgiref's
    ``async_to_sync`` where installed (as Django's ``send``), else
    ``asyncio.Runner`` here. With a loop running (``send()`` called from
    async code, which Django refuses with a RuntimeError), a fresh thread
    runs its own loop while this thread waits.
    """
    running = True
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    if not running and ASGIREF:
        return async_to_sync(factory)()
    context = contextvars.copy_context()
    try:
        if not running:
            return _run_in(context, factory)
        with ThreadPoolExecutor(1, thread_name_prefix="busignal-send") as pool:
            return pool.submit(_run_in, context, factory).result()
    finally:
        restore_context(context)


def _run_in(
    context: contextvars.Context, factory: Callable[[], Coroutine[Any, Any, T]]
) -> T:
    """Run the coroutine on a new loop of this thread, in ``context``."""
    with asyncio.Runner() as runner:
        return runner.run(factory(), context=context)
