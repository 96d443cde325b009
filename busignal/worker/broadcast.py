"""The broadcast reader: broadcast receivers run in every worker process.

Broadcast streams are read without a consumer group, from where they
were when the worker started, alongside the worker's group reads.
Broadcast receivers keep process-local state (caches), so a process that
was not running has nothing to catch up on; their results are logged,
never replied. Kept apart from ``busignal.worker.worker``: it shares the worker's
runner and decoding but none of its groups, acks or liveness. What it calls
back is a ``BroadcastHost``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Protocol

from busignal.transport.clients import CONNECTION_ERRORS
from busignal.wire import envelope
from busignal.wire.envelope import BadEntry, Mode
from busignal.wire.records import text
from busignal.worker import backoff
from busignal.worker.context import WorkerContext
from busignal.worker.delivery import Delivery, Job, Receiving
from busignal.worker.reading import Entry, Group, Reads, entries, slot_groups

__all__ = ["BroadcastHost", "broadcast_job", "positions", "read_broadcasts"]

logger = logging.getLogger(__name__)


class BroadcastHost(Protocol):
    """What the broadcast reader needs of its worker."""

    @property
    def stopping(self) -> bool:
        """Whether the worker is stopping: the reader ends."""

    @property
    def receiving(self) -> Receiving | None:
        """The hook around each job's receivers (tracing), read per job."""

    async def run_jobs(self, jobs: list[Job]) -> None:
        """Run jobs on the worker's receiver threads and loop."""


async def positions(context: WorkerContext, client: Any) -> dict[str, str]:
    """Where each broadcast stream ends now: the reader starts after it."""
    found: dict[str, str] = {}
    for stream in context.routes.broadcast_streams(context.keys):
        last = await client.xrevrange(stream, count=1)
        found[stream] = text(last[0][0]) if last else "0-0"
    return found


async def read_broadcasts(
    context: WorkerContext, host: BroadcastHost, positions: dict[str, str]
) -> None:
    """Run broadcast receivers on every event, in every worker process.

    Read without a consumer group from where the streams were when the
    worker started (it is ready only once those positions are known):
    broadcast receivers keep process-local state (caches), so a process
    that was not running has nothing to catch up on. Their results are
    logged, not replied.
    """
    config, bus = context.config, context.bus
    client: Any = bus.transport.async_client(
        socket_timeout=config.block_ms / 1000 + bus.config.socket_timeout
    )
    groups = slot_groups(positions, cluster=bus.transport.is_cluster)
    reads: Reads[Any] = Reads()

    async def read(group: Group) -> Any:
        return await client.xread(
            {s: positions[s] for s in group},
            count=config.batch,
            block=config.block_ms,
        )

    failures = 0
    try:
        while not host.stopping:
            try:
                responses = await reads.next(groups, read)
            except CONNECTION_ERRORS as exc:
                failures += 1
                await backoff.pause(exc, failures)
                continue
            failures = 0
            jobs = []
            for stream, entry_id, fields, _ in (
                e for response in responses for e in entries(response)
            ):
                positions[stream] = entry_id
                job = broadcast_job(context, (stream, entry_id, fields, 1))
                if job is not None:
                    job.receiving = host.receiving
                    jobs.append(job)
            await host.run_jobs(jobs)
    finally:
        reads.cancel()
        await client.aclose()


def broadcast_job(context: WorkerContext, entry: Entry) -> Job | None:
    """Decode an entry into a job of broadcast receivers; None when it has none."""
    stream, entry_id, fields, _ = entry
    signal_name = context.keys.signal_of(stream)
    try:
        env = envelope.decode(
            fields,
            signal=signal_name,
            signer=context.bus.signer,
            max_size=context.bus.config.max_payload,
            stream=stream,
            namespace=context.keys.namespace,
            max_age=context.bus.config.max_age,
        )
    except BadEntry as exc:
        logger.error("broadcast: ignoring entry %s of %s: %s", entry_id, stream, exc)
        return None
    regs, sender = context.routes.route(signal_name).match(env.sender, broadcast=True)
    if not regs:
        return None
    env = dataclasses.replace(env, mode=Mode.PUBLISH)
    delivery = Delivery(env.message_id, entry_id, signal_name, "", 1, env.trace)
    return Job(stream, entry_id, fields, env, delivery, regs, sender)
