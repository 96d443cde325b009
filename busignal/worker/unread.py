"""The reads of a worker's lanes that are on their way: one at most per lane.

A lane asks for its next batch before it runs the one in hand (reading
ahead), so entries that read delivered wait in this worker's pending list,
idle as far as Redis knows, until the batch in hand is done. The worker's
liveness asks here so that such entries are neither reclaimed as its own
orphans nor left without a lease (``busignal.worker.liveness``). Each lane
reads its own streams (on a cluster, one slot's), so each read says which.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from busignal.wire.records import text

if TYPE_CHECKING:
    from busignal.worker.reading import Group

__all__ = ["Unread", "delivered_within", "unread_ids"]

#: Slack for the clocks of this process and Redis when comparing idle times.
CLOCK_SLACK_MS = 250


class Unread:
    """Reads on their way, by lane: the streams each names, and since when.

    Written by the lane threads (one dict operation each, atomic under the
    GIL), read by the loop over a copy.
    """

    def __init__(self) -> None:
        self._reads: dict[object, tuple[Group, float]] = {}

    def start(self, lane: object, streams: Group) -> None:
        """``lane`` sent a read of ``streams``; no reply yet."""
        self._reads[lane] = (streams, time.time())

    def done(self, lane: object) -> None:
        """``lane``'s read came back (or was lost with its connection)."""
        self._reads.pop(lane, None)

    def since(self, stream: str) -> float | None:
        """Since when the oldest read of ``stream`` on its way was sent, if any."""
        times = [t for streams, t in list(self._reads.values()) if stream in streams]
        return min(times, default=None)

    def older_than(self, horizon: float) -> list[tuple[Group, float]]:
        """The reads sent before ``horizon``: their streams and send times."""
        return [(s, t) for s, t in list(self._reads.values()) if t < horizon]

    def __len__(self) -> int:
        return len(self._reads)


def delivered_within(since: float) -> int:
    """The idle time (ms) below which an entry may be one a read since
    ``since`` delivered, clock slack included."""
    return int((time.time() - since) * 1000) + CLOCK_SLACK_MS


async def unread_ids(
    client: Any, group: str, consumer: str, stream: str, since: float, held: int
) -> list[str]:
    """Entries of ``stream`` pending for ``consumer`` that a read sent at
    ``since`` may have delivered (idle no longer than that read's age).

    ``held`` bounds what the consumer can hold: the batch in hand, the one
    on its way, and entries waiting for a retry (older, listed first).
    """
    newest = delivered_within(since)
    mine = await client.xpending_range(stream, group, "-", "+", held, consumer)
    return [
        text(p["message_id"]) for p in mine if int(p["time_since_delivered"]) <= newest
    ]
