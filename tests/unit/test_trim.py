from __future__ import annotations

import asyncio
from typing import Any

import fakeredis

from busignal.worker.trim import GroupState, next_id, safe_floor, trim_stream

STREAM = "t:{sig:s}:events"


def _client() -> Any:
    return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())


async def _fill(client: Any, count: int) -> list[str]:
    return [
        (await client.xadd(STREAM, {"n": str(i)}, id=f"{i + 1}-0")).decode()
        for i in range(count)
    ]


async def _read(client: Any, group: str, count: int) -> list[str]:
    response = await client.xreadgroup(group, "c", {STREAM: ">"}, count=count)
    return [i.decode() for _, items in response for i, _ in items]


def test_next_id_increments_sequence() -> None:
    assert next_id("5-7") == "5-8"


def test_safe_floor_without_groups_is_none() -> None:
    assert safe_floor([]) is None


def test_safe_floor_is_lowest_of_pending_and_unread_over_groups() -> None:
    groups = [
        GroupState("a", last_delivered="10-0", oldest_pending="4-0"),
        GroupState("b", last_delivered="6-0", oldest_pending=None),
    ]

    assert safe_floor(groups) == "4-0"


def test_safe_floor_orders_ids_numerically_not_as_text() -> None:
    groups = [
        GroupState("a", last_delivered="9-0", oldest_pending=None),
        GroupState("b", last_delivered="100-0", oldest_pending=None),
    ]

    assert safe_floor(groups) == "9-1"


def test_trim_stream_keeps_unacked_and_unread_entries() -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        client = _client()
        ids = await _fill(client, 10)
        await client.xgroup_create(STREAM, "fast", id="0")
        await client.xgroup_create(STREAM, "slow", id="0")
        for entry in await _read(client, "fast", 10):
            await client.xack(STREAM, "fast", entry)
        read = await _read(client, "slow", 5)
        for entry in read[:2] + read[3:]:  # ids[2] stays pending
            await client.xack(STREAM, "slow", entry)
        await trim_stream(client, STREAM, maxlen=1000)
        left = [i.decode() for i, _ in await client.xrange(STREAM)]
        return ids, left

    ids, left = asyncio.run(scenario())

    assert left == ids[2:]


def test_trim_stream_removes_what_every_group_acknowledged() -> None:
    async def scenario() -> tuple[int, int]:
        client = _client()
        await _fill(client, 10)
        await client.xgroup_create(STREAM, "only", id="0")
        for entry in await _read(client, "only", 7):
            await client.xack(STREAM, "only", entry)
        result = await trim_stream(client, STREAM, maxlen=1000)
        return result.removed, await client.xlen(STREAM)

    removed, length = asyncio.run(scenario())

    assert (removed, length) == (7, 3)


def test_trim_stream_keeps_everything_for_a_group_that_read_nothing() -> None:
    async def scenario() -> int:
        client = _client()
        await _fill(client, 10)
        await client.xgroup_create(STREAM, "idle", id="0")
        await trim_stream(client, STREAM, maxlen=1)
        return int(await client.xlen(STREAM))

    assert asyncio.run(scenario()) == 10


def test_trim_stream_caps_a_stream_without_groups() -> None:
    async def scenario() -> int:
        client = _client()
        await _fill(client, 50)
        await trim_stream(client, STREAM, maxlen=5)
        return int(await client.xlen(STREAM))

    assert asyncio.run(scenario()) == 5


def test_trim_stream_ignores_a_missing_stream() -> None:
    result = asyncio.run(trim_stream(_client(), STREAM, maxlen=5))

    assert result.removed == 0
