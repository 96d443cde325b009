"""Partitioned signals: one hot signal spread over several streams.

``Signal(name, partitions=N, partition_key="order_id")`` writes each event
to one of N streams (``busignal.wire.keys`` names them; partition 0 is the
signal's plain stream). With a ``partition_key`` the kwarg of that name
picks the partition, hashed stably (CRC-32 of its text, or of its msgpack
encoding for other types), so the events of one key stay in one stream
and in order; without one, sends go round-robin.

Changing N while events are pending loses nothing: every process that
sends with N records N in the signal's ``partitions`` set (once per
process, before its first event on a new partition) and gives the new
partitions the consumer groups partition 0 has; workers serve as many
partitions as the largest N ever recorded, so partitions a smaller N no
longer writes to are still drained. Order per key holds only while N does
not change (a key may hash to another partition afterwards).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from busignal.errors import ConfigurationError
from busignal.wire.codec import dumps
from busignal.wire.keys import Keys
from busignal.wire.records import text

__all__ = [
    "Announced",
    "Partitioning",
    "announce",
    "announce_async",
    "partition_counts",
]


@dataclass(frozen=True, slots=True)
class Partitioning:
    """How one signal's events are spread over its partitions."""

    count: int = 1
    key: str | None = None
    _next: itertools.count[int] = field(
        default_factory=itertools.count, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if not 1 <= self.count <= 1024:
            raise ConfigurationError(
                f"partitions must be an int from 1 to 1024, got {self.count!r}"
            )
        if self.key is not None and not self.key.isidentifier():
            raise ConfigurationError(
                f"partition_key must name a kwarg, got {self.key!r}"
            )

    def choose(self, kwargs: Mapping[str, object]) -> int:
        """The partition of one event: by its key kwarg, else round-robin."""
        if self.count == 1:
            return 0
        if self.key is None:
            return next(self._next) % self.count
        try:
            value = kwargs[self.key]
        except KeyError:
            raise ConfigurationError(
                f"this signal is partitioned by {self.key!r}: pass "
                f"{self.key}=... to send it (events of one {self.key} stay in order)"
            ) from None
        return stable_hash(value) % self.count


def stable_hash(value: object) -> int:
    """A hash of ``value`` that is the same in every process and run."""
    if isinstance(value, str):
        data = value.encode()
    elif isinstance(value, bytes):
        data = value
    elif isinstance(value, int) and not isinstance(value, bool):
        data = str(value).encode()
    else:
        data = dumps(value, where="partition key")
    return zlib.crc32(data)


def partition_counts(members: Any) -> int:
    """The largest count in a ``partitions`` set reply (1 when empty)."""
    counts = [int(m) for m in members or () if text(m).isdigit()]
    return max(counts, default=1)


class Announced:
    """The partition counts this process has recorded, each recorded once."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: set[tuple[str, int]] = set()

    def pending(self, signal: str, partitioning: Partitioning | None) -> int:
        """The partition count to record before sending, or 0 when done already."""
        if partitioning is None or partitioning.count == 1:
            return 0
        return 0 if (signal, partitioning.count) in self._counts else partitioning.count

    def add(self, signal: str, count: int) -> None:
        """Remember that ``count`` partitions of ``signal`` are recorded."""
        self._counts.add((signal, count))


def announce(client: redis.Redis, keys: Keys, signal: str, count: int) -> None:
    """Record ``count`` and give partitions 1..count-1 partition 0's groups.

    Done once per process and signal before the first send, so a service
    gets every event even on a partition its workers have not seen yet.
    """
    client.sadd(keys.partitions(signal), count)
    for group in _groups(client.xinfo_groups, keys.events(signal)):
        for partition in range(1, count):
            _create(client, keys.events(signal, partition), group)


async def announce_async(client: Any, keys: Keys, signal: str, count: int) -> None:
    """The coroutine form of :func:`announce`."""
    await client.sadd(keys.partitions(signal), count)
    try:
        groups = await client.xinfo_groups(keys.events(signal))
    except redis.ResponseError:
        groups = []
    for group in groups:
        for partition in range(1, count):
            try:
                await client.xgroup_create(
                    keys.events(signal, partition),
                    group["name"],
                    id="0",
                    mkstream=True,
                )
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise


def _groups(xinfo_groups: Any, stream: str) -> list[bytes]:
    try:
        return [g["name"] for g in xinfo_groups(stream)]
    except redis.ResponseError:  # no stream yet: no service to copy
        return []


def _create(client: redis.Redis, stream: str, group: bytes) -> None:
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
