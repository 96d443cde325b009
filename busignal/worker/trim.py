"""Safe trimming: drop only stream entries that every service is done with.

An entry may go once every consumer group has both read it and
acknowledged it. For each group that is the part of the stream below
the lower of

* its oldest pending entry (read, not yet acknowledged), and
* the entry after its last-delivered id (everything above is unread),

and the stream is trimmed with ``XTRIM MINID`` below the lowest such
bound over all groups. Redis 7.0 has no ``ACKED`` trimming, so the bound
is read first and trimmed after, without a lock: a group's bound only
moves up (reads and acks advance it; new pending entries are above its
last-delivered id), so a bound read a moment ago is still safe, and two
workers trimming at once do no harm (``MINID`` is idempotent).

A stream with no consumer group has nobody to wait for; it is capped at
``maxlen`` entries (exact ``XTRIM MAXLEN``: the trim is periodic, so its
cost is small) and cannot grow forever.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from busignal.wire.records import text

__all__ = ["GroupState", "Trim", "next_id", "safe_floor", "trim_stream"]

logger = logging.getLogger(__name__)

StreamId = tuple[int, int]


@dataclass(frozen=True, slots=True)
class GroupState:
    """What trimming needs to know about one consumer group."""

    name: str
    last_delivered: str
    oldest_pending: str | None  # None when nothing is pending


@dataclass(frozen=True, slots=True)
class Trim:
    """What one trim of one stream did."""

    stream: str
    floor: str | None  # MINID used; None when capped by length (no groups)
    removed: int


def parse_id(entry_id: str) -> StreamId:
    """``"ms-seq"`` as a pair of ints, for ordering ids."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def next_id(entry_id: str) -> str:
    """The smallest stream id above ``entry_id``."""
    ms, seq = parse_id(entry_id)
    return f"{ms}-{seq + 1}"


def safe_floor(groups: Iterable[GroupState]) -> str | None:
    """The id below which no group still needs an entry; None without groups."""
    floor: StreamId | None = None
    text: str | None = None
    for group in groups:
        bound = next_id(group.last_delivered)
        if group.oldest_pending is not None and parse_id(
            group.oldest_pending
        ) < parse_id(bound):
            bound = group.oldest_pending
        if floor is None or parse_id(bound) < floor:
            floor, text = parse_id(bound), bound
    return text


async def group_states(client: Any, stream: str) -> list[GroupState]:
    """Read every group's last-delivered id and oldest pending entry."""
    states = []
    for info in await client.xinfo_groups(stream):
        name = text(info["name"])
        oldest = None
        if int(info["pending"]):
            summary: Mapping[str, Any] = await client.xpending(stream, name)
            if summary.get("min") is not None and int(summary["pending"]):
                oldest = text(summary["min"])
        states.append(GroupState(name, text(info["last-delivered-id"]), oldest))
    return states


async def trim_stream(client: Any, stream: str, *, maxlen: int) -> Trim:
    """Trim one events stream as far as is safe (see the module docstring).

    ``client`` is a ``redis.asyncio`` client. A stream that does not exist
    is left alone (``XINFO`` would fail on it).
    """
    if not await client.exists(stream):
        return Trim(stream, None, 0)
    floor = safe_floor(await group_states(client, stream))
    if floor is None:
        removed = await client.xtrim(stream, maxlen=maxlen, approximate=False)
        return Trim(stream, None, int(removed))
    removed = await client.xtrim(stream, minid=floor, approximate=False)
    if removed:
        logger.debug("trimmed %d entries of %s below %s", removed, stream, floor)
    return Trim(stream, floor, int(removed))
