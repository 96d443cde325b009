"""The receivers connected to one signal: connect, disconnect, lookup.

Held as Django's dispatcher holds them: weak references unless asked
otherwise, one connection per (receiver or ``dispatch_uid``, sender) key,
a per-sender cache with ``use_caching``, and dead references removed
lazily. Each connection also records what the distributed worker needs:
the receiver's wire id, the sender's wire name, whether it is async and
whether it is broadcast (see :class:`Registration`).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Hashable, MutableMapping
from dataclasses import dataclass
from typing import Any, cast

from busignal import names
from busignal.dispatch.receivers import (
    Strong,
    check_receiver,
    is_async,
    lookup_key,
    make_id,
)
from busignal.dispatch.retry import Retry
from busignal.dispatch.types import Receiver
from busignal.errors import ConfigurationError

__all__ = [
    "NONE_ID",
    "NO_RECEIVERS",
    "ReceiverRegistry",
    "Registration",
    "StoredReceiver",
]

NONE_ID = id(None)
# Cache marker: this sender has no receivers, so send() can return at once.
NO_RECEIVERS = object()


@dataclass(frozen=True, slots=True)
class Registration:
    """One live connection of a receiver, as the worker runtime sees it.

    ``sender`` is the object the receiver was connected with, or ``None``
    when it was connected to every sender (``sender_name == ""``) or that
    sender has been garbage-collected.
    """

    receiver_id: str
    receiver: Receiver
    sender_name: str
    sender: object | None
    is_async: bool
    broadcast: bool
    #: How a worker retries it when an event nobody waits for fails.
    retry: Retry | None = None


@dataclass(frozen=True, slots=True)
class StoredReceiver:
    """A connection as stored: references plus the precomputed wire names."""

    key: tuple[Hashable, Hashable]
    ref: Callable[[], Receiver | None]
    sender_ref: Callable[[], object] | None
    receiver_id: str
    sender_name: str
    is_async: bool
    broadcast: bool
    retry: Retry | None = None

    def alive(self) -> bool:
        """Whether both the receiver and the sender still exist."""
        sender_gone = self.sender_ref is not None and self.sender_ref() is None
        return not sender_gone and self.ref() is not None

    def registration(self) -> Registration | None:
        """Resolve the references, or return None if either has died."""
        receiver = self.ref()
        sender = None if self.sender_ref is None else self.sender_ref()
        if receiver is None or (self.sender_ref is not None and sender is None):
            return None
        return Registration(
            self.receiver_id,
            receiver,
            self.sender_name,
            sender,
            self.is_async,
            self.broadcast,
            self.retry,
        )


class ReceiverRegistry:
    """The connections of one signal, in connection order.

    ``owner`` is the signal: a receiver's finalizer holds this registry and
    so the signal, as Django's does, so a signal connected to a live
    receiver lives on even when nothing else refers to it (``@receiver(
    Signal("order_paid"))`` keeps serving).
    """

    def __init__(self, owner: object, *, use_caching: bool) -> None:
        self.owner = owner
        self.entries: list[StoredReceiver] = []
        self.lock = threading.Lock()
        self.use_caching = use_caching
        # sender -> its entries (or NO_RECEIVERS); cleared by connect/disconnect.
        self.cache: MutableMapping[Any, Any] = (
            weakref.WeakKeyDictionary() if use_caching else {}
        )
        #: Set by garbage collection when a receiver or sender died.
        self.dead = False
        #: Changes whenever the registrations may have: lets callers cache them.
        self.version = 0

    def connect(
        self,
        receiver: Receiver,
        sender: object,
        weak: bool,
        dispatch_uid: Hashable | None,
        broadcast: bool,
        retry: Retry | None = None,
    ) -> None:
        """Add a connection unless its key is connected already (see Signal)."""
        check_receiver(receiver)
        _check_retry(retry, broadcast)
        key = lookup_key(receiver, sender, dispatch_uid)
        entry = StoredReceiver(
            key=key,
            ref=self._reference(receiver) if weak else Strong(receiver),
            sender_ref=self._sender_reference(sender),
            receiver_id=names.receiver_id(receiver, dispatch_uid or None),
            sender_name=names.sender_name(sender),
            is_async=is_async(receiver),
            broadcast=broadcast,
            retry=retry,
        )
        with self.lock:
            self.clear_dead()
            if not any(existing.key == key for existing in self.entries):
                self.entries.append(entry)
            self.cache.clear()
            self.version += 1

    def disconnect(
        self, receiver: Receiver | None, sender: object, dispatch_uid: Hashable | None
    ) -> bool:
        """Remove the connection of that key; return whether there was one."""
        key = lookup_key(receiver, sender, dispatch_uid)
        disconnected = False
        with self.lock:
            self.clear_dead()
            for index, entry in enumerate(self.entries):
                if entry.key == key:
                    del self.entries[index]
                    disconnected = True
                    break
            self.cache.clear()
            self.version += 1
        return disconnected

    def live(self, sender: object) -> tuple[list[Receiver], list[Receiver]]:
        """Return the live receivers for ``sender``, split into (sync, async)."""
        sync_receivers: list[Receiver] = []
        async_receivers: list[Receiver] = []
        for entry in self._matching(sender):
            receiver = entry.ref()
            if receiver is None or not entry.alive():
                continue
            group = async_receivers if entry.is_async else sync_receivers
            group.append(receiver)
        return sync_receivers, async_receivers

    def registrations(self, sender_name: str | None) -> list[Registration]:
        """The live registrations in connection order, for ``sender_name`` if given."""
        with self.lock:
            self.clear_dead()
            entries = list(self.entries)
        wanted = ("", sender_name)
        return [
            registration
            for entry in entries
            if sender_name is None or entry.sender_name in wanted
            if (registration := entry.registration()) is not None
        ]

    def find(self, receiver_id: str) -> Receiver | None:
        """Return the live receiver with wire id ``receiver_id``, if any."""
        for entry in list(self.entries):
            if entry.receiver_id == receiver_id and entry.alive():
                return entry.ref()
        return None

    def cached(self, sender: object) -> object:
        """The cache's answer for ``sender``: entries, NO_RECEIVERS or None."""
        try:
            return self.cache.get(sender)
        except TypeError:  # not weak-referenceable or not hashable: never cached
            return None

    def clear_dead(self) -> None:
        """Drop the connections whose receiver or sender died; hold ``lock``."""
        if self.dead:
            self.dead = False
            self.entries = [entry for entry in self.entries if entry.alive()]

    def flag_dead(self, reference: object = None) -> None:
        """Note that a receiver or sender died.

        Called from garbage collection, possibly while ``lock`` is held, so
        it only flags; connect, disconnect and send do the cleanup.
        """
        self.dead = True
        self.version += 1

    def _matching(self, sender: object) -> list[StoredReceiver]:
        if self.use_caching and not self.dead:
            cached = self.cached(sender)
            if cached is NO_RECEIVERS:
                return []
            if cached is not None:
                return cast("list[StoredReceiver]", cached)
        with self.lock:
            self.clear_dead()
            sender_key = make_id(sender)
            entries = [e for e in self.entries if e.key[1] in (NONE_ID, sender_key)]
            if self.use_caching:
                # A sender that cannot be a WeakKeyDictionary key is not cached.
                with contextlib.suppress(TypeError):
                    self.cache[sender] = entries or NO_RECEIVERS
        return entries

    def _reference(self, receiver: Receiver) -> Callable[[], Receiver | None]:
        """A weak reference to ``receiver`` that flags this registry when it dies."""
        owner: object = receiver
        ref: Callable[[], Receiver | None]
        if hasattr(receiver, "__self__") and hasattr(receiver, "__func__"):
            owner = receiver.__self__
            ref = weakref.WeakMethod(receiver)
        else:
            ref = weakref.ref(receiver)
        weakref.finalize(owner, self.flag_dead)
        return ref

    def _sender_reference(self, sender: object) -> Callable[[], object] | None:
        """Reference ``sender`` weakly when possible, so its death drops its entries.

        Without this, a new object reusing a dead sender's ``id()`` would get
        its receivers. A sender that cannot be weakly referenced (a string, a
        number) is held strongly, so its id cannot be reused either.
        """
        if sender is None:
            return None
        try:
            return weakref.ref(sender, self.flag_dead)
        except TypeError:
            return Strong(sender)


def _check_retry(retry: object, broadcast: bool) -> None:
    if retry is None:
        return
    if not isinstance(retry, Retry):
        raise ConfigurationError(
            f"connect(retry={retry!r}): give a busignal.Retry, e.g. "
            f"retry=busignal.Retry(attempts=5, on=(ConnectionError,))"
        )
    if broadcast:
        raise ConfigurationError(
            "connect(broadcast=True, retry=...): broadcast receivers are never "
            "retried (each process runs them once, nothing is acknowledged); "
            "drop retry, or connect the receiver without broadcast"
        )
