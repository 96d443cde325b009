"""A worker's liveness: heartbeats, leases, and taking over lost entries.

* Every ``heartbeat_interval`` the worker writes its status to the workers
  hash and touches the entries it is still running (XCLAIM JUSTID resets
  their idle time without counting a delivery), so a slow receiver is not
  mistaken for a dead worker.
* Entries pending for a consumer whose heartbeat lapsed (three intervals)
  are claimed at once; entries idle past ``min_idle_ms`` are claimed even
  from a consumer that still heartbeats (a stalled process).
* Entries whose receivers failed with nobody waiting are retried by the
  same worker after ``retry_delay_ms``; Redis counts every delivery,
  crashes included, so ``max_deliveries`` also catches poison events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

import msgpack

from busignal.transport import CONNECTION_ERRORS

if TYPE_CHECKING:
    from busignal.worker import Entry, Worker

__all__ = ["Liveness", "live_consumers"]

logger = logging.getLogger("busignal.worker")

LAPSE_INTERVALS = 3


async def live_consumers(
    client: Any, key: str, interval: float
) -> tuple[set[str], list[str]]:
    """Consumers whose heartbeat is recent, and those whose heartbeat lapsed."""
    now = time.time()
    live: set[str] = set()
    lapsed: list[str] = []
    raw: dict[bytes, bytes] = await client.hgetall(key)
    for name, status in raw.items():
        try:
            seen = float(msgpack.unpackb(status)["seen"])
            lapse = float(msgpack.unpackb(status).get("interval", interval))
        except Exception:
            lapsed.append(name.decode(errors="replace"))
            continue
        target = live if now - seen < LAPSE_INTERVALS * lapse else lapsed
        if target is live:
            live.add(name.decode())
        else:
            lapsed.append(name.decode())
    return live, lapsed


class Liveness:
    """The heartbeat task and reclaim logic of one worker."""

    def __init__(self, worker: Worker, client: Any) -> None:
        self.worker = worker
        self.client = client
        self.config = worker.config
        self.in_flight: dict[tuple[str, str], float] = {}
        self.retries: dict[tuple[str, str], tuple[float, int]] = {}
        self._task: asyncio.Task[None] | None = None
        self._next_reclaim = 0.0
        self._burst = False
        self._started = time.time()

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
                "handled": self.worker.handled,
                "streams": self.worker.routes.streams(self.worker.keys),
            }
        )

    async def beat(self) -> None:
        """Write this worker's status and extend the leases of long receivers."""
        await self.client.hset(
            self.worker.keys.workers, self.worker.consumer, self._status()
        )
        horizon = time.time() - self.config.heartbeat_interval
        held: dict[str, list[str]] = {}
        for (stream, entry_id), since in list(self.in_flight.items()):
            if since < horizon:
                held.setdefault(stream, []).append(entry_id)
        for stream, ids in held.items():
            await self.client.xclaim(
                stream, self.config.service, self.worker.consumer, 0, ids, justid=True
            )

    async def _beat_forever(self) -> None:
        while True:
            try:
                await self.beat()
            except CONNECTION_ERRORS as exc:
                logger.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(self.config.heartbeat_interval)

    async def start(self, *, burst: bool = False) -> None:
        """Announce the worker and keep its heartbeat going."""
        self._burst = burst
        await self.beat()
        self._task = asyncio.create_task(self._beat_forever())

    async def stop(self) -> None:
        """Stop the heartbeat and remove the worker from the workers hash."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(*CONNECTION_ERRORS):
            await self.client.hdel(self.worker.keys.workers, self.worker.consumer)

    # -- retries and reclaim ------------------------------------------------

    def schedule_retry(self, stream: str, entry_id: str, attempt: int) -> None:
        """Run a failed entry again after the retry delay (it stays pending)."""
        due = time.time() + self.config.retry_delay_ms / 1000
        self.retries[(stream, entry_id)] = (due, attempt)

    def has_retries(self) -> bool:
        return bool(self.retries)

    async def _claim(self, stream: str, ids: list[str], min_idle: int) -> list[Any]:
        return await self.client.xclaim(  # type: ignore[no-any-return]
            stream, self.config.service, self.worker.consumer, min_idle, ids
        )

    async def _due_retries(self) -> list[Entry]:
        now = time.time()
        due = [
            (key, attempt)
            for key, (when, attempt) in self.retries.items()
            if self._burst or when <= now
        ]
        entries: list[Entry] = []
        for (stream, entry_id), attempt in due:
            del self.retries[(stream, entry_id)]
            for claimed_id, fields in await self._claim(stream, [entry_id], 0):
                if fields:
                    entries.append((stream, _text(claimed_id), fields, attempt + 1))
        return entries

    async def _lost(self, stream: str, live: set[str]) -> list[Entry]:
        hb_ms = int(self.config.heartbeat_interval * 1000)
        pending = await self.client.xpending_range(
            stream, self.config.service, "-", "+", self.config.batch, idle=hb_ms
        )
        takeover: dict[str, int] = {}
        for item in pending:
            consumer = _text(item["consumer"])
            if consumer == self.worker.consumer:
                continue
            idle = int(item["time_since_delivered"])
            if consumer not in live or idle >= self.config.min_idle_ms:
                takeover[_text(item["message_id"])] = int(item["times_delivered"])
        if not takeover:
            return []
        claimed = await self._claim(stream, list(takeover), hb_ms)
        if claimed:
            logger.warning(
                "took over %d entries of %s from lost consumers", len(claimed), stream
            )
        return [
            (stream, _text(i), fields, takeover[_text(i)] + 1)
            for i, fields in claimed
            if fields
        ]

    async def reclaim(self) -> list[Entry]:
        """Due retries, and entries lost by dead or stalled consumers."""
        entries = await self._due_retries() if self.retries else []
        now = time.time()
        if now < self._next_reclaim and not self._burst:
            return entries
        self._next_reclaim = now + self.config.heartbeat_interval
        live, _ = await live_consumers(
            self.client, self.worker.keys.workers, self.config.heartbeat_interval
        )
        for stream in self.worker.routes.streams(self.worker.keys):
            entries += await self._lost(stream, live)
        return entries


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
