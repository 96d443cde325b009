"""Turning a batch of read entries into jobs: ``prepare``.

Every entry a worker reads goes through here, on the loop or the lane
thread: it is decoded and matched to its receivers, or it goes to the
batch's dead letters (bad), or it is acknowledged at once (a dead-letter
replay meant for another service).
"""

from __future__ import annotations

from collections.abc import Sequence

from busignal.wire import envelope
from busignal.wire.envelope import BadEntry
from busignal.wire.records import FIELD_SERVICE
from busignal.worker.context import WorkerContext
from busignal.worker.delivery import Delivery, Job, Receiving
from busignal.worker.reading import Entry
from busignal.worker.routes import Match, Route
from busignal.worker.settle import Batch, dead_letter

__all__ = ["prepare"]


def prepare(
    context: WorkerContext, entries: Sequence[Entry], receiving: Receiving | None
) -> tuple[list[Job], Batch]:
    """Decode a batch into jobs; bad entries go to the batch's dead letters.

    Runs for every event a worker reads, so what is the same for a whole
    stream (its signal and route) or for one sender (the receivers it
    matches) is looked up once per batch. A redelivered entry is judged
    later, against its recorded outcomes (``busignal.worker.retrying``).
    """
    batch = Batch()
    jobs: list[Job] = []
    service = context.config.service
    target_self = service.encode()
    signer = context.bus.signer
    max_size = context.bus.config.max_payload
    namespace, max_age = context.keys.namespace, context.bus.config.max_age
    decode = envelope.decode
    streams: dict[str, tuple[str, Route]] = {}
    matches: dict[tuple[str, str], tuple[list[Match], object, bool]] = {}
    for entry in entries:
        stream, entry_id, fields, attempt = entry
        target = fields.get(FIELD_SERVICE)
        if target is not None and target != target_self:
            # A dead-letter replay meant for another service.
            batch.xack(stream, service, entry_id)
            continue
        known = streams.get(stream)
        if known is None:
            name = context.keys.signal_of(stream)
            route = context.routes.route(name)
            known = streams[stream] = (name, route)
        signal_name, route = known
        try:
            env = decode(
                fields, signal_name, signer, max_size, stream, namespace, max_age
            )
        except BadEntry as exc:
            dead_letter(context, batch, entry, str(exc))
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
        job.receiving = receiving
        jobs.append(job)
    return jobs, batch
