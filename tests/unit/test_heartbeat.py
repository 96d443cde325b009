"""Workers' records: live, lost (shown apart by inspect), then deleted (memory://)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgpack

from busignal import Signal
from busignal.admin.inspection import inspect_bus
from busignal.bus import Bus
from busignal.testing import drain
from busignal.worker import heartbeat

INTERVAL = 0.5  # seconds; the lapse is 1.5 s


def _record(seen: float, *, started: float | None = None, pid: int = 1) -> bytes:
    status = {
        "service": "svc",
        "host": "host-a",
        "pid": pid,
        "seen": seen,
        "started": seen - 60 if started is None else started,
        "interval": INTERVAL,
        "handled": 7,
        "streams": [],
    }
    packed: bytes = msgpack.packb(status)
    return packed


def _names(bus: Bus) -> set[str]:
    raw: Any = bus.client.hkeys(bus.keys.workers)
    return {n.decode() for n in raw}


def _forget(bus: Bus, beats: list[heartbeat.Heartbeat]) -> list[str]:
    async def run() -> list[str]:
        client = bus.transport.async_client()
        try:
            return await heartbeat.forget(client, bus.keys.workers, beats)
        finally:
            await client.aclose()

    return asyncio.run(run())


def _read(bus: Bus) -> list[heartbeat.Heartbeat]:
    beats, _ = heartbeat.read(bus.client.hgetall(bus.keys.workers))
    return beats


def test_heartbeat_lapsed_worker_is_lost_not_gone_until_forget_after() -> None:
    now = time.time()
    [beat], _ = heartbeat.read({b"w": _record(now - 2 * INTERVAL)})

    assert beat.is_live(now)
    assert not beat.is_live(now + 2 * INTERVAL)
    assert not beat.is_gone(now + 2 * INTERVAL)
    assert beat.forget_after == heartbeat.FORGET_AFTER
    assert beat.is_gone(now + heartbeat.FORGET_AFTER)


def test_heartbeat_unreadable_records_are_named_apart() -> None:
    beats, unreadable = heartbeat.read({b"w": b"\xc1not msgpack", b"v": b"\x80"})

    assert beats == []
    assert sorted(unreadable) == ["v", "w"]


def test_heartbeat_forget_deletes_gone_records_and_keeps_the_others(bus: Bus) -> None:
    now = time.time()
    bus.client.hset(bus.keys.workers, "gone", _record(now - 3600))
    bus.client.hset(bus.keys.workers, "lost", _record(now - 10))
    bus.client.hset(bus.keys.workers, "live", _record(now))

    assert _forget(bus, _read(bus)) == ["gone"]
    assert _names(bus) == {"lost", "live"}


def test_heartbeat_forget_keeps_a_record_rewritten_since_it_was_read(
    bus: Bus,
) -> None:
    bus.client.hset(bus.keys.workers, "back", _record(time.time() - 3600))
    beats = _read(bus)
    bus.client.hset(bus.keys.workers, "back", _record(time.time()))  # it came back

    assert _forget(bus, beats) == []
    assert _names(bus) == {"back"}


def test_heartbeat_a_worker_deletes_the_records_of_workers_gone_long_ago(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)
    sig.connect(lambda **kwargs: None, weak=False)
    bus.client.hset(bus.keys.workers, "gone", _record(time.time() - 3600))
    bus.client.hset(bus.keys.workers, "lost", _record(time.time() - 10))

    drain(bus, "svc", signals=[name])

    assert _names(bus) == {"lost"}


def test_inspect_shows_lost_workers_apart_with_their_silence(bus: Bus) -> None:
    now = time.time()
    bus.client.hset(bus.keys.workers, "lost", _record(now - 42, started=now - 100))
    bus.client.hset(bus.keys.workers, "live", _record(now, pid=2))

    report = inspect_bus(bus)

    assert [w.name for w in report.workers] == ["live"]
    [lost] = report.lost
    assert lost.name == "lost"
    assert 42 <= lost.age < 50
    assert lost.uptime == 58  # up to its last heartbeat, not growing since
