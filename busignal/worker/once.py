"""Running a signed event at most once per service, within its age limit.

A captured signed entry can be added to its stream again, as often as
one likes, while its signature is young enough. So a worker records each
message id its service handled (``keys.handled_of``: a string key with a
TTL of ``max_age + MAX_CLOCK_SKEW``, in the stream's slot), in the batch
that acknowledges the entry; an entry whose id is recorded is acked
without running and counted (``Observer.skipped_duplicate``). The record
outlives the signature: by the time it lapses, the event is too old to
run anyway.

Checked before a batch runs (one MGET a batch) and recorded with the ack
(one SET NX a handled entry, in the same pipeline), so an entry that was
run but not acked (its worker died) still runs again: the record is
written only with the ack. Only with a secret: without one, anyone who
can write to Redis can forge a fresh message id, so there is nothing to
protect and the hot path stays as it was.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from busignal.transport.raw import round_trip
from busignal.wire.envelope import MAX_CLOCK_SKEW
from busignal.wire.keys import handled_of

if TYPE_CHECKING:
    from busignal.worker.context import WorkerContext
    from busignal.worker.delivery import Job
    from busignal.worker.observe import Observer

__all__ = [
    "record",
    "skip_handled",
    "skip_handled_sync",
    "ttl",
    "unhandled",
    "warn_if_unsigned",
]

logger = logging.getLogger(__name__)


class Commands(Protocol):
    """The part of a worker's batch (``settle.Batch``) this module writes to."""

    def xack(self, stream: str, group: str, entry_id: str) -> None: ...

    def execute_command(self, *args: Any) -> None: ...


def _key(job: Job) -> str:
    return handled_of(job.stream, job.delivery.service, job.envelope.message_id)


def ttl(max_age: float) -> int:
    """Seconds a record lives: until a signature of its event is too old."""
    return math.ceil(max_age + MAX_CLOCK_SKEW)


def record(pipe: Commands, job: Job, seconds: int) -> None:
    """Record in ``pipe`` (before its ack) that this service handled ``job``."""
    pipe.execute_command("SET", _key(job), b"1", "NX", "EX", seconds)


def _unhandled(
    jobs: list[Job],
    pipe: Commands,
    observers: Sequence[Observer],
    seen: Sequence[Any],
) -> list[Job]:
    """The jobs not seen before; the others are acked in ``pipe`` and reported."""
    fresh: list[Job] = []
    for job, mark in zip(jobs, seen, strict=True):
        if mark is None:
            fresh.append(job)
            continue
        pipe.xack(job.stream, job.delivery.service, job.entry_id)
        for observer in observers:
            hook = getattr(observer, "skipped_duplicate", None)
            try:
                if hook is not None:
                    hook(job.delivery.signal, job.delivery.service, job.envelope)
            except Exception:
                logger.exception("observer %r failed", observer)
    return fresh


def skip_handled_sync(
    client: Any, jobs: list[Job], pipe: Commands, observers: Sequence[Observer]
) -> list[Job]:
    """``skip_handled`` for the lane (a single Redis), on a sync client."""
    if not jobs:
        return jobs
    seen = round_trip(client, [("MGET", *map(_key, jobs))])[0]
    return _unhandled(jobs, pipe, observers, seen)


async def skip_handled(
    client: Any,
    jobs: list[Job],
    pipe: Commands,
    observers: Sequence[Observer],
    *,
    cluster: bool,
) -> list[Job]:
    """The jobs of a batch whose message id this service has not handled.

    Those it has are acknowledged in ``pipe`` without running and reported
    to the observers. Call it only with a secret (see the docstring).
    """
    if not jobs:
        return jobs
    keys = [_key(job) for job in jobs]
    seen = await (client.mget_nonatomic(keys) if cluster else client.mget(keys))
    return _unhandled(jobs, pipe, observers, seen)


async def unhandled(
    context: WorkerContext, client: Any, jobs: list[Job], batch: Commands
) -> list[Job]:
    """``skip_handled`` when the bus signs; without a secret, ``jobs`` as they are."""
    if context.bus.signer is None:
        return jobs
    return await skip_handled(
        client,
        jobs,
        batch,
        context.observers,
        cluster=context.bus.transport.is_cluster,
    )


def warn_if_unsigned(context: WorkerContext) -> None:
    """Say at start, once, that a worker without a secret trusts every entry."""
    if context.bus.signer is None:
        logger.warning(
            "no secret: entries are not authenticated, and any process that "
            "can write to Redis can make service %s run its receivers; set "
            "BUSIGNAL_SECRET (the same on senders and workers) to sign them",
            context.config.service,
        )
