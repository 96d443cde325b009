"""Sending events that were stored first (the Django outbox's relay).

The events are encoded by the bus's own ``EntryEncoder``, so the bus's
namespace, secret, size limit and each signal's partitions apply to them as
to any publish. One round trip per batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from busignal.bus.bus import Bus
from busignal.bus.encoding import EntryEncoder, Stored
from busignal.bus.partitions import Announced, announce
from busignal.errors import SerializationError
from busignal.wire.records import text

__all__ = ["Stored", "StoredSender"]


class StoredSender:
    """Appends stored events to their streams on one bus."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.encoder = EntryEncoder(bus.keys, bus.signer, bus.config.max_payload)
        self._announced = Announced()

    def send(self, events: Sequence[Stored]) -> list[str | SerializationError]:
        """Append every event that encodes; return its entry id or its error.

        An event that cannot be encoded (over the size limit) is not sent and
        its SerializationError is returned in its place; the others go in one
        pipeline. BusUnavailable when Redis cannot be reached: then none was
        acknowledged, though some may have been appended.
        """
        encoded: list[tuple[str, dict[bytes, bytes]] | SerializationError] = []
        for event in events:
            try:
                encoded.append(self.encoder.encode_stored(event))
            except SerializationError as exc:
                encoded.append(exc)
        bus = self.bus
        with bus.transport.errors():
            for event in events:
                if count := self._announced.pending(event.signal, event.partitioning):
                    announce(bus.client, bus.keys, event.signal, count)
                    self._announced.add(event.signal, count)
            pipe = bus.client.pipeline(transaction=False)
            for entry in encoded:
                if not isinstance(entry, SerializationError):
                    pipe.xadd(entry[0], entry[1])  # type: ignore[arg-type]  # bytes fields are fine
            ids = iter(pipe.execute())
        return [
            e if isinstance(e, SerializationError) else text(next(ids)) for e in encoded
        ]
