"""The worker's fast lane: quick sync batches run in its reader thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import pytest
import redis

from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.testing import running_worker
from busignal.transport.raw import PipelinedConnection
from busignal.worker.context import HandledCount
from busignal.worker.liveness import Liveness
from busignal.worker.worker import Worker, WorkerConfig

from .bus_helpers import Recorder


def test_lane_runs_quick_sync_receivers_in_its_own_thread(bus: Bus, name: str) -> None:
    threads: Recorder[str] = Recorder()
    sig = Signal(name)
    sig.connect(
        lambda **kwargs: threads.add(threading.current_thread().name), weak=False
    )

    with running_worker(bus, "svc", signals=[name]):
        for n in range(5):
            sig.send(sender=None, n=n)

    # The first batch measures the receivers in the pool; then the lane runs them.
    assert threads.items[0].startswith("busignal-receiver")
    assert set(threads.items[1:]) == {"busignal-lane"}


def test_lane_hands_slow_receivers_back_to_the_pool(bus: Bus, name: str) -> None:
    threads: Recorder[str] = Recorder()
    sig = Signal(name)

    def slow(**kwargs: object) -> None:
        threads.add(threading.current_thread().name)
        time.sleep(0.01)

    sig.connect(slow, weak=False)

    with running_worker(bus, "svc", signals=[name]):
        for n in range(4):
            sig.send(sender=None, n=n)

    assert all(t.startswith("busignal-receiver") for t in threads.items)


def test_lane_failure_stops_the_worker_and_is_raised(
    bus: Bus, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sig = Signal(name)
    sig.connect(lambda **kwargs: None, weak=False)

    def broken(self: Worker, entries: object) -> object:
        raise RuntimeError("broken reader")

    monkeypatch.setattr(Worker, "prepare", broken)

    def serve_until_the_lane_fails() -> None:
        with running_worker(bus, "svc", signals=[name]) as worker:
            sig.publish(sender=None)
            deadline = time.monotonic() + 10
            while not worker.stopping and time.monotonic() < deadline:
                time.sleep(0.01)

    with pytest.raises(RuntimeError, match="broken reader"):
        serve_until_the_lane_fails()


def test_worker_takes_back_entries_a_lost_read_left_pending_for_it(
    bus: Bus, name: str
) -> None:
    seen: Recorder[int] = Recorder()
    sig = Signal(name)
    sig.connect(lambda n, **kwargs: seen.add(n), weak=False)
    stream = bus.keys.events(name)

    with running_worker(bus, "svc", signals=[name], heartbeat_interval=0.2) as worker:
        sig.publish(sender=None, n=1)
        assert seen.reaches(1, timeout=5)
        # An entry delivered, as far as Redis knows, to this worker, whose read
        # reply never arrived (a dropped connection): added and read in one
        # transaction, so the worker's own blocked read cannot get it first.
        fields = bus.client.xrange(stream, count=1)[0][1]  # type: ignore[index]
        pipe = bus.client.pipeline(transaction=True)
        pipe.xadd(stream, fields)  # type: ignore[arg-type]  # bytes fields are fine
        pipe.xreadgroup("svc", worker.consumer, {stream: ">"}, count=10)
        pipe.execute()

        assert seen.reaches(2, timeout=10)

    assert seen.items == [1, 1]


def test_lane_sends_a_batchs_acks_again_when_the_connection_drops(
    bus: Bus, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: Recorder[int] = Recorder()
    sig = Signal(name)
    sig.connect(lambda n, **kwargs: seen.add(n), weak=False)
    stream = bus.keys.events(name)
    drops: list[int] = []
    real_receive = PipelinedConnection.receive

    def drop_first_ack(self: PipelinedConnection) -> list[Any]:
        # The lane's acks travel with its next read; lose that trip's replies
        # once, as a dropped connection would.
        replies = real_receive(self)
        if len(replies) > 1 and not drops:
            drops.append(1)
            raise redis.ConnectionError("connection dropped")
        return replies

    monkeypatch.setattr(PipelinedConnection, "receive", drop_first_ack)
    with running_worker(bus, "svc", signals=[name]) as worker:
        for n in range(3):  # the first batch runs in the pool, then the lane
            sig.send(sender=None, n=n)
        sig.publish(sender=None, n=3)
        assert seen.reaches(4, timeout=5)
        # A batch stays in flight until the round trip carrying its acks comes
        # back, and that trip's read blocks for up to block_ms after Redis has
        # applied the acks: wait for both, not for the acks alone.
        assert worker._liveness is not None
        liveness = worker._liveness
        deadline = time.monotonic() + 5
        while (
            bus.client.xpending(stream, "svc")["pending"] or liveness.in_flight
        ) and time.monotonic() < deadline:
            time.sleep(0.02)
        in_flight = dict(liveness.in_flight)

    assert drops == [1]
    assert seen.items == [0, 1, 2, 3]  # nothing ran twice
    assert bus.client.xpending(stream, "svc")["pending"] == 0
    assert in_flight == {}


@pytest.mark.parametrize("workers", [1, 2])
def test_lane_reads_ahead_and_a_long_batch_makes_nothing_run_twice(
    bus: Bus, name: str, workers: int
) -> None:
    # Full batches make the lane ask for the next one before running the one
    # in hand. One receiver call outlasting several heartbeats leaves that
    # read's entries waiting in this worker's pending list meanwhile: they are
    # neither its orphans to reclaim nor anyone's to take over.
    seen: Recorder[int] = Recorder()
    sig = Signal(name)

    def receiver(n: int, **kwargs: object) -> None:
        if n == 12:
            time.sleep(1.0)
        seen.add(n)

    sig.connect(receiver, weak=False)
    options: dict[str, Any] = {"batch": 5, "heartbeat_interval": 0.1}
    with contextlib.ExitStack() as stack:
        for _ in range(workers):  # a second one takes over what stalls 300 ms
            stack.enter_context(
                running_worker(bus, "svc", signals=[name], min_idle_ms=300, **options)
            )
        sig.publish_many(None, [{"n": n} for n in range(40)])
        assert seen.reaches(40, timeout=10)
        time.sleep(0.5)  # anything reclaimed twice would show up by now

    assert sorted(seen.items) == list(range(40))


def test_liveness_holds_what_each_lanes_read_on_its_way_delivered(
    bus: Bus, name: str
) -> None:
    # A cluster worker has a lane per slot, each with its own read on its way:
    # what each read delivered is neither an orphan nor left without a lease
    # while that read is out, and is an orphan once it is back (and unheld).
    streams = [bus.keys.events(name, p) for p in range(2)]
    config = WorkerConfig("svc", consumer="w1", heartbeat_interval=0.1)
    worker = Worker(bus, config, signals_to_serve=[name])

    async def scenario() -> tuple[list[int], list[int], list[int], list[int]]:
        client: Any = bus.transport.async_client()
        liveness = Liveness(worker.context, client, HandledCount())
        first, second = object(), object()  # two lanes
        for stream in streams:
            await client.xgroup_create(stream, "svc", id="0", mkstream=True)
            await client.xadd(stream, {b"n": b"1"})
        liveness.unread.start(first, (streams[0],))
        liveness.unread.start(second, (streams[1],))
        await client.xreadgroup("svc", "w1", dict.fromkeys(streams, ">"))
        await asyncio.sleep(4 * config.heartbeat_interval)  # idle past the lapse

        held = [len(await liveness._orphans(s)) for s in streams]
        await liveness.beat()  # both reads are older than an interval
        extended = [await _idle_ms(client, s) for s in streams]
        liveness.unread.done(first)
        await asyncio.sleep(4 * config.heartbeat_interval)
        after = [len(await liveness._orphans(s)) for s in streams]
        idle = [await _idle_ms(client, s) for s in streams]
        await client.aclose()
        return held, extended, after, idle

    held, extended, after, idle = asyncio.run(scenario())

    assert held == [0, 0]
    assert max(extended) < 200  # leases extended on both lanes' streams
    assert after == [1, 0]  # the first read came back: its entry is an orphan
    assert min(idle) >= 300


async def _idle_ms(client: Any, stream: str) -> int:
    [pending] = await client.xpending_range(stream, "svc", "-", "+", 1)
    return int(pending["time_since_delivered"])
