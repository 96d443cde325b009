"""The worker's fast lane: read, run and settle quick sync batches in one thread.

A round trip through the event loop costs a worker more than a trivial
receiver does: an asyncio read, a hand-off to a receiver thread, an asyncio
reply pipeline. The lane is one thread with a sync client that does all of
it in place while receivers are quick (under ``QUICK_SECONDS`` a job) and
sync. Anything else (async receivers, slow ones) is handed to the loop's
path and awaited. Heartbeats, leases, reclaiming and broadcasts stay on the
loop, so a receiver that blocks the lane never stops them.

One round trip per batch: a batch's replies and acks go with the next read.
While reads come back full (a backlog) and receivers are quick, the next
read is sent before the batch in hand runs, so Redis prepares it meanwhile;
the worker's liveness knows such a read is on its way, so what it delivered
is neither reclaimed as lost nor left without a lease.

Used on a single Redis outside burst mode; a cluster worker reads slot
groups on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import redis

from busignal.transport.clients import CONNECTION_ERRORS
from busignal.transport.raw import Wire
from busignal.worker import once
from busignal.worker.delivery import run_chunk
from busignal.worker.reading import raw_entries
from busignal.worker.settle import Batch, report_errors, settle_all

if TYPE_CHECKING:
    from busignal.worker.liveness import Liveness
    from busignal.worker.reading import Entry
    from busignal.worker.worker import Worker

__all__ = ["Lane", "Settled"]

logger = logging.getLogger(__name__)


class Lane:
    """One reader thread of a worker; ``start()``, then ``join()`` once stopping."""

    def __init__(self, worker: Worker, loop: asyncio.AbstractEventLoop) -> None:
        self.worker = worker
        self.loop = loop
        self.failure: BaseException | None = None
        self._in_hand: list[Entry] = []  # read, not handled yet
        self._full = False  # the last read was a full batch: more may wait
        self._sent: Settled | None = None  # replies and acks on their way
        self._unsent: Settled | None = None  # handled; replies and acks not sent
        self._builder: Any = None  # spells rare commands for the wire
        self._thread = threading.Thread(
            target=self._run, name="busignal-lane", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    async def join(self) -> None:
        """Wait (without blocking the loop) for the lane to finish its batch."""
        await asyncio.to_thread(self._thread.join)

    def _liveness(self) -> Liveness:
        liveness = self.worker._liveness
        assert liveness is not None
        return liveness

    def _call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def _run(self) -> None:
        worker = self.worker
        block = worker.config.block_ms
        client: Any = worker.bus.transport.sync_client(
            socket_timeout=block / 1000 + worker.bus.config.socket_timeout
        )
        wire = Wire(client)
        self._builder = wire.builder()
        failures = 0
        try:
            while self._in_hand or not worker.stopping:
                try:
                    self._step(wire)
                    failures = 0
                except CONNECTION_ERRORS as exc:
                    wire.reset()
                    self._liveness().reading_since = None
                    self._unsent = Settled.merged(self._sent, self._unsent)
                    self._sent = None
                    failures += 1
                    _pause(exc, failures)
                except redis.ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    logger.warning("consumer group vanished (%s); recreating it", exc)
                    self._call(worker._join_groups(start="0"))
            if self._unsent is not None:
                self._send(client, self._unsent)
        except BaseException as exc:
            logger.exception("the worker's reader failed; stopping the worker")
            self.failure = exc
            self.loop.call_soon_threadsafe(worker.stop)
        finally:
            for batch in (self._sent, self._unsent):
                if batch is not None:
                    batch.release(worker)
            wire.close()

    def _step(self, wire: Wire) -> None:
        """Handle what is in hand, or wait for more; one round trip at most.

        With a batch in hand that was a full read, the next read is asked
        for first, so that Redis prepares it while the receivers run.
        """
        if self._in_hand:
            ahead = (
                self._full and self.worker._runner.quick and not self.worker.stopping
            )
            if ahead:
                self._request(wire, block=None)
            handled, self._in_hand = self._in_hand, []
            self._unsent = Settled.merged(self._unsent, self._handle(handled))
            if not ahead:
                return
        else:
            self._request(wire, block=self.worker.config.block_ms)
        replies = wire.receive()
        self._liveness().reading_since = None
        if self._sent is not None:
            self._sent.release(self.worker)
            self._sent = None
        self._in_hand, self._full = self._entries(replies)

    def _request(self, wire: Wire, block: int | None) -> None:
        """Send the last batch's replies and acks and the next read, in one trip.

        Until the reply comes, the batch's entries stay in flight (no one
        reclaims them); a lost connection sends the batch again (acks are
        idempotent).
        """
        worker = self.worker
        commands = [] if self._unsent is None else self._unsent.batch.raw(self._builder)
        streams = worker.routes.streams(worker.keys)
        wait = () if block is None else ("BLOCK", block)
        commands.append(
            (
                "XREADGROUP", "GROUP", worker.config.service, worker.consumer,
                "COUNT", worker.config.batch, *wait,
                "STREAMS", *streams, *(">",) * len(streams),
            )
        )  # fmt: skip
        wire.send(commands)
        self._sent, self._unsent = self._unsent, None
        self._liveness().reading_since = time.time()

    def _entries(self, replies: list[Any]) -> tuple[list[Entry], bool]:
        """The entries a request read, and whether they were a full batch."""
        *settled, read = replies
        report_errors(settled)
        if isinstance(read, Exception):
            raise read
        entries, count = raw_entries(read)
        return entries, count >= self.worker.config.batch

    def _handle(self, entries: list[Entry]) -> Settled | None:
        """Run a batch; return what its replies and acks are, to send with the
        next read (or None when the loop's path ran and settled it)."""
        worker = self.worker
        jobs, pipe = worker._prepare(entries)
        try:
            if worker.bus.signer is not None:
                jobs = once.skip_handled_sync(
                    worker.bus.client, jobs, pipe, worker.observers
                )
        except CONNECTION_ERRORS:
            self._in_hand = entries + self._in_hand  # not run: run them later
            raise
        if not worker._runner.quick:
            self._call(worker._complete(jobs, pipe))
            return None
        liveness = worker._liveness
        assert liveness is not None
        settled = Settled(pipe, [(job.stream, job.entry_id) for job in jobs])
        liveness.in_flight.update(dict.fromkeys(settled.keys, time.time()))
        started = time.time()
        try:
            if any(job.has_async for job in jobs):
                # Async receivers run on the loop; the batch still settles
                # here, with the next read.
                self._call(worker._runner.run(jobs))
                seconds = time.time() - started
            else:
                run_chunk(jobs)
                seconds = time.time() - started
                worker._runner.note_time(seconds, len(jobs))
            worker._observe_handled(jobs, seconds)
            settle_all(worker, liveness, pipe, jobs)
        except BaseException:
            settled.release(worker)
            raise
        worker.handled += len(jobs)
        return settled

    def _send(self, client: Any, settled: Settled) -> None:
        """Send a batch's replies and acks on their own (stopping); retry while
        Redis is away, a few times."""
        failures = 0
        while settled.batch:
            try:
                settled.batch.execute_sync(client)
                break
            except CONNECTION_ERRORS as exc:
                failures += 1
                if failures > 5:
                    logger.warning(
                        "giving up acking %d entries at shutdown; they stay "
                        "pending for another worker",
                        len(settled.keys),
                    )
                    raise
                _pause(exc, failures)
        settled.release(self.worker)


class Settled:
    """A handled batch's replies and acks, not sent yet, and its entries.

    The entries stay in the worker's in-flight set until the batch is sent,
    so that neither its leases lapse nor its own reclaim takes them back.
    """

    __slots__ = ("batch", "keys")

    def __init__(self, batch: Batch, keys: list[tuple[str, str]]) -> None:
        self.batch = batch
        self.keys = keys

    @staticmethod
    def merged(first: Settled | None, second: Settled | None) -> Settled | None:
        """Both batches as one (either may be None)."""
        if first is None or second is None:
            return first or second
        first.batch.extend(second.batch)
        first.keys += second.keys
        return first

    def release(self, worker: Worker) -> None:
        """Take the entries out of the in-flight set (once sent, or given up)."""
        liveness = worker._liveness
        if liveness is not None:
            in_flight = liveness.in_flight
            for key in self.keys:
                in_flight.pop(key, None)
        self.keys = []


def _pause(exc: BaseException, failures: int) -> None:
    delay = min(5.0, 0.1 * 2 ** (failures - 1)) * random.uniform(0.5, 1.5)
    logger.warning("Redis unavailable (%s); retrying in %.1fs", exc, delay)
    time.sleep(delay)
