"""The stream entries a bus writes: one event's fields, for a send or a publish.

Encoding happens before any I/O, so a kwarg that cannot be sent raises
``SerializationError`` while nothing is written yet. The bus owns the
round trips; this is only what goes in them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from busignal import tracing
from busignal.bus.partitions import Partitioning
from busignal.errors import SerializationError
from busignal.names import sender_name
from busignal.wire import envelope
from busignal.wire.envelope import Mode
from busignal.wire.keys import Keys
from busignal.wire.signing import Signer

__all__ = ["EntryEncoder", "Stored"]


@dataclass(frozen=True, slots=True)
class Stored:
    """An event stored before it was sent (a transactional outbox row).

    Its message id and trace were fixed when it was stored, so a relay that
    sends it twice (a crash between the XADD and the row's delete) sends
    the same message, which signed workers run once.
    """

    signal: str
    sender: str
    kwargs: Mapping[str, object]
    message_id: str
    trace: str = ""
    partitioning: Partitioning | None = None


@dataclass(frozen=True, slots=True)
class EntryEncoder:
    """Encodes the entries of one bus: its keys, its signer, its size limit."""

    keys: Keys
    signer: Signer | None
    max_payload: int

    def encode(
        self,
        signal: str,
        sender: object,
        kwargs: Mapping[str, object],
        mode: Mode,
        timeout: float = 0.0,
        partition: int = 0,
        sent_at: float | None = None,
    ) -> tuple[str, dict[bytes, bytes], float]:
        """(message id, fields, deadline) of one event; deadline 0 for none.

        Signed (with a signer) for the events stream of ``partition``, as
        sent at ``sent_at`` (default: now; a delayed event's due time).
        """
        deadline = time.time() + timeout if timeout else 0.0
        mid = envelope.new_message_id()
        reply_to = (
            "" if mode is Mode.PUBLISH else self.keys.reply(mid, signal, partition)
        )
        _, fields = envelope.encode(
            signal=signal,
            sender=sender_name(sender),
            kwargs=kwargs,
            mode=mode,
            reply_to=reply_to,
            deadline=deadline,
            trace=tracing.outgoing(),
            message_id=mid,
            signer=self.signer,
            max_size=self.max_payload,
            namespace=self.keys.namespace,
            stream=self.keys.events(signal, partition),
            sent_at=sent_at,
        )
        return mid, fields, deadline

    def encode_many(
        self,
        signal: str,
        sender: object,
        batch: Iterable[Mapping[str, object]],
        partitioning: Partitioning | None,
    ) -> list[tuple[str, dict[bytes, bytes]]]:
        """(stream, fields) of each event; SerializationError names a bad one."""
        batch = batch if isinstance(batch, list) else list(batch)
        encoded = []
        name, trace = sender_name(sender), tracing.outgoing()  # once per batch
        events = envelope.PublishBatch(
            signal, name, trace, len(batch), self.max_payload
        )
        streams = [self.keys.events(signal)]
        signer, namespace = self.signer, self.keys.namespace
        for index, kwargs in enumerate(batch):
            try:
                part = partitioning.choose(kwargs) if partitioning is not None else 0
                while len(streams) <= part:
                    streams.append(self.keys.events(signal, len(streams)))
                fields = events.fields(index, kwargs)
            except SerializationError as exc:
                raise SerializationError(f"batch item {index}: {exc}") from exc
            if signer is not None:
                envelope.sign_fields(fields, signer, namespace, streams[part])
            encoded.append((streams[part], fields))
        return encoded

    def encode_stored(self, event: Stored) -> tuple[str, dict[bytes, bytes]]:
        """(stream, fields) of a stored event, signed and sized as any publish.

        It is signed now, not when it was stored: the signature's age limit
        counts from the relay's send, however long the event waited.
        """
        part = event.partitioning.choose(event.kwargs) if event.partitioning else 0
        stream = self.keys.events(event.signal, part)
        _, fields = envelope.encode(
            signal=event.signal,
            sender=event.sender,
            kwargs=event.kwargs,
            mode=Mode.PUBLISH,
            trace=event.trace,
            message_id=event.message_id,
            signer=self.signer,
            max_size=self.max_payload,
            namespace=self.keys.namespace,
            stream=stream,
        )
        return stream, fields
