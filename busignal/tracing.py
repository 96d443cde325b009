"""W3C trace context carried across the bus.

Every envelope carries a ``traceparent`` string (empty when there is none).
A sender's comes from ``outgoing()``: an installed hook (OpenTelemetry, see
``busignal.contrib.otel``) or else the ``traceparent`` context variable. A
worker sets that variable while the receivers of a delivery run, so an
event a receiver sends carries the same trace on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["continuing", "install", "outgoing", "traceparent"]

#: The current W3C ``traceparent`` ("" for none).
traceparent: ContextVar[str] = ContextVar("busignal_traceparent", default="")

_hook: Callable[[], str] | None = None


def install(hook: Callable[[], str] | None) -> None:
    """Use ``hook()`` to produce the traceparent of outgoing events (None: remove)."""
    global _hook
    _hook = hook


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
