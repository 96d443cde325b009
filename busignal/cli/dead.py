"""``busignal dead list|replay|purge SIGNAL``: the operator's view of dead letters.

The data and the moves are ``busignal.admin.dead``'s; this module parses,
prints and picks the exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from busignal.admin.dead import list_dead, purge, replay, select
from busignal.bus.bus import Bus
from busignal.cli.flags import run_with_bus
from busignal.errors import AmbiguousId, UnknownId, UnverifiedLetter

__all__ = ["add_commands"]


def _list(args: argparse.Namespace, bus: Bus) -> int:
    letters = list_dead(bus, args.signal)
    # PARTITION:ID as soon as any partition but 0 has letters: a plain ID
    # could then name letters of several partitions
    partitioned = any(d.partition for d in letters)
    if args.id:
        letters = select(args.signal, letters, args.id)
    if args.json:
        print(json.dumps([d.as_dict() for d in letters], indent=2))
    elif not letters:
        # on stderr, so that a pipe counting the letters reads none
        namespace = bus.config.namespace
        print(
            f"no dead letters for {args.signal!r} in namespace {namespace!r}",
            file=sys.stderr,
        )
    for d in [] if args.json else letters:
        where = d.ref if partitioned else d.id
        print(f"{where}  service={d.service}  attempts={d.attempts}  {d.reason}")
    return 0


def _replay(args: argparse.Namespace, bus: Bus) -> int:
    new = replay(bus, args.signal, None if args.all else args.id)
    print(f"replayed {len(new)} dead letter(s) of {args.signal!r}")
    return 0


def _purge(args: argparse.Namespace, bus: Bus) -> int:
    count = purge(bus, args.signal, None if args.all else args.id)
    print(f"purged {count} dead letter(s) of {args.signal!r}")
    return 0


def _refusals(action: str) -> dict[type[Exception], tuple[int, str]]:
    undone = {"replay": "; nothing was replayed", "purge": "; nothing was purged"}
    return {
        AmbiguousId: (2, ""),
        UnknownId: (1, undone.get(action, "")),
        UnverifiedLetter: (1, "; nothing was replayed"),
    }


_ID_HELP = "a plain ID is looked up in every partition"


def add_commands(commands: Any, make_bus: Callable[..., Bus]) -> None:
    """Add ``busignal dead list|replay|purge SIGNAL`` to the CLI.

    ``replay`` and ``purge`` need ``--id`` (repeatable) or ``--all``:
    which letters go is never left to a default.
    """
    dead = commands.add_parser(
        "dead",
        help="list, replay or purge dead letters",
        description="Dead letters: events that failed past --max-deliveries, "
        "or that a worker could not read. Exit codes: 0 done; 1 an --id names "
        "no letter, or a signed letter cannot be re-signed (nothing is "
        "changed), or Redis is unreachable; 2 bad usage.",
    )
    actions = dead.add_subparsers(dest="action", required=True, metavar="ACTION")
    helps = {
        "list": ("list the dead letters", "show only this letter"),
        "replay": ("send dead letters to their service again", "replay this letter"),
        "purge": ("delete dead letters", "delete this letter"),
    }
    for name, run in (("list", _list), ("replay", _replay), ("purge", _purge)):
        summary, id_help = helps[name]
        action = actions.add_parser(name, help=summary, description=summary + ".")
        action.add_argument("signal", help="signal name")
        action.add_argument("--url", help="Redis URL (default: BUSIGNAL_URL)")
        action.add_argument("--namespace", help="key namespace (default: busignal)")
        which = action.add_mutually_exclusive_group(required=name != "list")
        which.add_argument(
            "--id",
            action="append",
            metavar="[PARTITION:]ID",
            help=f"{id_help} (repeatable); {_ID_HELP}",
        )
        if name == "list":
            action.add_argument("--json", action="store_true", help="list as JSON")
        else:
            which.add_argument(
                "--all", action="store_true", help=f"{name} every dead letter"
            )
        action.set_defaults(
            run=lambda args, run=run: run_with_bus(
                args, make_bus, run, _refusals(args.action)
            )
        )
