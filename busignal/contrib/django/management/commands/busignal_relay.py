"""``manage.py busignal_relay [--once]``: send the outbox's rows to Redis.

Runs until SIGTERM or Ctrl-C (finishing the pass in hand), or with
``--once`` drains what is there and exits 0. Exit 1 when ``--once``
cannot reach Redis (the rows stay for the next run). The guarantees are
in ``busignal.contrib.django.relay`` and docs/django.md.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from busignal.bus.default import get_bus
from busignal.contrib.django.relay import Relay
from busignal.errors import BusUnavailable

__all__ = ["Command"]


class Command(BaseCommand):  # type: ignore[misc]  # Django is untyped
    help = "Send the busignal outbox's events to Redis, oldest first."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="drain what is there, then exit"
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="the database whose outbox to relay (default: default)",
        )
        parser.add_argument(
            "--batch", type=int, default=100, help="rows sent per transaction"
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=1.0,
            help="seconds between looks at an empty outbox",
        )
        parser.add_argument(
            "--retry-dead",
            action="store_true",
            help="put rows marked dead back in the queue first",
        )
        parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO...")

    def handle(self, *unused: str, **options: Any) -> None:
        logging.basicConfig(  # a no-op when LOGGING gave the root logger handlers
            level=str(options["log_level"]).upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        relay = self._relay(options)
        if options["retry_dead"]:
            revived = relay.retry_dead()
            self.stdout.write(f"{revived} dead rows put back in the queue")
        if options["once"]:
            try:
                done = relay.drain()
                found = relay.report()
            except BusUnavailable as exc:
                raise CommandError(
                    f"{exc}; the outbox keeps its rows, run busignal_relay again "
                    f"once Redis is back",
                    returncode=1,
                ) from exc
            self.stdout.write(
                f"relayed {done.sent} events ({done.dead} set aside as dead); "
                f"outbox: {found.describe()}"
            )
            return
        stop = threading.Event()
        for each in (signal.SIGTERM, signal.SIGINT):
            signal.signal(each, lambda *_: stop.set())
        logging.getLogger("busignal").info(
            "relaying the outbox of database %r to %r", relay.using, relay.bus
        )
        done = relay.run(stop, interval=options["interval"])
        self.stdout.write(
            f"stopped: relayed {done.sent} events ({done.dead} set aside as dead)"
        )

    def _relay(self, options: dict[str, Any]) -> Relay:
        bus = get_bus()
        if bus is None:
            raise CommandError(
                "no bus is configured: set BUSIGNAL['URL'] in the settings "
                "(or BUSIGNAL_URL)",
                returncode=2,
            )
        if options["database"] not in connections:
            raise CommandError(
                f"no database {options['database']!r} in DATABASES; choose from "
                f"{sorted(connections)!r}",
                returncode=2,
            )
        if options["batch"] < 1 or options["interval"] <= 0:
            raise CommandError(
                "--batch must be at least 1 and --interval positive", returncode=2
            )
        return Relay(bus, using=options["database"], batch=options["batch"])
