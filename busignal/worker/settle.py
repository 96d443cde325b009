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
from busignal.wire.groups import ACK_AND_RECORD
from busignal.wire.keys import groups_of
from busignal.wire.reply import encode_reply

if TYPE_CHECKING:
    from busignal.worker.delivery import Job
    from busignal.worker.liveness import Liveness
    from busignal.worker.reading import Entry
    from busignal.worker.worker import Worker

__all__ = [
    "FIELD_SERVICE",
    "ORIGINAL_FIELDS",
    "Batch",
    "dead_letter",
    "settle",
    "settle_all",
]

logger = logging.getLogger(__name__)

#: The field naming the one service a dead-letter replay is meant for.
FIELD_SERVICE = b"s"
#: The fields of an entry a dead letter keeps, so that it can be replayed.
ORIGINAL_FIELDS = frozenset((b"v", b"b", b"h", b"s"))


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
        per-entry XACKs were a fifth of a draining worker's time. The XACK
        also records where the group stands (``busignal.wire.groups``).
        """
        self.acks.setdefault((stream, group), []).append(entry_id)

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> None:
            self.commands.append((name, args, kwargs))

        return record

    def extend(self, other: Batch) -> None:
        """Add another batch's commands and acks to this one."""
        self.commands += other.commands
        for key, ids in other.acks.items():
            self.acks.setdefault(key, []).extend(ids)

    def queue(self, pipe: Any) -> None:
        """Add the batch's commands to a redis-py pipeline."""
        for name, args, kwargs in self.commands:
            getattr(pipe, name)(*args, **kwargs)
        for (stream, group), ids in self.acks.items():
            pipe.execute_command(*_ack(stream, group, ids))

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
            out.append(_ack(stream, group, ids))
        return out

    def _queue(self, client: Any) -> Any:
        pipe = client.pipeline(transaction=False)
        self.queue(pipe)
        return pipe

    async def execute(self, client: Any) -> None:
        """Send the batch on an asyncio client."""
        await self._queue(client).execute()

    def execute_sync(self, client: Any) -> None:
        """Send the batch on a sync client (the worker's fast lane)."""
        self._queue(client).execute()


def _ack(stream: str, group: str, ids: list[str]) -> tuple[Any, ...]:
    """XACK ``ids`` and record where the group stands, as one EVAL."""
    return ("EVAL", ACK_AND_RECORD, 2, stream, groups_of(stream), group, *ids)


def settle_all(
    worker: Worker, liveness: Liveness, pipe: Batch, jobs: list[Job]
) -> None:
    """Settle a batch: ``settle`` each job, with the common case inline.

    A published event whose receivers all returned needs only its ack;
    that is most of what a draining worker settles.
    """
    service = worker.config.service
    for job in jobs:
        if job.envelope.mode is Mode.PUBLISH and not job.errors:
            pipe.xack(job.stream, service, job.entry_id)
        else:
            settle(worker, liveness, pipe, job)


def settle(worker: Worker, liveness: Liveness, pipe: Batch, job: Job) -> None:
    """Reply and ack; or retry / dead-letter a failure nobody was told of."""
    env = job.envelope
    waiting = env.mode is not Mode.PUBLISH and not env.expired()
    if waiting:
        reply = encode_reply(worker.config.service, worker.consumer, job.outcomes)
        pipe.rpush(env.reply_to, reply)
        pipe.expire(env.reply_to, worker.bus.config.reply_ttl)
    elif job.failed:
        attempt = job.delivery.attempt
        route = worker.routes.route(job.delivery.signal)
        if attempt < route.max_deliveries(worker.config.max_deliveries):
            liveness.schedule_retry(job.stream, job.entry_id, attempt)
            return
        error = next(o.error for o in job.outcomes if o.error is not None)
        reason = f"receiver failed {attempt} times; last error: {error!r}"
        dead_letter(
            worker, pipe, (job.stream, job.entry_id, job.fields, attempt), reason
        )
        return
    pipe.xack(job.stream, worker.config.service, job.entry_id)


def dead_letter(worker: Worker, pipe: Batch, entry: Entry, reason: str) -> None:
    """Move an entry to its signal's dead-letter stream, in the ack's batch."""
    stream, entry_id, fields, attempt = entry
    config = worker.config
    signal = worker.keys.signal_of(stream)
    record = {k: v for k, v in fields.items() if k in ORIGINAL_FIELDS}
    record.update(
        {
            b"reason": reason.encode(),
            b"entry": entry_id.encode(),
            b"service": config.service.encode(),
            b"worker": worker.consumer.encode(),
            b"attempts": str(attempt).encode(),
            b"at": repr(time.time()).encode(),
        }
    )
    # The dead letters of a partition stay in its slot, with its ack.
    pipe.xadd(worker.keys.dead_of(stream), record, maxlen=config.dead_maxlen)
    pipe.xack(stream, config.service, entry_id)
    for observer in worker.observers:
        try:
            observer.dead_lettered(signal, config.service, reason)
        except Exception:
            logger.exception("observer %r failed", observer)
