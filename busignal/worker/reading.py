"""Reading many streams at once: on one Redis, or across a cluster's nodes.

New entries are read by the worker's lanes (``busignal.worker.lanes``).
What is here serves the worker's loop: its own backlog at start, and
burst mode. On one Redis a worker reads all its streams in one
XREADGROUP. On a Redis Cluster a command's keys must share a slot, so the
streams are grouped by slot and each group has its own blocking read in
flight; whichever answers first is handled first, so one idle or stalled
node never holds back the others. A group is read again only once its
last batch was handled (back-pressure).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from redis.crc import key_slot

from busignal.wire.records import text

__all__ = [
    "Entry",
    "Reads",
    "counted",
    "entries",
    "raw_entries",
    "read_group",
    "slot_groups",
]

T = TypeVar("T")
Group = tuple[str, ...]
Entry = tuple[str, str, dict[bytes, bytes], int]  # stream, entry id, fields, attempt


def slot_groups(streams: Iterable[str], *, cluster: bool) -> list[Group]:
    """The streams, grouped so that each group can be read by one command."""
    streams = list(streams)
    if not cluster:
        return [tuple(streams)] if streams else []
    by_slot: dict[int, list[str]] = {}
    for stream in streams:
        by_slot.setdefault(key_slot(stream.encode()), []).append(stream)
    return [tuple(group) for group in by_slot.values()]


class Reads(Generic[T]):
    """Blocking reads in flight, one per group of streams."""

    def __init__(self) -> None:
        self._tasks: dict[Group, asyncio.Task[T]] = {}

    async def next(
        self, groups: Sequence[Group], read: Callable[[Group], Awaitable[T]]
    ) -> list[T]:
        """Start a read for every group without one; return those that finished.

        Waits until at least one read has finished. A read's error is raised
        here (the other reads stay in flight).
        """
        if len(groups) == 1 and not self._tasks:  # one Redis: no task needed
            return [await read(groups[0])]
        for group in groups:
            if group not in self._tasks:
                self._tasks[group] = asyncio.ensure_future(read(group))
        done, _ = await asyncio.wait(
            self._tasks.values(), return_when=asyncio.FIRST_COMPLETED
        )
        finished = [g for g, task in self._tasks.items() if task in done]
        results = []
        error: BaseException | None = None
        for group in finished:
            task = self._tasks.pop(group)
            if task.exception() is not None:
                error = error or task.exception()
            else:
                results.append(task.result())
        if error is not None and not results:
            raise error
        return results

    async def drain(self) -> list[T]:
        """Wait for the reads in flight (stopping); return what they read."""
        tasks, self._tasks = list(self._tasks.values()), {}
        results = []
        for task in tasks:
            with contextlib.suppress(Exception):
                results.append(await task)
        return results

    def cancel(self) -> None:
        """Cancel the reads in flight (their entries stay pending in Redis)."""
        for task in self._tasks.values():
            task.cancel()
        self._tasks = {}


async def read_group(
    client: Any,
    group: str,
    consumer: str,
    streams: Group,
    start: str,
    *,
    count: int,
    block: int | None,
    cluster: bool,
) -> Any:
    """XREADGROUP of one slot group; on a cluster, sent to the node serving it.

    redis-py asks a cluster which keys an XREADGROUP names (COMMAND
    GETKEYS, a round trip per read) unless told the node. A read that
    meets a moved slot raises; the worker backs off and the next read
    goes where the refreshed slot map says.
    """
    if not cluster:
        return await client.xreadgroup(
            group, consumer, dict.fromkeys(streams, start), count=count, block=block
        )
    node = client.get_node_from_key(streams[0])
    wait = () if block is None else ("BLOCK", block)
    return await client.execute_command(
        "XREADGROUP", "GROUP", group, consumer, "COUNT", count, *wait,
        "STREAMS", *streams, *(start,) * len(streams),
        target_nodes=node,
    )  # fmt: skip


def entries(response: Any) -> list[Entry]:
    """The entries of an XREAD or XREADGROUP reply, with attempt 1."""
    return [
        (text(stream), text(entry_id), fields, 1)
        for stream, items in response or []
        for entry_id, fields in items
        if fields  # an id whose entry was trimmed away has no fields
    ]


def raw_entries(response: Any) -> tuple[list[Entry], int]:
    """The entries of a raw XREADGROUP reply (RESP2 or RESP3), with attempt 1,
    and how many ids it held (trimmed entries included: a full read says
    more may be waiting)."""
    if not response:
        return [], 0
    streams = response.items() if isinstance(response, dict) else response
    entries: list[Entry] = []
    count = 0
    for stream, items in streams:
        name = stream.decode() if isinstance(stream, bytes) else stream
        count += len(items)
        for entry_id, flat in items:
            if not flat:  # an id whose entry was trimmed away has no fields
                continue
            # An event has two fields (three when signed): a dict display,
            # inline, is several times quicker than dict(zip(...)).
            if len(flat) == 4:
                fields = {flat[0]: flat[1], flat[2]: flat[3]}
            else:
                fields = _fields(flat)
            entries.append((name, entry_id.decode(), fields, 1))
    return entries, count


def _fields(flat: list[bytes]) -> dict[bytes, bytes]:
    if len(flat) == 6:
        return {flat[0]: flat[1], flat[2]: flat[3], flat[4]: flat[5]}
    pairs = iter(flat)
    return dict(zip(pairs, pairs, strict=True))


async def counted(
    entries: list[Entry],
    delivery_counts: Callable[[str, list[str]], Awaitable[dict[str, int]]],
) -> list[Entry]:
    """The entries with their attempt: how often Redis delivered each.

    A worker restarted under the same name re-reads what it held; Redis
    counted every delivery, so a crash loop still ends in dead letters.
    """
    by_stream: dict[str, list[str]] = {}
    for stream, entry_id, _, _ in entries:
        by_stream.setdefault(stream, []).append(entry_id)
    counts: dict[tuple[str, str], int] = {}
    for stream, ids in by_stream.items():
        for entry_id, n in (await delivery_counts(stream, ids)).items():
            counts[(stream, entry_id)] = n
    return [(s, i, f, counts.get((s, i), 1)) for s, i, f, _ in entries]
