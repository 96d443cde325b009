"""Send a few events to the example services and exit.

Run it with ``python -m busignal.examples.sender``.

Reads ``BUSIGNAL_URL`` (and ``BUSIGNAL_SECRET``, ``BUSIGNAL_NAMESPACE``).
Waits up to ``--wait`` seconds for Redis to answer, so it can start next to
it (docker compose). Exit codes: 0 sent, 1 Redis unreachable, 2 no URL.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Sequence
from typing import Any

import msgpack

from busignal import BusUnavailable, Signal
from busignal.bus.bus import Bus
from busignal.examples.signals import cache_invalidated, order_paid, user_signed_up
from busignal.transport.clients import redact

#: The sender's name: what it sends as, and how its messages start.
SENDER = "busignal.examples.sender"


def _wait_for_redis(bus: Bus, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with bus.transport.errors():
                bus.client.ping()
            return
        except BusUnavailable:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def _wait_for_services(bus: Bus, services: set[str], seconds: float) -> None:
    """Wait until a worker of each service has announced itself (or time is up).

    An event sent before a service's first worker joined its stream would
    not reach that service, so the example waits for them.
    """
    deadline = time.monotonic() + seconds
    while services and time.monotonic() < deadline:
        with bus.transport.errors():
            raw: Any = bus.client.hgetall(bus.keys.workers)
        for status in raw.values():
            with contextlib.suppress(Exception):
                services.discard(str(msgpack.unpackb(status)["service"]))
        if services:
            time.sleep(0.2)
    if services:
        print(f"{SENDER}: no worker of {sorted(services)} yet; sending anyway")


def main(argv: Sequence[str] | None = None) -> int:
    """Send the example events; return the exit code."""
    parser = argparse.ArgumentParser(prog=f"python -m {SENDER}")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds for Redis")
    parser.add_argument(
        "--services",
        default="billing,notifications",
        help="comma-separated services to wait for ('' to not wait)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per send")
    args = parser.parse_args(argv)
    bus = Bus.from_env()
    if bus is None:
        print(f"{SENDER}: set BUSIGNAL_URL, e.g. redis://localhost:6379/0")
        return 2
    try:
        _wait_for_redis(bus, args.wait)
        wanted = {s.strip() for s in args.services.split(",") if s.strip()}
        _wait_for_services(bus, wanted, args.wait)
        sends: list[tuple[str, Signal, dict[str, object]]] = [
            ("order_paid", order_paid, {"order_id": 1, "amount": 4200}),
            ("user_signed_up", user_signed_up, {"email": "ada@example.com"}),
            ("user_signed_up", user_signed_up, {"email": "bob@example.invalid"}),
        ]
        for name, signal, kwargs in sends:
            view = signal.using(bus=bus, timeout=args.timeout)
            for receiver, response in view.send_robust(SENDER, **kwargs):
                label = getattr(receiver, "id", receiver)
                print(f"{name}: {label} -> {response!r}")
        cache_invalidated.using(bus=bus).publish(SENDER, key="prices")
        print("cache_invalidated: published")
    except BusUnavailable as exc:
        print(f"{SENDER}: {exc}", file=sys.stderr)
        return 1
    finally:
        bus.close()
    print(f"sent to {redact(bus.config.url)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
