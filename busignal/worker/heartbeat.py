"""A worker's record in the workers hash: who is live, who is lost, who is gone.

Every worker writes its status (msgpack: ``service``, ``host``, ``pid``,
``seen``, ``started``, ``interval``, ``handled``, ``streams``) under its
consumer name at every heartbeat, and deletes it when it stops. A worker
killed outright (SIGKILL, the OOM killer, a pod evicted, a host lost)
deletes nothing, so its record is judged by the age of its last heartbeat:

* **live**: a heartbeat within its lapse, ``LAPSE_INTERVALS`` of its own
  heartbeat intervals;
* **lost**: lapsed. Live workers of its service take its pending entries
  over, and ``busignal inspect`` lists it apart, with the time since its
  last heartbeat;
* **gone**: lost for ``FORGET_AFTER`` seconds (five minutes) or
  ``FORGET_LAPSES`` lapses, whichever is longer. Any live worker then
  deletes the record, so the hash does not grow with every crash. Five
  minutes is long enough for an operator to see what was lost, and for a
  worker that was only cut off (a partition, a long GC pause, a stopped
  container) to come back and find its record as it left it.

The deletion is a compare-and-delete: under WATCH, the record is deleted
only if it is still the one that was judged gone. A worker that came back
meanwhile has written a new one, which stays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
import redis

from busignal.wire.records import text

__all__ = [
    "DEFAULT_INTERVAL",
    "FORGET_AFTER",
    "FORGET_LAPSES",
    "LAPSE_INTERVALS",
    "Heartbeat",
    "forget",
    "judge",
    "live_consumers",
    "read",
]

logger = logging.getLogger("busignal.worker")

#: A worker is lost once this many of its heartbeat intervals pass unbeaten.
LAPSE_INTERVALS = 3
#: The interval assumed for a record that does not say its own.
DEFAULT_INTERVAL = 2.0
#: A lost worker's record is deleted this many seconds after its last heartbeat,
FORGET_AFTER = 300.0
#: or after this many lapses, if that is longer (a slow heartbeat).
FORGET_LAPSES = 10


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """One worker's record, as read from the workers hash."""

    name: str
    record: bytes  # as stored: what a compare-and-delete compares
    status: Mapping[str, Any]
    seen: float  # time of the last heartbeat
    interval: float

    @property
    def lapse(self) -> float:
        """Seconds without a heartbeat after which the worker is lost."""
        return LAPSE_INTERVALS * self.interval

    @property
    def forget_after(self) -> float:
        """Seconds without a heartbeat after which its record is deleted."""
        return max(FORGET_AFTER, FORGET_LAPSES * self.lapse)

    def age(self, now: float) -> float:
        """Seconds since the last heartbeat."""
        return max(0.0, now - self.seen)

    def is_live(self, now: float) -> bool:
        return self.age(now) < self.lapse

    def is_gone(self, now: float) -> bool:
        return self.age(now) >= self.forget_after


def read(
    raw: Mapping[Any, Any], default_interval: float = DEFAULT_INTERVAL
) -> tuple[list[Heartbeat], list[str]]:
    """The records of an HGETALL of the workers hash, and the unreadable names.

    A record this version cannot read (another format, a stray field) is
    named apart: never judged live, and never deleted.
    """
    beats: list[Heartbeat] = []
    unreadable: list[str] = []
    for key, record in raw.items():
        name = text(key)
        try:
            status = msgpack.unpackb(record)
            seen = float(status["seen"])
            interval = float(status.get("interval", default_interval))
        except Exception:
            unreadable.append(name)
            continue
        beats.append(Heartbeat(name, bytes(record), status, seen, interval))
    return beats, unreadable


async def forget(client: Any, key: str, beats: Iterable[Heartbeat]) -> list[str]:
    """Delete the records of gone workers; the names deleted.

    Each is deleted only if it still holds the record read (WATCH, then
    MULTI/HDEL): a worker that came back has written another. When another
    worker's heartbeat touches the hash in between, EXEC fails and the
    record waits for the next pass.
    """
    now = time.time()
    deleted = []
    for beat in beats:
        if beat.is_gone(now) and await _delete_if_unchanged(client, key, beat):
            logger.info(
                "forgot lost worker %s: no heartbeat for %.0fs",
                beat.name,
                beat.age(now),
            )
            deleted.append(beat.name)
    return deleted


async def _delete_if_unchanged(client: Any, key: str, beat: Heartbeat) -> bool:
    async with client.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(key)
            if await pipe.hget(key, beat.name) != beat.record:
                return False
            pipe.multi()
            pipe.hdel(key, beat.name)
            await pipe.execute()
        except redis.WatchError:
            return False
    return True


async def live_consumers(
    client: Any, key: str, interval: float
) -> tuple[set[str], list[str]]:
    """Consumers whose heartbeat is recent, and those whose heartbeat lapsed."""
    live, lapsed, _ = judge(await client.hgetall(key), interval)
    return live, lapsed


def judge(raw: Any, interval: float) -> tuple[set[str], list[str], list[Heartbeat]]:
    """Live names, lapsed (or unreadable) names, and the records of gone workers."""
    now = time.time()
    beats, lapsed = read(raw, interval)
    live = {b.name for b in beats if b.is_live(now)}
    lapsed += [b.name for b in beats if not b.is_live(now)]
    return live, lapsed, [b for b in beats if b.is_gone(now)]
