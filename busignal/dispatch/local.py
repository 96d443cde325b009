"""In-process dispatch: calling one signal's receivers, as Django's Signal does.

Sync receivers run first, in connection order; then the async ones run
concurrently (see ``busignal.dispatch.concurrency``). All receivers of one
send share one context, as in Django 6.1: a ``ContextVar`` one of them sets
is seen by the next and by the caller after the send. ``send`` lets the
first exception propagate; ``send_robust`` logs each to
``busignal.dispatch`` and returns it as the receiver's response.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import cast

from busignal.dispatch.concurrency import run_coroutine, run_parallel, run_sync
from busignal.dispatch.registry import NO_RECEIVERS, ReceiverRegistry
from busignal.dispatch.types import Receiver, Responses

__all__ = ["InProcess"]

logger = logging.getLogger("busignal.dispatch")


class InProcess:
    """``send``, ``send_robust``, ``asend``, ``asend_robust`` in this process only.

    ``signal`` is what receivers get as their ``signal`` argument; the
    registry holds the receivers to call.
    """

    __slots__ = ("registry", "signal")

    def __init__(self, signal: object, registry: ReceiverRegistry) -> None:
        self.signal = signal
        self.registry = registry

    def send(self, sender: object, **named: object) -> Responses:
        """Call every receiver for ``sender``; the first exception propagates."""
        return self.call(sender, named, robust=False)

    def send_robust(self, sender: object, **named: object) -> Responses:
        """Call every receiver; an exception is logged and becomes the response."""
        return self.call(sender, named, robust=True)

    async def asend(self, sender: object, **named: object) -> Responses:
        """The coroutine form of ``send``."""
        return await self.acall(sender, named, robust=False)

    async def asend_robust(self, sender: object, **named: object) -> Responses:
        """The coroutine form of ``send_robust``."""
        return await self.acall(sender, named, robust=True)

    def call(
        self, sender: object, named: dict[str, object], *, robust: bool
    ) -> Responses:
        """``send`` (or with ``robust``, ``send_robust``) with the kwargs as a dict.

        The path of every in-process send, kept to one call from ``Signal``.
        """
        registry = self.registry
        if not registry.entries or registry.cached(sender) is NO_RECEIVERS:
            return []
        sync_receivers, async_receivers = registry.live(sender)
        responses = self._call_group(sync_receivers, sender, named, robust)
        if async_receivers:
            await_one = self._await_robust if robust else self._await

            async def run_async() -> list[object]:
                calls = (await_one(r, sender, named) for r in async_receivers)
                return await run_parallel(*calls)

            results = run_coroutine(run_async)
            responses.extend(zip(async_receivers, results, strict=True))
        return responses

    async def acall(
        self, sender: object, named: dict[str, object], *, robust: bool
    ) -> Responses:
        """The coroutine form of :meth:`call`.

        The sync receivers run first, off the loop (thread-sensitive, as
        Django's ``sync_to_async``); the async ones only after they
        returned, so they see what the sync ones set in the context.
        """
        registry = self.registry
        if not registry.entries or registry.cached(sender) is NO_RECEIVERS:
            return []
        sync_receivers, async_receivers = registry.live(sender)
        responses: Responses = []
        if sync_receivers:

            def call_sync() -> Responses:
                return self._call_group(sync_receivers, sender, named, robust)

            responses = await run_sync(call_sync)
        await_one = self._await_robust if robust else self._await
        results = await run_parallel(
            *(await_one(r, sender, named) for r in async_receivers)
        )
        responses.extend(zip(async_receivers, results, strict=True))
        return responses

    def _call_group(
        self,
        receivers: list[Receiver],
        sender: object,
        named: dict[str, object],
        robust: bool,
    ) -> Responses:
        """Call sync receivers in order; with ``robust``, collect exceptions."""
        responses: Responses = []
        for receiver in receivers:
            try:
                response = receiver(signal=self.signal, sender=sender, **named)
            except Exception as err:
                if not robust:
                    raise
                _log_robust_failure(receiver, err)
                response = err
            responses.append((receiver, response))
        return responses

    async def _await(
        self, receiver: Receiver, sender: object, named: dict[str, object]
    ) -> object:
        return await cast(
            "Awaitable[object]", receiver(signal=self.signal, sender=sender, **named)
        )

    async def _await_robust(
        self, receiver: Receiver, sender: object, named: dict[str, object]
    ) -> object:
        try:
            return await self._await(receiver, sender, named)
        except Exception as err:
            _log_robust_failure(receiver, err)
            return err


def _log_robust_failure(receiver: Receiver, err: Exception) -> None:
    qualname = getattr(receiver, "__qualname__", repr(receiver))
    logger.error(
        "Error calling %s in Signal.send_robust() (%s)", qualname, err, exc_info=err
    )
