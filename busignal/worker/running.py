"""Running a batch's receivers: sync ones in a thread pool, async ones on the loop.

A ``Runner`` owns a worker's receiver threads and the one heuristic that
decides how a batch's sync receivers are spread over them. Kept apart from
``busignal.worker.worker``, which decides what to run, not how.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Generator
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
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


def start_eagerly(
    coroutine: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop
) -> asyncio.Task[None] | None:
    """Run a coroutine up to its first real wait; a task only if it waits.

    A task per job was most of an async drain's cost, and a receiver that
    never waits (``return x + 1``) needs none: it is run to its end here,
    and None returned. One that waits is carried on by a task, which
    resumes it where it stopped, in the same context (what
    ``asyncio.eager_task_factory`` does on 3.12+; this serves 3.11 too).
    Its first step runs in a copy of the current context, as a task's
    would, so context variables it sets stay its own.
    """
    context = copy_context()
    try:
        waiting = context.run(coroutine.send, None)
    except StopIteration:
        return None
    return loop.create_task(_Resumed(coroutine, waiting).run(), context=context)


class _Resumed:
    """A started coroutine, carried on by the task that awaits ``run()``."""

    __slots__ = ("coroutine", "waiting")

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting: Any) -> None:
        self.coroutine = coroutine
        self.waiting = waiting

    async def run(self) -> None:
        await self

    def __await__(self) -> Generator[Any, Any, None]:
        # What ``await coroutine`` would do after its first step: hand what
        # it waits on to the task, and what the task sends back to it.
        coroutine, waiting = self.coroutine, self.waiting
        while True:
            try:
                sent = yield waiting
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # a cancellation, thrown in
                try:
                    waiting = coroutine.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    waiting = coroutine.send(sent)
                except StopIteration:
                    return
