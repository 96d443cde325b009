"""Take-over never takes an entry back from the worker that now holds it.

A worker that schedules a retry keeps the entry pending for itself; if it
stalls meanwhile, another worker of its service takes the entry over and
runs it. The first worker's retry, or its lease extension, must then find
the entry gone from its hands, not claim it back (both would run it).
"""

from __future__ import annotations

import asyncio
from typing import Any

from busignal.bus.bus import Bus
from busignal.worker.context import HandledCount
from busignal.worker.liveness import Liveness
from busignal.worker.worker import Worker, WorkerConfig

SERVICE = "svc"


def _liveness(bus: Bus, client: Any, consumer: str) -> Liveness:
    worker = Worker(bus, WorkerConfig(SERVICE, consumer=consumer))
    return Liveness(worker.context, client, HandledCount())


async def _held_by_a_then_taken_by_b(bus: Bus, stream: str) -> tuple[Any, str]:
    client: Any = bus.transport.async_client()
    await client.xgroup_create(stream, SERVICE, id="0", mkstream=True)
    entry_id = (await client.xadd(stream, {b"x": b"1"})).decode()
    await client.xreadgroup(SERVICE, "a", {stream: ">"})
    await client.xclaim(stream, SERVICE, "b", 0, [entry_id])  # B took it over
    return client, entry_id


async def _owner(client: Any, stream: str, entry_id: str) -> str:
    [pending] = await client.xpending_range(stream, SERVICE, entry_id, entry_id, 1)
    name: bytes = pending["consumer"]
    return name.decode()


def test_due_retry_does_not_claim_back_an_entry_taken_over(bus: Bus) -> None:
    stream = bus.keys.events("takeover_retry")

    async def scenario() -> tuple[list[Any], str]:
        client, entry_id = await _held_by_a_then_taken_by_b(bus, stream)
        a = _liveness(bus, client, "a")
        a.schedule_retry(stream, entry_id, attempt=1, delay=0)
        a._burst = True  # the retry is due now
        claimed = await a._due_retries()
        owner = await _owner(client, stream, entry_id)
        await client.aclose()
        return claimed, owner

    claimed, owner = asyncio.run(scenario())

    assert claimed == []
    assert owner == "b"


def test_lease_extension_does_not_claim_back_an_entry_taken_over(bus: Bus) -> None:
    stream = bus.keys.events("takeover_lease")

    async def scenario() -> str:
        client, entry_id = await _held_by_a_then_taken_by_b(bus, stream)
        a = _liveness(bus, client, "a")
        await a._extend(stream, [entry_id])
        owner = await _owner(client, stream, entry_id)
        await client.aclose()
        return owner

    assert asyncio.run(scenario()) == "b"


def test_due_retry_claims_an_entry_still_held(bus: Bus) -> None:
    stream = bus.keys.events("takeover_own")

    async def scenario() -> list[Any]:
        client: Any = bus.transport.async_client()
        await client.xgroup_create(stream, SERVICE, id="0", mkstream=True)
        entry_id = (await client.xadd(stream, {b"x": b"1"})).decode()
        await client.xreadgroup(SERVICE, "a", {stream: ">"})
        a = _liveness(bus, client, "a")
        a.schedule_retry(stream, entry_id, attempt=1, delay=0)
        a._burst = True
        claimed = await a._due_retries()
        await client.aclose()
        return claimed

    [(stream_key, _, fields, attempt)] = asyncio.run(scenario())

    assert (stream_key, fields, attempt) == (stream, {b"x": b"1"}, 2)
