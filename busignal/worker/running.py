"""Running a batch's receivers: sync ones in a thread pool, async ones on the loop.

A ``Runner`` owns a worker's receiver threads and the one heuristic that
decides how a batch's sync receivers are spread over them. Kept apart from
``busignal.worker.worker``, which decides what to run, not how.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from busignal.worker.delivery import Job, run_chunk

__all__ = ["QUICK_SECONDS", "Runner", "start_eagerly"]

#: Mean seconds per job below which a batch's sync receivers share one thread.
QUICK_SECONDS = 0.001


class Runner:
    """Runs batches of jobs; ``start()`` makes its thread pool, ``shutdown()``
    waits for it (both once per ``Worker.serve``)."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._executor: ThreadPoolExecutor | None = None
        self._quick = False

    def start(self) -> None:
        """Make the thread pool receivers run in (threads start on first use)."""
        self._executor = ThreadPoolExecutor(
            self.concurrency, thread_name_prefix="busignal-receiver"
        )

    def shutdown(self) -> None:
        """Wait for the receivers running in the pool, then close it."""
        assert self._executor is not None
        self._executor.shutdown(wait=True)

    async def run(self, jobs: list[Job]) -> None:
        """Run a batch: sync receivers in the pool, async ones on the loop.

        Quick receivers gain nothing from several threads but the hand-offs'
        cost, so while the last batch averaged under ``QUICK_SECONDS`` a job,
        its sync part runs in one thread hop; slow ones spread over the pool.
        Receivers never run on the loop's thread, which must keep heartbeats
        and leases going whatever a receiver does.
        """
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        sync_jobs = [j for j in jobs if not j.has_async]
        width = 1 if self._quick else min(self.concurrency, len(sync_jobs))
        width = max(width, 1)
        chunks = [sync_jobs[i::width] for i in range(width) if sync_jobs[i::width]]
        waits: list[Awaitable[None]] = [
            loop.run_in_executor(self._executor, run_chunk, c) for c in chunks
        ]
        error: BaseException | None = None
        for job in jobs:
            if job.has_async:
                try:
                    task = start_eagerly(self._run_mixed(job), loop)
                except BaseException as exc:  # as gather would raise it
                    error = error or exc
                    continue
                if task is not None:
                    waits.append(task)
        await asyncio.gather(*waits)
        if error is not None:
            raise error
        self.note(jobs)

    @property
    def quick(self) -> bool:
        """True while the last batch's receivers averaged under QUICK_SECONDS."""
        return self._quick

    def note(self, jobs: list[Job]) -> None:
        """Record how long a batch's receivers took (their own time, no hops)."""
        if jobs:
            seconds = sum(o.seconds for job in jobs for o in job.outcomes)
            self._quick = seconds / len(jobs) < QUICK_SECONDS

    def note_time(self, seconds: float, count: int) -> None:
        """Record a batch of ``count`` jobs that ran one after another in
        ``seconds`` (the lane's: no sum over every outcome needed)."""
        if count:
            self._quick = seconds / count < QUICK_SECONDS

    async def _run_mixed(self, job: Job) -> None:
        if not all(reg.is_async for _, reg in job.registrations):
            assert self._executor is not None
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, job.run_sync)
        await job.run_async()


if sys.version_info >= (3, 12):

    def start_eagerly(
        coroutine: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop
    ) -> asyncio.Task[None] | None:
        """Start a job's coroutine; None if it finished without waiting.

        A task per job was most of an async drain's cost, and a receiver
        that never waits (``return x + 1``) needs none scheduled: the task
        starts eagerly (``eager_start=True``), running the coroutine up to
        its first real wait at once, and one that finished there is never
        scheduled. It is still a task while it runs, so what a receiver
        does with ``asyncio.current_task()`` (``asyncio.timeout``,
        ``wait_for``) applies to its own job.
        """
        task = asyncio.Task(coroutine, loop=loop, eager_start=True)
        if task.done():
            task.result()  # raise what it raised, as awaiting it would
            return None
        return task

else:

    def start_eagerly(
        coroutine: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop
    ) -> asyncio.Task[None] | None:
        """Start a job's coroutine in a task of its own (3.11: no eager tasks).

        Running the first step outside a task of its own would let a
        receiver's ``asyncio.timeout`` cancel the whole batch's task, so
        3.11 keeps a scheduled task per job.
        """
        return loop.create_task(coroutine)
