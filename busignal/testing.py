"""Helpers for users' own tests: a real worker inside the test process.

With a ``memory://`` bus (fakeredis) these exercise the real encode, route,
run and collect path without a Redis server::

    bus = busignal.configure(url="memory://my-tests")
    with running_worker(bus, service="billing"):
        results = order_paid.send(sender=Order, order_id=7)

``drain()`` runs a worker in burst mode instead: it handles everything
queued and returns, so a test needs no waiting at all. ``Published``
reads what was sent back from the streams, through the same decoder a
worker uses, so a test can assert what a piece of code published without
running any worker. The pytest plugin (``docs/testing.md``) wraps these
in fixtures.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from busignal.bus.bus import Bus
from busignal.bus.default import get_bus
from busignal.errors import ConfigurationError
from busignal.names import sender_name
from busignal.wire.envelope import Mode, decode
from busignal.worker.worker import Worker, WorkerConfig

__all__ = ["Published", "PublishedEvent", "drain", "running_worker"]


def _resolve(bus: Bus | None) -> Bus:
    resolved = bus or get_bus()
    if resolved is None:
        raise ConfigurationError(
            "no bus: pass one or call busignal.configure(url='memory://') first"
        )
    return resolved


@contextmanager
def running_worker(
    bus: Bus | None = None,
    service: str = "tests",
    *,
    signals: Iterable[str] | None = None,
    **options: Any,
) -> Iterator[Worker]:
    """Run a worker of ``service`` in a background thread while the block runs.

    The worker has joined its consumer groups when the block starts, and has
    finished and acknowledged what it holds when the block ends.
    """
    options.setdefault("block_ms", 50)
    options.setdefault("heartbeat_interval", 0.5)
    worker = Worker(
        _resolve(bus), WorkerConfig(service, **options), signals_to_serve=signals
    )
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            asyncio.run(worker.serve())
        except BaseException as exc:
            failure.append(exc)
            worker.ready.set()

    thread = threading.Thread(
        target=serve, name=f"busignal-worker-{service}", daemon=True
    )
    thread.start()
    worker.ready.wait(10)
    if failure:
        raise failure[0]
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(30)
    if failure:
        raise failure[0]


def drain(
    bus: Bus | None = None,
    service: str = "tests",
    *,
    signals: Iterable[str] | None = None,
    **options: Any,
) -> int:
    """Handle every event queued for ``service`` and return how many were handled."""
    worker = Worker(
        _resolve(bus), WorkerConfig(service, **options), signals_to_serve=signals
    )
    asyncio.run(worker.serve(burst=True))
    return worker.handled


@dataclass(frozen=True, slots=True)
class PublishedEvent:
    """One event as it sits on its stream, decoded: what a worker would get."""

    signal: str
    sender: str  # the sender's name on the wire (``busignal.names.sender_name``)
    kwargs: dict[str, Any]
    mode: Mode  # PUBLISH, SEND or SEND_ROBUST
    message_id: str
    entry_id: str
    partition: int = 0


class Published:
    """What was sent or published on a bus, read back from its streams.

    Every call reads the streams again, so it sees events sent since. The
    entries are decoded (and their signatures checked) exactly as a
    worker would, so an event a worker could not read fails here too. No
    consumer group is created and nothing is acknowledged: reading does
    not change what workers will get.
    """

    def __init__(self, bus: Bus | None = None) -> None:
        self.bus = _resolve(bus)

    def events(self, signal: object = None) -> list[PublishedEvent]:
        """Every event sent (of ``signal``: a Signal or a name), oldest first."""
        name = None if signal is None else _signal_name(signal)
        client, keys = self.bus.client, self.bus.keys
        found: list[PublishedEvent] = []
        for raw_key in client.scan_iter(match=keys.events_pattern(), count=1000):
            stream = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            signal_name, partition = keys.partition_of(stream)
            if name is not None and signal_name != name:
                continue
            entries: list[tuple[bytes, dict[bytes, bytes]]] = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]", client.xrange(stream)
            )
            for entry_id, fields in entries:
                envelope = decode(
                    fields,
                    signal=signal_name,
                    signer=self.bus.signer,
                    max_size=self.bus.config.max_payload,
                    stream=stream,
                    namespace=keys.namespace,
                    max_age=self.bus.config.max_age,
                )
                found.append(
                    PublishedEvent(
                        envelope.signal,
                        envelope.sender,
                        envelope.kwargs,
                        envelope.mode,
                        envelope.message_id,
                        entry_id.decode(),
                        partition,
                    )
                )
        found.sort(key=lambda event: _entry_order(event.entry_id))
        return found

    def __len__(self) -> int:
        return len(self.events())

    def matching(
        self, signal: object, sender: object = ..., **kwargs: Any
    ) -> list[PublishedEvent]:
        """The events of ``signal`` from ``sender`` whose kwargs include ``kwargs``.

        ``sender`` is compared by its name on the wire, so the class, its
        dotted name or an instance all match; left out, any sender matches.
        Kwargs not named are not compared.
        """
        wanted = None if sender is ... else sender_name(sender)
        return [
            event
            for event in self.events(signal)
            if (wanted is None or event.sender == wanted)
            and all(
                key in event.kwargs and event.kwargs[key] == value
                for key, value in kwargs.items()
            )
        ]

    def assert_published(
        self, signal: object, sender: object = ..., **kwargs: Any
    ) -> PublishedEvent:
        """Return the one matching event; AssertionError listing what was sent if not.

        Exactly one event must match: a test that expects one send and got
        two (a retry loop, a signal connected twice) should fail.
        """
        found = self.matching(signal, sender, **kwargs)
        if len(found) == 1:
            return found[0]
        raise AssertionError(
            f"expected 1 event of {_signal_name(signal)!r} matching "
            f"{_describe(sender, kwargs)}, found {len(found)}; "
            f"{self._summary(signal)}"
        )

    def assert_not_published(
        self, signal: object, sender: object = ..., **kwargs: Any
    ) -> None:
        """AssertionError if any event of ``signal`` matches."""
        found = self.matching(signal, sender, **kwargs)
        if found:
            raise AssertionError(
                f"expected no event of {_signal_name(signal)!r} matching "
                f"{_describe(sender, kwargs)}, found {len(found)}: "
                f"{', '.join(_show(event) for event in found)}"
            )

    def _summary(self, signal: object) -> str:
        events = self.events(signal)
        if not events:
            every = self.events()
            names = sorted({event.signal for event in every})
            return "nothing was sent on it" + (
                f" (events were sent on {', '.join(map(repr, names))})" if names else ""
            )
        return "sent: " + ", ".join(_show(event) for event in events)


def _signal_name(signal: object) -> str:
    if isinstance(signal, str):
        return signal
    name = getattr(signal, "name", None)
    if not isinstance(name, str) or not name:
        raise ConfigurationError(
            f"{signal!r} has no name, so it is never sent over a bus; "
            f"pass a named Signal('name') or the name"
        )
    return name


def _entry_order(entry_id: str) -> tuple[int, int]:
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)


def _describe(sender: object, kwargs: dict[str, Any]) -> str:
    parts = [] if sender is ... else [f"sender={sender_name(sender)!r}"]
    parts += [f"{key}={value!r}" for key, value in kwargs.items()]
    return "(" + ", ".join(parts) + ")" if parts else "(anything)"


def _show(event: PublishedEvent) -> str:
    kwargs = ", ".join(f"{key}={value!r}" for key, value in event.kwargs.items())
    return f"{event.signal}(sender={event.sender!r}, {kwargs})"
