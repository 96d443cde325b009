"""A signal bound to per-call options: ``signal.using(timeout=..., bus=...)``.

Options cannot be keyword arguments of ``send`` because they would collide
with receivers' kwargs, so they live on this small view instead. The
``Signal`` methods themselves go through an unbound view. A view sees its
signal only through ``ViewedSignal``, so this module does not import
``busignal.dispatch.signal``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from busignal import tracing
from busignal.bus.bus import Bus
from busignal.bus.default import get_bus
from busignal.bus.delayed import due_time, publish_later, publish_later_async
from busignal.bus.durable import Durability, durability
from busignal.dispatch.types import Receiver, Responses
from busignal.errors import ConfigurationError

if TYPE_CHECKING:
    from busignal.bus.partitions import Partitioning
    from busignal.dispatch.local import InProcess

__all__ = ["SignalView", "ViewedSignal"]


class ViewedSignal(Protocol):
    """What a view needs from its signal (``busignal.Signal`` is one)."""

    @property
    def name(self) -> str | None: ...
    @property
    def bus(self) -> Bus | None: ...
    @property
    def timeout(self) -> float | None: ...
    @property
    def partitioning(self) -> Partitioning: ...
    @property
    def durable(self) -> Durability | None: ...
    @property
    def in_process(self) -> InProcess: ...
    def find_receiver(self, receiver_id: str) -> Receiver | None: ...


class SignalView:
    """``send``, ``send_robust``, ``asend``, ``asend_robust``, ``publish``...

    with a timeout and a bus chosen for these calls. Without any bus (none
    given, none on the signal, none configured) sends stay in-process.
    ``delay``/``eta`` delay publishing (``busignal.bus.delayed``; a send
    cannot be delayed); ``durable`` overrides the signal's durability
    (``busignal.bus.durable``). Bad values raise ConfigurationError here,
    before any I/O.
    """

    __slots__ = ("_bus", "_durable", "delay", "eta", "signal", "timeout")

    def __init__(
        self,
        signal: ViewedSignal,
        *,
        timeout: float | None = None,
        bus: Bus | None = None,
        delay: float | timedelta | None = None,
        eta: datetime | None = None,
        durable: bool | str | None = None,
    ) -> None:
        if timeout is not None and timeout <= 0:
            raise ConfigurationError(f"timeout must be positive, got {timeout!r}")
        due_time(delay, eta)  # refuses a bad delay or eta now
        self.delay, self.eta = delay, eta
        self._durable = signal.durable if durable is None else durability(durable)
        if bus is not None and signal.name is None:
            raise ConfigurationError(
                "this Signal has no name, so it cannot be sent over a bus; "
                "give it one that is the same in every process: Signal('order_paid')"
            )
        self.signal = signal
        self.timeout = timeout
        self._bus = bus

    def __repr__(self) -> str:
        return (
            f"<SignalView {self.signal!r} timeout={self.timeout!r} bus={self._bus!r}>"
        )

    def bus(self) -> Bus | None:
        """The bus these calls use, or None to stay in-process."""
        if self._bus is not None:
            return self._bus
        if self.signal.bus is not None:
            return self.signal.bus
        return get_bus() if self.signal.name is not None else None

    def _required_bus(self, what: str) -> tuple[Bus, str]:
        bus = self.bus()
        if bus is None or self.signal.name is None:
            raise ConfigurationError(
                f"{what}() needs a named signal and a bus: call "
                f"busignal.configure(url=...) or set BUSIGNAL_URL"
            )
        return bus, self.signal.name

    @property
    def durable(self) -> Durability | None:
        """How these calls wait for Redis to keep an entry safe (None: no wait)."""
        return self._durable

    def _options(self) -> dict[str, Any]:
        timeout = self.timeout if self.timeout is not None else self.signal.timeout
        return {
            "timeout": timeout,
            "find_receiver": self.signal.find_receiver,
            "partitioning": self.signal.partitioning,
        }

    def _target(self) -> tuple[Bus, str] | None:
        if self.delay is not None or self.eta is not None:
            raise ConfigurationError(
                f"cannot delay a send (delay={self.delay!r}, eta={self.eta!r}): "
                f"its caller would wait that long for the replies; use "
                f"signal.using(delay=...).publish(sender, **kwargs)"
            )
        bus = self.bus()
        if bus is None or self.signal.name is None:
            return None
        return bus, self.signal.name

    def send(self, sender: object, **named: object) -> Responses:
        """Django's ``send``: every receiver's result; the first error raised."""
        return self._send(sender, named, robust=False)

    def send_robust(self, sender: object, **named: object) -> Responses:
        """Django's ``send_robust``: errors (and timeouts) returned as responses."""
        return self._send(sender, named, robust=True)

    def _send(
        self, sender: object, named: dict[str, object], *, robust: bool
    ) -> Responses:
        target = self._target()
        if target is None:
            return self.signal.in_process.call(sender, named, robust=robust)
        bus, name = target
        with tracing.producing(name, "send"):
            return bus.send(
                name, sender, named, robust=robust, durable=self._durable,
                **self._options(),
            )  # fmt: skip

    async def asend(self, sender: object, **named: object) -> Responses:
        """The coroutine form of ``send``."""
        return await self._asend(sender, named, robust=False)

    async def asend_robust(self, sender: object, **named: object) -> Responses:
        """The coroutine form of ``send_robust``."""
        return await self._asend(sender, named, robust=True)

    async def _asend(
        self, sender: object, named: dict[str, object], *, robust: bool
    ) -> Responses:
        target = self._target()
        if target is None:
            return await self.signal.in_process.acall(sender, named, robust=robust)
        bus, name = target
        options = self._options()
        with tracing.producing(name, "send"):
            if (durable := self._durable) is not None:  # the wait shares the connection
                return await asyncio.to_thread(
                    lambda: bus.send(
                        name, sender, named, robust=robust, durable=durable, **options
                    )
                )
            return await bus.asend(name, sender, named, robust=robust, **options)

    def publish(self, sender: object, **named: object) -> str:
        """Append one event to the signal's stream and return its entry id.

        Does not wait for receivers; every service still gets the event
        once. Raises SerializationError before any I/O if a kwarg cannot be
        encoded.
        """
        bus, name = self._required_bus("publish")
        parts, durable = self.signal.partitioning, self._durable
        due = due_time(self.delay, self.eta)
        with tracing.producing(name, "publish"):
            if due is not None:
                return publish_later(bus, name, sender, (named,), due, parts, durable)[
                    0
                ]
            return bus.publish(name, sender, named, parts, durable)

    async def apublish(self, sender: object, **named: object) -> str:
        """The coroutine form of ``publish``."""
        bus, name = self._required_bus("apublish")
        parts, durable = self.signal.partitioning, self._durable
        due = due_time(self.delay, self.eta)
        with tracing.producing(name, "publish"):
            if due is not None:
                return await publish_later_async(
                    bus, name, sender, named, due, parts, durable
                )
            if durable is not None:  # the wait shares the entry's connection
                return await asyncio.to_thread(
                    bus.publish, name, sender, named, parts, durable
                )
            return await bus.apublish(name, sender, named, parts)

    def publish_many(
        self, sender: object, batch: Iterable[Mapping[str, object]]
    ) -> list[str]:
        """Publish one event per kwargs mapping in one round trip.

        Every mapping is encoded first: if one cannot be, SerializationError
        names its index and nothing from the batch is written.
        """
        bus, name = self._required_bus("publish_many")
        if not isinstance(batch, Sequence):
            batch = list(batch)  # counted for the span, then encoded
        parts, durable = self.signal.partitioning, self._durable
        due = due_time(self.delay, self.eta)
        with tracing.producing(name, "publish", len(batch)):
            if due is not None:
                return publish_later(bus, name, sender, batch, due, parts, durable)
            return bus.publish_many(name, sender, batch, parts, durable)
