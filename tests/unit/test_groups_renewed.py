"""A worker whose Redis lost everything recreates its groups; one whose stream
Redis kept still refuses to guess.

Redis restarted without persistence (or flushed) loses the groups, the
records of where they stood and the streams at once: nothing left can be
re-run or skipped, so the group comes back at the start of what senders
added since. A stream that still holds what the worker saw, or lost
entries, is not new: the worker refuses as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.errors import GroupLost
from busignal.worker.context import HandledCount
from busignal.worker.liveness import Liveness
from busignal.worker.worker import Worker, WorkerConfig

SERVICE = "billing"


def _lose_everything(bus: Bus, name: str) -> None:
    """What a Redis restarted without its data shows of one signal."""
    bus.client.delete(bus.keys.events(name), bus.keys.groups(name))


def _connected(name: str) -> Signal:
    """A signal with a receiver, so that a worker serves its stream."""
    signal = Signal(name)
    signal.connect(lambda **kwargs: None, weak=False)
    return signal


def _serve(bus: Bus, name: str, on_first: Callable[[Signal], object]) -> list[Any]:
    """Serve ``name`` in bursts: n=1 arrives, and while it runs ``on_first``
    does to Redis what the test is about (its ack then finds the group gone).
    Returns the n of the events run, in order."""
    seen: list[Any] = []
    signal = Signal(name)

    def run(n: int, **kwargs: Any) -> None:
        seen.append(n)
        if n == 1:
            on_first(signal)

    signal.connect(run, weak=False)
    worker = Worker(bus, WorkerConfig(SERVICE, block_ms=10), signals_to_serve=[name])

    async def scenario() -> None:
        await worker.serve(burst=True)  # joins
        signal.publish(None, n=1)
        await worker.serve(burst=True)

    asyncio.run(scenario())
    return seen


def test_group_lost_with_its_stream_comes_back_at_the_start(
    bus: Bus, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    def restart_empty(signal: Signal) -> None:
        _lose_everything(bus, name)
        signal.publish(None, n=2)  # a sender was quicker than the worker
        signal.publish(None, n=3)

    with caplog.at_level(logging.WARNING, "busignal.worker"):
        seen = _serve(bus, name, restart_empty)

    assert seen == [1, 2, 3]
    assert "Recreated the group at the start of the stream" in caplog.text


def test_group_and_record_gone_on_a_kept_stream_is_refused(bus: Bus, name: str) -> None:
    def destroy(signal: Signal) -> None:
        bus.client.xgroup_destroy(bus.keys.events(name), SERVICE)
        bus.client.delete(bus.keys.groups(name))
        signal.publish(None, n=2)

    with pytest.raises(GroupLost, match="--from-start"):
        _serve(bus, name, destroy)


def test_group_gone_on_a_stream_that_lost_entries_is_refused(
    bus: Bus, name: str
) -> None:
    def restart_empty_then_delete(signal: Signal) -> None:
        _lose_everything(bus, name)
        bus.client.xdel(bus.keys.events(name), signal.publish(None, n=2))
        signal.publish(None, n=3)  # the stream lacks n=2: not new since

    with pytest.raises(GroupLost, match="--from-start"):
        _serve(bus, name, restart_empty_then_delete)


def test_reclaim_on_a_vanished_stream_takes_nothing(bus: Bus, name: str) -> None:
    """XINFO says ``no such key`` there, not NOGROUP; the reader recreates."""
    signal = _connected(name)  # kept: named signals are registered weakly
    worker = Worker(bus, WorkerConfig(SERVICE), signals_to_serve=[name])

    async def scenario() -> list[Any]:
        client: Any = bus.transport.async_client()
        await client.xgroup_create(bus.keys.events(name), SERVICE, mkstream=True)
        liveness = Liveness(worker.context, client, HandledCount())
        _lose_everything(bus, name)
        try:
            return await liveness.reclaim()
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == []
    assert signal.name == name


def test_heartbeat_on_a_vanished_group_warns_in_one_line(
    bus: Bus, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    signal = _connected(name)  # kept: named signals are registered weakly
    config = WorkerConfig(SERVICE, heartbeat_interval=0.01)
    worker = Worker(bus, config, signals_to_serve=[name])
    stream = bus.keys.events(name)

    async def scenario() -> None:
        client: Any = bus.transport.async_client()
        await client.xgroup_create(stream, SERVICE, mkstream=True)
        liveness = Liveness(worker.context, client, HandledCount())
        liveness.hold([(stream, "1-0")], since=0.0)  # held long: its lease
        _lose_everything(bus, name)
        task = asyncio.create_task(liveness._beat_forever())
        await asyncio.sleep(0.05)
        liveness._stopping = True
        await task
        await client.aclose()

    with caplog.at_level(logging.WARNING, "busignal.worker"):
        asyncio.run(scenario())

    failed = [r for r in caplog.records if "heartbeat" in r.getMessage()]
    assert failed
    assert all(r.exc_info is None for r in failed)
    assert "NOGROUP" in failed[0].getMessage()
    assert signal.name == name
