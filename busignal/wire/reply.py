"""One service's reply to a send: the format a worker writes, no I/O.

A worker sends one reply per event and service: the results of that
service's receivers in connection order. The caller gathers them with
``busignal.bus.collector.Collector``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from busignal.errors import SerializationError
from busignal.wire import codec
from busignal.wire.remote import encode_error

__all__ = ["Outcome", "decode_reply", "encode_reply"]


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


def encode_reply(service: str, worker: str, outcomes: list[Outcome]) -> bytes:
    """Encode a service's reply; a result that cannot be encoded becomes an error.

    Only that receiver's response is replaced; the others are sent as they are.
    """
    try:
        return codec.dumps([service, worker, [_item(o) for o in outcomes]])
    except SerializationError:
        fixed = [
            o if o.error is not None or _encodable(o.value) else _unencodable_result(o)
            for o in outcomes
        ]
        return codec.dumps([service, worker, [_item(o) for o in fixed]])


def decode_reply(data: bytes) -> tuple[str, str, list[Any]]:
    """Decode a reply; raises codec.DecodeError or ValueError if malformed."""
    reply = codec.loads(data)
    if not (isinstance(reply, list) and len(reply) == 3 and isinstance(reply[2], list)):
        raise ValueError(f"malformed reply {reply!r}")
    return str(reply[0]), str(reply[1]), reply[2]
