"""Signal and receiver: the in-process dispatcher, and the door to the bus.

Without a bus a :class:`Signal` behaves like ``django.dispatch.Signal`` of
Django 6: weak references to receivers, ``dispatch_uid``, sender filtering,
``use_caching``, ``send``/``send_robust``/``asend``/``asend_robust`` with
sync and async receivers. ``Signal`` is the facade: its receivers are kept
by ``busignal.dispatch.registry``, called in-process by
``busignal.dispatch.local``, and sent over a bus by
``busignal.dispatch.view``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping, MutableMapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from busignal.bus.durable import Durability, durability
from busignal.bus.partitions import Partitioning
from busignal.dispatch.local import InProcess
from busignal.dispatch.registry import NO_RECEIVERS as NO_RECEIVERS  # re-exported
from busignal.dispatch.registry import ReceiverRegistry, Registration, StoredReceiver
from busignal.dispatch.retry import Retry
from busignal.dispatch.types import Receiver, Responses
from busignal.dispatch.view import SignalView
from busignal.errors import ConfigurationError
from busignal.wire.keys import PARTITION_MARK

if TYPE_CHECKING:
    from busignal.bus.bus import Bus

__all__ = ["Registration", "Signal", "named_signals", "receiver"]

R = TypeVar("R", bound=Callable[..., object])

_registry_lock = threading.Lock()
_registry: dict[str, list[weakref.ref[Signal]]] = {}


class Signal:
    """A signal receivers connect to and senders send, like Django's Signal.

    ``name`` makes the signal addressable on the bus (the same in every
    process); an unnamed signal stays in-process. ``providing_args`` is kept
    as documentation only. ``bus`` and ``timeout`` are the distribution
    options, unused while the signal is in-process. ``partitions`` spreads
    a hot signal over that many streams (Redis Cluster nodes), by the kwarg
    named ``partition_key`` or round-robin (see ``busignal.bus.partitions``).
    ``durable`` (True or ``"fsync"``, ``"replica"``) makes sends and
    publishes return only once Redis has the entry safe
    (``busignal.bus.durable``).
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
        durable: bool | str = False,
    ) -> None:
        self.name = None if name is None else _check_name(name)
        #: How sends and publishes wait for Redis to keep the entry safe.
        self.durable: Durability | None = durability(durable)
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
        self._connections = ReceiverRegistry(self, use_caching=use_caching)
        #: This signal's receivers called here, whatever bus is configured.
        self.in_process = InProcess(self, self._connections)
        if self.name is not None:
            _register(self.name, self)

    def __repr__(self) -> str:
        return f"<Signal {self.name!r}>" if self.name else "<Signal (unnamed)>"

    # -- Django's attributes, kept by the registry ---------------------------

    @property
    def receivers(self) -> list[StoredReceiver]:
        """The connections, in connection order (dead ones until cleaned up)."""
        return self._connections.entries

    @receivers.setter
    def receivers(self, entries: list[StoredReceiver]) -> None:
        self._connections.entries = entries

    @property
    def lock(self) -> threading.Lock:
        """The lock that guards ``receivers``."""
        return self._connections.lock

    @property
    def use_caching(self) -> bool:
        """Whether each sender's receivers are cached until the next (dis)connect."""
        return self._connections.use_caching

    @property
    def sender_receivers_cache(self) -> MutableMapping[Any, Any]:
        """sender -> its receivers (or NO_RECEIVERS), with ``use_caching``."""
        return self._connections.cache

    @property
    def version(self) -> int:
        """Changes whenever the registrations may have: lets callers cache them."""
        return self._connections.version

    @property
    def _dead_receivers(self) -> bool:
        return self._connections.dead

    def _clear_dead_receivers(self) -> None:
        # The caller holds self.lock.
        self._connections.clear_dead()

    def _live_receivers(self, sender: object) -> tuple[list[Receiver], list[Receiver]]:
        """Return the live receivers for ``sender``, split into (sync, async)."""
        return self._connections.live(sender)

    def connect(
        self,
        receiver: Receiver,
        sender: object = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
        broadcast: bool = False,
        retry: Retry | None = None,
    ) -> None:
        """Connect ``receiver`` to this signal, for ``sender`` or all senders.

        A receiver is held by weak reference unless ``weak=False`` and
        vanishes when collected. Connecting the same receiver (or the same
        ``dispatch_uid``) for the same sender again is ignored. Raises
        TypeError or ValueError for a receiver that is not callable or does
        not accept ``**kwargs``, always (Django checks only under DEBUG).
        ``retry`` is how a worker runs it again when a published event
        fails (see ``busignal.Retry``); ConfigurationError if it is not one.
        """
        self._connections.connect(
            receiver, sender, weak, dispatch_uid, broadcast, retry
        )

    def disconnect(
        self,
        receiver: Receiver | None = None,
        sender: object = None,
        dispatch_uid: Hashable | None = None,
    ) -> bool:
        """Disconnect a receiver (or ``dispatch_uid``) for ``sender``.

        Returns whether a registration was removed.
        """
        return self._connections.disconnect(receiver, sender, dispatch_uid)

    def has_listeners(self, sender: object = None) -> bool:
        """Whether any live receiver would be called for ``sender``."""
        sync_receivers, async_receivers = self._live_receivers(sender)
        return bool(sync_receivers) or bool(async_receivers)

    def send(self, sender: object, **named: object) -> Responses:
        """Call every receiver for ``sender``; return ``[(receiver, response)]``.

        In-process: sync receivers run first, in connection order, then async
        receivers concurrently on an event loop (a fresh thread's when this
        thread's loop is running); all share one context, whose final state
        the caller sees, as in Django 6.1. The first exception propagates
        and stops dispatch. Over a bus: the event goes on the signal's stream and the
        results of every service's receivers come back; the first receiver
        error is raised, or SignalTimeout naming services that did not answer.
        """
        if self.name is None:
            return self.in_process.call(sender, named, robust=False)
        return SignalView(self).send(sender, **named)

    def send_robust(self, sender: object, **named: object) -> Responses:
        """Like :meth:`send`, but every receiver runs.

        An ``Exception`` raised by a receiver is logged to
        ``busignal.dispatch`` and returned as its response, traceback kept.
        Over a bus, remote errors and SignalTimeout are responses too.
        """
        if self.name is None:
            return self.in_process.call(sender, named, robust=True)
        return SignalView(self).send_robust(sender, **named)

    async def asend(self, sender: object, **named: object) -> Responses:
        """Await every receiver for ``sender``; return ``[(receiver, response)]``.

        In-process, as Django 6.1: the sync receivers run first, in order,
        off the loop (asgiref's thread-sensitive ``sync_to_async``), then the
        async receivers concurrently; all share one context, whose final
        state the caller sees. One exception propagates as itself, several
        as an ExceptionGroup.
        """
        if self.name is None:
            return await self.in_process.acall(sender, named, robust=False)
        return await SignalView(self).asend(sender, **named)

    async def asend_robust(self, sender: object, **named: object) -> Responses:
        """Like :meth:`asend`, with exceptions returned as in send_robust."""
        if self.name is None:
            return await self.in_process.acall(sender, named, robust=True)
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
        self,
        *,
        timeout: float | None = None,
        bus: Bus | None = None,
        delay: float | timedelta | None = None,
        eta: datetime | None = None,
        durable: bool | str | None = None,
    ) -> SignalView:
        """This signal with per-call options that cannot be receivers' kwargs.

        ``signal.using(timeout=2).send(sender, order_id=7)``;
        ``signal.using(delay=900).publish(sender, order_id=7)`` runs the
        receivers in 15 minutes (``eta=`` an aware datetime, likewise);
        ``durable=`` overrides the signal's own. Bad values raise
        ConfigurationError at once.
        """
        return SignalView(
            self, timeout=timeout, bus=bus, delay=delay, eta=eta, durable=durable
        )

    def live_registrations(self, sender_name: str | None = None) -> list[Registration]:
        """Return the live registrations in connection order.

        With ``sender_name``, only those connected to all senders or to a
        sender of that wire name: the receivers a worker runs for an event.
        """
        return self._connections.registrations(sender_name)

    def find_receiver(self, receiver_id: str) -> Receiver | None:
        """Return the live local receiver with wire id ``receiver_id``, if any.

        Used to label a remote result with the local function object.
        """
        return self._connections.find(receiver_id)


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
