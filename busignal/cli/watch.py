"""``--watch``: show something again every few seconds until Ctrl-C.

On a terminal the screen is cleared before each showing, so the newest
stays in place, like ``watch(1)``. Into a pipe or a file nothing is
cleared: each showing follows the last (with ``--json``, one object a
line), so a script can read them as they come. A Redis that stops
answering is said on stderr and asked again at the next tick; Ctrl-C
exits 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

from busignal.errors import BusUnavailable

__all__ = ["MIN_SECONDS", "watch", "watch_seconds"]

#: Faster than this would be load on Redis for nothing a person can read.
MIN_SECONDS = 0.1
_CLEAR = "\x1b[H\x1b[2J"


def watch(
    show: Callable[[], None],
    seconds: float,
    *,
    title: str = "",
    out: TextIO | None = None,
) -> int:
    """Call ``show()`` every ``seconds`` until interrupted; the exit code (0)."""
    out = out or sys.stdout
    terminal = _is_terminal(out)
    first = True
    try:
        while True:
            if terminal:
                out.write(_CLEAR)
            elif title and not first:
                out.write("\n")  # into a pipe: a blank line between showings
            first = False
            if title:
                stamp = datetime.now().strftime("%H:%M:%S")
                out.write(f"{title}, every {seconds:g}s (Ctrl-C to stop) {stamp}\n")
                out.flush()
            try:
                show()
            except BusUnavailable as exc:
                print(f"busignal: {exc}; trying again in {seconds:g}s", file=sys.stderr)
            time.sleep(seconds)
    except KeyboardInterrupt:
        return 0


def watch_seconds(text: str) -> float:
    """An argparse type: the seconds between two showings, at least MIN_SECONDS."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds"
        ) from None
    if not seconds >= MIN_SECONDS:  # NaN too
        raise argparse.ArgumentTypeError(
            f"{text} seconds is too short; watch every {MIN_SECONDS} s or more"
        )
    return seconds


def _is_terminal(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False
