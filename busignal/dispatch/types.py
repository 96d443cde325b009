"""The types the dispatch modules share: a receiver and what a send returns.

Kept in a module of their own so that the parts of ``busignal.dispatch``
can name them without importing ``busignal.dispatch.signal``.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Receiver", "Responses"]

Receiver = Callable[..., object]
# The receiver is an object: a distributed send may answer with a remote one.
Responses = list[tuple[object, object]]
