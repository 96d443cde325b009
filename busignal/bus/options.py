"""The keyword options of ``busignal.configure``, typed for the caller.

A ``TypedDict`` rather than parameters with defaults so that the defaults
stay in one place, ``BusConfig``; a type checker still refuses a
misspelt option or a value of the wrong type. Each key is a ``Bus``
keyword (``namespace``, ``secret``) or a ``BusConfig`` field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

__all__ = ["BusOptions"]


class BusOptions(TypedDict, total=False):
    """What ``configure(url, **options)`` accepts besides the URL.

    The README's configuration table says what each one means.
    """

    namespace: str
    secret: str | Sequence[str] | None
    timeout: float
    max_payload: int
    connect_timeout: float
    socket_timeout: float
    reply_ttl: int
    stream_maxlen: int
    max_age: float
    cluster: bool
