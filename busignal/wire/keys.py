"""Every Redis key busignal uses, built in one place.

One signal's keys share the literal hash tag ``{sig:NAME}`` so that on a
Redis Cluster they live in one slot. The namespace isolates tenants and
tests without FLUSHALL.

Partitions. A signal with ``partitions=N`` has N events streams.
Partition 0 is the signal's plain stream (``{sig:NAME}``), so a signal
that becomes partitioned keeps the stream it had; partition ``k > 0`` has
its own tag, ``{sig:NAME#k}``, and so (usually) its own slot and node.
Each partition is a self-contained unit: its events, its dead letters
and the replies to sends made on it all carry its tag.

Reply keys carry the tag of the partition the send went to
(``NS:{sig:NAME#k}:reply:ID``) rather than a tag of their own: on a
Redis Cluster the send's first round trip (the script that adds the
entry and names its services, and a BLPOP for the first reply, one
pipeline) then goes to one node, and the
worker's reply (RPUSH, EXPIRE) and XACK for an entry go to one node too.
On a single Redis the tag costs nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["PARTITION_MARK", "Keys", "groups_of", "handled_of", "reply_of"]

#: Separates a signal's name from its partition number inside the tag.
#: Signal names may not contain it.
PARTITION_MARK = "#"

_EVENTS_SUFFIX = "}:events"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for one namespace."""

    namespace: str = "busignal"

    def tag(self, signal: str, partition: int = 0) -> str:
        """The hash tag of one partition of ``signal`` (braces included)."""
        if partition:
            return f"{{sig:{signal}{PARTITION_MARK}{partition}}}"
        return f"{{sig:{signal}}}"

    def events(self, signal: str, partition: int = 0) -> str:
        """The stream holding one entry per send of ``signal`` (one partition)."""
        return f"{self.namespace}:{self.tag(signal, partition)}:events"

    def dead(self, signal: str, partition: int = 0) -> str:
        """The stream of a partition's entries that failed past the limit."""
        return f"{self.namespace}:{self.tag(signal, partition)}:dead"

    def reply(self, message_id: str, signal: str, partition: int = 0) -> str:
        """The list each service's worker pushes its reply for one send to.

        In the slot of the stream the send went to (see the module docstring).
        """
        return f"{self.namespace}:{self.tag(signal, partition)}:reply:{message_id}"

    def scheduled(self, signal: str, partition: int = 0) -> str:
        """The sorted set of a partition's scheduled entries: id -> due (ms).

        What is waiting to be added to a stream later (delayed events). The
        entries' fields are in ``scheduled_data``; both share the stream's
        slot, so one script moves a due entry atomically.
        """
        return f"{self.namespace}:{self.tag(signal, partition)}:scheduled"

    def scheduled_data(self, signal: str, partition: int = 0) -> str:
        """The hash of a partition's scheduled entries: id -> packed fields."""
        return f"{self.namespace}:{self.tag(signal, partition)}:scheduled:data"

    def partitions(self, signal: str) -> str:
        """The set of every partition count ``signal`` was ever used with.

        Workers serve as many partitions as the largest count, so events on
        partitions a smaller count no longer writes to are still drained.
        """
        return f"{self.namespace}:{self.tag(signal)}:partitions"

    def groups(self, signal: str, partition: int = 0) -> str:
        """The hash of where each service's group on a partition stands.

        Service -> the id up to which its group has acknowledged everything,
        written with its acks and when it is created, so that a destroyed
        group is recreated there (``busignal.wire.groups``).
        """
        return f"{self.namespace}:{self.tag(signal, partition)}:groups"

    @property
    def workers(self) -> str:
        """The hash of worker heartbeats: consumer name -> encoded status."""
        return f"{self.namespace}:workers"

    @property
    def outbox(self) -> str:
        """The hash where Django outbox relays report their table's backlog:
        database alias -> encoded report (``busignal inspect`` reads it)."""
        return f"{self.namespace}:outbox"

    def events_pattern(self) -> str:
        """A SCAN pattern matching every signal's events streams."""
        return f"{self.namespace}:{{sig:*}}:events"

    def scheduled_pattern(self) -> str:
        """A SCAN pattern matching every signal's scheduled sorted sets."""
        return f"{self.namespace}:{{sig:*}}:scheduled"

    def reply_pattern(self) -> str:
        """A SCAN pattern matching every reply key."""
        return f"{self.namespace}:{{sig:*}}:reply:*"

    def partition_of(self, events_key: str) -> tuple[str, int]:
        """The signal name and partition of an events stream key."""
        return _partition_of(self.namespace, events_key)

    def signal_of(self, events_key: str) -> str:
        """The signal name of an events stream key (inverse of ``events``)."""
        return self.partition_of(events_key)[0]

    def dead_of(self, events_key: str) -> str:
        """The dead-letter stream in the slot of an events stream."""
        return events_key[: -len("events")] + "dead"

    def groups_of(self, events_key: str) -> str:
        """The groups' positions hash in the slot of an events stream."""
        return groups_of(events_key)

    def outcomes_of(self, events_key: str, service: str, message_id: str) -> str:
        """The hash of one service's receivers' outcomes for one event.

        Written only while a failed receiver waits for its retry (with a
        TTL), so that the receivers that succeeded are not run again; in
        the slot of the events stream, so it goes with the entry's ack.
        """
        return f"{events_key[: -len('events')]}outcomes:{service}:{message_id}"

    def scheduled_of(self, events_key: str) -> tuple[str, str]:
        """The scheduled sorted set and data hash in the slot of an events stream."""
        base = events_key[: -len("events")] + "scheduled"
        return base, base + ":data"

    def events_of_scheduled(self, scheduled_key: str) -> str:
        """The events stream a scheduled sorted set's entries go to."""
        return scheduled_key[: -len("scheduled")] + "events"


def groups_of(events_key: str) -> str:
    """``Keys.groups_of`` for code that has a stream key but no ``Keys``."""
    return events_key[: -len("events")] + "groups"


_EVENTS = "events"


def reply_of(events_key: str, message_id: str) -> str:
    """The reply key of a send of ``message_id`` added to ``events_key``.

    The same key ``Keys.reply`` builds for the send: the only key a worker
    ever writes a reply to, whatever an entry says.
    """
    return f"{events_key[: -len(_EVENTS)]}reply:{message_id}"


def handled_of(events_key: str, service: str, message_id: str) -> str:
    """The record that ``service`` handled ``message_id`` from ``events_key``.

    A string key with a TTL, in the stream's slot (so it goes in the ack's
    pipeline on a cluster): a worker skips a signed event whose record
    exists, so a replayed entry does not run twice.
    """
    return f"{events_key[: -len(_EVENTS)]}handled:{service}:{message_id}"


@functools.lru_cache(maxsize=1024)
def _partition_of(namespace: str, events_key: str) -> tuple[str, int]:
    # A worker asks this for every entry it reads; the answers are few.
    prefix = f"{namespace}:{{sig:"
    if not (events_key.startswith(prefix) and events_key.endswith(_EVENTS_SUFFIX)):
        raise ValueError(f"{events_key!r} is not an events key of {namespace!r}")
    inner = events_key[len(prefix) : -len(_EVENTS_SUFFIX)]
    name, mark, number = inner.rpartition(PARTITION_MARK)
    if mark and number.isdigit() and name:
        return name, int(number)
    return inner, 0
