"""Waiting out a Redis that is away: exponential, jittered backoff.

The one schedule every part of a worker uses after a connection failure:
0.1 s doubled per consecutive failure up to 5 s, each wait jittered by
±50% so that the workers of a fleet do not come back in step.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from busignal.transport.clients import CONNECTION_ERRORS, refused_login
from busignal.worker.joining import group_gone

__all__ = ["delay", "pause", "pause_sync", "report", "until_through"]

logger = logging.getLogger(__name__)

#: The first wait, and the longest.
FIRST_DELAY = 0.1
MAX_DELAY = 5.0


def delay(failures: int) -> float:
    """The wait (before jitter) after ``failures`` consecutive failures."""
    return min(MAX_DELAY, FIRST_DELAY * 2.0 ** (failures - 1))


def _jittered(exc: BaseException, failures: int) -> float:
    wait = delay(failures) * random.uniform(0.5, 1.5)
    logger.warning("Redis unavailable (%s); retrying in %.1fs", exc, wait)
    return wait


async def pause(exc: BaseException, failures: int) -> None:
    """Wait (on the loop) before retrying after the ``failures``-th failure."""
    await asyncio.sleep(_jittered(exc, failures))


def pause_sync(exc: BaseException, failures: int) -> None:
    """Wait (blocking a thread) before retrying after the ``failures``-th failure."""
    time.sleep(_jittered(exc, failures))


async def until_through(
    action: Callable[[], Awaitable[object]], *, stopping: Callable[[], bool]
) -> None:
    """Run ``action`` until it gets through Redis, backing off in between.

    A refused login is raised at once: retrying a wrong password only
    fills the log, and the CLI turns it into one line saying what to fix.
    Once stopping, it gives up when the wait has grown past 2 s.
    """
    failures = 0
    while True:
        try:
            await action()
            return
        except CONNECTION_ERRORS as exc:
            if refused_login(exc):
                raise
            failures += 1
            if stopping() and delay(failures) > 2:
                raise
            await pause(exc, failures)


def report(what: str, exc: Exception) -> None:
    """Log a failed pass of a task that keeps going (heartbeat, trimming...).

    Redis away, or a stream or group gone (the reader recreates it: a
    restart of Redis without its data), is one warning line; anything else
    is logged with its traceback.
    """
    if isinstance(exc, CONNECTION_ERRORS) or group_gone(exc):
        logger.warning("%s failed: %s", what, exc)
    else:
        logger.exception("%s failed", what)
