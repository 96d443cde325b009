"""The wire format of one event (an envelope) and of one service's reply.

A stream entry has the fields ``v`` (wire version), ``b`` (the msgpack body)
and, when the bus has a secret, ``h`` (HMAC-SHA256 of the signal name and
the body). The body is one msgpack array::

    [message_id, signal, sender, mode, reply_to, deadline, trace, kwargs]

The kwargs are last so the body is the packed header with the separately
packed kwargs appended: path-aware encoding errors and no second copy.
A reply is ``[service, worker, [[receiver_id, ok, value_or_error], ...]]``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NoReturn

import msgpack

from busignal.errors import BadEntry, SerializationError
from busignal.wire import codec
from busignal.wire.signing import Signer

__all__ = ["BadEntry", "Envelope", "Mode", "decode", "encode", "new_message_id"]

WIRE_VERSION = b"1"
_FIELD_VERSION = b"v"
_FIELD_BODY = b"b"
_FIELD_MAC = b"h"
_BODY_LENGTH = 8


class Mode(IntEnum):
    """How the caller collects results: it tells the worker whether to stop early."""

    PUBLISH = 0
    SEND = 1
    SEND_ROBUST = 2


_MODES = (Mode.PUBLISH, Mode.SEND, Mode.SEND_ROBUST)  # by value, cheaper than Mode(n)


@dataclass(slots=True)
class Envelope:
    """One event as sent: what a worker needs to run the receivers and reply.

    Not frozen, though never changed: a worker makes one per event, and a
    frozen dataclass costs four times as much to create.
    """

    message_id: str
    signal: str
    sender: str
    mode: Mode
    reply_to: str
    deadline: float
    trace: str
    kwargs: dict[str, Any]

    def expired(self, now: float | None = None) -> bool:
        """True once nobody waits for the reply any more (publish never expires)."""
        if not self.deadline:
            return False
        return (time.time() if now is None else now) > self.deadline


def new_message_id() -> str:
    """A fresh message id: 128 random bits as hex, unique across processes.

    The same randomness as ``uuid4().hex`` at a quarter of the cost.
    """
    return os.urandom(16).hex()


def encode(
    *,
    signal: str,
    sender: str,
    kwargs: Mapping[str, object],
    mode: Mode,
    reply_to: str = "",
    deadline: float = 0.0,
    trace: str = "",
    message_id: str | None = None,
    signer: Signer | None = None,
    max_size: int,
) -> tuple[str, dict[bytes, bytes]]:
    """Encode one event into stream fields; returns ``(message_id, fields)``.

    Raises SerializationError, naming the kwarg, before any I/O, and when the
    body exceeds ``max_size`` bytes.
    """
    mid = message_id or new_message_id()
    packed_kwargs = codec.dumps_kwargs(kwargs)
    head = msgpack.packb([mid, signal, sender, int(mode), reply_to, deadline, trace])
    body = b"\x98" + head[1:] + packed_kwargs
    if len(body) > max_size:
        raise SerializationError(
            f"signal {signal!r}: the encoded event is {len(body)} bytes, over the "
            f"{max_size}-byte limit; send identifiers instead of large values, "
            f"or raise max_payload in busignal.configure()"
        )
    fields = {_FIELD_VERSION: WIRE_VERSION, _FIELD_BODY: body}
    if signer is not None:
        fields[_FIELD_MAC] = signer.sign(signal.encode(), body)
    return mid, fields


def _explain_bad_body(data: Any) -> NoReturn:
    if not (isinstance(data, list) and len(data) == _BODY_LENGTH):
        raise BadEntry(f"body is not an array of {_BODY_LENGTH} items")
    kinds: tuple[type | tuple[type, ...], ...] = (
        str, str, str, int, str, (int, float), str, dict
    )  # fmt: skip
    for index, (item, kind) in enumerate(zip(data, kinds, strict=True)):
        if not isinstance(item, kind) or isinstance(item, bool):
            raise BadEntry(f"body item {index} has type {type(item).__name__}")
    if data[3] not in (0, 1, 2):
        raise BadEntry(f"unknown mode {data[3]!r}")
    raise BadEntry("kwargs has a key that is not a string")


def decode(
    fields: Mapping[bytes, bytes],
    *,
    signal: str,
    signer: Signer | None,
    max_size: int,
) -> Envelope:
    """Check and decode stream fields read from ``signal``'s stream.

    The signature is checked before anything is unpacked. Raises BadEntry
    with the reason for anything malformed, forged, unsigned (when a secret
    is set) or sitting on another signal's stream.
    """
    # A worker does this for every event: the common case (a known version,
    # unsigned, within size, the right shape) is checked inline,
    # each function call here costing as much as a check.
    body = fields.get(_FIELD_BODY)
    if (
        signer is not None
        or fields.get(_FIELD_VERSION) != WIRE_VERSION
        or body is None
        or len(body) > max_size
    ):
        body = _trusted_body(fields, signal, signer, max_size)
    try:
        data = codec.loads(body)
    except codec.DecodeError as exc:
        raise BadEntry(f"undecodable body: {exc}") from exc
    if type(data) is list and len(data) == _BODY_LENGTH:
        mid, name, sender, mode, reply_to, deadline, trace, kwargs = data
        if (
            type(mid) is str
            and type(name) is str
            and type(sender) is str
            and type(mode) is int
            and 0 <= mode <= 2
            and type(reply_to) is str
            and type(deadline) in (int, float)
            and type(trace) is str
            and type(kwargs) is dict
        ):
            for key in kwargs:  # every key can be a keyword argument
                if type(key) is not str:
                    raise BadEntry("kwargs has a key that is not a string")
            if name != signal:
                raise BadEntry(
                    f"entry names signal {name!r} but sits on {signal!r}'s stream"
                )
            mode = _MODES[mode]
            deadline = float(deadline)
            return Envelope(mid, name, sender, mode, reply_to, deadline, trace, kwargs)
    _explain_bad_body(data)


def _trusted_body(
    fields: Mapping[bytes, bytes], signal: str, signer: Signer | None, max_size: int
) -> bytes:
    """The body of an entry of a known version, within size, signed if need be."""
    version = fields.get(_FIELD_VERSION)
    if version != WIRE_VERSION:
        raise BadEntry(f"unknown wire version {version!r}")
    body = fields.get(_FIELD_BODY)
    if body is None:
        raise BadEntry("missing field 'b'")
    if len(body) > max_size:
        raise BadEntry(f"body of {len(body)} bytes is over the {max_size}-byte limit")
    if signer is not None:
        mac = fields.get(_FIELD_MAC)
        if mac is None:
            raise BadEntry("unsigned entry (a secret is configured)")
        if not signer.verify(mac, signal.encode(), body):
            raise BadEntry("bad signature")
    return body
