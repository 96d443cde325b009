"""Delayed events: ``signal.using(delay=...)`` or ``using(eta=...)`` then publish.

A delayed event is encoded at once (SerializationError before any I/O,
as for any publish) and stored as a scheduled entry of its partition
(``busignal.wire.schedule``). Workers move due entries to the events
stream, atomically, several times a second
(``busignal.worker.due``); from there the event goes to every service
as a plain publish does. A scheduled event's id is its message id: what
``busignal scheduled cancel --id`` takes.

Only publishing can be delayed: a ``send`` waits for replies, and nobody
waits minutes for one.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from busignal.bus import durable as durability
from busignal.bus.encoding import EntryEncoder
from busignal.bus.partitions import Partitioning, announce
from busignal.errors import ConfigurationError, SerializationError
from busignal.transport.raw import RawPipeline
from busignal.wire.envelope import Mode
from busignal.wire.schedule import pack_fields, schedule_command

if TYPE_CHECKING:
    from busignal.bus.bus import Bus

__all__ = ["CLOCK_SKEW", "due_time", "publish_later", "publish_later_async"]

#: An ``eta`` up to this many seconds in the past means "now" (the clocks of
#: two hosts, and the time between computing an eta and publishing); older
#: is a mistake, refused.
CLOCK_SKEW = 10.0


def due_time(
    delay: object = None, eta: object = None, now: float | None = None
) -> float | None:
    """When an event published with ``delay`` or ``eta`` is due (epoch seconds).

    None when it is due now (no delay, a zero delay, an eta slightly in the
    past): then it is a plain publish. ConfigurationError names a bad value:
    a negative or non-number delay, a naive eta, an eta in the past by more
    than ``CLOCK_SKEW`` seconds, or both given.
    """
    if delay is None and eta is None:
        return None
    now = time.time() if now is None else now
    if delay is not None and eta is not None:
        raise ConfigurationError(
            f"give delay or eta, not both (delay={delay!r}, eta={eta!r})"
        )
    due = _from_delay(delay, now) if delay is not None else _from_eta(eta, now)
    return due if due > now else None


def _from_delay(delay: object, now: float) -> float:
    if isinstance(delay, timedelta):
        seconds = delay.total_seconds()
    elif isinstance(delay, int | float) and not isinstance(delay, bool):
        seconds = float(delay)
    else:
        raise ConfigurationError(
            f"delay must be a number of seconds or a timedelta, got {delay!r}"
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigurationError(
            f"delay must be zero or more seconds, got {delay!r}; for a time in "
            f"the future use eta=datetime(..., tzinfo=...)"
        )
    return now + seconds


def _from_eta(eta: object, now: float) -> float:
    if not isinstance(eta, datetime):
        raise ConfigurationError(
            f"eta must be a timezone-aware datetime, got {eta!r}; for seconds "
            f"from now use delay=SECONDS"
        )
    if eta.tzinfo is None or eta.utcoffset() is None:
        raise ConfigurationError(
            f"eta must be timezone-aware, got the naive {eta!r}; e.g. "
            f"datetime.now(timezone.utc) + timedelta(minutes=15)"
        )
    due = eta.timestamp()
    if due < now - CLOCK_SKEW:
        raise ConfigurationError(
            f"eta {eta.isoformat()} is {now - due:.0f}s in the past (more than "
            f"the {CLOCK_SKEW:g}s allowed for clock skew); publish without eta "
            f"to run it now"
        )
    return due


def _scheduled(
    bus: Bus,
    signal: str,
    sender: object,
    batch: Iterable[Mapping[str, object]],
    due: float,
    partitioning: Partitioning | None,
) -> tuple[list[str], list[tuple[str, tuple[Any, ...]]]]:
    """The message ids and, per partition, the (key, EVAL) that schedules them."""
    encoder = EntryEncoder(bus.keys, bus.signer, bus.config.max_payload)
    due_ms = int(due * 1000)
    ids: list[str] = []
    by_partition: dict[int, list[tuple[int, str, bytes]]] = {}
    for index, kwargs in enumerate(batch):
        try:
            part = partitioning.choose(kwargs) if partitioning is not None else 0
            # Signed for its partition's stream, as sent when it is due: the
            # worker's age limit counts from when the event is handed over.
            mid, fields, _ = encoder.encode(
                signal, sender, kwargs, Mode.PUBLISH, partition=part, sent_at=due
            )
        except SerializationError as exc:
            raise SerializationError(f"batch item {index}: {exc}") from exc
        ids.append(mid)
        by_partition.setdefault(part, []).append((due_ms, mid, pack_fields(fields)))
    writes = []
    for part, entries in sorted(by_partition.items()):
        zset = bus.keys.scheduled(signal, part)
        data = bus.keys.scheduled_data(signal, part)
        writes.append((zset, schedule_command(zset, data, entries)))
    return ids, writes


def publish_later(
    bus: Bus,
    signal: str,
    sender: object,
    batch: Iterable[Mapping[str, object]],
    due: float,
    partitioning: Partitioning | None = None,
    durable: durability.Durability | None = None,
) -> list[str]:
    """Schedule one event per kwargs mapping, due at ``due``; return their ids.

    One round trip (per node holding a partition used); nothing is written
    if one mapping cannot be encoded.
    """
    ids, writes = _scheduled(bus, signal, sender, batch, due, partitioning)
    if not ids:
        return []
    with bus.transport.errors():
        if partitioning is not None and partitioning.count > 1:
            announce(bus.client, bus.keys, signal, partitioning.count)
        if durable is not None:
            durability.write(bus, writes, durable, bus.config.timeout)
            return ids
        client = bus.client
        pipe: Any = (
            client.pipeline(transaction=False)
            if bus.transport.is_cluster
            else RawPipeline(client)
        )
        for _, command in writes:
            pipe.execute_command(*command)
        pipe.execute()
    return ids


async def publish_later_async(
    bus: Bus,
    signal: str,
    sender: object,
    kwargs: Mapping[str, object],
    due: float,
    partitioning: Partitioning | None = None,
    durable: durability.Durability | None = None,
) -> str:
    """The coroutine form of :func:`publish_later`, for one event."""
    if durable is not None or (partitioning is not None and partitioning.count > 1):
        # The wait must share the writes' connection: the sync path has one.
        ids = await asyncio.to_thread(
            publish_later, bus, signal, sender, (kwargs,), due, partitioning, durable
        )
        return ids[0]
    ids, writes = _scheduled(bus, signal, sender, (kwargs,), due, partitioning)
    with bus.transport.errors():
        client: Any = await bus.async_client()
        await client.execute_command(*writes[0][1])
    return ids[0]
