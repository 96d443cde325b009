"""``busignal scheduled list|cancel SIGNAL``: delayed events not yet due.

Exit codes: 0 done; 1 an ``--id`` names no scheduled event (nothing is
cancelled) or Redis is unreachable; 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from busignal.admin.scheduled import Scheduled, cancel, list_scheduled
from busignal.bus.bus import Bus
from busignal.cli.console import Console
from busignal.cli.flags import run_with_bus
from busignal.errors import UnknownId

__all__ = ["add_commands", "when"]


def when(due: float, now: float) -> str:
    """``2026-01-02T03:04:05Z (in 42s)``: the due time, and how far off it is."""
    stamp = datetime.fromtimestamp(due, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    left = due - now
    return f"{stamp} ({'due now' if left <= 0 else f'in {_duration(left)}'})"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _list(args: argparse.Namespace, bus: Bus) -> int:
    items = list_scheduled(bus, args.signal)
    if args.id:
        items = [s for s in items if s.id in args.id]
        missing = sorted(set(args.id) - {s.id for s in items})
        if missing:
            raise UnknownId(args.signal, missing, "scheduled event", "scheduled list")
    if args.json:
        print(json.dumps([s.as_dict() for s in items], indent=2))
        return 0
    if not items:
        # on stderr, so that a pipe counting the events reads none
        print(
            f"no scheduled events for {args.signal!r} in namespace "
            f"{bus.config.namespace!r}",
            file=sys.stderr,
        )
        return 0
    now = time.time()
    Console(plain=args.plain).table(
        f"scheduled events of {args.signal!r} ({len(items)})",
        ["id", "partition", "due", "sender", "kwargs"],
        [_row(s, now) for s in items],
    )
    return 0


def _row(item: Scheduled, now: float) -> list[object]:
    return [
        item.id,
        item.partition,
        when(item.due, now),
        "?" if item.sender is None else item.sender or "(none)",
        ", ".join(item.kwargs),
    ]


def _cancel(args: argparse.Namespace, bus: Bus) -> int:
    done = cancel(bus, args.signal, None if args.all else args.id)
    print(f"cancelled {len(done)} scheduled event(s) of {args.signal!r}")
    return 0


def _undone(action: str) -> str:
    return "; nothing was cancelled" if action == "cancel" else ""


def add_commands(commands: Any, make_bus: Callable[..., Bus]) -> None:
    """Add ``busignal scheduled list|cancel SIGNAL`` to the CLI.

    ``cancel`` needs ``--id`` (repeatable) or ``--all``: which events go is
    never left to a default.
    """
    scheduled = commands.add_parser(
        "scheduled",
        help="list or cancel delayed events not yet due",
        description="Delayed events (signal.using(delay=...).publish) waiting "
        "for their time. Exit codes: 0 done; 1 an --id names no scheduled "
        "event (nothing is changed) or Redis is unreachable; 2 bad usage.",
    )
    actions = scheduled.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, run, summary in (
        ("list", _list, "list the scheduled events, soonest first"),
        ("cancel", _cancel, "cancel scheduled events before they are due"),
    ):
        action = actions.add_parser(name, help=summary, description=summary + ".")
        action.add_argument("signal", help="signal name")
        action.add_argument("--url", help="Redis URL (default: BUSIGNAL_URL)")
        action.add_argument("--namespace", help="key namespace (default: busignal)")
        which = action.add_mutually_exclusive_group(required=name == "cancel")
        which.add_argument(
            "--id",
            action="append",
            help="this event's id, as publish returned it (repeatable)",
        )
        if name == "list":
            action.add_argument("--json", action="store_true", help="list as JSON")
            action.add_argument(
                "--plain", action="store_true", help="plain text, no rich"
            )
        else:
            which.add_argument(
                "--all", action="store_true", help="cancel every scheduled event"
            )
        action.set_defaults(
            run=lambda args, run=run: run_with_bus(
                args, make_bus, run, {UnknownId: (1, _undone(args.action))}
            )
        )
