"""What a caller gets back from receivers that ran in another process.

A result's receiver is the local function when the calling process has a
receiver with the same id, else a ``RemoteReceiver``. A remote exception is
rebuilt as its own class when that class is a builtin exception or was
registered with ``register_exception``; otherwise it arrives as
``RemoteError`` with the type name, message and remote traceback.
"""

from __future__ import annotations

import builtins
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from busignal import errors
from busignal.errors import RemoteError

__all__ = ["RemoteReceiver", "decode_error", "encode_error", "register_exception"]

E = TypeVar("E", bound=type[BaseException])

_registered: dict[str, type[BaseException]] = {}


@dataclass(frozen=True, slots=True)
class RemoteReceiver:
    """A receiver that ran in another process and is not known here.

    ``id`` is its receiver id (``dispatch_uid`` or ``module.qualname``),
    ``service`` the consumer group it ran for, ``worker`` the worker process
    (consumer name); ``worker`` is ``None`` when no worker answered.
    """

    id: str
    service: str
    worker: str | None

    def __call__(self, **kwargs: object) -> None:
        raise TypeError(
            f"{self.id!r} is a receiver of service {self.service!r} in another "
            f"process and cannot be called here"
        )


def exception_name(exc_type: type[BaseException]) -> str:
    """The wire name of an exception class: ``"module.QualName"``."""
    return f"{exc_type.__module__}.{exc_type.__qualname__}"


def register_exception(cls: E) -> E:
    """Let remote exceptions of ``cls`` arrive as ``cls`` instead of RemoteError.

    Usable as a class decorator. The class must be importable in the calling
    process; it is rebuilt with the remote exception's ``args`` when they
    could be encoded, else with its message.
    """
    if not issubclass(cls, BaseException):
        raise TypeError(f"register_exception() expects an exception class, got {cls!r}")
    _registered[exception_name(cls)] = cls
    return cls


for _cls in (
    errors.BusUnavailable,
    errors.ConfigurationError,
    errors.RemoteError,
    errors.SerializationError,
    errors.SignalTimeout,
):
    register_exception(_cls)


def encode_error(
    exc: BaseException, encodable: Callable[[object], bool]
) -> list[object]:
    """The wire form of a receiver's exception: name, message, traceback, args."""
    tb = "".join(traceback.format_exception(exc))
    constructor_args = _constructor_args(exc)
    args: object = constructor_args if encodable(constructor_args) else None
    return [exception_name(type(exc)), str(exc), tb, args]


def _constructor_args(exc: BaseException) -> list[object]:
    """The arguments that rebuild ``exc``, as pickle would find them.

    Usually ``exc.args``; an exception whose ``__init__`` takes other
    arguments than it passes to ``Exception.__init__`` (SignalTimeout,
    RemoteError) says which through ``__reduce__``.
    """
    try:
        reduced = exc.__reduce__()
    except Exception:
        return list(exc.args)
    if (
        isinstance(reduced, tuple)
        and len(reduced) >= 2
        and reduced[0] is type(exc)
        and isinstance(reduced[1], tuple)
    ):
        return list(reduced[1])
    return list(exc.args)


#: Never rebuilt as themselves: raised out of ``send`` inside an iterator or
#: async generator, they would silently end the caller's iteration.
_NOT_REBUILT = (StopIteration, StopAsyncIteration)


def _known_class(name: str) -> type[BaseException] | None:
    cls = _registered.get(name)
    if cls is None:
        module, _, qualname = name.rpartition(".")
        candidate = getattr(builtins, qualname, None) if module == "builtins" else None
        if isinstance(candidate, type) and issubclass(candidate, Exception):
            cls = candidate
    if cls is None or issubclass(cls, _NOT_REBUILT):
        return None
    return cls


def decode_error(data: Any, *, service: str, worker: str | None) -> BaseException:
    """Rebuild an exception from ``encode_error``'s list (or a RemoteError)."""
    if not (isinstance(data, list) and len(data) == 4):
        return RemoteError("busignal.InvalidReply", f"malformed error {data!r}")
    name, message, remote_tb, args = (
        str(data[0]),
        str(data[1]),
        str(data[2]),
        data[3],
    )
    exc: BaseException = RemoteError(name, message, remote_tb)
    cls = _known_class(name)
    if cls is not None:
        try:
            exc = cls(*args) if isinstance(args, list) else cls(message)
        except Exception:
            exc = RemoteError(name, message, remote_tb)
    if remote_tb:
        exc.add_note(
            f"Raised by a receiver of service {service!r} in worker {worker!r}:\n"
            + remote_tb.rstrip()
        )
    return exc
