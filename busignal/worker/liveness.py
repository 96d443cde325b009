"""A worker's liveness: heartbeats, leases, and taking over lost entries.

* Every ``heartbeat_interval`` the worker writes its status to the workers
  hash and touches the entries it is still running (XCLAIM JUSTID resets
  their idle time without counting a delivery), so a slow receiver is not
  mistaken for a dead worker.
* Entries pending for a consumer whose heartbeat lapsed (three intervals)
  are claimed at once; entries idle past ``min_idle_ms`` are claimed even
  from a consumer that still heartbeats (a stalled process). The records
  of workers lost for five minutes are deleted from the workers hash
  (``busignal.worker.heartbeat``).
* Entries whose receivers failed with nobody waiting are retried by the
  same worker once the failed receivers' backoff has passed
  (``busignal.worker.retrying``); deliveries that never settled (crashes)
  are counted apart, so ``max_deliveries`` also catches poison events.
* Every ``TRIM_BEATS`` heartbeat intervals the worker trims the streams
  below what every service has read and acknowledged (``busignal.worker.trim``).

Takeover bound: a killed worker's entries are claimed by a live worker of
its service within ``LAPSE_INTERVALS + 1`` heartbeat intervals of its last
heartbeat (the lapse, then at most one reclaim pass), plus one ``block_ms``
read if the claimer was blocked in XREADGROUP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import socket
import time
from collections import deque
from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

import msgpack
import redis

from busignal.transport.clients import CONNECTION_ERRORS
from busignal.wire.records import text
from busignal.worker import backoff, heartbeat
from busignal.worker.claims import (
    Claimer,
    claim_held,
    delivery_counts_of,
    entry_id_key,
    owners_of,
)
from busignal.worker.heartbeat import LAPSE_INTERVALS
from busignal.worker.joining import group_gone
from busignal.worker.trim import trim_stream
from busignal.worker.unread import Unread, delivered_within, unread_ids

if TYPE_CHECKING:
    from busignal.worker.context import HandledCount, WorkerContext
    from busignal.worker.reading import Entry

__all__ = ["Liveness"]

logger = logging.getLogger(__name__)

#: Trim the streams every this many heartbeat intervals.
TRIM_BEATS = 10
#: A consumer gone this long with nothing pending is removed from its group.
FORGET_AFTER_MS = 60_000


class Liveness:
    """The heartbeat task and reclaim logic of one worker.

    It owns what the worker holds: ``in_flight`` and ``retries``, written by
    the loop thread and by the lane thread. Each write is one dict operation
    (atomic under the GIL) through ``hold``/``release``/``schedule_retry``
    or on the loop; the loop's readers iterate over a copy (``list(...)``),
    so a write from the lane meanwhile never breaks an iteration.
    """

    def __init__(
        self, context: WorkerContext, client: Any, handled: HandledCount
    ) -> None:
        self.context = context
        self.client = client
        self.config = context.config
        self.handled = handled
        #: Entry (stream, id) -> when its receivers started; leases extended.
        self.in_flight: dict[tuple[str, str], float] = {}
        #: The lanes' reads on their way: what they delivered is held, not yet
        #: in flight. Written by the lane threads; read by the loop.
        self.unread = Unread()
        #: Entry (stream, id) -> (when due, attempt) of failures to run again.
        self.retries: dict[tuple[str, str], tuple[float, int]] = {}
        self._task: asyncio.Task[None] | None = None
        self._trim_task: asyncio.Task[None] | None = None
        self._next_reclaim = 0.0
        self._burst = False
        self._stopping = False
        self._forget_failed = False
        self._started = time.time()
        self._claims = Claimer(client, self.config.service, context.consumer)

    def hold(self, keys: list[tuple[str, str]], since: float) -> None:
        """Mark entries as running since ``since`` (any thread)."""
        self.in_flight.update(dict.fromkeys(keys, since))

    def release(self, keys: list[tuple[str, str]]) -> None:
        """Entries no longer running: settled, or given up (any thread)."""
        # The loop in C: deque(maxlen=0) consumes the map, keeping nothing.
        deque(map(self.in_flight.pop, keys, repeat(None, len(keys))), maxlen=0)

    # -- heartbeat ----------------------------------------------------------

    def _status(self) -> bytes:
        return msgpack.packb(  # type: ignore[no-any-return]  # msgpack is untyped
            {
                "service": self.config.service,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "seen": time.time(),
                "started": self._started,
                "interval": self.config.heartbeat_interval,
                "handled": self.handled.value,
                "streams": self.context.routes.streams(self.context.keys),
            }
        )

    async def beat(self) -> None:
        """Write this worker's status and extend the leases of long receivers."""
        await self.client.hset(
            self.context.keys.workers, self.context.consumer, self._status()
        )
        horizon = time.time() - self.config.heartbeat_interval
        held: dict[str, list[str]] = {}
        for (stream, entry_id), since in list(self.in_flight.items()):
            if since < horizon:
                held.setdefault(stream, []).append(entry_id)
        for stream, ids in held.items():
            await self._extend(stream, await self.owned(stream, ids))
        for streams, since in self.unread.older_than(horizon):
            await self._extend_unread(streams, since)

    async def _extend(self, stream: str, ids: list[str]) -> None:
        """Reset the idle time of those of ``ids`` this worker still holds."""
        if ids:
            mine = self.context.consumer
            await claim_held(self._claims, stream, dict.fromkeys(ids, mine), 0, True)

    async def _extend_unread(self, streams: Sequence[str], since: float) -> None:
        """Extend the leases of what a lane's read on its way since ``since``
        delivered (``busignal.worker.unread``)."""
        held = 2 * self.config.batch + len(self.retries)
        for stream in streams:
            ids = await unread_ids(
                self.client,
                self.config.service,
                self.context.consumer,
                stream,
                since,
                held,
            )
            await self._extend(stream, ids)

    async def owned(self, stream: str, ids: list[str]) -> list[str]:
        """Those of ``ids`` still pending for this worker, with their counts.

        A lease is extended only on entries this worker still owns: XCLAIM
        with JUSTID would otherwise take back an entry that another worker
        already claimed from it (after a long stall).
        """
        counts = await self.delivery_counts(stream, ids)
        return [i for i in ids if i in counts]

    async def delivery_counts(self, stream: str, ids: list[str]) -> dict[str, int]:
        """Times delivered of those of ``ids`` pending for this worker."""
        pending = await self.client.xpending_range(
            stream,
            self.config.service,
            min(ids, key=entry_id_key),
            max(ids, key=entry_id_key),
            len(ids) + 100,
            consumername=self.context.consumer,
        )
        wanted = set(ids)
        return {i: n for i, n in delivery_counts_of(pending).items() if i in wanted}

    async def _beat_forever(self) -> None:
        while not self._stopping:
            try:
                await self.beat()
            except Exception as exc:
                # The heartbeat must outlive any one bad reply: without it the
                # other workers would take this one's entries.
                backoff.report("heartbeat", exc)
            await asyncio.sleep(self.config.heartbeat_interval)

    async def trim(self) -> int:
        """Trim the streams this worker's service reads, as far as is safe.

        Only those: a worker needs no right over the rest of the namespace
        (no SCAN, no XTRIM elsewhere; ``busignal acl worker``). Every stream
        that has a group has a service whose workers trim it; a stream no
        service reads is bounded by its senders (``stream_maxlen``).
        Returns how many entries went.
        """
        maxlen = self.context.bus.config.stream_maxlen
        removed = 0
        for stream in self.context.routes.streams(self.context.keys):
            removed += (await trim_stream(self.client, stream, maxlen=maxlen)).removed
        return removed

    async def _trim_forever(self) -> None:
        interval = TRIM_BEATS * self.config.heartbeat_interval
        # Spread the workers' trims out; any one of them trimming is enough.
        await asyncio.sleep(interval * random.uniform(0.2, 1.0))
        while not self._stopping:
            try:
                await self.trim()
            except Exception as exc:
                backoff.report("trimming", exc)
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))

    async def start(self, *, burst: bool = False) -> None:
        """Announce the worker and keep its heartbeat (and trimming) going."""
        self._burst = burst
        await self.beat()
        self._task = asyncio.create_task(self._beat_forever())
        if not burst:
            self._trim_task = asyncio.create_task(self._trim_forever())

    async def stop(self) -> None:
        """Stop the heartbeat and remove the worker from the workers hash.

        The flag ends the loops even if a cancellation is swallowed on its
        way through redis-py (seen as a trim that kept looping on SIGTERM).
        """
        self._stopping = True
        for task in (self._trim_task, self._task):
            while task is not None and not task.done():
                task.cancel()  # again, if a cancellation was swallowed
                await asyncio.wait({task}, timeout=0.1)
            if task is not None and not task.cancelled():
                with contextlib.suppress(Exception):
                    task.result()
        with contextlib.suppress(*CONNECTION_ERRORS):
            await self.client.hdel(self.context.keys.workers, self.context.consumer)

    # -- retries and reclaim ------------------------------------------------

    def schedule_retry(
        self, stream: str, entry_id: str, attempt: int, delay: float
    ) -> None:
        """Run a failed entry again in ``delay`` seconds (it stays pending)."""
        self.retries[(stream, entry_id)] = (time.time() + delay, attempt)

    def retry_clock(self) -> float:
        """The time a retried receiver's due time is compared with.

        Infinity in burst mode, where retries are run at once (a test
        drains without waiting out backoffs).
        """
        return math.inf if self._burst else time.time()

    def has_retries(self) -> bool:
        return bool(self.retries)

    async def _due_retries(self) -> list[Entry]:
        now = time.time()
        due = [
            (key, attempt)
            # a copy: the worker's reader thread may add retries meanwhile
            for key, (when, attempt) in list(self.retries.items())
            if self._burst or when <= now
        ]
        entries: list[Entry] = []
        for (stream, entry_id), attempt in due:
            del self.retries[(stream, entry_id)]
            # Only if still this worker's: a worker that stalled past its
            # lease may have lost the entry to another, which runs it.
            owners = {entry_id: self.context.consumer}
            for claimed_id, fields in await claim_held(
                self._claims, stream, owners, 0, False
            ):
                if fields:
                    entries.append((stream, claimed_id, fields, attempt + 1))
        return entries

    async def _lost(self, stream: str, live: set[str]) -> list[Entry]:
        """Claim what dead consumers hold, and what live ones sat on too long.

        Dead consumers (heartbeat lapsed, or none) are looked up one by one,
        so a busy live consumer's many entries cannot hide theirs.
        """
        hb_ms = int(self.config.heartbeat_interval * 1000)
        group = self.config.service
        takeover: dict[str, int] = {}
        owners: dict[str, str] = {}
        for consumer in await self.client.xinfo_consumers(stream, group):
            name = text(consumer["name"])
            if name == self.context.consumer or name in live:
                continue
            if not int(consumer["pending"]):
                if int(consumer["idle"]) > max(
                    FORGET_AFTER_MS, self.config.min_idle_ms
                ):
                    await self.client.xgroup_delconsumer(stream, group, name)
                continue
            pending = await self.client.xpending_range(
                stream, group, "-", "+", self.config.batch, name, idle=hb_ms
            )
            takeover.update(delivery_counts_of(pending))
            owners.update(owners_of(pending))
        stalled = await self.client.xpending_range(
            stream, group, "-", "+", self.config.batch, idle=self.config.min_idle_ms
        )
        stalled = [p for p in stalled if text(p["consumer"]) != self.context.consumer]
        takeover.update(delivery_counts_of(stalled))
        owners.update(owners_of(stalled))
        orphans = await self._orphans(stream)
        takeover.update(orphans)
        owners.update(dict.fromkeys(orphans, self.context.consumer))
        if not takeover:
            return []
        claimed = await claim_held(self._claims, stream, owners, hb_ms, False)
        if claimed:
            logger.warning(
                "took over %d entries of %s from lost consumers", len(claimed), stream
            )
        return [(stream, i, fields, takeover[i] + 1) for i, fields in claimed if fields]

    async def _orphans(self, stream: str) -> dict[str, int]:
        """This worker's own pending entries that it does not hold any more.

        A read whose reply was lost with its connection (Redis restarted,
        CLIENT KILL) leaves entries pending for this consumer that it never
        received; nobody else takes them while it heartbeats. Entries it
        runs (``in_flight``) or will retry are not orphans.
        """
        idle = int(LAPSE_INTERVALS * self.config.heartbeat_interval * 1000)
        since = self.unread.since(stream)
        if since is not None:
            # What a read still on its way delivered is not lost, however long
            # that read waits for the batch in hand to finish.
            idle = max(idle, delivered_within(since))
        mine = await self.client.xpending_range(
            stream,
            self.config.service,
            "-",
            "+",
            self.config.batch,
            self.context.consumer,
            idle=idle,
        )
        held = self.in_flight.keys() | self.retries.keys()
        return {
            i: n for i, n in delivery_counts_of(mine).items() if (stream, i) not in held
        }

    async def reclaim(self) -> list[Entry]:
        """Due retries, and entries lost by dead or stalled consumers."""
        entries = await self._due_retries() if self.retries else []
        now = time.time()
        if now < self._next_reclaim and not self._burst:
            return entries
        self._next_reclaim = now + self.config.heartbeat_interval
        raw = await self.client.hgetall(self.context.keys.workers)
        live, _, gone = heartbeat.judge(raw, self.config.heartbeat_interval)
        if gone:
            await self._forget(gone)
        for stream in self.context.routes.streams(self.context.keys):
            try:
                entries += await self._lost(stream, live)
            except redis.ResponseError as exc:
                if not group_gone(exc):  # else nothing to take: the reader
                    raise  # recreates the group
        return entries

    async def _forget(self, gone: list[heartbeat.Heartbeat]) -> None:
        """Delete the records of workers lost long ago; never stops a reclaim."""
        try:
            await heartbeat.forget(self.client, self.context.keys.workers, gone)
        except CONNECTION_ERRORS:
            raise
        except Exception as exc:  # e.g. a client without WATCH: warn once
            if not self._forget_failed:
                logger.warning("cannot delete lost workers' records: %s", exc)
            self._forget_failed = True
