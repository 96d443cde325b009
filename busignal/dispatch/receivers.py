"""How a receiver is checked, referenced and identified; private to dispatch.

The checks ``Signal.connect`` makes (callable, accepts ``**kwargs``), the
strong reference with ``weakref.ref``'s interface, whether a receiver is
async, and the lookup key that makes connecting twice a no-op, as in
Django's dispatcher. Kept apart so that ``busignal.dispatch.registry`` is
about one signal's connections.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Strong", "check_receiver", "is_async", "lookup_key", "make_id"]

T = TypeVar("T")


class Strong(Generic[T]):
    """A strong reference with the call interface of ``weakref.ref``."""

    __slots__ = ("obj",)

    def __init__(self, obj: T) -> None:
        self.obj = obj

    def __call__(self) -> T:
        return self.obj


def check_receiver(receiver: object) -> None:
    """Raise TypeError or ValueError for a receiver ``connect`` must refuse."""
    if not callable(receiver):
        raise TypeError("Signal receivers must be callable.")
    if not _accepts_kwargs(receiver):
        raise ValueError("Signal receivers must accept keyword arguments (**kwargs).")


def _accepts_kwargs(func: Callable[..., object]) -> bool:
    """Whether ``func`` takes ``**kwargs``; True when it cannot be inspected."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def is_async(func: Callable[..., object]) -> bool:
    """Whether calling ``func`` returns a coroutine.

    Sees through bound methods and partials like ``inspect`` does, and also
    checks a callable object's ``__call__``.
    """
    if inspect.iscoroutinefunction(func):
        return True
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.isroutine(func) or isinstance(func, type):
        return False
    return inspect.iscoroutinefunction(type(func).__call__)


def make_id(target: object) -> Hashable:
    """An id for ``target``; a bound method's is its object's and function's."""
    if hasattr(target, "__func__"):
        return (id(getattr(target, "__self__", None)), id(target.__func__))
    return id(target)


def lookup_key(
    receiver: object, sender: object, dispatch_uid: Hashable | None
) -> tuple[Hashable, Hashable]:
    """The key a connection is stored under: receiver (or uid) and sender."""
    if dispatch_uid:
        return (dispatch_uid, make_id(sender))
    return (make_id(receiver), make_id(sender))
