"""``busignal service create SIGNAL SERVICE``: declare a service ahead of its workers.

Creating the groups is ``busignal.admin.services``'s; this module parses,
prints and picks the exit code.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from busignal.admin.services import create_service
from busignal.bus.bus import Bus
from busignal.cli.flags import run_with_bus
from busignal.errors import GroupLost

__all__ = ["add_commands"]

_SAID = {
    "exists": "already there, at {at}; left as it is",
    "created": "created at {at}; events sent from now on wait for it",
    "restored": "recreated where it stood, after {at}",
}


def _create(args: argparse.Namespace, bus: Bus) -> int:
    start = "start" if args.from_start else "now" if args.from_now else "record"
    declared = create_service(bus, args.signal, args.service, start=start)
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
    create.set_defaults(
        run=lambda args: run_with_bus(args, make_bus, _create, {GroupLost: (1, "")})
    )
