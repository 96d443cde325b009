"""One service's reply to a send: the format a worker writes, no I/O.

A worker sends one reply per event and service: the results of that
service's receivers in connection order. The caller gathers them with
``busignal.bus.collector.Collector``.

With a secret, a reply is the 32-byte HMAC-SHA256 of the send's message
id and the reply body, then the body. The body names the service and the
worker, so the MAC covers them too; the message id binds the reply to its
send, so a reply captured from one send cannot answer another. The caller
checks it before decoding anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from busignal.errors import DecodeError, SerializationError
from busignal.wire import codec
from busignal.wire.remote import encode_error
from busignal.wire.signing import DIGEST_SIZE, Signer

__all__ = ["Outcome", "decode_reply", "encode_reply", "open_reply"]

_REPLY_MAC = b"busignal/reply"  # what the MAC is of: never valid for an event


@dataclass(slots=True)
class Outcome:
    """What one receiver did in a worker: a value or an exception."""

    receiver_id: str
    value: object = None
    error: BaseException | None = None
    seconds: float = 0.0


def _encodable(value: object) -> bool:
    try:
        codec.dumps(value)
    except SerializationError:
        return False
    return True


def _item(outcome: Outcome) -> list[object]:
    if outcome.error is None:
        return [outcome.receiver_id, True, outcome.value]
    return [outcome.receiver_id, False, encode_error(outcome.error, _encodable)]


def _unencodable_result(outcome: Outcome) -> Outcome:
    value = outcome.value
    cls = type(value)
    error = SerializationError(
        f"receiver {outcome.receiver_id!r} returned a {cls.__module__}."
        f"{cls.__qualname__}, which cannot be sent back; return plain data or "
        f"register a codec with busignal.wire.codec.register()"
    )
    return Outcome(outcome.receiver_id, error=error)


def _body(service: str, worker: str, outcomes: list[Outcome]) -> bytes:
    try:
        return codec.dumps([service, worker, [_item(o) for o in outcomes]])
    except SerializationError:
        fixed = [
            o if o.error is not None or _encodable(o.value) else _unencodable_result(o)
            for o in outcomes
        ]
        return codec.dumps([service, worker, [_item(o) for o in fixed]])


def _too_large(outcome: Outcome, size: int, limit: int) -> Outcome:
    error = SerializationError(
        f"the reply of receiver {outcome.receiver_id!r}'s service is {size} bytes, "
        f"over the {limit}-byte limit; return less (identifiers, not data), or "
        f"raise max_payload in busignal.configure() on both sides"
    )
    return Outcome(outcome.receiver_id, error=error, seconds=outcome.seconds)


def encode_reply(
    service: str,
    worker: str,
    outcomes: list[Outcome],
    *,
    message_id: str = "",
    signer: Signer | None = None,
    max_size: int = codec.MAX_SIZE,
) -> bytes:
    """Encode a service's reply; a result that cannot be encoded becomes an error.

    Only that receiver's response is replaced; the others are sent as they
    are. A reply over ``max_size`` bytes (the caller would refuse it) has
    every response replaced by an error saying so. With a signer, the reply
    is signed for ``message_id`` (see the module docstring).
    """
    body = _body(service, worker, outcomes)
    if len(body) > max_size:
        size = len(body)
        body = _body(service, worker, [_too_large(o, size, max_size) for o in outcomes])
    if signer is None:
        return body
    return signer.sign(_REPLY_MAC, message_id.encode(), body) + body


def open_reply(
    data: bytes, *, message_id: str, signer: Signer | None, max_size: int
) -> tuple[str, str, list[Any]]:
    """Check and decode one reply to the send of ``message_id``.

    Raises DecodeError (a ValueError) saying why for a reply that is
    unsigned or badly signed (with a signer), signed for another send, over
    ``max_size`` bytes, or not a reply.
    """
    if len(data) > max_size + DIGEST_SIZE:
        raise DecodeError(f"reply of {len(data)} bytes is over the {max_size} limit")
    if signer is not None:
        mac, data = data[:DIGEST_SIZE], data[DIGEST_SIZE:]
        if not signer.verify(mac, _REPLY_MAC, message_id.encode(), data):
            raise DecodeError(
                "unsigned reply, or signed with another secret or for another send"
            )
    return decode_reply(data, max_size=max_size)


def decode_reply(
    data: bytes, *, max_size: int = codec.MAX_SIZE
) -> tuple[str, str, list[Any]]:
    """Decode a reply body; raises DecodeError (a ValueError) if malformed."""
    reply = codec.loads(data, max_size=max_size)
    if not (
        type(reply) is list
        and len(reply) == 3
        and type(reply[0]) is str
        and type(reply[1]) is str
        and type(reply[2]) is list
    ):
        raise DecodeError(f"malformed reply {reply!r:.200}")
    return reply[0], reply[1], reply[2]
