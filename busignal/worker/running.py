"""Running a batch's receivers: sync ones in a thread pool, async ones on the loop.

A ``Runner`` owns a worker's receiver threads and the one heuristic that
decides how a batch's sync receivers are spread over them. Kept apart from
``busignal.worker.worker``, which decides what to run, not how.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Awaitable, Coroutine, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import Context, copy_context
from typing import Any

from busignal.worker.delivery import Job, run_async_job, run_chunk

__all__ = ["QUICK_SECONDS", "Runner", "gather_eagerly", "start_eagerly"]

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
        mixed = [
            run_async_job(job) if _all_async(job) else self._run_mixed(job)
            for job in jobs
            if job.has_async
        ]
        try:
            if mixed:
                await gather_eagerly(mixed)
        finally:
            await asyncio.gather(*waits)
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
        """A job with sync and async receivers: the sync ones first, in the pool."""
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, job.run_sync)
        await job.run_async()


def _all_async(job: Job) -> bool:
    """Whether every receiver of a job with an async one is async."""
    regs = job.registrations
    return len(regs) == 1 or all(reg.is_async for _, reg in regs)


async def gather_eagerly(coroutines: Sequence[Coroutine[Any, Any, None]]) -> None:
    """Run coroutines as concurrently as ``gather`` would, without a task each.

    A task per job was most of an async drain's cost, and a receiver that
    never waits (``return x + 1``) needs none: each coroutine's first step
    runs here, in a context of its own (a copy of the caller's, as a task
    would get). The first one that waits carries on in the calling task,
    the one that was current when it started (so an ``asyncio.timeout``
    it entered there cancels only it), and the coroutines after it start
    in tasks of their own (eagerly where Python has eager tasks), so that
    they run while it waits. Every one is run to its end; the first
    exception is raised once they have, and a cancelled caller cancels
    those still running.
    """
    error: BaseException | None = None
    for index, coroutine in enumerate(coroutines):
        context = copy_context()
        try:
            waiting_for = context.run(coroutine.send, None)
        except StopIteration:
            continue
        except BaseException as exc:
            error = error or exc
            continue
        tasks, failed = _start_all(coroutines[index + 1 :])
        error = error or failed
        try:
            await _carry_on(coroutine, waiting_for, context)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            raise
        except BaseException as exc:
            error = error or exc
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, BaseException):
                error = error or outcome
        break
    if error is not None:
        raise error


def _start_all(
    coroutines: Sequence[Coroutine[Any, Any, None]],
) -> tuple[list[asyncio.Task[None]], BaseException | None]:
    """Start coroutines in tasks of their own: those still running, and the
    first exception of one that raised in its first step (eager tasks)."""
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    error: BaseException | None = None
    for coroutine in coroutines:
        try:
            task = start_eagerly(coroutine, loop)
        except BaseException as exc:
            error = error or exc
            continue
        if task is not None:
            tasks.append(task)
    return tasks, error


@types.coroutine
def _carry_on(
    coroutine: Coroutine[Any, Any, None], waiting_for: Any, context: Context
) -> Generator[Any, Any, None]:
    """Drive a coroutine that has waited once to its end, in its context.

    What a task would do: what it waits for goes up to the calling task,
    and what comes back (a value, or an exception such as a cancellation)
    goes down into it.
    """
    while True:
        try:
            sent = yield waiting_for
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as exc:
            try:
                waiting_for = context.run(coroutine.throw, exc)
            except StopIteration:
                return
        else:
            try:
                waiting_for = context.run(coroutine.send, sent)
            except StopIteration:
                return


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

        Its first step must run in the task it carries on in (a receiver's
        ``asyncio.timeout`` cancels the task that was current when it was
        entered), so on 3.11 the task is scheduled; ``gather_eagerly``
        spares most jobs this.
        """
        return loop.create_task(coroutine)
