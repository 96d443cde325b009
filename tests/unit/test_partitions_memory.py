"""Partitioned signals on memory:// (one server; partitions are more keys)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from busignal import Signal, receiver
from busignal.bus.bus import Bus
from busignal.worker.worker import Worker, WorkerConfig


@pytest.fixture
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    memory = Bus(f"memory://partitions-{request.node.name}")
    yield memory
    memory.close()


def _worker(bus: Bus, name: str) -> Worker:
    # One receiver thread: a worker with more runs a batch's events at once.
    config = WorkerConfig(service="svc", concurrency=1)
    return Worker(bus, config, signals_to_serve=[name])


def test_partitions_publish_keeps_each_keys_order_in_one_partition(bus: Bus) -> None:
    sig = Signal("mem_parts", partitions=3, partition_key="k", bus=bus)
    got: list[tuple[int, int]] = []

    @receiver(sig)
    def on(sender: Any, k: int, n: int, **kwargs: Any) -> None:
        got.append((k, n))

    worker = _worker(bus, "mem_parts")
    asyncio.run(worker.serve(burst=True))  # joins every partition
    sig.publish_many(None, [{"k": n % 20, "n": n} for n in range(100)])
    asyncio.run(worker.serve(burst=True))

    assert sorted(got) == sorted((n % 20, n) for n in range(100))
    for key in range(20):
        assert [n for k, n in got if k == key] == sorted(n for k, n in got if k == key)
    lengths = [bus.client.xlen(bus.keys.events("mem_parts", p)) for p in range(3)]
    assert all(lengths)
    assert sum(lengths) == 100


def test_partitions_send_collects_replies_from_a_partition(bus: Bus) -> None:
    sig = Signal("mem_send", partitions=2, bus=bus)

    @receiver(sig)
    def on(sender: Any, **kwargs: Any) -> str:
        return "ok"

    async def scenario() -> list[Any]:
        worker = _worker(bus, "mem_send")
        task = asyncio.create_task(worker.serve())
        await asyncio.to_thread(worker.ready.wait, 5)
        results = [await sig.asend(None, i=i) for i in range(4)]
        worker.stop()
        await task
        return results

    results = asyncio.run(scenario())

    assert [r[0][1] for r in results] == ["ok"] * 4


def test_partitions_shrinking_count_drains_old_partitions(bus: Bus) -> None:
    wide = Signal("mem_shrink", partitions=4, bus=bus)
    got: list[int] = []
    wide.publish_many(None, [])  # nothing; the worker below joins first

    @receiver(wide)
    def on(sender: Any, n: int, **kwargs: Any) -> None:
        got.append(n)

    asyncio.run(_worker(bus, "mem_shrink").serve(burst=True))
    wide.publish_many(None, [{"n": n} for n in range(20)])  # all 4 partitions
    wide.disconnect(on)
    narrow = Signal("mem_shrink", partitions=2, bus=bus)  # the new deploy
    narrow.connect(on)
    del wide

    asyncio.run(_worker(bus, "mem_shrink").serve(burst=True))

    assert sorted(got) == list(range(20))


def test_partitions_growing_count_gives_new_partitions_the_groups(bus: Bus) -> None:
    narrow = Signal("mem_grow", bus=bus)
    got: list[int] = []

    @receiver(narrow)
    def on(sender: Any, n: int, **kwargs: Any) -> None:
        got.append(n)

    worker = _worker(bus, "mem_grow")
    asyncio.run(worker.serve(burst=True))  # the service exists, 1 partition
    wide = Signal("mem_grow_sender", partitions=3, bus=bus)
    # a sender process that already runs the new count: same name on the wire
    object.__setattr__(wide, "name", "mem_grow")
    wide.publish_many(None, [{"n": n} for n in range(9)])

    asyncio.run(_worker(bus, "mem_grow").serve(burst=True))

    assert sorted(got) == list(range(9))
