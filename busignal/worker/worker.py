"""The worker runtime: read events, run receivers, reply and acknowledge.

One ``Worker`` is one consumer of one service (consumer group). It reads
every stream its process's receivers need in one XREADGROUP (on a Redis
Cluster, one per slot, concurrently: ``busignal.worker.reading``), runs sync
receivers in a thread pool and async ones on its loop, and posts the
batch's replies, dead letters and acks in one pipeline. Liveness
(heartbeats, leases, reclaiming a dead worker's entries) is in
``liveness``; running receivers in ``running``; settling a batch
(replies, retries, dead letters, acks) in ``settle``; the broadcast
reader in ``broadcast``, all beside this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal as signals
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from busignal.bus.bus import Bus
from busignal.bus.partitions import partition_counts
from busignal.errors import ConfigurationError
from busignal.transport.clients import CONNECTION_ERRORS, refused_login
from busignal.wire import envelope
from busignal.wire.envelope import BadEntry
from busignal.worker import broadcast, reading
from busignal.worker.delivery import Delivery, Job, Receiving
from busignal.worker.joining import join_group
from busignal.worker.lane import Lane
from busignal.worker.liveness import Liveness
from busignal.worker.observe import LogObserver, Observer
from busignal.worker.reading import Entry as Entry  # re-exported: liveness imports it
from busignal.worker.reading import Group, Reads, slot_groups
from busignal.worker.routes import Match, Route, Routes
from busignal.worker.running import Runner
from busignal.worker.settle import FIELD_SERVICE, Batch, dead_letter, settle_all

__all__ = ["Worker", "WorkerConfig"]

#: How often the loop looks for retries and lost entries while the lane reads.
LOOP_PERIOD = 0.05

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How one worker process serves its service."""

    service: str
    concurrency: int = 8
    batch: int = 100
    block_ms: int = 1000
    heartbeat_interval: float = 2.0
    min_idle_ms: int = 30_000
    retry_delay_ms: int = 2_000
    max_deliveries: int = 5
    grace: float = 30.0
    consumer: str | None = None
    dead_maxlen: int = 100_000

    def __post_init__(self) -> None:
        if not self.service or any(c in self.service for c in " {}"):
            raise ConfigurationError(f"invalid service name {self.service!r}")
        if self.concurrency < 1 or self.batch < 1 or self.max_deliveries < 1:
            raise ConfigurationError(
                "concurrency, batch and max_deliveries must be at least 1"
            )


def default_consumer_name(service: str) -> str:
    """A consumer name unique to this process: service, host, pid, random."""
    return f"{service}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


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
        #: Wraps each part of a job's receivers' run (tracing), if set.
        self.receiving: Receiving | None = None
        self._stopping = asyncio.Event()
        self._runner = Runner(config.concurrency)
        # redis-py types replies as unions of sync and async shapes; the
        # worker parses replies itself, so its client is typed loosely.
        self._client: Any = None
        self._liveness: Liveness | None = None
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        self._failures = 0
        self._reads: Reads[Any] = Reads()
        self._lane: Lane | None = None
        self._next_discovery = 0.0
        #: Set once the worker has joined its groups and announced itself.
        self.ready = threading.Event()
        self.handled = 0

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

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; return the process exit code."""
        return asyncio.run(self._run_with_signals())

    async def _run_with_signals(self) -> int:
        loop = asyncio.get_running_loop()
        deadline: list[asyncio.TimerHandle] = []

        def on_signal(signum: int) -> None:
            if self.stopping:
                logger.warning("second %s: exiting now", signals.Signals(signum).name)
                os._exit(1)
            logger.info(
                "%s: finishing what is in hand (grace %.0fs)",
                signals.Signals(signum).name,
                self.config.grace,
            )
            self.stop()
            deadline.append(loop.call_later(self.config.grace, os._exit, 1))

        for signum in (signals.SIGTERM, signals.SIGINT):
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
        block_s = self.config.block_ms / 1000
        self._client = self.bus.transport.async_client(
            socket_timeout=block_s + self.bus.config.socket_timeout
        )
        self._runner.start()
        liveness = self._liveness = Liveness(self, self._client)
        reader: asyncio.Task[None] | None = None
        try:
            with self.bus.transport.errors():  # a cluster/non-cluster mix-up
                await self._with_backoff(self._discover)
                await self._with_backoff(self._join_groups)
            await liveness.start(burst=burst)
            if not burst and self.routes.broadcast_streams(self.keys):
                positions = await broadcast.positions(self, self._client)
                reader = asyncio.create_task(broadcast.read_broadcasts(self, positions))
            self.ready.set()
            with self.bus.transport.errors():
                await self._loop(liveness, burst)
        finally:
            lane, self._lane = self._lane, None
            if lane is not None:
                self.stop()
                await lane.join()
            self._reads.cancel()
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
            await liveness.stop()
            self._runner.shutdown()
            await self._client.aclose()
        if lane is not None and lane.failure is not None:
            raise lane.failure

    async def _loop(self, liveness: Liveness, burst: bool) -> None:
        backlog = True  # first read our own pending entries (a restart)
        while not self.stopping:
            try:
                entries = await self._next_entries(liveness, backlog, burst)
            except CONNECTION_ERRORS as exc:
                await self._pause(exc)
                continue
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                logger.warning("consumer group vanished (%s); recreating it", exc)
                await self._with_backoff(lambda: self._join_groups(start=""))
                continue
            if entries:
                await self.handle(entries)
            elif backlog:
                backlog = False
                self._start_lane(burst)
            elif burst and not liveness.has_retries():
                return
        # Reads still in flight on other cluster nodes: handle what they got.
        for response in await self._reads.drain():
            if entries := reading.entries(response):
                await self.handle(entries)

    def _start_lane(self, burst: bool) -> None:
        """Hand reading new entries to the lane thread (single Redis, not burst)."""
        if burst or self.bus.transport.is_cluster or not self.routes.streams(self.keys):
            return
        self._lane = Lane(self, asyncio.get_running_loop())
        self._lane.start()

    async def _pause(self, exc: BaseException) -> None:
        """Wait before retrying after a connection failure: exponential, jittered.

        Consecutive failures double the wait up to 5 s; a successful read
        resets it (``_failures = 0`` in the loop).
        """
        self._failures += 1
        delay = min(5.0, 0.1 * 2 ** (self._failures - 1)) * random.uniform(0.5, 1.5)
        logger.warning("Redis unavailable (%s); retrying in %.1fs", exc, delay)
        await asyncio.sleep(delay)

    async def _with_backoff(self, action: Any) -> None:
        """Run ``action`` until it gets through, with jittered backoff.

        A refused login is raised at once: retrying a wrong password only
        fills the log, and the CLI turns it into one line saying what to fix.
        """
        delay = 0.1
        while True:
            try:
                await action()
                return
            except CONNECTION_ERRORS as exc:
                if refused_login(exc):
                    raise
                if self.stopping and delay > 2:
                    raise
                logger.warning("Redis unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 5.0)

    async def _discover(self) -> None:
        """Serve every partition any sender used (the signals' partitions sets).

        Groups on partitions found this way start at their beginning, so
        events a sender put there before this worker knew of them are read.
        """
        names = self.routes.names()
        self._next_discovery = time.monotonic() + self.config.heartbeat_interval
        if not names:
            return
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.smembers(self.keys.partitions(name))
        added: list[str] = []
        for name, members in zip(names, await pipe.execute(), strict=True):
            for partition in self.routes.grow(name, partition_counts(members)):
                added.append(self.keys.events(name, partition))
        if added and self.ready.is_set():
            logger.info("serving new partitions %s", ", ".join(added))
            await self._join_groups(start="0", streams=added)

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

    async def _join_groups(
        self, start: str = "$", streams: Sequence[str] | None = None
    ) -> None:
        assert self._client is not None
        for stream in self.routes.streams(self.keys) if streams is None else streams:
            await join_group(
                self._client, self.keys, self.config.service, stream, start
            )

    # -- reading ------------------------------------------------------------

    async def _read(self, backlog: bool, burst: bool) -> list[Entry]:
        assert self._client is not None
        streams = self.routes.streams(self.keys)
        if not streams:
            await asyncio.sleep(self.config.block_ms / 1000)
            return []
        groups = slot_groups(streams, cluster=self.bus.transport.is_cluster)
        if self._lane is not None and not backlog:
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
        if self.bus.transport.is_cluster:
            return await self._read_node(streams, start, block)
        return await self._client.xreadgroup(
            self.config.service,
            self.consumer,
            dict.fromkeys(streams, start),
            count=self.config.batch,
            block=block,
        )

    async def _read_node(self, streams: Group, start: str, block: int | None) -> Any:
        """XREADGROUP sent to the node serving the group's slot.

        redis-py asks the cluster which keys an XREADGROUP names (COMMAND
        GETKEYS, a round trip per read) unless told the node. A read that
        meets a moved slot raises; the worker backs off and the next read
        goes where the refreshed slot map says.
        """
        node = self._client.get_node_from_key(streams[0])
        wait = () if block is None else ("BLOCK", block)
        return await self._client.execute_command(
            "XREADGROUP", "GROUP", self.config.service, self.consumer,
            "COUNT", self.config.batch, *wait,
            "STREAMS", *streams, *(start,) * len(streams),
            target_nodes=node,
        )  # fmt: skip

    async def _counted(self, entries: list[Entry]) -> list[Entry]:
        """Give entries re-read from this worker's own pending list their attempt.

        A worker restarted under the same name re-reads what it held; Redis
        counted every delivery, so a crash loop still ends in dead letters.
        """
        assert self._liveness is not None
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id, _, _ in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        counts: dict[tuple[str, str], int] = {}
        for stream, ids in by_stream.items():
            for entry_id, n in (
                await self._liveness.delivery_counts(stream, ids)
            ).items():
                counts[(stream, entry_id)] = n
        return [(s, i, f, counts.get((s, i), 1)) for s, i, f, _ in entries]

    # -- handling -------------------------------------------------------------

    def _prepare(self, entries: Sequence[Entry]) -> tuple[list[Job], Batch]:
        """Decode a batch into jobs; bad entries go to the batch's dead letters.

        Runs for every event a worker reads, so what is the same for a whole
        stream (its signal, route and delivery limit) or for one sender (the
        receivers it matches) is looked up once per batch.
        """
        pipe = Batch()
        jobs: list[Job] = []
        service = self.config.service
        target_self = service.encode()
        signer = self.bus.signer
        max_size = self.bus.config.max_payload
        streams: dict[str, tuple[str, Route, int]] = {}
        matches: dict[tuple[str, str], tuple[list[Match], object, bool]] = {}
        for entry in entries:
            stream, entry_id, fields, attempt = entry
            target = fields.get(FIELD_SERVICE)
            if target is not None and target != target_self:
                # A dead-letter replay meant for another service.
                pipe.xack(stream, service, entry_id)
                continue
            known = streams.get(stream)
            if known is None:
                name = self.keys.signal_of(stream)
                route = self.routes.route(name)
                known = streams[stream] = (
                    name,
                    route,
                    route.max_deliveries(self.config.max_deliveries),
                )
            signal_name, route, limit = known
            try:
                env = envelope.decode(
                    fields, signal=signal_name, signer=signer, max_size=max_size
                )
                if attempt > limit:
                    raise BadEntry(
                        f"delivered {attempt - 1} times without being acknowledged "
                        f"(max_deliveries={limit}); a worker died or stalled while "
                        f"running it each time"
                    )
            except BadEntry as exc:
                dead_letter(self, pipe, entry, str(exc))
                continue
            matched = matches.get((signal_name, env.sender))
            if matched is None:
                regs, sender = route.match(env.sender, broadcast=False)
                has_async = any(reg.is_async for _, reg in regs)
                matched = matches[(signal_name, env.sender)] = (regs, sender, has_async)
            delivery = Delivery(
                env.message_id,
                entry_id,
                signal_name,
                service,
                attempt if attempt > 1 else 1,
                env.trace,
            )
            job = Job(stream, entry_id, fields, env, delivery, *matched)
            job.receiving = self.receiving
            jobs.append(job)
        return jobs, pipe

    async def handle(self, entries: Sequence[Entry]) -> None:
        """Run a batch of entries and post replies, dead letters and acks at once."""
        jobs, pipe = self._prepare(entries)
        await self._complete(jobs, pipe)

    async def _complete(self, jobs: list[Job], pipe: Batch) -> None:
        """Run prepared jobs, then settle the batch in one round trip."""
        assert self._liveness is not None
        in_flight = self._liveness.in_flight
        started = time.time()
        for job in jobs:
            in_flight[(job.stream, job.entry_id)] = started
        try:
            await self._run(jobs)
            self._observe_handled(jobs, time.time() - started)
            settle_all(self, self._liveness, pipe, jobs)
            if pipe:
                await self._with_backoff(lambda: pipe.execute(self._client))
        finally:
            for job in jobs:
                in_flight.pop((job.stream, job.entry_id), None)
        self.handled += len(jobs)

    def _observe_handled(self, jobs: list[Job], seconds: float) -> None:
        for observer in self.observers:
            try:
                for job in jobs:
                    observer.handled(job, seconds)
            except Exception:
                logger.exception("observer %r failed", observer)

    async def _run(self, jobs: list[Job]) -> None:
        """Run a batch of jobs (see ``Runner.run``); the broadcast reader too."""
        await self._runner.run(jobs)
