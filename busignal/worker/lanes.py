"""The worker's lanes: one on a single Redis, one per slot group on a cluster.

A lane (``busignal.worker.lane``) reads, runs and settles quick batches in
its own thread, one round trip a batch. On a Redis Cluster a command's keys
must share a slot, so each slot group (the streams of one signal partition,
``busignal.wire.keys``) gets its own lane, on its own connection to the
node serving that slot (``SlotNode``); everything a batch sends with its
read is in that slot, since every key a worker writes for an entry is
built from its stream's key. Partitions found while running get lanes too
(``update``). A slot that moves (MOVED, ASK, a failover) is looked up again
by the lane that meets it; the others carry on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import redis
from redis.crc import key_slot

from busignal.transport.clients import CONNECTION_ERRORS
from busignal.worker import backoff
from busignal.worker.context import HandledCount, WorkerContext
from busignal.worker.lane import Lane, LaneHost, Link
from busignal.worker.liveness import Liveness
from busignal.worker.reading import Group, slot_groups
from busignal.worker.running import Runner

__all__ = ["Lanes", "OneRedis", "SlotNode"]

logger = logging.getLogger(__name__)

#: What refreshing the slot map may meet while the cluster fails over.
_REFRESH_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    redis.exceptions.RedisClusterException,
)


class OneRedis:
    """A lane's link to a single Redis: one client, reconnected by its pool."""

    def __init__(self, context: WorkerContext, socket_timeout: float) -> None:
        self._transport = context.bus.transport
        self._timeout = socket_timeout
        self._client: redis.Redis | None = None

    def connect(self) -> redis.Redis:
        if self._client is None:
            self._client = self._transport.sync_client(socket_timeout=self._timeout)
        return self._client

    def lost(self) -> None:
        """Nothing to look up: the pool opens a new connection to the same Redis."""

    def in_slot(self, commands: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return commands

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


class SlotNode:
    """A lane's link to the cluster node serving one slot.

    Its connection is the lane's own (a client of its own, with the
    cluster's connection options: TLS, credentials, timeouts), not one of
    the cluster client's pools, which redis-py resets when it refreshes
    its slot map. After a failure the slot map is refreshed and the next
    connection goes to the node that serves the slot then.
    """

    def __init__(self, cluster: Any, streams: Group) -> None:
        self._cluster = cluster
        self.slot = key_slot(streams[0].encode())
        # Every key written for an entry starts as its stream's does.
        self._prefixes = tuple(s[: -len("events")] for s in streams)
        self._client: redis.Redis | None = None
        #: The node (host, port) the lane's connection last went to.
        self.address: tuple[str, int] | None = None

    def connect(self) -> redis.Redis:
        node = self._cluster.nodes_manager.slots_cache.get(self.slot)
        if not node:
            raise redis.exceptions.SlotNotCoveredError(
                f"slot {self.slot} is not served by any node yet"
            )
        primary = node[0]
        manager = self._cluster.nodes_manager
        client: redis.Redis = manager.create_redis_node(
            primary.host, primary.port, **dict(manager.connection_kwargs)
        )
        self.close()
        self._client = client
        self.address = (primary.host, int(primary.port))
        return client

    def lost(self) -> None:
        """Drop the connection and refresh the slot map (a failover, a move)."""
        self.close()
        try:
            self._cluster.nodes_manager.initialize()
        except _REFRESH_ERRORS as exc:
            logger.info("cannot refresh the cluster's slot map yet: %s", exc)

    def in_slot(self, commands: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The commands of this slot; any other goes through the cluster client.

        None should: kept as a guard, since a command of another slot on
        this connection would be refused (MOVED) or, worse, run on the wrong
        node if that node serves both slots.
        """
        ours: list[tuple[Any, ...]] = []
        for command in commands:
            key = command[3] if command[0] == "EVAL" else command[1]
            if key.startswith(self._prefixes) or key_slot(key.encode()) == self.slot:
                ours.append(command)
            else:
                logger.error("%s on %s is not in slot %d", command[0], key, self.slot)
                self._cluster.execute_command(*command)
        return ours

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


class Lanes:
    """The lanes of one worker, and what they are given; started out of burst mode."""

    def __init__(
        self,
        host: LaneHost,
        context: WorkerContext,
        *,
        liveness: Liveness,
        runner: Runner,
        handled: HandledCount,
    ) -> None:
        self.host = host
        self.context = context
        self._parts = (liveness, runner, handled)
        self._lanes: dict[int | None, Lane] = {}  # by slot; None on one Redis
        self._cluster: Any = None
        config = context.config
        self._timeout = config.block_ms / 1000 + context.bus.config.socket_timeout

    def __iter__(self) -> Iterator[Lane]:
        return iter(list(self._lanes.values()))

    def __len__(self) -> int:
        return len(self._lanes)

    @property
    def read(self) -> int:
        """How many entries the lanes have read so far."""
        return sum(lane.read for lane in self)

    async def update(self, streams: Sequence[str]) -> None:
        """Read ``streams``: a lane for each slot group that has none yet."""
        if not self.context.bus.transport.is_cluster:
            group = tuple(streams)
            lane = self._lanes.get(None)
            if lane is None:
                self._start(None, OneRedis(self.context, self._timeout), group)
            else:
                lane.streams = group
            return
        if self._cluster is None:
            await backoff.until_through(
                self._connect_cluster, stopping=lambda: self.host.stopping
            )
        for group in slot_groups(streams, cluster=True):
            slot = key_slot(group[0].encode())
            lane = self._lanes.get(slot)
            if lane is None:
                self._start(slot, SlotNode(self._cluster, group), group)
            else:
                lane.streams = group

    async def _connect_cluster(self) -> None:
        """The cluster client the lanes look their slots' nodes up in (it
        connects to read the slot map: not on the loop)."""
        transport = self.context.bus.transport
        self._cluster = await asyncio.to_thread(
            transport.sync_client, socket_timeout=self._timeout
        )

    def _start(self, slot: int | None, link: Link, streams: Group) -> None:
        liveness, runner, handled = self._parts
        name = "busignal-lane" if slot is None else f"busignal-lane-{slot}"
        lane = Lane(
            self.host,
            self.context,
            liveness=liveness,
            runner=runner,
            handled=handled,
            loop=asyncio.get_running_loop(),
            link=link,
            streams=streams,
            name=name,
        )
        self._lanes[slot] = lane
        lane.start()

    async def join(self) -> BaseException | None:
        """Wait for every lane to finish (the worker is stopping); the first
        lane's failure, if one failed."""
        for lane in self:
            await lane.join()
        if self._cluster is not None:
            self._cluster.close()
        return next((lane.failure for lane in self if lane.failure), None)
