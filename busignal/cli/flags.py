"""What every subcommand shares: help that shows defaults, environment
defaults, logging flags, and checked addresses.

argparse would convert a bad environment value only when the flag is
left out, and then blame the flag; here a variable's value is converted
when the parser is built and a bad one is kept aside, reported (exit 2,
naming the variable) only if the subcommand that reads it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "BadEnv",
    "HelpFormatter",
    "address",
    "env_default",
    "first_bad_env",
    "host_port",
    "port",
    "run_with_bus",
    "walk",
]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to a flag's help when it has a default worth saying.

    None and False (a flag that is off) go unsaid; help that already
    speaks of its default is left alone.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, argparse.SUPPRESS)
            or isinstance(default, BadEnv)
            or not action.option_strings
        ):
            return text
        shown = getattr(action, "builtin_default", default)
        return f"{text} (default: {shown})"


@dataclass(frozen=True, slots=True)
class BadEnv:
    """An environment variable whose value its flag cannot take."""

    variable: str
    value: str
    flag: str
    expected: str

    def message(self) -> str:
        return (
            f"environment variable {self.variable}={self.value!r} is not "
            f"{self.expected} (it sets the default of {self.flag}); fix or unset it"
        )


def env_default(
    parser: argparse.ArgumentParser,
    flag: str,
    variable: str,
    *,
    help: str,
    type: Callable[[str], Any] = str,
    default: Any = None,
    expected: str = "a value",
    required: bool = False,
    environ: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> argparse.Action:
    """Add ``flag``, whose default comes from ``variable`` when it is set.

    The help names the variable and the built-in default; a value the
    type rejects becomes a ``BadEnv`` default, reported by
    ``first_bad_env`` if this subcommand runs and the flag is left out.
    ``required``: the flag must be given when the variable is not set.
    """
    raw = (os.environ if environ is None else environ).get(variable)
    value: Any = default
    if raw is not None and raw != "":
        try:
            value = type(raw)
        except (ValueError, argparse.ArgumentTypeError):
            value = BadEnv(variable, raw, flag, expected)
    shown = "" if default is None else f"; default: {default}"
    action = parser.add_argument(
        flag,
        type=type,
        default=value,
        required=required and raw in (None, ""),
        help=f"{help} (env {variable}{shown})",
        **kwargs,
    )
    action.builtin_default = default  # type: ignore[attr-defined] # for the help
    return action


def first_bad_env(args: argparse.Namespace) -> BadEnv | None:
    """The first environment default the chosen subcommand could not take."""
    return next(
        (value for value in vars(args).values() if isinstance(value, BadEnv)), None
    )


def walk(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every subcommand parser under it, depth first."""
    yield parser
    for action in parser._actions:  # argparse has no public way to list them
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from walk(sub)


def port(text: str) -> int:
    """A TCP port, 1-65535 (0 would bind a random one nobody can scrape)."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port number (1-65535)"
        ) from None
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port {number} is not in 1-65535")
    return number


def host_port(text: str, default_host: str) -> tuple[str, int]:
    """``[HOST:]PORT`` (``[::1]:9100`` for IPv6) as ``(host, port)``."""
    host, sep, number = text.rpartition(":")
    if not sep:
        host, number = default_host, text
    host = host.removeprefix("[").removesuffix("]")
    if not host or any(c.isspace() or c in "/[]" for c in host):
        raise argparse.ArgumentTypeError(f"{text!r}: bad host; use HOST:PORT")
    return host, port(number)


def address(default_host: str) -> Callable[[str], tuple[str, int]]:
    """An argparse type for ``[HOST:]PORT`` whose host defaults to ``default_host``."""

    def parse(text: str) -> tuple[str, int]:
        return host_port(text, default_host)

    parse.__name__ = "address"  # argparse names the type in its messages
    return parse


def run_with_bus(
    args: argparse.Namespace,
    make_bus: Callable[..., Any],
    action: Callable[[argparse.Namespace, Any], int],
    refusals: Mapping[type[Exception], tuple[int, str]],
) -> int:
    """Run ``action`` on the bus the flags name, and close it after.

    An exception listed in ``refusals`` is the operator's mistake, not a
    crash: its message (plus what was left undone) goes to stderr, and
    the command exits with its code.
    """
    bus = make_bus(args.url, args.namespace)
    try:
        return action(args, bus)
    except tuple(refusals) as exc:
        code, undone = next(v for k, v in refusals.items() if isinstance(exc, k))
        print(f"busignal: {exc}{undone}", file=sys.stderr)
        return code
    finally:
        bus.close()
