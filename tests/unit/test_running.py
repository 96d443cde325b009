"""Async receivers in a worker: run without a task of their own until they wait."""

from __future__ import annotations

import asyncio
import sys
from contextvars import ContextVar

import pytest

from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.testing import running_worker
from busignal.worker.running import gather_eagerly, start_eagerly

from .bus_helpers import WAIT_SECONDS, Recorder, delivery

marker: ContextVar[str] = ContextVar("marker", default="outside")


@pytest.mark.skipif(
    sys.version_info < (3, 12), reason="eager tasks are 3.12+; 3.11 schedules a task"
)
def test_start_eagerly_runs_a_coroutine_that_never_waits_to_its_end() -> None:
    ran: list[int] = []

    async def quick() -> None:
        ran.append(1)

    async def main() -> asyncio.Task[None] | None:
        return start_eagerly(quick(), asyncio.get_running_loop())

    assert asyncio.run(main()) is None
    assert ran == [1]


def test_start_eagerly_carries_on_a_coroutine_that_waits_in_its_own_context() -> None:
    seen: list[str] = []

    async def waits(gate: asyncio.Event) -> None:
        marker.set("mine")
        await gate.wait()
        seen.append(marker.get())

    async def main() -> str:
        gate = asyncio.Event()
        task = start_eagerly(waits(gate), asyncio.get_running_loop())
        assert task is not None
        assert not task.done()
        gate.set()
        await task
        return marker.get()

    assert asyncio.run(main()) == "outside"  # the caller's context is untouched
    assert seen == ["mine"]


def test_start_eagerly_timeout_in_the_first_step_spares_the_other_jobs() -> None:
    # asyncio.timeout cancels the current task when it expires: that must
    # be the job's own task, not the one awaiting the whole batch (which
    # would cancel every job of the batch).
    async def times_out() -> None:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(10)

    async def finishes() -> None:
        await asyncio.sleep(0.05)

    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        tasks = [start_eagerly(times_out(), loop), start_eagerly(finishes(), loop)]
        return await asyncio.gather(*tasks, return_exceptions=True)  # type: ignore[arg-type]  # both wait, so both are tasks

    timed_out, finished = asyncio.run(main())
    assert isinstance(timed_out, TimeoutError)
    assert finished is None


def test_start_eagerly_task_raises_what_the_coroutine_raises_after_a_wait() -> None:
    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("after the wait")

    async def main() -> None:
        task = start_eagerly(fails(), asyncio.get_running_loop())
        assert task is not None
        await task

    with pytest.raises(ValueError, match="after the wait"):
        asyncio.run(main())


def test_start_eagerly_task_cancelled_cancels_the_coroutine() -> None:
    cleaned: list[str] = []

    async def sleeps() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cleaned.append("finally ran")

    async def main() -> None:
        task = start_eagerly(sleeps(), asyncio.get_running_loop())
        assert task is not None
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert cleaned == ["finally ran"]


def test_gather_eagerly_runs_coroutines_that_never_wait_without_tasks() -> None:
    seen: list[tuple[int, int, str]] = []

    async def quick(n: int) -> None:
        seen.append((n, len(asyncio.all_tasks()), marker.get()))
        marker.set(f"set by {n}")

    async def main() -> str:
        await gather_eagerly([quick(1), quick(2), quick(3)])
        return marker.get()

    assert asyncio.run(main()) == "outside"  # each ran in a context of its own
    assert seen == [(1, 1, "outside"), (2, 1, "outside"), (3, 1, "outside")]


def test_gather_eagerly_later_coroutines_run_while_one_waits() -> None:
    order: list[str] = []

    async def waits(gate: asyncio.Event) -> None:
        marker.set("first")
        await gate.wait()
        order.append(f"first, after the wait, in {marker.get()}")

    async def opens(gate: asyncio.Event) -> None:
        await asyncio.sleep(0)
        order.append("second opens the gate")
        gate.set()

    async def main() -> None:
        gate = asyncio.Event()
        await asyncio.wait_for(gather_eagerly([waits(gate), opens(gate)]), 5)

    asyncio.run(main())
    assert order == ["second opens the gate", "first, after the wait, in first"]


def test_gather_eagerly_timeout_cancels_only_the_coroutine_that_entered_it() -> None:
    # The first coroutine that waits carries on in the caller's task; its
    # asyncio.timeout must cancel it alone, and leave the caller's task
    # uncancelled.
    finished: list[str] = []

    async def times_out() -> None:
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(10)
        except TimeoutError:
            finished.append("timed out")

    async def finishes() -> None:
        await asyncio.sleep(0.05)
        finished.append("finished")

    async def main() -> int:
        await gather_eagerly([times_out(), finishes(), times_out()])
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    assert asyncio.run(main()) == 0
    assert sorted(finished) == ["finished", "timed out", "timed out"]


def test_gather_eagerly_raises_the_first_error_once_every_coroutine_ran() -> None:
    ran: list[str] = []

    async def fails_at_once() -> None:
        raise KeyError("first step")

    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise ValueError("after a wait")

    async def runs(name: str) -> None:
        await asyncio.sleep(0.01)
        ran.append(name)

    async def main() -> None:
        await gather_eagerly([fails_at_once(), fails_later(), runs("a"), runs("b")])

    with pytest.raises(KeyError, match="first step"):
        asyncio.run(main())
    assert sorted(ran) == ["a", "b"]


def test_gather_eagerly_cancelled_cancels_every_coroutine_still_running() -> None:
    cleaned: list[int] = []

    async def sleeps(n: int) -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cleaned.append(n)

    async def main() -> None:
        batch = asyncio.ensure_future(gather_eagerly([sleeps(1), sleeps(2)]))
        await asyncio.sleep(0.01)
        batch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch
        await asyncio.sleep(0)  # the other task sees its cancellation

    asyncio.run(main())
    assert sorted(cleaned) == [1, 2]


def test_async_receivers_that_wait_run_concurrently_with_their_own_delivery(
    bus: Bus, name: str
) -> None:
    # Two events of one batch: each receiver waits until both have started,
    # which only ends if they run at the same time; each still sees its own
    # delivery after the wait.
    sig = Signal(name)
    started: list[str] = []
    done: Recorder[tuple[int, bool]] = Recorder()
    both = asyncio.Event()

    async def handler(n: int, **kwargs: object) -> None:
        before = delivery().message_id
        started.append(before)
        if len(started) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), WAIT_SECONDS)
        done.add((n, before == delivery().message_id))

    sig.connect(handler)
    with running_worker(bus, "svc", signals=[name]):
        sig.publish_many(None, [{"n": 1}, {"n": 2}])
        finished = done.wait_for(2)

    assert sorted(finished) == [(1, True), (2, True)]
