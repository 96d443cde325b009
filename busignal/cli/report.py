"""``busignal inspect``: the inspection report, printed for an operator.

The data is ``busignal.admin.inspection``'s; this module prints it (plain
through a pipe, tables on a terminal) and watches it with ``--watch``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from busignal.admin.inspection import Report, SignalInfo, WorkerInfo, inspect_bus
from busignal.bus.bus import Bus
from busignal.cli.console import Console
from busignal.cli.watch import watch, watch_seconds
from busignal.worker import heartbeat

__all__ = ["add_commands", "print_report"]


def print_report(report: Report, console: Console) -> None:
    """The readable form: a signals table and a workers table."""
    console.line(f"namespace {report.namespace!r} on {report.url}")
    now = time.time()
    # The scheduled column only when some signal has delayed events waiting.
    waiting = any(sig.scheduled for sig in report.signals)
    rows: list[list[object]] = []
    for sig in report.signals:
        first = [sig.name, sig.length, sig.dead]
        first += [_scheduled(sig, now)] if waiting else []
        partitions: object = sig.partitions
        if not sig.services:
            rows.append([*first, "(no service)", "", "", "", "", partitions])
        for service in sig.services:
            lag = "?" if service.lag is None else service.lag
            rows.append(
                [
                    *first,
                    service.name,
                    service.consumers,
                    service.pending,
                    lag,
                    service.last_delivered_id,
                    partitions,
                ]
            )
            first, partitions = [""] * len(first), ""
    console.table(
        f"signals ({len(report.signals)})",
        [
            "signal",
            "length",
            "dead",
            *(["scheduled"] if waiting else []),
            "service",
            "consumers",
            "pending",
            "lag",
            "last",
            "partitions",
        ],
        rows,
    )
    console.table(
        f"live workers ({len(report.workers)})",
        ["worker", "service", "host", "pid", "heartbeat", "up", "handled"],
        [
            [w.name, w.service, w.host, w.pid, f"{w.age:.1f}s ago", *_up(w)]
            for w in report.workers
        ],
    )
    if report.lost:
        console.table(
            f"lost workers ({len(report.lost)}), no heartbeat for "
            f"{heartbeat.LAPSE_INTERVALS} intervals "
            f"(deleted after {heartbeat.FORGET_AFTER / 60:.0f} min)",
            ["worker", "service", "host", "pid", "last heartbeat", "was up", "handled"],
            [
                [w.name, w.service, w.host, w.pid, f"{_duration(w.age)} ago", *_up(w)]
                for w in report.lost
            ],
        )
    for box in report.outbox:
        oldest = (
            "" if box.oldest_age is None else f", oldest {_duration(box.oldest_age)}"
        )
        console.line(
            f"outbox of database {box.database!r}: {box.waiting} waiting{oldest}, "
            f"{box.dead} dead (relay {box.relay}, {_duration(box.reported_age)} ago)"
        )


def _scheduled(signal: SignalInfo, now: float) -> str:
    """``3, next in 42s``: delayed events waiting, and the soonest."""
    if not signal.scheduled or signal.next_due is None:
        return ""
    left = signal.next_due - now
    soon = "due now" if left <= 0 else f"in {_duration(left)}"
    return f"{signal.scheduled}, next {soon}"


def _duration(seconds: float) -> str:
    """``42s``, ``3m07s``, ``2h05m``: readable at a glance."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _up(worker: WorkerInfo) -> tuple[str, int]:
    return _duration(worker.uptime), worker.handled


def _run(args: argparse.Namespace, make_bus: Callable[..., Bus]) -> int:
    bus = make_bus(args.url, args.namespace)
    console = Console(plain=args.plain)

    def show() -> None:
        report = inspect_bus(bus)
        if args.json:  # watched: one object a line, for a script to read
            print(json.dumps(report.as_dict(), indent=None if args.watch else 2))
        else:
            print_report(report, console)
        sys.stdout.flush()

    try:
        if args.watch is None:
            show()
            return 0
        return watch(show, args.watch, title="" if args.json else "busignal inspect")
    finally:
        bus.close()


def add_commands(commands: Any, make_bus: Callable[..., Bus]) -> None:
    """Add ``busignal inspect`` to the CLI."""
    inspect = commands.add_parser(
        "inspect", help="signals, services, live and lost workers, dead letters"
    )
    inspect.add_argument("--url", help="Redis URL (default: BUSIGNAL_URL)")
    inspect.add_argument("--namespace", help="key namespace (default: busignal)")
    inspect.add_argument("--json", action="store_true", help="JSON, for scripts")
    inspect.add_argument("--plain", action="store_true", help="plain text, no rich")
    inspect.add_argument(
        "--watch",
        nargs="?",
        type=watch_seconds,
        const=2.0,
        metavar="SECONDS",
        help="show it again every SECONDS (2 if not given) until Ctrl-C; with "
        "--json, one object a line",
    )
    inspect.set_defaults(run=lambda args: _run(args, make_bus))
