"""W3C trace context carried across the bus.

Every envelope carries a ``traceparent`` string (empty when there is none).
A sender's comes from ``outgoing()``: an installed hook (OpenTelemetry, see
``busignal.contrib.otel``) or else the ``traceparent`` context variable. A
worker sets that variable while the receivers of a delivery run, so an
event a receiver sends carries the same trace on.

A send or publish over a bus runs inside ``producing(signal, operation)``:
with a producer hook installed (OpenTelemetry's PRODUCER span), the
traceparent sent is that span's, so every send has a span of its own and
the worker's span for the event hangs under it, even when the caller was
in no span at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar

__all__ = ["Producer", "continuing", "install", "outgoing", "producing", "traceparent"]

#: The current W3C ``traceparent`` ("" for none).
traceparent: ContextVar[str] = ContextVar("busignal_traceparent", default="")

#: ``producer(signal, operation, count)``: the context a send or publish
#: runs in (``operation`` is "send" or "publish"; ``count`` the events).
Producer = Callable[[str, str, int], AbstractContextManager[object]]

_hook: Callable[[], str] | None = None
_producer: Producer | None = None
_NOTHING: AbstractContextManager[object] = nullcontext()


def install(hook: Callable[[], str] | None, producer: Producer | None = None) -> None:
    """Use ``hook()`` to produce the traceparent of outgoing events, and
    ``producer`` as the context of every send and publish (None: remove)."""
    global _hook, _producer
    _hook, _producer = hook, producer


def producing(
    signal: str, operation: str, count: int = 1
) -> AbstractContextManager[object]:
    """The context to send or publish ``count`` events of ``signal`` in."""
    producer = _producer
    return _NOTHING if producer is None else producer(signal, operation, count)


def outgoing() -> str:
    """The traceparent to put on an event sent now."""
    if _hook is not None:
        return _hook() or traceparent.get()
    return traceparent.get()


@contextmanager
def continuing(parent: str) -> Iterator[None]:
    """Make ``parent`` the current traceparent inside the block."""
    token = traceparent.set(parent)
    try:
        yield
    finally:
        traceparent.reset(token)
