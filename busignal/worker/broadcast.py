"""The broadcast reader: broadcast receivers run in every worker process.

Broadcast streams are read without a consumer group, from where they
were when the worker started, alongside the worker's group reads.
Broadcast receivers keep process-local state (caches), so a process that
was not running has nothing to catch up on; their results are logged,
never replied. Kept apart from ``busignal.worker.worker``: it shares the worker's
runner and decoding but none of its groups, acks or liveness.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from busignal.transport.clients import CONNECTION_ERRORS
from busignal.wire import envelope
from busignal.wire.envelope import BadEntry, Mode
from busignal.worker.delivery import Delivery, Job
from busignal.worker.reading import Entry, Group, Reads, entries, slot_groups, text

if TYPE_CHECKING:
    from busignal.worker.worker import Worker

__all__ = ["broadcast_job", "positions", "read_broadcasts"]

logger = logging.getLogger(__name__)


async def positions(worker: Worker, client: Any) -> dict[str, str]:
    """Where each broadcast stream ends now: the reader starts after it."""
    found: dict[str, str] = {}
    for stream in worker.routes.broadcast_streams(worker.keys):
        last = await client.xrevrange(stream, count=1)
        found[stream] = text(last[0][0]) if last else "0-0"
    return found


async def read_broadcasts(worker: Worker, positions: dict[str, str]) -> None:
    """Run broadcast receivers on every event, in every worker process.

    Read without a consumer group from where the streams were when the
    worker started (it is ready only once those positions are known):
    broadcast receivers keep process-local state (caches), so a process
    that was not running has nothing to catch up on. Their results are
    logged, not replied.
    """
    config, bus = worker.config, worker.bus
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

    try:
        while not worker.stopping:
            try:
                responses = await reads.next(groups, read)
            except CONNECTION_ERRORS as exc:
                await worker._pause(exc)
                continue
            jobs = []
            for stream, entry_id, fields, _ in (
                e for response in responses for e in entries(response)
            ):
                positions[stream] = entry_id
                job = broadcast_job(worker, (stream, entry_id, fields, 1))
                if job is not None:
                    jobs.append(job)
            await worker._run(jobs)
    finally:
        reads.cancel()
        await client.aclose()


def broadcast_job(worker: Worker, entry: Entry) -> Job | None:
    """Decode an entry into a job of broadcast receivers; None when it has none."""
    stream, entry_id, fields, _ = entry
    signal_name = worker.keys.signal_of(stream)
    try:
        env = envelope.decode(
            fields,
            signal=signal_name,
            signer=worker.bus.signer,
            max_size=worker.bus.config.max_payload,
            stream=stream,
            namespace=worker.keys.namespace,
            max_age=worker.bus.config.max_age,
        )
    except BadEntry as exc:
        logger.error("broadcast: ignoring entry %s of %s: %s", entry_id, stream, exc)
        return None
    regs, sender = worker.routes.route(signal_name).match(env.sender, broadcast=True)
    if not regs:
        return None
    env = dataclasses.replace(env, mode=Mode.PUBLISH)
    delivery = Delivery(env.message_id, entry_id, signal_name, "", 1, env.trace)
    job = Job(stream, entry_id, fields, env, delivery, regs, sender)
    job.receiving = worker.receiving
    return job
