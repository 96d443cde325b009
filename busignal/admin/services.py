"""Declare a service ahead of its workers (``busignal service create``
prints what was done: ``busignal.cli.services``).

A service is a consumer group on each of a signal's streams. A worker
creates its groups when it starts, at the end of the stream: events sent
before the first worker of a new service started are not for it. Declared
ahead, the group exists from then on, so every event sent afterwards waits
for the service's first worker (and a ``send`` waits for its reply).

A group that stood somewhere before (its position is recorded, see
``busignal.wire.groups``) is recreated there, unless entries after that
position were trimmed meanwhile; ``--from-start`` and ``--from-now`` then
say where it starts instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from busignal.bus.bus import Bus
from busignal.bus.partitions import partition_counts
from busignal.errors import UsageError
from busignal.wire.groups import Created, create_args, created, group_lost

__all__ = ["Declared", "create_service"]

#: Where a declared group starts: at its record (else the end), at the
#: stream's first entry, or at its end.
STARTS = {"record": "$", "start": "0", "now": "$"}


@dataclass(frozen=True, slots=True)
class Declared:
    """What ``create_service`` did on one partition's stream."""

    stream: str
    partition: int
    result: Created


def create_service(
    bus: Bus, signal: str, service: str, *, start: str = "record"
) -> list[Declared]:
    """Create ``service``'s group on every partition of ``signal`` that lacks one.

    ``start``: ``"record"`` recreates a group where it stood (its recorded
    position) or starts a new one at the end of the stream; ``"start"``
    starts at the stream's first entry (every entry in it runs) and
    ``"now"`` at its end, whatever the record says. An existing group is
    left alone. Raises GroupLost, before changing anything, when a
    recorded position is past entries trimmed meanwhile.
    """
    _check_name(service)
    if start not in STARTS:
        raise UsageError(f"start must be one of {sorted(STARTS)!r}, got {start!r}")
    client: Any = bus.client
    keys = bus.keys
    with bus.transport.errors():
        count = partition_counts(client.smembers(keys.partitions(signal)))
        done: list[Declared] = []
        for partition in range(count):
            stream = keys.events(signal, partition)
            args = create_args(
                stream,
                keys.groups(signal, partition),
                service,
                STARTS[start],
                ignore_record=start != "record",
            )
            result = created(client.execute_command(*args))
            if not result.made:
                raise group_lost(service, signal, stream, result)
            done.append(Declared(stream, partition, result))
    return done


def _check_name(service: str) -> None:
    if not service or any(c in service for c in " {}"):
        raise UsageError(
            f"invalid service name {service!r}: use the name given to "
            f"'busignal worker --service', without spaces or braces"
        )
