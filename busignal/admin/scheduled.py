"""Scheduled (delayed) events: list them and cancel them, as data.

A delayed publish waits as a scheduled entry of its partition
(``busignal.wire.schedule``) until a worker moves it to the events
stream. Its id is the event's message id, which ``publish`` returned.
Every function here covers every partition of the signal (as
``busignal.admin.dead`` does). Cancelling removes the entry from the
sorted set and its data in one script, so an entry is either cancelled
or handed over, never both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from busignal.admin.dead import dead_partitions
from busignal.bus.bus import Bus
from busignal.errors import BadEntry, UnknownId
from busignal.wire import envelope
from busignal.wire.records import text
from busignal.wire.schedule import CANCEL, unpack_fields

__all__ = ["Scheduled", "cancel", "list_scheduled", "next_due"]


@dataclass(frozen=True, slots=True)
class Scheduled:
    """One scheduled event of one partition of a signal."""

    id: str
    partition: int
    due: float  # epoch seconds
    sender: str | None  # its wire name ("" for None); None if unreadable here
    kwargs: tuple[str, ...]  # the kwarg names

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "partition": self.partition,
            "due": self.due,
            "sender": self.sender,
            "kwargs": list(self.kwargs),
        }


def _partitions(bus: Bus, signal: str) -> list[int]:
    # Scheduled keys live beside the dead-letter stream, partition by partition;
    # the recorded partition count covers both.
    return dead_partitions(bus, signal)


def list_scheduled(bus: Bus, signal: str) -> list[Scheduled]:
    """The scheduled events of every partition of ``signal``, soonest first."""
    partitions = _partitions(bus, signal)
    with bus.transport.errors():
        pipe: Any = bus.client.pipeline(transaction=False)
        for partition in partitions:
            pipe.zrange(bus.keys.scheduled(signal, partition), 0, -1, withscores=True)
            pipe.hgetall(bus.keys.scheduled_data(signal, partition))
        answers: list[Any] = pipe.execute()
    found = []
    for index, partition in enumerate(partitions):
        due, data = answers[2 * index], answers[2 * index + 1]
        for member, score in due:
            packed = data.get(member)
            found.append(_scheduled(bus, signal, partition, member, score, packed))
    return sorted(found, key=lambda s: (s.due, s.partition, s.id))


def _scheduled(
    bus: Bus, signal: str, partition: int, member: bytes, score: float, packed: Any
) -> Scheduled:
    sender: str | None = None
    names = tuple[str, ...]()
    try:
        fields = unpack_fields(packed) if packed is not None else {}
        # Not checked against the secret: a delayed entry is signed as sent at
        # its due time, still ahead; listing it shows only its sender and names.
        decoded = envelope.decode(
            fields,
            signal=signal,
            signer=None,
            max_size=bus.config.max_payload,
            stream=bus.keys.events(signal, partition),
            namespace=bus.keys.namespace,
        )
        sender, names = decoded.sender, tuple(sorted(decoded.kwargs))
    except (BadEntry, ValueError):
        pass  # listed all the same: an operator may still cancel it
    return Scheduled(text(member), partition, float(score) / 1000, sender, names)


def next_due(bus: Bus, signal: str, partition: int = 0) -> tuple[int, float | None]:
    """How many events of one partition are scheduled, and the soonest due time."""
    key = bus.keys.scheduled(signal, partition)
    with bus.transport.errors():
        pipe: Any = bus.client.pipeline(transaction=False)
        pipe.zcard(key)
        pipe.zrange(key, 0, 0, withscores=True)
        count, first = pipe.execute()
    return int(count), (float(first[0][1]) / 1000 if first else None)


def cancel(bus: Bus, signal: str, ids: list[str] | None = None) -> list[str]:
    """Cancel scheduled events of ``signal`` (``ids``, or all); return the ids.

    UnknownId, with nothing cancelled, when an id names no scheduled event
    (it may have been handed over already).
    """
    scheduled = list_scheduled(bus, signal)
    wanted = [s for s in scheduled if ids is None or s.id in ids]
    missing = sorted(set(ids or ()) - {s.id for s in scheduled})
    if missing:
        raise UnknownId(signal, missing, "scheduled event", "scheduled list")
    by_partition: dict[int, list[str]] = {}
    for item in wanted:
        by_partition.setdefault(item.partition, []).append(item.id)
    cancelled: list[str] = []
    with bus.transport.errors():
        for partition, chosen in sorted(by_partition.items()):
            zset = bus.keys.scheduled(signal, partition)
            data = bus.keys.scheduled_data(signal, partition)
            removed = bus.client.eval(CANCEL, 2, zset, data, *chosen)
            cancelled += [text(i) for i in removed]
    return cancelled
