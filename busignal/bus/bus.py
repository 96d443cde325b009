"""The bus: where distributed signals are sent and how replies come back.

``Bus`` owns the Redis clients for one URL and namespace and makes the
round trips. The plan of one send and the memory of each stream's
services are in ``busignal.bus.send_plan``, the entries it writes in
``busignal.bus.encoding``, the process's default bus (``configure()``,
``BUSIGNAL_URL``) in ``busignal.bus.default``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from typing import Any

import redis
import redis.asyncio

from busignal.bus import durable as durability
from busignal.bus.encoding import EntryEncoder
from busignal.bus.options import BusConfig
from busignal.bus.partitions import Announced, Partitioning, announce, announce_async
from busignal.bus.send_plan import Send, Services
from busignal.transport.clients import Transport
from busignal.transport.raw import RawPipeline, round_trip, xadd
from busignal.wire.envelope import Mode
from busignal.wire.keys import Keys
from busignal.wire.records import text
from busignal.wire.signing import Signer

__all__ = ["Bus", "BusConfig"]

Response = tuple[object, object]


class Bus:
    """A connection to one Redis (URL) and namespace, shared by signals.

    Creating a bus does no I/O; clients connect on first use. A bus may be
    used from many threads and event loops at once.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "busignal",
        secret: str | Sequence[str] | None = None,
        **options: Any,
    ) -> None:
        secrets = (secret,) if isinstance(secret, str) else tuple(secret or ())
        self.config = BusConfig(
            url=url, namespace=namespace, secrets=secrets, **options
        )
        self.keys = Keys(self.config.namespace)
        self.transport = Transport(
            url,
            connect_timeout=self.config.connect_timeout,
            socket_timeout=self.config.socket_timeout,
            cluster=self.config.cluster,
        )
        self.signer = Signer(self.config.secrets) if self.config.secrets else None
        self._encoder = EntryEncoder(self.keys, self.signer, self.config.max_payload)
        self._lock = threading.Lock()
        self._client: redis.Redis | None = None
        self._blocking: dict[float, redis.Redis] = {}
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop,
            tuple[redis.asyncio.Redis, AsyncGenerator[redis.asyncio.Redis, None]],
        ] = weakref.WeakKeyDictionary()
        self._services = Services()
        self._announced = Announced()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Bus | None:
        """The bus ``BUSIGNAL_URL`` (``_NAMESPACE``, ``_SECRET``) describe, if any."""
        from busignal.bus.sources import resolve  # it builds on this module

        resolved = resolve(None, None, os.environ if environ is None else environ)
        return (
            None if resolved is None else cls(resolved.config.url, **resolved.options())
        )

    def __repr__(self) -> str:
        from busignal.transport.clients import redact

        return f"<Bus {redact(self.config.url)} namespace={self.config.namespace!r}>"

    # -- clients ---------------------------------------------------------

    @property
    def client(self) -> redis.Redis:
        """The sync client for plain (non-blocking) commands."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self.transport.sync_client()
        return self._client

    def blocking_client(self, timeout: float) -> redis.Redis:
        """A sync client for reads that block up to ``timeout`` seconds (BLPOP).

        Its socket timeout is ``timeout`` plus the bus's socket timeout, so a
        stalled Redis cannot hold a send much past its own deadline. One
        client (pool) per distinct timeout; programs use few.
        """
        client = self._blocking.get(timeout)
        if client is None:
            with self._lock:
                client = self._blocking.get(timeout)
                if client is None:
                    client = self.transport.sync_client(
                        socket_timeout=timeout + self.config.socket_timeout
                    )
                    self._blocking[timeout] = client
        return client

    async def async_client(self) -> redis.asyncio.Redis:
        """The asyncio client of the running event loop (one per loop).

        It is closed when the loop shuts down (``asyncio.run`` does that on
        exit), through an async generator the loop finalizes, so a program
        never leaks its connections.
        """
        loop = asyncio.get_running_loop()
        kept = self._async.get(loop)
        if kept is None:
            keeper = _keep_open(self.transport.async_client(socket_timeout=None))
            kept = (await anext(keeper), keeper)
            self._async[loop] = kept
        return kept[0]

    def close(self) -> None:
        """Close the sync clients' connections (async ones close with their loop)."""
        for client in (self._client, *self._blocking.values()):
            if client is not None:
                client.close()
        self._client = None
        self._blocking = {}

    # -- partitions ----------------------------------------------------------

    def _announce(self, signal: str, partitioning: Partitioning | None) -> None:
        if count := self._announced.pending(signal, partitioning):
            with self.transport.errors():
                announce(self.client, self.keys, signal, count)
            self._announced.add(signal, count)

    async def _announce_async(
        self, client: Any, signal: str, partitioning: Partitioning | None
    ) -> None:
        if count := self._announced.pending(signal, partitioning):
            with self.transport.errors():
                await announce_async(client, self.keys, signal, count)
            self._announced.add(signal, count)

    # -- sync ---------------------------------------------------------------

    def _start_send(
        self,
        signal: str,
        sender: object,
        kwargs: Mapping[str, object],
        robust: bool,
        timeout: float | None,
        find_receiver: Callable[[str], Callable[..., object] | None],
        partitioning: Partitioning | None,
    ) -> Send:
        timeout = timeout or self.config.timeout
        mode = Mode.SEND_ROBUST if robust else Mode.SEND
        part = partitioning.choose(kwargs) if partitioning is not None else 0
        mid, fields, deadline = self._encoder.encode(
            signal, sender, kwargs, mode, timeout, part
        )
        stream = self.keys.events(signal, part)
        return Send(
            signal=signal,
            stream=stream,
            reply_key=self.keys.reply(mid, signal, part),
            fields=fields,
            timeout=timeout,
            deadline=deadline,
            fail_fast=not robust,
            find_receiver=find_receiver,
            maxlen=self.config.stream_maxlen,
            expected=self._services.count(stream),
            message_id=mid,
            signer=self.signer,
            max_reply=self.config.max_payload,
        )

    def send(
        self,
        signal: str,
        sender: object,
        kwargs: Mapping[str, object],
        *,
        robust: bool,
        timeout: float | None,
        find_receiver: Callable[[str], Callable[..., object] | None],
        partitioning: Partitioning | None = None,
        durable: durability.Durability | None = None,
    ) -> list[Response]:
        """Send one event and collect every service's reply (see Signal.send).

        One round trip in the common case: a script that adds the entry and
        names the services that must answer (the consumer groups that exist
        at that moment, decided atomically with the add), and a BLPOP for the
        first reply, go in one pipeline to one node (on a cluster, the reply
        key is in the stream's slot). With no service, the script makes the
        BLPOP return at once, and the send returns ``[]``.
        """
        plan = self._start_send(
            signal, sender, kwargs, robust, timeout, find_receiver, partitioning
        )
        self._announce(signal, partitioning)
        client = self.blocking_client(plan.timeout)
        with self.transport.errors():
            if durable is not None:
                added = durability.write(self, plan.keyed(), durable, plan.timeout)
                collector = plan.collect_first([added[0], None], self._services)
            else:
                pipe = self._pipeline(client)
                plan.queue(pipe)
                collector = plan.collect_first(pipe.execute(), self._services)
            while (remaining := plan.remaining(collector)) > 0:
                pipe = self._pipeline(client)
                plan.queue_more(pipe, collector, remaining)
                if not plan.collect_more(collector, pipe.execute()):
                    break
        return collector.results()

    def _pipeline(self, client: redis.Redis) -> Any:
        """A pipeline for one round trip: redis-py's on a cluster (it routes
        the commands to their nodes), else the leaner ``RawPipeline``."""
        if self.transport.is_cluster:
            return client.pipeline(transaction=False)
        return RawPipeline(client)

    def _xadd(self, stream: str, fields: dict[bytes, bytes]) -> str:
        """One XADD on its own; returns the entry id."""
        maxlen = self._maxlen(stream)
        if self.transport.is_cluster:
            return text(self.client.xadd(stream, fields, maxlen=maxlen))  # type: ignore[arg-type]  # bytes fields are fine
        return text(round_trip(self.client, [xadd(stream, fields, maxlen)])[0])

    def _maxlen(self, stream: str) -> int | None:
        """Bound a stream no service reads (known from a recent look); else none.

        Trimming a stream that has consumer groups is the workers' job, and
        only below what every group has acknowledged.
        """
        return self.config.stream_maxlen if self._services.absent(stream) else None

    def publish(
        self,
        signal: str,
        sender: object,
        kwargs: Mapping[str, object],
        partitioning: Partitioning | None = None,
        durable: durability.Durability | None = None,
    ) -> str:
        """Append one event to the signal's stream; return its entry id.

        The common case is one XADD and nothing else: the batch path's
        bookkeeping is a third of a publish's own cost.
        """
        stream = self.keys.events(signal)
        partitioned = partitioning is not None and partitioning.count > 1
        if partitioned or durable or self._services.stale(stream):
            return self.publish_many(signal, sender, [kwargs], partitioning, durable)[0]
        fields = self._encoder.encode(signal, sender, kwargs, Mode.PUBLISH)[1]
        with self.transport.errors():
            return self._xadd(stream, fields)

    def publish_many(
        self,
        signal: str,
        sender: object,
        batch: Iterable[Mapping[str, object]],
        partitioning: Partitioning | None = None,
        durable: durability.Durability | None = None,
    ) -> list[str]:
        """Append many events in one round trip; nothing is written if one is bad.

        On a cluster the round trip goes to each node holding a partition used.
        """
        encoded = self._encoder.encode_many(signal, sender, batch, partitioning)
        if not encoded:
            return []
        self._announce(signal, partitioning)
        streams = list(dict.fromkeys(stream for stream, _ in encoded))
        looks = [s for s in streams if self._services.stale(s)]
        with self.transport.errors():
            if durable is not None:
                return durability.append(self, encoded, durable, self._maxlen)
            if len(encoded) == 1 and not looks:  # the common case: no pipeline
                stream, fields = encoded[0]
                return [self._xadd(stream, fields)]
            pipe = self._pipeline(self.client)
            maxlens = {stream: self._maxlen(stream) for stream in streams}
            for stream, fields in encoded:
                pipe.xadd(stream, fields, maxlen=maxlens[stream])
            for stream in looks:
                pipe.xinfo_groups(stream)
            ids = pipe.execute()
        for stream, groups in zip(looks, ids[len(encoded) :], strict=True):
            self._services.update(stream, groups)
        return [text(i) for i in ids[: len(encoded)]]

    # -- async --------------------------------------------------------------

    async def asend(
        self,
        signal: str,
        sender: object,
        kwargs: Mapping[str, object],
        *,
        robust: bool,
        timeout: float | None,  # noqa: ASYNC109 - Redis enforces it (BLPOP timeout)
        find_receiver: Callable[[str], Callable[..., object] | None],
        partitioning: Partitioning | None = None,
    ) -> list[Response]:
        """The coroutine form of ``send``, on redis.asyncio."""
        plan = self._start_send(
            signal, sender, kwargs, robust, timeout, find_receiver, partitioning
        )
        client: Any = await self.async_client()
        await self._announce_async(client, signal, partitioning)
        # As for sync sends, a stalled Redis may hold the send only a socket
        # timeout past its deadline; it is then unavailable.
        limit = plan.timeout + self.config.socket_timeout
        with self.transport.errors():
            async with asyncio.timeout(limit):
                pipe = client.pipeline(transaction=False)
                plan.queue(pipe)
                collector = plan.collect_first(await pipe.execute(), self._services)
                while (remaining := plan.remaining(collector)) > 0:
                    pipe = client.pipeline(transaction=False)
                    plan.queue_more(pipe, collector, remaining)
                    if not plan.collect_more(collector, await pipe.execute()):
                        break
        return collector.results()

    async def apublish(
        self,
        signal: str,
        sender: object,
        kwargs: Mapping[str, object],
        partitioning: Partitioning | None = None,
    ) -> str:
        """The coroutine form of ``publish``."""
        part = partitioning.choose(kwargs) if partitioning is not None else 0
        _, fields, _ = self._encoder.encode(
            signal, sender, kwargs, Mode.PUBLISH, partition=part
        )
        stream = self.keys.events(signal, part)
        with self.transport.errors():
            client: Any = await self.async_client()
            await self._announce_async(client, signal, partitioning)
            entry_id = await client.xadd(stream, fields, maxlen=self._maxlen(stream))
        return text(entry_id)


async def _keep_open(
    client: redis.asyncio.Redis,
) -> AsyncGenerator[redis.asyncio.Redis, None]:
    """Yield ``client`` and close it when the event loop finalizes this generator."""
    try:
        yield client
    finally:
        await client.aclose()
