"""``busignal dashboard``: serve the dashboard page (``busignal.dashboard``).

It binds 127.0.0.1 unless ``--host`` says otherwise: the page shows
signal names, worker hosts and dead letters' reasons, which an operator
may not want on every interface. It is read-only unless started with
``--allow-actions``; then replaying and purging dead letters needs a token,
``BUSIGNAL_DASHBOARD_TOKEN`` or one made at start and printed.

Redis need not answer at start: the page says it is unreachable and keeps
retrying, and ``/healthz`` answers 503 until it does.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import secrets
import socket
import sys
from collections.abc import Callable
from typing import Any

from busignal.bus.bus import Bus
from busignal.errors import UsageError
from busignal.transport.clients import redact

__all__ = ["add_commands", "port"]

TOKEN_ENV = "BUSIGNAL_DASHBOARD_TOKEN"


def port(text: str) -> int:
    """``--port``: a TCP port, 1-65535 (argparse turns the error into exit 2)."""
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 < number < 65536:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a TCP port: give a number from 1 to 65535"
        )
    return number


def positive(text: str) -> float:
    """``--refresh``: seconds, more than 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds > 0")
    return value


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _link(host: str, number: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{number}/"


def _run(args: argparse.Namespace, make_bus: Callable[..., Bus]) -> int:
    try:
        import uvicorn

        from busignal.dashboard.app import create_app
    except ImportError as exc:
        raise UsageError(
            f"the dashboard needs the 'dashboard' extra ({exc.name} is missing): "
            "pip install 'busignal[dashboard]'"
        ) from exc
    bus = make_bus(args.url, args.namespace)
    try:
        listening = _listen(args.host, args.port)
    except OSError as exc:
        bus.close()
        print(
            f"busignal: cannot listen on {args.host}:{args.port}: "
            f"{exc.strerror or exc}; pick another --port or --host",
            file=sys.stderr,
        )
        return 1
    token = None
    if args.allow_actions:
        token = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
    app = create_app(
        bus, allow_actions=args.allow_actions, token=token, refresh=args.refresh
    )
    link = _link(args.host, args.port)
    print(
        f"busignal dashboard on {link} (namespace {bus.config.namespace!r} "
        f"on {redact(bus.config.url)}); Ctrl-C stops it",
        flush=True,
    )
    if not _loopback(args.host):
        print(
            f"busignal dashboard: listening on {args.host}, not only this machine: "
            "anyone who can reach it sees the namespace",
            file=sys.stderr,
            flush=True,
        )
    if token is not None:
        given = "from " + TOKEN_ENV if os.environ.get(TOKEN_ENV) else token
        print(
            f"actions allowed: replay and purge need the token ({given}); "
            f"open {link}#token={token if given == token else 'TOKEN'}",
            flush=True,
        )
    level = logging.getLogger("busignal").getEffectiveLevel()
    config = uvicorn.Config(
        app,
        access_log=False,
        log_level=logging.getLevelName(max(level, logging.WARNING)).lower(),
    )
    try:
        uvicorn.Server(config).run(sockets=[listening])
    finally:
        listening.close()
        bus.close()
    return 0


def _listen(host: str, number: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is a clear error."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, number, type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def add_commands(commands: Any, make_bus: Callable[..., Bus]) -> None:
    """Add ``busignal dashboard`` to the CLI."""
    parser = commands.add_parser(
        "dashboard",
        help="a web page of signals, services, workers and dead letters",
        description="Serve a self-refreshing web page of the namespace: per "
        "signal its services (lag, pending, events/s), dead letters and "
        "workers; JSON at /api/overview, health at /healthz. Needs the "
        "'dashboard' extra.",
    )
    parser.add_argument("--url", help="Redis URL (default: BUSIGNAL_URL)")
    parser.add_argument("--namespace", help="key namespace (default: busignal)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s, this machine only)",
    )
    parser.add_argument(
        "--port", type=port, default=8000, help="TCP port (default: %(default)s)"
    )
    parser.add_argument(
        "--refresh",
        type=positive,
        default=2.0,
        metavar="SECONDS",
        help="how often the page refreshes (default: %(default)s)",
    )
    parser.add_argument(
        "--allow-actions",
        action="store_true",
        help=f"show replay and purge buttons; they need a token ({TOKEN_ENV}, "
        "else one printed at start)",
    )
    parser.set_defaults(run=lambda args: _run(args, make_bus))
