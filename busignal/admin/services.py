"""Declare a service ahead of its workers: ``busignal service create``.

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

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from busignal.bus.bus import Bus
from busignal.bus.partitions import partition_counts
from busignal.errors import GroupLost, UsageError
from busignal.wire.groups import Created, create_args, created, group_lost

__all__ = ["Declared", "add_commands", "create_service"]

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


_SAID = {
    "exists": "already there, at {at}; left as it is",
    "created": "created at {at}; events sent from now on wait for it",
    "restored": "recreated where it stood, after {at}",
}


def _create(args: argparse.Namespace, make_bus: Callable[..., Bus]) -> int:
    start = "start" if args.from_start else "now" if args.from_now else "record"
    bus = make_bus(args.url, args.namespace)
    try:
        declared = create_service(bus, args.signal, args.service, start=start)
    except GroupLost as exc:
        print(f"busignal: {exc}", file=sys.stderr)
        return 1
    finally:
        bus.close()
    for item in declared:
        said = _SAID[item.result.kind].format(at=item.result.at)
        print(f"service {args.service!r} on {item.stream}: {said}")
    return 0


def add_commands(commands: Any, make_bus: Callable[..., Bus]) -> None:
    """Add ``busignal service create SIGNAL SERVICE`` to the CLI."""
    service = commands.add_parser(
        "service",
        help="declare a service ahead of its workers",
        description="Services are consumer groups. Exit codes: 0 done; 1 a "
        "group cannot be recreated where it stood, or Redis is unreachable; "
        "2 bad usage.",
    )
    actions = service.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="create the service's consumer group, so events wait for it",
        description="Create SERVICE's consumer group on every partition of "
        "SIGNAL, so that events sent before its first worker starts wait for "
        "it. A group destroyed before is recreated where it stood (its last "
        "acknowledged entry); an existing group is left alone.",
    )
    create.add_argument("signal", help="signal name")
    create.add_argument("service", help="service name (worker --service)")
    where = create.add_mutually_exclusive_group()
    where.add_argument(
        "--from-start",
        action="store_true",
        help="start at the stream's first entry: every event still in it runs",
    )
    where.add_argument(
        "--from-now",
        action="store_true",
        help="start at the stream's end, even where a position is recorded",
    )
    create.add_argument("--url", help="Redis URL (default: BUSIGNAL_URL)")
    create.add_argument("--namespace", help="key namespace (default: busignal)")
    create.set_defaults(run=lambda args: _create(args, make_bus))
