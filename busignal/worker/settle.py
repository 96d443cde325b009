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

import redis

from busignal.wire.envelope import Mode
from busignal.wire.groups import ACK_AND_RECORD
from busignal.wire.keys import groups_of
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
from busignal.worker import once, retrying

if TYPE_CHECKING:
    from busignal.worker.context import WorkerContext
    from busignal.worker.delivery import Job
    from busignal.worker.liveness import Liveness
    from busignal.worker.reading import Entry

__all__ = [
    "Batch",
    "bury",
    "dead_letter",
    "judged",
    "report_errors",
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
        per-entry XACKs were a fifth of a draining worker's time. The XACK
        also records where the group stands (``busignal.wire.groups``).
        """
        self.acks.setdefault((stream, group), []).append(entry_id)

    def rpush(self, key: str, value: bytes) -> None:
        """Push a reply onto a waiting sender's list."""
        self.commands.append(("rpush", (key, value), {}))

    def expire(self, key: str, seconds: int) -> None:
        """Let a reply list lapse if its sender gave up."""
        self.commands.append(("expire", (key, seconds), {}))

    def hset(self, key: str, fields: dict[bytes, bytes]) -> None:
        """Record receivers' outcomes (``busignal.worker.outcomes``)."""
        self.commands.append(("hset", (key,), {"mapping": fields}))

    def delete(self, key: str) -> None:
        """Drop receivers' outcomes once the entry is settled for good."""
        self.commands.append(("delete", (key,), {}))

    def xadd(self, stream: str, fields: dict[bytes, bytes], *, maxlen: int) -> None:
        """Add a dead letter to a capped dead-letter stream."""
        self.commands.append(("xadd", (stream, fields), {"maxlen": maxlen}))

    def execute_command(self, *args: Any) -> None:
        """Any other command, spelled out as its arguments (``SET ... NX EX``)."""
        self.commands.append(("execute_command", args, {}))

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
            pipeline.execute_command(*_ack(stream, group, ids))

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
            elif name == "execute_command":  # spelled out already (once.record)
                out.append(args)
            else:
                getattr(builder, name)(*args, **kwargs)
                out.append(builder.command_stack.pop()[0])
        for (stream, group), ids in self.acks.items():
            out.append(_ack(stream, group, ids))
        return out

    def _queue(self, client: Any) -> Any:
        pipeline = client.pipeline(transaction=False)
        self.queue(pipeline)
        return pipeline

    async def execute(self, client: Any) -> None:
        """Send the batch on an asyncio client."""
        report_errors(await self._queue(client).execute(raise_on_error=False))

    def execute_sync(self, client: Any) -> None:
        """Send the batch on a sync client (the worker's fast lane)."""
        report_errors(self._queue(client).execute(raise_on_error=False))


def report_errors(results: list[Any]) -> None:
    """Log the commands of a settled batch that Redis refused.

    A reply that cannot be written (its key holds another type: WRONGTYPE)
    is an error of that one entry, never of the worker: the other commands
    ran, the entry is acknowledged and its sender times out. A vanished
    consumer group (NOGROUP) is raised: the worker recreates it.
    """
    for result in results:
        if isinstance(result, redis.ResponseError):
            if "NOGROUP" in str(result):
                raise result
            logger.error("settling a batch: Redis refused a command: %s", result)


def _ack(stream: str, group: str, ids: list[str]) -> tuple[Any, ...]:
    """XACK ``ids`` and record where the group stands, as one EVAL."""
    return ("EVAL", ACK_AND_RECORD, 2, stream, groups_of(stream), group, *ids)


def settle_all(
    context: WorkerContext, liveness: Liveness, batch: Batch, jobs: list[Job]
) -> None:
    """Settle a batch: ``settle`` each job, with the common case inline.

    A published event whose receivers all returned on its first delivery
    needs only its ack; that is most of what a draining worker settles.
    """
    service = context.config.service
    signed = context.bus.signer is not None
    seconds = once.ttl(context.bus.config.max_age)
    acks = batch.acks
    publish = Mode.PUBLISH
    for job in jobs:
        if job.envelope.mode is publish and not job.errors and job.recorded is None:
            if signed:
                once.record(batch, job, seconds)
            # batch.xack, inline (a call costs as much as the rest here)
            ids = acks.get((job.stream, service))
            if ids is None:
                ids = acks[(job.stream, service)] = []
            ids.append(job.entry_id)
        else:
            settle(context, liveness, batch, job)


def settle(context: WorkerContext, liveness: Liveness, batch: Batch, job: Job) -> None:
    """Reply and ack; or retry / dead-letter a failure nobody was told of.

    A caller that waits gets the first failure at once; retries are for
    events nobody waits for (``busignal.worker.retrying``).
    """
    env = job.envelope
    waiting = env.mode is not Mode.PUBLISH and not env.expired()
    if waiting:
        reply = encode_reply(
            context.config.service,
            context.consumer,
            job.outcomes,
            message_id=env.message_id,
            signer=context.bus.signer,
            max_size=context.bus.config.max_payload,
        )
        batch.rpush(env.reply_to, reply)
        batch.expire(env.reply_to, context.bus.config.reply_ttl)
    elif job.failed or job.recorded is not None:
        _retry_or_bury(context, liveness, batch, job)
        return
    if context.bus.signer is not None:
        once.record(batch, job, once.ttl(context.bus.config.max_age))
    batch.xack(job.stream, context.config.service, job.entry_id)
    if job.recorded is not None:
        batch.delete(retrying.outcomes_key(context, job))


def _retry_or_bury(
    context: WorkerContext, liveness: Liveness, batch: Batch, job: Job
) -> None:
    """Settle a job that failed or was a retry: on each receiver's policy."""
    now, env = time.time(), job.envelope
    verdict = retrying.verdict(context, job, now)
    key = retrying.outcomes_key(context, job)
    if verdict.dead is not None:
        bury(context, batch, job, verdict.dead, attempts=verdict.runs)
    elif verdict.wait is None:
        if context.bus.signer is not None:
            once.record(batch, job, once.ttl(context.bus.config.max_age))
        batch.xack(job.stream, context.config.service, job.entry_id)
        batch.delete(key)
    else:
        # The outcomes go before the entry is due again, in this batch.
        batch.hset(key, verdict.recorded.encode())
        batch.expire(key, retrying.record_ttl(verdict.recorded, now))
        liveness.schedule_retry(
            job.stream, job.entry_id, job.delivery.attempt, verdict.wait
        )
        if verdict.retrying:
            logger.info(
                "retrying %s of signal %s (message %s); next run in %.1fs",
                ", ".join(verdict.retrying),
                job.delivery.signal,
                env.message_id,
                verdict.wait,
            )


def judged(
    context: WorkerContext, batch: Batch, jobs: list[Job], now: float
) -> list[Job]:
    """Recalled jobs to run (``retrying.judge``); poison goes to the dead letters.

    Only the receivers that are due and have not succeeded stay in a job.
    """
    runnable, poison = retrying.judge(context, jobs, now)
    for job, reason in poison:
        bury(context, batch, job, reason, attempts=job.delivery.attempt)
    return runnable


def bury(
    context: WorkerContext, batch: Batch, job: Job, reason: str, *, attempts: int
) -> None:
    """Dead-letter a job's entry and drop its recorded outcomes.

    A replayed dead letter is a new entry: every receiver runs again.
    """
    entry = (job.stream, job.entry_id, job.fields, attempts)
    dead_letter(context, batch, entry, reason)
    if job.recorded is not None:
        batch.delete(retrying.outcomes_key(context, job))


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
