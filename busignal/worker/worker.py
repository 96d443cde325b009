"""The worker runtime: read events, run receivers, reply and acknowledge.

One ``Worker`` is one consumer of one service (consumer group). Its lanes
read new entries, run quick sync batches in place and settle them with
their next read (``lanes``: one lane on a single Redis, one per slot group
on a Redis Cluster). Its loop reads its own backlog first, reclaims and
retries, and in burst mode reads everything (on a cluster, one read per
slot, concurrently: ``busignal.worker.reading``); it runs sync receivers in
a thread pool and async ones on the loop, and posts a batch's replies, dead
letters and acks in one pipeline. Liveness
(heartbeats, leases, reclaiming a dead worker's entries) is in
``liveness``; running receivers in ``running``; settling a batch
(replies, retries, dead letters, acks) in ``settle``; decoding a batch
in ``intake``; the broadcast reader in ``broadcast``; the fast lane in
``lane`` and ``lanes``, all beside this module. None of them imports this one: each is
given the worker's ``WorkerContext`` and calls back through a Protocol
(``LaneHost``, ``BroadcastHost``) that ``Worker`` satisfies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal as os_signal
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import redis
import redis.asyncio

from busignal.bus.bus import Bus
from busignal.bus.partitions import partition_counts
from busignal.errors import ConfigurationError
from busignal.transport.clients import CONNECTION_ERRORS
from busignal.worker import backoff, broadcast, intake, once, reading
from busignal.worker.config import WorkerConfig, default_consumer_name
from busignal.worker.context import HandledCount, WorkerContext
from busignal.worker.delivery import Job, Receiving
from busignal.worker.due import DueMover
from busignal.worker.joining import Groups, group_gone
from busignal.worker.lanes import Lanes
from busignal.worker.liveness import Liveness
from busignal.worker.observe import LogObserver, Observer
from busignal.worker.reading import Entry, Group, Reads, slot_groups
from busignal.worker.retrying import recall
from busignal.worker.routes import Routes
from busignal.worker.running import Runner
from busignal.worker.settle import Batch, judged, settle_all

__all__ = ["Worker", "WorkerConfig"]

#: How often the loop looks for retries and lost entries while the lane reads.
LOOP_PERIOD = 0.05

logger = logging.getLogger(__name__)


class Worker:
    """Serves one service's receivers from the streams of a bus.

    ``run()`` takes over the process (signal handlers, event loop);
    ``serve()`` is the coroutine, and ``serve(burst=True)`` drains what is
    queued and returns, for tests.
    """

    def __init__(
        self,
        bus: Bus,
        config: WorkerConfig,
        *,
        signals_to_serve: Iterable[str] | None = None,
        observers: Sequence[Observer] = (),
    ) -> None:
        self.bus = bus
        self.config = config
        self.keys = bus.keys
        self.consumer = config.consumer or default_consumer_name(config.service)
        self.routes = Routes(signals_to_serve)
        self.observers: list[Observer] = [LogObserver(), *observers]
        #: What the worker's parts are given instead of the worker.
        self.context = WorkerContext(
            bus, config, self.keys, self.consumer, self.routes, self.observers
        )
        #: Wraps each part of a job's receivers' run (tracing), if set.
        self.receiving: Receiving | None = None
        self._stopping = asyncio.Event()
        self._runner = Runner(config.concurrency)
        # redis-py types replies as unions of sync and async shapes; the
        # worker parses replies itself, so its client is typed loosely.
        self._client: Any = None
        self._liveness: Liveness | None = None
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        self._failures = 0  # consecutive failed reads of the loop
        self._reads: Reads[Any] = Reads()
        self._lanes: Lanes | None = None
        self._next_discovery = 0.0
        #: Set once the worker has joined its groups and announced itself.
        self.ready = threading.Event()
        self._handled = HandledCount()
        self._groups = Groups(self.keys, config.service)

    # -- lifecycle --------------------------------------------------------

    def stop(self) -> None:
        """Stop reading; what is in hand is finished and acknowledged.

        Safe to call from any thread.
        """
        loop = self._loop_ref
        if loop is None or loop.is_closed():
            self._stopping.set()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._stopping.set()
        else:
            loop.call_soon_threadsafe(self._stopping.set)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def handled(self) -> int:
        """How many jobs this worker has handled so far."""
        return self._handled.value

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; return the process exit code."""
        return asyncio.run(self._run_with_signals())

    async def _run_with_signals(self) -> int:
        loop = asyncio.get_running_loop()
        deadline: list[asyncio.TimerHandle] = []

        def on_signal(signum: int) -> None:
            if self.stopping:
                logger.warning("second %s: exiting now", os_signal.Signals(signum).name)
                os._exit(1)
            logger.info(
                "%s: finishing what is in hand (grace %.0fs)",
                os_signal.Signals(signum).name,
                self.config.grace,
            )
            self.stop()
            deadline.append(loop.call_later(self.config.grace, os._exit, 1))

        for signum in (os_signal.SIGTERM, os_signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        await self.serve()
        return 0

    async def serve(self, *, burst: bool = False) -> None:
        """Read and handle events until stopped (or, in burst mode, drained)."""
        self._stopping = asyncio.Event()
        self._loop_ref = asyncio.get_running_loop()
        if not self.routes.streams(self.keys) and not self.routes.broadcast_streams(
            self.keys
        ):
            raise ConfigurationError(
                "this worker has no receivers: import the modules that connect "
                "them (with @receiver) before starting it"
            )
        once.warn_if_unsigned(self.context)
        block_s = self.config.block_ms / 1000
        self._client = self.bus.transport.async_client(
            socket_timeout=block_s + self.bus.config.socket_timeout
        )
        self._runner.start()
        liveness = self._liveness = Liveness(self.context, self._client, self._handled)
        mover = DueMover(self.context, self._client)  # hands over delayed events
        reader: asyncio.Task[None] | None = None
        try:
            with self.bus.transport.errors():  # a cluster/non-cluster mix-up
                await self._until_through(self._discover)
                await self._until_through(self.join_groups)
            await liveness.start(burst=burst)
            await mover.start(burst=burst)
            if not burst and self.routes.broadcast_streams(self.keys):
                positions = await broadcast.positions(self.context, self._client)
                reader = asyncio.create_task(
                    broadcast.read_broadcasts(self.context, self, positions)
                )
            self.ready.set()
            with self.bus.transport.errors():
                await self._loop(liveness, burst)
        finally:
            lanes, self._lanes, failure = self._lanes, None, None
            if lanes is not None:
                self.stop()
                failure = await lanes.join()
            self._reads.cancel()
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
            await mover.stop()
            await liveness.stop()
            self._runner.shutdown()
            await self._client.aclose()
        if failure is not None:
            raise failure

    async def _loop(self, liveness: Liveness, burst: bool) -> None:
        backlog = True  # first read our own pending entries (a restart)
        while not self.stopping:
            try:
                if entries := await self._next_entries(liveness, backlog, burst):
                    # Entries a failure leaves unsettled stay pending for this
                    # worker, and are taken back as orphans (``Liveness``).
                    await self.handle(entries)
                    continue
            except CONNECTION_ERRORS as exc:
                self._failures += 1  # a successful read resets it
                await backoff.pause(exc, self._failures)
                continue
            except redis.ResponseError as exc:
                if not group_gone(exc):
                    raise
                await self.rejoin_groups(exc)
                continue
            if backlog:
                backlog = False
                await self._start_lanes(liveness, burst)
            elif burst and not liveness.has_retries():
                return
        # Reads still in flight on other cluster nodes: handle what they got.
        for response in await self._reads.drain():
            if entries := reading.entries(response):
                await self.handle(entries)

    async def _start_lanes(self, liveness: Liveness, burst: bool) -> None:
        """Hand reading new entries to the lanes (not in burst mode)."""
        streams = self.routes.streams(self.keys)
        if burst or not streams:
            return
        self._lanes = Lanes(
            self,
            self.context,
            liveness=liveness,
            runner=self._runner,
            handled=self._handled,
        )
        await self._lanes.update(streams)

    @property
    def lanes(self) -> Lanes | None:
        """The lanes reading new entries, once started (None in burst mode)."""
        return self._lanes

    async def _until_through(self, action: Any) -> None:
        """Run ``action`` until it gets through Redis (``backoff.until_through``)."""
        await backoff.until_through(action, stopping=lambda: self.stopping)

    async def _discover(self) -> None:
        """Serve every partition any sender used (the signals' partitions sets).

        Groups on partitions found this way start at their beginning, so
        events a sender put there before this worker knew of them are read.
        """
        names = self.routes.names()
        self._next_discovery = time.monotonic() + self.config.heartbeat_interval
        if not names:
            return
        pipeline = self._client.pipeline(transaction=False)
        for name in names:
            pipeline.smembers(self.keys.partitions(name))
        added: list[str] = []
        for name, members in zip(names, await pipeline.execute(), strict=True):
            for partition in self.routes.grow(name, partition_counts(members)):
                added.append(self.keys.events(name, partition))
        if added and self.ready.is_set():
            logger.info("serving new partitions %s", ", ".join(added))
            await self.join_groups(start="0", streams=added)
        if added and self._lanes is not None:
            await self._lanes.update(self.routes.streams(self.keys))

    async def _next_entries(
        self, liveness: Liveness, backlog: bool, burst: bool
    ) -> list[Entry]:
        """What to handle next: new entries, then retries and lost ones."""
        await self._discover_now()
        entries = await self._read(backlog, burst)
        if not burst or not entries:  # burst: reclaim once drained
            entries += await liveness.reclaim()
        self._failures = 0
        return entries

    async def _discover_now(self) -> None:
        if time.monotonic() >= self._next_discovery:
            await self._discover()

    async def join_groups(
        self, start: str = "$", streams: Sequence[str] | None = None
    ) -> None:
        """Create the service's group on each stream (those it serves by default)."""
        assert self._client is not None
        if streams is None:
            streams = self.routes.streams(self.keys)
        await self._groups.join(self._client, streams, start)

    async def rejoin_groups(self, exc: BaseException) -> None:
        """Recreate vanished groups (``Groups.join``), or raise GroupLost."""
        logger.warning("consumer group vanished (%s); recreating it", exc)
        await self._until_through(lambda: self.join_groups(start=""))

    # -- reading ------------------------------------------------------------

    async def _read(self, backlog: bool, burst: bool) -> list[Entry]:
        assert self._client is not None
        streams = self.routes.streams(self.keys)
        if not streams:
            await asyncio.sleep(self.config.block_ms / 1000)
            return []
        groups = slot_groups(streams, cluster=self.bus.transport.is_cluster)
        if self._lanes is not None and not backlog:
            # The lane reads new entries; the loop only looks for lost ones.
            await asyncio.sleep(LOOP_PERIOD)
            return []
        if backlog or burst:  # reads that do not block: one group after another
            start = "0" if backlog else ">"
            responses = [await self._read_group(g, start, None) for g in groups]
        else:
            responses = await self._reads.next(
                groups, lambda g: self._read_group(g, ">", self.config.block_ms)
            )
        entries = [e for response in responses for e in reading.entries(response)]
        return await self._counted(entries) if backlog else entries

    async def _read_group(self, streams: Group, start: str, block: int | None) -> Any:
        return await reading.read_group(
            self._client,
            self.config.service,
            self.consumer,
            streams,
            start,
            count=self.config.batch,
            block=block,
            cluster=self.bus.transport.is_cluster,
        )

    async def _counted(self, entries: list[Entry]) -> list[Entry]:
        """Give entries re-read from this worker's own pending list their attempt."""
        assert self._liveness is not None
        return await reading.counted(entries, self._liveness.delivery_counts)

    # -- handling -------------------------------------------------------------

    def prepare(self, entries: Sequence[Entry]) -> tuple[list[Job], Batch]:
        """Decode a batch into jobs (``intake.prepare``); the lane calls it too."""
        self._groups.saw(entries)
        return intake.prepare(self.context, entries, self.receiving)

    async def handle(self, entries: Sequence[Entry]) -> None:
        """Run a batch of entries and post replies, dead letters and acks at once."""
        jobs, batch = self.prepare(entries)
        jobs = await once.unhandled(self.context, self._client, jobs, batch)
        await self.complete(jobs, batch)

    async def complete(self, jobs: list[Job], batch: Batch) -> None:
        """Run prepared jobs, then settle the batch in one round trip."""
        liveness = self._liveness
        assert liveness is not None
        if any(job.delivery.attempt > 1 for job in jobs):  # retried, or taken over
            await self._until_through(lambda: recall(self.context, self._client, jobs))
            jobs = judged(self.context, batch, jobs, liveness.retry_clock())
        keys = [(job.stream, job.entry_id) for job in jobs]
        started = time.time()
        liveness.hold(keys, started)
        try:
            await self.run_jobs(jobs)
            self.observe_handled(jobs, time.time() - started)
            settle_all(self.context, liveness, batch, jobs)
            if batch:
                await self._until_through(lambda: batch.execute(self._client))
        finally:
            liveness.release(keys)
        self._handled.add(len(jobs))

    def observe_handled(self, jobs: list[Job], seconds: float) -> None:
        """Tell every observer that jobs ran; one that raises is logged."""
        for observer in self.observers:
            if isinstance(observer, LogObserver) and not observer.active:
                continue  # the default: nothing to log at INFO
            try:
                for job in jobs:
                    observer.handled(job, seconds)
            except Exception:
                logger.exception("observer %r failed", observer)

    async def run_jobs(self, jobs: list[Job]) -> None:
        """Run a batch of jobs (see ``Runner.run``); the broadcast reader too."""
        await self._runner.run(jobs)
