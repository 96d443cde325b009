"""Settling a handled batch: replies, retries, dead letters and acks.

Once a batch's receivers have run, each entry is settled: its reply is
posted to a waiting sender, or a failure nobody was told of is retried or
dead-lettered, and the entry is acknowledged. Everything goes in one
``Batch``, sent in one round trip and replayable if the connection drops.
Kept apart from ``busignal.worker.worker`` so that the worker module is about
reading and running, and this one about what happens after.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from busignal.wire.envelope import Mode
from busignal.wire.records import (
    DEAD_AT,
    DEAD_ATTEMPTS,
    DEAD_ENTRY,
    DEAD_REASON,
    DEAD_SERVICE,
    DEAD_WORKER,
    ORIGINAL_FIELDS,
)
from busignal.wire.reply import encode_reply

if TYPE_CHECKING:
    from busignal.worker.context import WorkerContext
    from busignal.worker.delivery import Job
    from busignal.worker.liveness import Liveness
    from busignal.worker.reading import Entry

__all__ = [
    "Batch",
    "dead_letter",
    "settle",
    "settle_all",
]

logger = logging.getLogger(__name__)


#: Commands whose arguments go to Redis as they are recorded.
_PLAIN = {"rpush": "RPUSH", "expire": "EXPIRE"}


class Batch:
    """Commands to send in one round trip, replayable if the connection drops.

    A redis-py pipeline forgets its commands once executed, so a reply and
    ack batch that failed half-way could not be sent again; this can.
    """

    def __init__(self) -> None:
        self.commands: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.acks: dict[tuple[str, str], list[str]] = {}

    def __bool__(self) -> bool:
        return bool(self.commands or self.acks)

    def xack(self, stream: str, group: str, entry_id: str) -> None:
        """Acknowledge after the batch's replies: one XACK per stream and group.

        One XACK of a hundred ids costs about what one of a single id does;
        per-entry XACKs were a fifth of a draining worker's time.
        """
        self.acks.setdefault((stream, group), []).append(entry_id)

    def rpush(self, key: str, value: bytes) -> None:
        """Push a reply onto a waiting sender's list."""
        self.commands.append(("rpush", (key, value), {}))

    def expire(self, key: str, seconds: int) -> None:
        """Let a reply list lapse if its sender gave up."""
        self.commands.append(("expire", (key, seconds), {}))

    def xadd(self, stream: str, fields: dict[bytes, bytes], *, maxlen: int) -> None:
        """Add a dead letter to a capped dead-letter stream."""
        self.commands.append(("xadd", (stream, fields), {"maxlen": maxlen}))

    def extend(self, other: Batch) -> None:
        """Add another batch's commands and acks to this one."""
        self.commands += other.commands
        for key, ids in other.acks.items():
            self.acks.setdefault(key, []).extend(ids)

    def queue(self, pipeline: Any) -> None:
        """Add the batch's commands to a redis-py pipeline."""
        for name, args, kwargs in self.commands:
            getattr(pipeline, name)(*args, **kwargs)
        for (stream, group), ids in self.acks.items():
            pipeline.xack(stream, group, *ids)

    def raw(self, builder: Any) -> list[tuple[Any, ...]]:
        """The batch as command argument tuples, for ``busignal.transport.raw``.

        Replies (RPUSH, EXPIRE) and acks are spelled out here: going through
        a redis-py pipeline costs more than a quick receiver. Anything rarer
        (a dead letter's XADD) is spelled by redis-py, via ``builder``.
        """
        out: list[tuple[Any, ...]] = []
        for name, args, kwargs in self.commands:
            if name in _PLAIN and not kwargs:
                out.append((_PLAIN[name], *args))
            else:
                getattr(builder, name)(*args, **kwargs)
                out.append(builder.command_stack.pop()[0])
        for (stream, group), ids in self.acks.items():
            out.append(("XACK", stream, group, *ids))
        return out

    def _queue(self, client: Any) -> Any:
        pipeline = client.pipeline(transaction=False)
        self.queue(pipeline)
        return pipeline

    async def execute(self, client: Any) -> None:
        """Send the batch on an asyncio client."""
        await self._queue(client).execute()

    def execute_sync(self, client: Any) -> None:
        """Send the batch on a sync client (the worker's fast lane)."""
        self._queue(client).execute()


def settle_all(
    context: WorkerContext, liveness: Liveness, batch: Batch, jobs: list[Job]
) -> None:
    """Settle a batch: ``settle`` each job, with the common case inline.

    A published event whose receivers all returned needs only its ack;
    that is most of what a draining worker settles.
    """
    service = context.config.service
    acks = batch.acks
    publish = Mode.PUBLISH
    for job in jobs:
        if job.envelope.mode is publish and not job.errors:
            # batch.xack, inline (a call costs as much as the rest here)
            ids = acks.get((job.stream, service))
            if ids is None:
                ids = acks[(job.stream, service)] = []
            ids.append(job.entry_id)
        else:
            settle(context, liveness, batch, job)


def settle(context: WorkerContext, liveness: Liveness, batch: Batch, job: Job) -> None:
    """Reply and ack; or retry / dead-letter a failure nobody was told of."""
    env = job.envelope
    waiting = env.mode is not Mode.PUBLISH and not env.expired()
    if waiting:
        reply = encode_reply(context.config.service, context.consumer, job.outcomes)
        batch.rpush(env.reply_to, reply)
        batch.expire(env.reply_to, context.bus.config.reply_ttl)
    elif job.failed:
        attempt = job.delivery.attempt
        route = context.routes.route(job.delivery.signal)
        if attempt < route.max_deliveries(context.config.max_deliveries):
            liveness.schedule_retry(job.stream, job.entry_id, attempt)
            return
        error = next(o.error for o in job.outcomes if o.error is not None)
        reason = f"receiver failed {attempt} times; last error: {error!r}"
        dead_letter(
            context, batch, (job.stream, job.entry_id, job.fields, attempt), reason
        )
        return
    batch.xack(job.stream, context.config.service, job.entry_id)


def dead_letter(
    context: WorkerContext, batch: Batch, entry: Entry, reason: str
) -> None:
    """Move an entry to its signal's dead-letter stream, in the ack's batch."""
    stream, entry_id, fields, attempt = entry
    config = context.config
    signal = context.keys.signal_of(stream)
    record = {k: v for k, v in fields.items() if k in ORIGINAL_FIELDS}
    record.update(
        {
            DEAD_REASON: reason.encode(),
            DEAD_ENTRY: entry_id.encode(),
            DEAD_SERVICE: config.service.encode(),
            DEAD_WORKER: context.consumer.encode(),
            DEAD_ATTEMPTS: str(attempt).encode(),
            DEAD_AT: repr(time.time()).encode(),
        }
    )
    # The dead letters of a partition stay in its slot, with its ack.
    batch.xadd(context.keys.dead_of(stream), record, maxlen=config.dead_maxlen)
    batch.xack(stream, config.service, entry_id)
    for observer in context.observers:
        try:
            observer.dead_lettered(signal, config.service, reason)
        except Exception:
            logger.exception("observer %r failed", observer)
