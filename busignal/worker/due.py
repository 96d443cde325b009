"""Handing over delayed events: due scheduled entries go to their stream.

Every worker, whatever its service, moves the due entries of the signals
it serves (``MOVE_DUE``, one script per partition, all of a pass in one
pipeline) every ``PERIOD`` seconds; so a due event reaches its stream
within about ``PERIOD`` of its time plus one round trip, and then every
service as any published event does. The script runs in the stream's
slot and removes what it adds, so any number of workers may move at once
and each entry is still added once. A worker that is down moves nothing,
and the entries wait in Redis (with AOF, across a restart) until one runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from busignal.wire.schedule import MOVE_DUE
from busignal.worker import backoff
from busignal.worker.context import WorkerContext

__all__ = ["PERIOD", "DueMover"]

#: Seconds between two looks for due entries.
PERIOD = 0.2
#: The most entries one script moves (the rest go on the next pass, at once).
BATCH = 500

logger = logging.getLogger(__name__)


class DueMover:
    """Moves one worker's signals' due scheduled entries to their streams."""

    def __init__(self, context: WorkerContext, client: Any) -> None:
        self.context = context
        self.client = client
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def _streams(self) -> list[str]:
        routes, keys = self.context.routes, self.context.keys
        return list(
            dict.fromkeys(routes.streams(keys) + routes.broadcast_streams(keys))
        )

    async def move(self) -> int:
        """Move every due entry now; return how many were moved."""
        streams = self._streams()
        moved = 0
        while streams:
            pipe = self.client.pipeline(transaction=False)
            now = int(time.time() * 1000)
            for stream in streams:
                zset, data = self.context.keys.scheduled_of(stream)
                # execute_command: a cluster pipeline routes EVAL by its keys.
                pipe.execute_command(
                    "EVAL", MOVE_DUE, 3, zset, data, stream, now, BATCH
                )
            counts = [int(n) for n in await pipe.execute()]
            moved += sum(counts)
            # A stream that filled a whole batch may have more due at once.
            streams = [s for s, n in zip(streams, counts, strict=True) if n >= BATCH]
        if moved:
            logger.debug("moved %d due scheduled entries", moved)
        return moved

    async def _move_forever(self) -> None:
        while not self._stopping:  # also if redis-py swallows a cancellation
            try:
                await self.move()
            except Exception as exc:
                # Keep going: a bad reply must not stop delayed events for good.
                backoff.report("moving due scheduled entries", exc)
            await asyncio.sleep(PERIOD)

    async def start(self, *, burst: bool = False) -> None:
        """Move due entries now; unless ``burst``, keep moving them."""
        if burst:
            await self.move()
        else:
            self._task = asyncio.create_task(self._move_forever())

    async def stop(self) -> None:
        """Stop moving (a move in progress is one script: done or not run)."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
            if task.done() and not task.cancelled():
                with contextlib.suppress(Exception):
                    task.result()
