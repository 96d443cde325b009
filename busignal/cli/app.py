"""The ``busignal`` command: ``worker``, ``dead`` and the other subcommands.

Exit codes: 0 success; 1 runtime failure (Redis unreachable, forced stop);
2 bad usage (a module that does not import, no receivers, bad options, an
environment default a flag cannot take); 141 stdout closed early (``|
head``), quietly, as a tool killed by SIGPIPE.

Every subcommand takes ``--log-level`` and ``--log-format`` (also before
the subcommand's name), and its help shows each flag's default and the
environment variable behind it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import redis

import busignal
from busignal.bus.bus import Bus
from busignal.cli.flags import (
    LOG_FORMATS,
    LOG_LEVELS,
    HelpFormatter,
    env_default,
    first_bad_env,
    walk,
)
from busignal.cli.logs import configure_logging
from busignal.cli.worker import resolve_bus
from busignal.errors import BusignalError, BusUnavailable, UsageError

__all__ = ["main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
#: stdout's reader left (``busignal inspect | head -1``): 128 + SIGPIPE, what
#: a shell reports for a tool that SIGPIPE killed.
EXIT_PIPE = 141


def refused_command(exc: BaseException) -> bool:
    """True if Redis refused a command (or a script's) to the user: its ACL."""
    text = str(exc)
    return isinstance(exc, redis.exceptions.NoPermissionError) or (
        "can't run this command" in text or "no permissions" in text
    )


def _bus(url: str | None, namespace: str | None) -> Bus:
    return resolve_bus(url, namespace, None).bus()


def _choice(names: Sequence[str], what: str) -> Callable[[str], str]:
    """An argparse type accepting ``names`` in any case, naming them if not."""

    def parse(text: str) -> str:
        for name in names:
            if text.lower() == name.lower():
                return name
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a {what}; choose one of {', '.join(names)}"
        )

    parse.__name__ = what
    return parse


def _log_flags(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--log-level`` and ``--log-format``; a subcommand's never hide the top's.

    The top-level parser holds the defaults (and reads the environment);
    a subcommand's flags default to nothing, so ``busignal --log-level
    DEBUG worker ...`` and ``busignal worker --log-level DEBUG ...`` agree.
    """
    level, fmt = _choice(LOG_LEVELS, "log level"), _choice(LOG_FORMATS, "log format")
    helps = {
        "--log-level": f"log this and worse: {', '.join(LOG_LEVELS)}",
        "--log-format": "text, or json: one JSON object per line, for log shippers",
    }
    if top:
        env_default(
            parser,
            "--log-level",
            "BUSIGNAL_LOG_LEVEL",
            type=level,
            default="INFO",
            metavar="LEVEL",
            expected=f"a log level ({', '.join(LOG_LEVELS)})",
            help=helps["--log-level"],
        )
        env_default(
            parser,
            "--log-format",
            "BUSIGNAL_LOG_FORMAT",
            type=fmt,
            default="text",
            metavar="FORMAT",
            expected="text or json",
            help=helps["--log-format"],
        )
        return
    for flag, variable, default, metavar, kind in (
        ("--log-level", "BUSIGNAL_LOG_LEVEL", "INFO", "LEVEL", level),
        ("--log-format", "BUSIGNAL_LOG_FORMAT", "text", "FORMAT", fmt),
    ):
        parser.add_argument(
            flag,
            type=kind,
            default=argparse.SUPPRESS,
            metavar=metavar,
            help=f"{helps[flag]} (env {variable}; default: {default})",
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="busignal", description="Distributed Django signals over Redis streams."
    )
    parser.add_argument(
        "--version", action="version", version=f"busignal {busignal.__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    from busignal.cli import (
        acl,
        dashboard,
        dead,
        demo,
        ping,
        report,
        scheduled,
        services,
        worker,
    )

    worker.add_commands(commands)
    dead.add_commands(commands, _bus)
    report.add_commands(commands, _bus)
    services.add_commands(commands, _bus)
    acl.add_commands(commands)
    scheduled.add_commands(commands, _bus)
    demo.add_commands(commands, _bus)
    dashboard.add_commands(commands, _bus)
    ping.add_commands(commands, _bus)
    for each in walk(parser):
        each.formatter_class = HelpFormatter
        _log_flags(each, top=each is parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code.

    A reader of stdout that leaves early (``| head -1``) ends the command
    quietly with EXIT_PIPE, as Python's documentation advises ("Note on
    SIGPIPE"): stdout is flushed here, inside the ``try``, and then pointed
    at devnull so that the flush at exit cannot fail again.
    """
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE


def _run(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    bad = first_bad_env(args)
    if bad is not None:
        parser.error(bad.message())
    args.argv = argv  # what --reload runs again
    configure_logging(args.log_level, args.log_format)
    try:
        code: int = args.run(args)
    except UsageError as exc:
        print(f"busignal: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BusUnavailable as exc:
        print(f"busignal: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except redis.ResponseError as exc:
        if not refused_command(exc):
            raise
        print(
            f"busignal: Redis refused a command to this user ({exc}); give the "
            f"user in the URL the rules of its role: busignal acl "
            f"sender|worker|admin",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    except BusignalError as exc:
        print(f"busignal: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code
