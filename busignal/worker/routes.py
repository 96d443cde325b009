"""Which receivers of this process serve which signal streams.

A worker serves every named signal that has receivers in its process (or
the ones it was told to). Several ``Signal`` objects may share a name; their
receivers run in the order each signal has them. A partitioned signal's
route covers every partition: as many as its signals are configured with,
or more when the signal's ``partitions`` set in Redis says a sender used
more (``grow``), so that no partition is left undrained.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from busignal.wire.keys import Keys

if TYPE_CHECKING:
    from busignal.dispatch.signal import Registration, Signal

__all__ = ["Route", "Routes"]

Match = tuple["Signal", "Registration"]


@dataclass(frozen=True, slots=True)
class Route:
    """The signals of one name in this process."""

    name: str
    signals: tuple[Signal, ...]
    _cache: dict[tuple[str, bool], tuple[tuple[int, ...], list[Match], object]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def max_deliveries(self, default: int) -> int:
        """The signal's own delivery limit, if one of its objects sets one."""
        for signal in self.signals:
            if signal.max_deliveries is not None:
                return signal.max_deliveries
        return default

    def match(self, sender: str, *, broadcast: bool) -> tuple[list[Match], object]:
        """Receivers for events from ``sender``, and the sender object to pass.

        The sender object is the one a receiver was connected with when its
        name matches, else the name itself (``None`` for the empty name).
        Cached until a signal's registrations change (its ``version``): a
        worker asks this for every event.
        """
        versions = tuple(signal.version for signal in self.signals)
        cached = self._cache.get((sender, broadcast))
        if cached is not None and cached[0] == versions:
            return cached[1], cached[2]
        matches, sender_object = self._match(sender, broadcast)
        self._cache[(sender, broadcast)] = (versions, matches, sender_object)
        return matches, sender_object

    def _match(self, sender: str, broadcast: bool) -> tuple[list[Match], object]:
        matches: list[Match] = []
        sender_object: object = sender or None
        for signal in self.signals:
            for reg in signal.live_registrations(sender):
                if reg.broadcast is broadcast:
                    matches.append((signal, reg))
                if reg.sender is not None and reg.sender_name == sender:
                    sender_object = reg.sender
        return matches, sender_object


class Routes:
    """The routes of the named signals a worker serves, found once at start."""

    def __init__(self, only: Iterable[str] | None = None) -> None:
        self._only = None if only is None else frozenset(only)
        self._routes: dict[str, Route] | None = None
        self._grown: dict[str, int] = {}
        self._found: dict[tuple[str, bool], list[str]] = {}

    def _all(self) -> dict[str, Route]:
        if self._routes is None:
            from busignal.dispatch.signal import named_signals

            self._routes = {
                name: Route(name, tuple(signals))
                for name, signals in sorted(named_signals().items())
                if self._only is None or name in self._only
            }
        return self._routes

    def _names(self, *, broadcast: bool) -> list[str]:
        return [
            name
            for name, route in self._all().items()
            if any(
                reg.broadcast is broadcast
                for signal in route.signals
                for reg in signal.live_registrations()
            )
        ]

    def names(self) -> list[str]:
        """The names of every signal this worker serves."""
        return list(self._all())

    def partitions(self, name: str) -> int:
        """How many partitions of ``name`` are served."""
        signals = self._all()[name].signals if name in self._all() else ()
        configured = max((s.partitioning.count for s in signals), default=1)
        return max(configured, self._grown.get(name, 1))

    def grow(self, name: str, count: int) -> list[int]:
        """Serve ``count`` partitions of ``name``; return the partitions added."""
        before = self.partitions(name)
        if count <= before:
            return []
        self._grown[name] = count
        self._found.clear()
        return list(range(before, count))

    def _streams(self, keys: Keys, *, broadcast: bool) -> list[str]:
        return [
            keys.events(name, partition)
            for name in self._names(broadcast=broadcast)
            for partition in range(self.partitions(name))
        ]

    def streams(self, keys: Keys) -> list[str]:
        """Event streams this worker's service consumes as a consumer group.

        Found once (the receivers a worker serves are connected at import),
        again after ``grow()`` or ``refresh()``.
        """
        return self._streams_of(keys, broadcast=False)

    def broadcast_streams(self, keys: Keys) -> list[str]:
        """Event streams every worker process reads for its broadcast receivers."""
        return self._streams_of(keys, broadcast=True)

    def _streams_of(self, keys: Keys, *, broadcast: bool) -> list[str]:
        found = self._found.get((keys.namespace, broadcast))
        if found is None:
            found = self._streams(keys, broadcast=broadcast)
            self._found[(keys.namespace, broadcast)] = found
        return found

    def refresh(self) -> None:
        """Forget what was found, so new signals and receivers are seen."""
        self._routes = None
        self._found.clear()

    def route(self, name: str) -> Route:
        """The route of a signal name; empty when this process has none."""
        return self._all().get(name) or Route(name, ())
