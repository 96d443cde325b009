"""Signal and receiver: the in-process dispatcher.

Without a bus a :class:`Signal` behaves like ``django.dispatch.Signal`` of
Django 6: weak references to receivers, ``dispatch_uid``, sender filtering,
``use_caching``, ``send``/``send_robust``/``asend``/``asend_robust`` with
sync and async receivers. Each registration also records what the
distributed worker needs: the receiver's wire id, the sender's wire name,
whether it is async and whether it is broadcast (see :class:`Registration`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import weakref
from collections.abc import (
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Mapping,
    MutableMapping,
)
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from busignal import names
from busignal.bus.partitions import Partitioning
from busignal.dispatch.concurrency import dispatch, gather, run_coroutine
from busignal.dispatch.receivers import (
    Strong,
    check_receiver,
    is_async,
    lookup_key,
    make_id,
)
from busignal.dispatch.view import SignalView
from busignal.errors import ConfigurationError
from busignal.wire.keys import PARTITION_MARK

if TYPE_CHECKING:
    from busignal.bus.bus import Bus

__all__ = ["Registration", "Signal", "named_signals", "receiver"]

logger = logging.getLogger("busignal.dispatch")

R = TypeVar("R", bound=Callable[..., object])
Receiver = Callable[..., object]
# The receiver is an object: a distributed send may answer with a remote one.
Responses = list[tuple[object, object]]

NONE_ID = id(None)
# Cache marker: this sender has no receivers, so send() can return at once.
NO_RECEIVERS = object()

_registry_lock = threading.Lock()
_registry: dict[str, list[weakref.ref[Signal]]] = {}


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


@dataclass(frozen=True, slots=True)
class _Entry:
    """A connection as stored: references plus the precomputed wire names."""

    key: tuple[Hashable, Hashable]
    ref: Callable[[], Receiver | None]
    sender_ref: Callable[[], object] | None
    receiver_id: str
    sender_name: str
    is_async: bool
    broadcast: bool

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
        )


class Signal:
    """A signal receivers connect to and senders send, like Django's Signal.

    ``name`` makes the signal addressable on the bus (the same in every
    process); an unnamed signal stays in-process. ``providing_args`` is kept
    as documentation only. ``bus`` and ``timeout`` are the distribution
    options, unused while the signal is in-process. ``partitions`` spreads
    a hot signal over that many streams (Redis Cluster nodes), by the kwarg
    named ``partition_key`` or round-robin (see ``busignal.bus.partitions``).
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        use_caching: bool = False,
        providing_args: Iterable[str] | None = None,
        bus: Bus | None = None,
        timeout: float | None = None,
        max_deliveries: int | None = None,
        partitions: int = 1,
        partition_key: str | None = None,
    ) -> None:
        self.name = None if name is None else _check_name(name)
        self.partitioning = Partitioning(partitions, partition_key)
        if self.name is None and (partitions != 1 or partition_key is not None):
            raise ConfigurationError(
                "Signal(partitions=...) needs a name that is the same in every "
                "process, e.g. Signal('order_paid', partitions=4)"
            )
        if bus is not None and self.name is None:
            raise ConfigurationError(
                "Signal(bus=...) needs a name that is the same in every process, "
                "e.g. Signal('order_paid', bus=bus)"
            )
        if timeout is not None and timeout <= 0:
            raise ConfigurationError(f"timeout must be positive, got {timeout!r}")
        if max_deliveries is not None and max_deliveries < 1:
            raise ConfigurationError(
                f"max_deliveries must be at least 1, got {max_deliveries!r}"
            )
        #: Tries before a failing event is dead-lettered (None: the worker's).
        self.max_deliveries = max_deliveries
        if isinstance(providing_args, str):
            raise TypeError(
                f"providing_args must be a list of names, got the string "
                f"{providing_args!r}; write providing_args=[{providing_args!r}]"
            )
        self.providing_args: frozenset[str] = frozenset(providing_args or ())
        self.bus = bus
        self.timeout = timeout
        self.receivers: list[_Entry] = []
        self.lock = threading.Lock()
        self.use_caching = use_caching
        # sender -> its entries (or NO_RECEIVERS); cleared by connect/disconnect.
        self.sender_receivers_cache: MutableMapping[Any, Any] = (
            weakref.WeakKeyDictionary() if use_caching else {}
        )
        self._dead_receivers = False
        #: Changes whenever the registrations may have: lets callers cache them.
        self.version = 0
        if self.name is not None:
            _register(self.name, self)

    def __repr__(self) -> str:
        return f"<Signal {self.name!r}>" if self.name else "<Signal (unnamed)>"

    def connect(
        self,
        receiver: Receiver,
        sender: object = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
        broadcast: bool = False,
    ) -> None:
        """Connect ``receiver`` to this signal, for ``sender`` or all senders.

        A receiver is held by weak reference unless ``weak=False`` and
        vanishes when collected. Connecting the same receiver (or the same
        ``dispatch_uid``) for the same sender again is ignored. Raises
        TypeError or ValueError for a receiver that is not callable or does
        not accept ``**kwargs``, always (Django checks only under DEBUG).
        """
        check_receiver(receiver)
        key = lookup_key(receiver, sender, dispatch_uid)
        entry = _Entry(
            key=key,
            ref=self._reference(receiver) if weak else Strong(receiver),
            sender_ref=self._sender_reference(sender),
            receiver_id=names.receiver_id(receiver, dispatch_uid or None),
            sender_name=names.sender_name(sender),
            is_async=is_async(receiver),
            broadcast=broadcast,
        )
        with self.lock:
            self._clear_dead_receivers()
            if not any(existing.key == key for existing in self.receivers):
                self.receivers.append(entry)
            self.sender_receivers_cache.clear()
            self.version += 1

    def disconnect(
        self,
        receiver: Receiver | None = None,
        sender: object = None,
        dispatch_uid: Hashable | None = None,
    ) -> bool:
        """Disconnect a receiver (or ``dispatch_uid``) for ``sender``.

        Returns whether a registration was removed.
        """
        key = lookup_key(receiver, sender, dispatch_uid)
        disconnected = False
        with self.lock:
            self._clear_dead_receivers()
            for index, entry in enumerate(self.receivers):
                if entry.key == key:
                    del self.receivers[index]
                    disconnected = True
                    break
            self.sender_receivers_cache.clear()
            self.version += 1
        return disconnected

    def has_listeners(self, sender: object = None) -> bool:
        """Whether any live receiver would be called for ``sender``."""
        sync_receivers, async_receivers = self._live_receivers(sender)
        return bool(sync_receivers) or bool(async_receivers)

    def send(self, sender: object, **named: object) -> Responses:
        """Call every receiver for ``sender``; return ``[(receiver, response)]``.

        In-process: sync receivers run first, in connection order, then async
        receivers concurrently on an event loop (a fresh thread's when this
        thread's loop is running); the first exception propagates and stops
        dispatch. Over a bus: the event goes on the signal's stream and the
        results of every service's receivers come back; the first receiver
        error is raised, or SignalTimeout naming services that did not answer.
        """
        if self.name is None:
            return self._send_local(sender, named)
        return SignalView(self).send(sender, **named)

    def send_robust(self, sender: object, **named: object) -> Responses:
        """Like :meth:`send`, but every receiver runs.

        An ``Exception`` raised by a receiver is logged to
        ``busignal.dispatch`` and returned as its response, traceback kept.
        Over a bus, remote errors and SignalTimeout are responses too.
        """
        if self.name is None:
            return self._send_robust_local(sender, named)
        return SignalView(self).send_robust(sender, **named)

    async def asend(self, sender: object, **named: object) -> Responses:
        """Await every receiver for ``sender``; return ``[(receiver, response)]``.

        The sync receivers run in order in one worker thread while the async
        receivers run concurrently; results list the sync ones first. One
        exception propagates as itself, several as an ExceptionGroup.
        """
        if self.name is None:
            return await self._asend_local(sender, named)
        return await SignalView(self).asend(sender, **named)

    async def asend_robust(self, sender: object, **named: object) -> Responses:
        """Like :meth:`asend`, with exceptions returned as in send_robust."""
        if self.name is None:
            return await self._asend_robust_local(sender, named)
        return await SignalView(self).asend_robust(sender, **named)

    def publish(self, sender: object, **named: object) -> str:
        """Append one event to this signal's stream and return its entry id.

        Does not wait for receivers; every service still gets the event
        once. Raises SerializationError before any I/O if a kwarg cannot be
        encoded, ConfigurationError when there is no bus.
        """
        return SignalView(self).publish(sender, **named)

    async def apublish(self, sender: object, **named: object) -> str:
        """The coroutine form of :meth:`publish`."""
        return await SignalView(self).apublish(sender, **named)

    def publish_many(
        self, sender: object, batch: Iterable[Mapping[str, object]]
    ) -> list[str]:
        """Publish one event per kwargs mapping in one round trip (see SignalView)."""
        return SignalView(self).publish_many(sender, batch)

    def using(
        self, *, timeout: float | None = None, bus: Bus | None = None
    ) -> SignalView:
        """This signal with per-call options that cannot be receivers' kwargs.

        ``signal.using(timeout=2).send(sender, order_id=7)``.
        """
        return SignalView(self, timeout=timeout, bus=bus)

    def live_registrations(self, sender_name: str | None = None) -> list[Registration]:
        """Return the live registrations in connection order.

        With ``sender_name``, only those connected to all senders or to a
        sender of that wire name: the receivers a worker runs for an event.
        """
        with self.lock:
            self._clear_dead_receivers()
            entries = list(self.receivers)
        wanted = ("", sender_name)
        return [
            registration
            for entry in entries
            if sender_name is None or entry.sender_name in wanted
            if (registration := entry.registration()) is not None
        ]

    def find_receiver(self, receiver_id: str) -> Receiver | None:
        """Return the live local receiver with wire id ``receiver_id``, if any.

        Used to label a remote result with the local function object.
        """
        for entry in list(self.receivers):
            if entry.receiver_id == receiver_id and entry.alive():
                return entry.ref()
        return None

    # -- in-process dispatch -------------------------------------------------

    def _send_local(
        self, sender: object, named: dict[str, object], robust: bool = False
    ) -> Responses:
        if not self.receivers or self._cached(sender) is NO_RECEIVERS:
            return []
        sync_receivers, async_receivers = self._live_receivers(sender)
        responses = self._call_group(sync_receivers, sender, named, robust)
        if async_receivers:
            acall = self._acall_robust if robust else self._acall

            async def gather_async() -> list[object]:
                return await gather(*(acall(r, sender, named) for r in async_receivers))

            results = run_coroutine(gather_async)
            responses.extend(zip(async_receivers, results, strict=True))
        return responses

    def _send_robust_local(self, sender: object, named: dict[str, object]) -> Responses:
        return self._send_local(sender, named, robust=True)

    async def _asend_local(
        self, sender: object, named: dict[str, object], robust: bool = False
    ) -> Responses:
        if not self.receivers or self._cached(sender) is NO_RECEIVERS:
            return []
        sync_receivers, async_receivers = self._live_receivers(sender)
        call_sync = functools.partial(
            self._call_group, sync_receivers, sender, named, robust
        )
        acall = self._acall_robust if robust else self._acall
        calls = [acall(r, sender, named) for r in async_receivers]
        return await dispatch(
            call_sync if sync_receivers else None, async_receivers, calls
        )

    async def _asend_robust_local(
        self, sender: object, named: dict[str, object]
    ) -> Responses:
        return await self._asend_local(sender, named, robust=True)

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
                response = receiver(signal=self, sender=sender, **named)
            except Exception as err:
                if not robust:
                    raise
                self._log_robust_failure(receiver, err)
                response = err
            responses.append((receiver, response))
        return responses

    async def _acall(
        self, receiver: Receiver, sender: object, named: dict[str, object]
    ) -> object:
        return await cast(
            "Awaitable[object]", receiver(signal=self, sender=sender, **named)
        )

    async def _acall_robust(
        self, receiver: Receiver, sender: object, named: dict[str, object]
    ) -> object:
        try:
            return await self._acall(receiver, sender, named)
        except Exception as err:
            self._log_robust_failure(receiver, err)
            return err

    def _log_robust_failure(self, receiver: Receiver, err: Exception) -> None:
        qualname = getattr(receiver, "__qualname__", repr(receiver))
        logger.error(
            "Error calling %s in Signal.send_robust() (%s)", qualname, err, exc_info=err
        )

    # -- registry bookkeeping ------------------------------------------------

    def _reference(self, receiver: Receiver) -> Callable[[], Receiver | None]:
        """A weak reference to ``receiver`` that flags this signal when it dies."""
        owner: object = receiver
        ref: Callable[[], Receiver | None]
        if hasattr(receiver, "__self__") and hasattr(receiver, "__func__"):
            owner = receiver.__self__
            ref = weakref.WeakMethod(receiver)
        else:
            ref = weakref.ref(receiver)
        weakref.finalize(owner, self._flag_dead_receivers)
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
            return weakref.ref(sender, self._flag_dead_receivers)
        except TypeError:
            return Strong(sender)

    def _cached(self, sender: object) -> object:
        try:
            return self.sender_receivers_cache.get(sender)
        except TypeError:  # not weak-referenceable or not hashable: never cached
            return None

    def _matching_entries(self, sender: object) -> list[_Entry]:
        if self.use_caching and not self._dead_receivers:
            cached = self._cached(sender)
            if cached is NO_RECEIVERS:
                return []
            if cached is not None:
                return cast("list[_Entry]", cached)
        with self.lock:
            self._clear_dead_receivers()
            sender_key = make_id(sender)
            entries = [e for e in self.receivers if e.key[1] in (NONE_ID, sender_key)]
            if self.use_caching:
                # A sender that cannot be a WeakKeyDictionary key is not cached.
                with contextlib.suppress(TypeError):
                    self.sender_receivers_cache[sender] = entries or NO_RECEIVERS
        return entries

    def _live_receivers(self, sender: object) -> tuple[list[Receiver], list[Receiver]]:
        """Return the live receivers for ``sender``, split into (sync, async)."""
        sync_receivers: list[Receiver] = []
        async_receivers: list[Receiver] = []
        for entry in self._matching_entries(sender):
            receiver = entry.ref()
            if receiver is None or not entry.alive():
                continue
            group = async_receivers if entry.is_async else sync_receivers
            group.append(receiver)
        return sync_receivers, async_receivers

    def _clear_dead_receivers(self) -> None:
        # The caller holds self.lock.
        if self._dead_receivers:
            self._dead_receivers = False
            self.receivers = [entry for entry in self.receivers if entry.alive()]

    def _flag_dead_receivers(self, reference: object = None) -> None:
        # Called from garbage collection, possibly while self.lock is held,
        # so it only flags; connect, disconnect and send do the cleanup.
        self._dead_receivers = True
        self.version += 1


def receiver(
    signal: Signal | list[Signal] | tuple[Signal, ...], **connect_kwargs: Any
) -> Callable[[R], R]:
    """Decorate a function to connect it to a signal or a list of signals.

    ``connect_kwargs`` go to :meth:`Signal.connect`; the function itself is
    returned, so it can still be called and tested directly.
    """
    signals = _as_signals(signal)

    def decorator(func: R) -> R:
        for each in signals:
            each.connect(func, **connect_kwargs)
        return func

    return decorator


def named_signals() -> dict[str, list[Signal]]:
    """Return the live named signals by name, oldest first within a name."""
    result: dict[str, list[Signal]] = {}
    with _registry_lock:
        for name, refs in _registry.items():
            live = [signal for signal in (ref() for ref in refs) if signal is not None]
            if live:
                result[name] = live
    return result


def _register(name: str, signal: Signal) -> None:
    with _registry_lock:
        refs = [ref for ref in _registry.get(name, ()) if ref() is not None]
        refs.append(weakref.ref(signal))
        _registry[name] = refs


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise ConfigurationError(
            f"Signal name must be a str, got {name!r}; to document the "
            f"arguments, pass providing_args=[...] by keyword"
        )
    if not name or any(
        char.isspace() or char in "{}" or char == PARTITION_MARK for char in name
    ):
        raise ConfigurationError(
            f"Signal name {name!r} cannot be used on the bus: give a non-empty "
            f"name without whitespace, braces or {PARTITION_MARK!r}, "
            f"e.g. Signal('order_paid')"
        )
    return name


def _as_signals(signal: object) -> list[Signal]:
    items = list(signal) if isinstance(signal, list | tuple) else [signal]
    signals: list[Signal] = []
    for item in items:
        if not isinstance(item, Signal):
            where = f" in the {type(signal).__name__}" if item is not signal else ""
            raise TypeError(
                f"receiver() expects a Signal or a list of Signals, got "
                f"{type(item).__name__!r}{where}"
            )
        signals.append(item)
    return signals
