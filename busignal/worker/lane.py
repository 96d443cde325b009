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

A lane reads its own streams on its own connection, which its ``Link``
says where to open: on a single Redis the worker has one lane for every
stream; on a Redis Cluster one per slot group, on a connection to the node
serving that slot, so that everything a batch sends with its read (replies,
acks, dead letters, handled-id records, outcomes: all in the stream's slot,
``busignal.wire.keys``) goes to that node. A redirection (MOVED, ASK,
CLUSTERDOWN, TRYAGAIN) is handled as a lost connection: the link looks up
the slot's node again and what the lane had handled but not sent goes
again (acks and handled-id records are idempotent). Used outside burst
mode (``busignal.worker.lanes``). What the lane calls back on the worker
is a ``LaneHost``; the rest it is given.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine, Sequence
from operator import attrgetter
from typing import Any, Protocol

import redis

from busignal.transport.clients import CONNECTION_ERRORS
from busignal.transport.raw import PipelinedConnection
from busignal.worker import backoff, once
from busignal.worker.context import HandledCount, WorkerContext
from busignal.worker.delivery import Job, run_chunk
from busignal.worker.joining import group_gone
from busignal.worker.liveness import Liveness
from busignal.worker.reading import Entry, Group, raw_entries
from busignal.worker.running import Runner
from busignal.worker.settle import Batch, report_errors, settle_all

__all__ = ["REDIRECTS", "Lane", "LaneHost", "Link", "Settled"]

logger = logging.getLogger(__name__)

_HAS_ASYNC = attrgetter("has_async")  # any(map(...)): the loop over jobs in C

#: Replies of a cluster node that say a command went to the wrong node or
#: the node cannot serve it now: nothing of the batch is taken as done.
REDIRECTS: tuple[type[redis.ResponseError], ...] = (
    redis.exceptions.AskError,  # MovedError too
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
)
#: Consecutive failures after which a stopping lane gives up sending acks.
GIVE_UP_AT_STOP = 5


class LaneHost(Protocol):
    """What the lane calls back on its worker (the loop's side)."""

    @property
    def stopping(self) -> bool:
        """Whether the worker is stopping: the lane finishes what it holds."""

    def stop(self) -> None:
        """Stop the worker (the lane failed); safe from any thread."""

    def prepare(self, entries: Sequence[Entry]) -> tuple[list[Job], Batch]:
        """Decode entries into jobs; bad ones go to the batch's dead letters."""

    async def complete(self, jobs: list[Job], batch: Batch) -> None:
        """Run jobs on the loop's path and settle them (slow or async ones)."""

    async def rejoin_groups(self, exc: BaseException) -> None:
        """Recreate the service's consumer groups (Redis said one vanished)."""

    def observe_handled(self, jobs: list[Job], seconds: float) -> None:
        """Tell the worker's observers that jobs ran."""


class Link(Protocol):
    """Where a lane's connection goes: one Redis, or a cluster slot's node."""

    def connect(self) -> redis.Redis:
        """A client to open the lane's connection on (may be the same again)."""

    def lost(self) -> None:
        """The connection failed or was redirected: look up where to go again."""

    def in_slot(self, commands: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The commands that may go on the lane's connection; any other is
        sent another way first (none, by construction of the keys)."""

    def close(self) -> None:
        """Close what ``connect`` opened."""


class Lane:
    """One reader thread of a worker; ``start()``, then ``join()`` once stopping.

    Its batches in hand and on their way are the lane thread's own; what
    it shares it writes through their owners (``Liveness.hold``/``release``,
    ``HandledCount.add``). ``failure`` is written once by the lane thread
    and read by the loop after ``join()``.
    """

    def __init__(
        self,
        host: LaneHost,
        context: WorkerContext,
        *,
        liveness: Liveness,
        runner: Runner,
        handled: HandledCount,
        loop: asyncio.AbstractEventLoop,
        link: Link,
        streams: Group,
        name: str = "busignal-lane",
    ) -> None:
        self.host = host
        self.link = link
        #: The streams the lane reads; the worker replaces it as it finds more.
        self.streams = streams
        #: Entries this lane has read (written by the lane thread only).
        self.read = 0
        self.context = context
        self.liveness = liveness
        self.runner = runner
        self.handled = handled
        self.loop = loop
        self.failure: BaseException | None = None
        self._in_hand: list[Entry] = []  # read, not handled yet
        self._full = False  # the last read was a full batch: more may wait
        self._sent: Settled | None = None  # replies and acks on their way
        self._unsent: Settled | None = None  # handled; replies and acks not sent
        self._builder: Any = None  # spells rare commands for the connection
        self._client: Any = None  # the link's client, while connected
        self._connection: PipelinedConnection | None = None
        self._reading = False  # the request on its way holds a read
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    async def join(self) -> None:
        """Wait (without blocking the loop) for the lane to finish its batch."""
        await asyncio.to_thread(self._thread.join)

    def _call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def _run(self) -> None:
        failures = 0
        try:
            while self._in_hand or self._unsent is not None or not self.host.stopping:
                try:
                    self._step()
                    failures = 0
                except (*CONNECTION_ERRORS, *REDIRECTS) as exc:
                    self._lost()
                    failures += 1
                    if self._giving_up(failures):
                        break
                    backoff.pause_sync(exc, failures)
                except redis.ResponseError as exc:
                    if not group_gone(exc):
                        raise
                    self._call(self.host.rejoin_groups(exc))
        except BaseException as exc:
            logger.exception("the worker's reader failed; stopping the worker")
            self.failure = exc
            self.loop.call_soon_threadsafe(self.host.stop)
        finally:
            for settled in (self._sent, self._unsent):
                if settled is not None:
                    settled.release(self.liveness)
            if self._connection is not None:
                self._connection.reset()
            self.link.close()

    def _giving_up(self, failures: int) -> bool:
        """Whether a stopping lane stops retrying the acks it holds."""
        if not self.host.stopping or self._in_hand or failures <= GIVE_UP_AT_STOP:
            return False
        held = len(self._unsent.keys) if self._unsent is not None else 0
        logger.warning(
            "giving up acking %d entries at shutdown; they stay pending for "
            "another worker",
            held,
        )
        return True

    def _lost(self) -> None:
        """The connection failed or was redirected: what was on its way is
        sent again on the next one, which the link opens where it now says."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.reset()
        self.liveness.unread.done(self)
        self._reading = False
        self._unsent = Settled.merged(self._sent, self._unsent)
        self._sent = None
        self.link.lost()

    def _connected(self) -> PipelinedConnection:
        connection = self._connection
        if connection is None:
            self._client = self.link.connect()
            connection = self._connection = PipelinedConnection(self._client)
            if self._builder is None:
                self._builder = connection.builder()
        return connection

    def _step(self) -> None:
        """Handle what is in hand, or wait for more; one round trip at most.

        With a batch in hand that was a full read, the next read is asked
        for first, so that Redis prepares it while the receivers run.
        Stopping with nothing in hand, it only sends what it holds.
        """
        connection = self._connected()
        if self._in_hand:
            ahead = self._full and self.runner.quick and not self.host.stopping
            if ahead:
                self._request(connection, block=None)
            handled, self._in_hand = self._in_hand, []
            self._unsent = Settled.merged(self._unsent, self._handle(handled))
            if not ahead:
                return
        elif self.host.stopping:
            self._request(connection, block=None, read=False)
        else:
            self._request(connection, block=self.context.config.block_ms)
        self._receive(connection)

    def _request(
        self, connection: PipelinedConnection, block: int | None, read: bool = True
    ) -> None:
        """Send the last batch's replies and acks and the next read, in one trip.

        Until the reply comes, the batch's entries stay in flight (no one
        reclaims them); a lost connection sends the batch again (acks are
        idempotent).
        """
        context = self.context
        commands = [] if self._unsent is None else self._unsent.batch.raw(self._builder)
        commands = self.link.in_slot(commands)
        streams = self.streams
        if read:
            wait = () if block is None else ("BLOCK", block)
            commands.append(
                (
                    "XREADGROUP", "GROUP", context.config.service, context.consumer,
                    "COUNT", context.config.batch, *wait,
                    "STREAMS", *streams, *(">",) * len(streams),
                )
            )  # fmt: skip
        if commands:
            connection.send(commands)
        self._sent, self._unsent = self._unsent, None
        self._reading = read
        if read:
            self.liveness.unread.start(self, streams)

    def _receive(self, connection: PipelinedConnection) -> None:
        """Take the replies of the request on its way: settle its batch, keep
        what it read. A redirection of any command raises (the batch goes
        again); what the read got is kept in hand all the same."""
        replies = connection.receive()
        self.liveness.unread.done(self)
        reading, self._reading = self._reading, False
        read = replies.pop() if reading else None
        if reading and not isinstance(read, Exception):
            self._in_hand, count = raw_entries(read)
            self._full = count >= self.context.config.batch
            self.read += len(self._in_hand)
        for reply in (*replies, read):
            if isinstance(reply, REDIRECTS):
                raise reply
        if self._sent is not None:
            self._sent.release(self.liveness)
            self._sent = None
        report_errors(replies)
        if isinstance(read, Exception):
            raise read

    def _handle(self, entries: list[Entry]) -> Settled | None:
        """Run a batch; return what its replies and acks are, to send with the
        next read (or None when the loop's path ran and settled it)."""
        host, liveness, runner = self.host, self.liveness, self.runner
        jobs, batch = host.prepare(entries)
        try:
            if self.context.bus.signer is not None:
                self._connected()  # the MGET goes to the slot's node too
                jobs = once.skip_handled_sync(
                    self._client, jobs, batch, self.context.observers
                )
        except (*CONNECTION_ERRORS, *REDIRECTS):
            self._in_hand = entries + self._in_hand  # not run: run them later
            raise
        if not runner.quick:
            self._call(host.complete(jobs, batch))
            return None
        settled = Settled(batch, [(job.stream, job.entry_id) for job in jobs])
        liveness.hold(settled.keys, time.time())
        started = time.time()
        try:
            if any(map(_HAS_ASYNC, jobs)):
                # Async receivers run on the loop; the batch still settles
                # here, with the next read.
                self._call(runner.run(jobs))
                seconds = time.time() - started
            else:
                run_chunk(jobs)
                seconds = time.time() - started
                runner.note_time(seconds, len(jobs))
            host.observe_handled(jobs, seconds)
            settle_all(self.context, liveness, batch, jobs)
        except BaseException:
            settled.release(liveness)
            raise
        self.handled.add(len(jobs))
        return settled


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

    def release(self, liveness: Liveness) -> None:
        """Take the entries out of the in-flight set (once sent, or given up)."""
        liveness.release(self.keys)
        self.keys = []
