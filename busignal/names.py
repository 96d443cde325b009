"""The names that identify senders and receivers on the wire.

Both must be the same in every process that imports the same code, so they
are derived from module paths, never from ``id()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

__all__ = ["receiver_id", "sender_name"]


def sender_name(sender: object) -> str:
    """Return the wire name of a sender.

    ``None`` -> ``""``; a class -> ``"module.QualName"``; a string -> itself;
    any other object -> the name of its class. Receivers connected with
    ``sender=X`` match events whose sender name equals ``sender_name(X)``.

    A Django model (class or instance) is named by its label,
    ``"app_label.ModelName"``: the name ``busignal.contrib.django`` forwards
    model signals under, so ``@receiver(post_save, sender=Order)`` in a
    worker matches them.
    """
    if sender is None:
        return ""
    if isinstance(sender, str):
        return sender
    cls = sender if isinstance(sender, type) else type(sender)
    label = getattr(getattr(cls, "_meta", None), "label", None)
    if isinstance(label, str):
        return label
    return f"{cls.__module__}.{cls.__qualname__}"


def receiver_id(receiver: Callable[..., object], dispatch_uid: object = None) -> str:
    """Return the id that labels a receiver's results across processes.

    ``dispatch_uid`` when given (as ``str``), else ``"module.qualname"`` of
    the function; a bound method gives its function's qualname, a
    ``functools.partial`` its wrapped function's, a callable object its
    class's.
    """
    if dispatch_uid is not None:
        return str(dispatch_uid)
    target: object = receiver
    while isinstance(target, functools.partial):
        target = target.func
    target = getattr(target, "__func__", target)
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if module is None or qualname is None:
        cls = type(target)
        module, qualname = cls.__module__, cls.__qualname__
    return f"{module}.{qualname}"
