"""``busignal ping``: does Redis answer? A health check for containers.

Exit 0, printing the server and its version, when Redis answers; 1, with
the reason on stderr, when it does not (unreachable, the login refused,
no answer within ``--timeout``). It connects with the same URL, TLS and
credentials a worker would, so a passing ping means a worker can reach
its Redis.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib import metadata
from typing import Any

import redis

from busignal.bus.bus import Bus
from busignal.transport.clients import CONNECTION_ERRORS, redact, unavailable

__all__ = ["add_commands", "server_version"]

_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    redis.AuthenticationError,
    redis.TimeoutError,
)


def server_version(info: dict[str, Any]) -> str:
    """``valkey 8.0.1`` or ``redis 7.2.4``, from ``INFO server``."""
    for product in ("valkey", "redis", "fakeredis"):
        version = info.get(f"{product}_version")
        if version is not None:
            return f"{product} {version}"
    return "unknown server"


def _memory_info() -> dict[str, Any]:
    """memory:// is fakeredis, which has no INFO: its own version stands in."""
    return {"fakeredis_version": metadata.version("fakeredis")}


def _run(args: argparse.Namespace, make_bus: Callable[..., Bus]) -> int:
    named = make_bus(args.url, args.namespace)
    named.close()
    timeout = args.timeout
    bus = Bus(named.config.url, connect_timeout=timeout, socket_timeout=timeout)
    try:
        client = bus.client
        client.ping()
        info: dict[str, Any] = (
            _memory_info() if bus.transport.is_memory else client.info("server")
        )
    except _ERRORS as exc:
        raise unavailable(bus.config.url, exc) from exc
    finally:
        bus.close()
    print(f"PONG from {server_version(info)} at {redact(bus.config.url)}")
    return 0


def add_commands(commands: Any, make_bus: Callable[..., Bus]) -> None:
    """Add ``busignal ping`` to the CLI."""
    ping = commands.add_parser(
        "ping",
        help="check that Redis answers (exit 0) or not (exit 1)",
        description="Check that Redis answers: exit 0 printing its version, "
        "1 when it cannot be reached or refuses the login. Usable as a "
        "container health check.",
    )
    ping.add_argument("--url", help="Redis URL (env BUSIGNAL_URL)")
    ping.add_argument(
        "--namespace", help="key namespace (env BUSIGNAL_NAMESPACE; default: busignal)"
    )
    ping.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how long to wait for an answer",
    )
    ping.set_defaults(run=lambda args: _run(args, make_bus))
