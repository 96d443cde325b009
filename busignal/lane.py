"""The worker's fast lane: read, run and settle quick sync batches in one thread.

A round trip through the event loop costs a worker more than a trivial
receiver does: an asyncio read, a hand-off to a receiver thread, an asyncio
reply pipeline. The lane is one thread with a sync client that does all of
it in place while receivers are quick (under ``QUICK_SECONDS`` a job) and
sync. Anything else (async receivers, slow ones) is handed to the loop's
path and awaited. Heartbeats, leases, reclaiming and broadcasts stay on the
loop, so a receiver that blocks the lane never stops them.

Used on a single Redis outside burst mode; a cluster worker reads slot
groups on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import redis

from busignal import reading
from busignal.delivery import Job, run_chunk
from busignal.settle import Batch, settle
from busignal.transport import CONNECTION_ERRORS

if TYPE_CHECKING:
    from busignal.reading import Entry
    from busignal.worker import Worker

__all__ = ["Lane"]

logger = logging.getLogger("busignal.worker")


class Lane:
    """One reader thread of a worker; ``start()``, then ``join()`` once stopping."""

    def __init__(self, worker: Worker, loop: asyncio.AbstractEventLoop) -> None:
        self.worker = worker
        self.loop = loop
        self.failure: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="busignal-lane", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    async def join(self) -> None:
        """Wait (without blocking the loop) for the lane to finish its batch."""
        await asyncio.to_thread(self._thread.join)

    def _call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def _run(self) -> None:
        worker = self.worker
        block = worker.config.block_ms
        client: Any = worker.bus.transport.sync_client(
            socket_timeout=block / 1000 + worker.bus.config.socket_timeout
        )
        failures = 0
        try:
            while not worker.stopping:
                try:
                    response = client.xreadgroup(
                        worker.config.service,
                        worker.consumer,
                        dict.fromkeys(worker.routes.streams(worker.keys), ">"),
                        count=worker.config.batch,
                        block=block,
                    )
                    failures = 0
                except CONNECTION_ERRORS as exc:
                    failures += 1
                    _pause(exc, failures)
                    continue
                except redis.ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    logger.warning("consumer group vanished (%s); recreating it", exc)
                    self._call(worker._join_groups(start="0"))
                    continue
                if entries := reading.entries(response):
                    self._handle(client, entries)
        except BaseException as exc:
            logger.exception("the worker's reader failed; stopping the worker")
            self.failure = exc
            self.loop.call_soon_threadsafe(worker.stop)
        finally:
            client.close()

    def _handle(self, client: Any, entries: list[Entry]) -> None:
        worker = self.worker
        jobs, pipe = worker._prepare(entries)
        if not worker._runner.quick or any(job.has_async for job in jobs):
            self._call(worker._complete(jobs, pipe))
            return
        liveness = worker._liveness
        assert liveness is not None
        started = time.time()
        for job in jobs:
            liveness.in_flight[(job.stream, job.entry_id)] = started
        try:
            run_chunk(jobs)
            worker._runner.note(jobs)
            worker._observe_handled(jobs, time.time() - started)
            for job in jobs:
                settle(worker, liveness, pipe, job)
            self._execute(client, pipe, jobs)
        finally:
            for job in jobs:
                liveness.in_flight.pop((job.stream, job.entry_id), None)
        worker.handled += len(jobs)

    def _execute(self, client: Any, pipe: Batch, jobs: list[Job]) -> None:
        """Send the batch's replies and acks; retry while Redis is away."""
        failures = 0
        while pipe:
            try:
                pipe.execute_sync(client)
                return
            except CONNECTION_ERRORS as exc:
                failures += 1
                if self.worker.stopping and failures > 5:
                    logger.warning(
                        "giving up acking %d entries at shutdown; they stay "
                        "pending for another worker",
                        len(jobs),
                    )
                    raise
                _pause(exc, failures)


def _pause(exc: BaseException, failures: int) -> None:
    delay = min(5.0, 0.1 * 2 ** (failures - 1)) * random.uniform(0.5, 1.5)
    logger.warning("Redis unavailable (%s); retrying in %.1fs", exc, delay)
    time.sleep(delay)
