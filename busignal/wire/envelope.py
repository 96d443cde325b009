"""The wire format of one event (an envelope) and of one service's reply.

A stream entry has the fields ``v`` (wire version) and ``b`` (the msgpack
body); a dead-letter replay adds ``s``, the one service it is meant for.
When the bus has a secret, ``t`` (sent-at, milliseconds since the epoch, in
ASCII) and ``h`` (HMAC-SHA256) are added. The MAC binds the body to its
place and time: it covers the namespace, the events stream (partition
included), the target service (``s``, empty for every service), the wire
version, the sent-at time and the body. A signed entry copied to another
namespace, signal or partition, aimed at another service, or read more
than ``max_age`` seconds after it was sent is refused (see
``docs/security.md``). The body is one msgpack array::

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
from busignal.wire.keys import reply_of
from busignal.wire.signing import Signer

__all__ = [
    "BadEntry",
    "Envelope",
    "Mode",
    "PublishBatch",
    "decode",
    "encode",
    "new_message_id",
    "sign_fields",
    "verify_fields",
]

WIRE_VERSION = b"1"
_FIELD_VERSION = b"v"
_FIELD_BODY = b"b"
_FIELD_MAC = b"h"
_FIELD_SENT_AT = b"t"
_FIELD_TARGET = b"s"
_BODY_LENGTH = 8
_EVENT_MAC = b"busignal/event"  # what the MAC is of: never valid for a reply

DEFAULT_MAX_AGE = 86_400.0
"""How old (seconds) a signed event may be when a worker reads it: a day."""

MAX_CLOCK_SKEW = 300.0
"""How far (seconds) a signed event's sent-at may be ahead of a worker's clock.

A handled message id is remembered for ``max_age + MAX_CLOCK_SKEW``, so
that an event is too old before its record lapses.
"""


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


#: A body is an array of 8: the head's 7 fields (the message id first),
#: then the kwargs map, already packed (``codec.dumps_kwargs``).
_BODY_ARRAY = b"\x98"
#: msgpack's header of a 32-character str: a ``new_message_id()``.
_ID_STR = b"\xd9\x20"


def _after_id(
    signal: str, sender: str, mode: Mode, reply_to: str, deadline: float, trace: str
) -> bytes:
    """The head's fields after the message id, packed, without their array's
    header: the one place the head's layout is written."""
    packed: bytes = msgpack.packb(
        [signal, sender, int(mode), reply_to, deadline, trace]
    )
    return packed[1:]


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
    namespace: str = "",
    stream: str = "",
    sent_at: float | None = None,
) -> tuple[str, dict[bytes, bytes]]:
    """Encode one event into stream fields; returns ``(message_id, fields)``.

    With a signer, the entry is signed for ``namespace`` and ``stream`` (the
    events stream it is added to) at ``sent_at`` (default: now); a worker
    reading it anywhere else refuses it. Raises SerializationError, naming
    the kwarg, before any I/O, and when the body exceeds ``max_size`` bytes.
    """
    mid = message_id or new_message_id()
    packed_kwargs = codec.dumps_kwargs(kwargs)
    head = msgpack.packb(mid) + _after_id(
        signal, sender, mode, reply_to, deadline, trace
    )
    body = _BODY_ARRAY + head + packed_kwargs
    if len(body) > max_size:
        _too_large(signal, len(body), max_size)
    fields = {_FIELD_VERSION: WIRE_VERSION, _FIELD_BODY: body}
    if signer is not None:
        sign_fields(fields, signer, namespace, stream, sent_at)
    return mid, fields


class PublishBatch:
    """Encodes the events of one ``publish_many``: one signal, one sender.

    What ``encode`` writes for each, for less: the head's fields other than
    the message id are the same for every event of the batch, so they are
    packed once, and the ids come from one read of the system's randomness.
    Signing still goes event by event (``sign_fields``).
    """

    __slots__ = ("_ids", "_max_size", "_signal", "_tail")

    def __init__(
        self, signal: str, sender: str, trace: str, count: int, max_size: int
    ) -> None:
        self._signal = signal
        self._max_size = max_size
        # [mid, signal, sender, mode, reply_to, deadline, trace] less the id.
        self._tail = _after_id(signal, sender, Mode.PUBLISH, "", 0.0, trace)
        random = os.urandom(16 * count).hex()
        self._ids = [random[i : i + 32] for i in range(0, 32 * count, 32)]

    def fields(self, index: int, kwargs: Mapping[str, object]) -> dict[bytes, bytes]:
        """The fields of the batch's ``index``-th event (unsigned)."""
        mid = self._ids[index]
        body = (
            _BODY_ARRAY
            + _ID_STR
            + mid.encode()
            + self._tail
            + codec.dumps_kwargs(kwargs)
        )
        if len(body) > self._max_size:
            _too_large(self._signal, len(body), self._max_size)
        return {_FIELD_VERSION: WIRE_VERSION, _FIELD_BODY: body}


def _too_large(signal: str, size: int, max_size: int) -> NoReturn:
    raise SerializationError(
        f"signal {signal!r}: the encoded event is {size} bytes, over the "
        f"{max_size}-byte limit; send identifiers instead of large values, "
        f"or raise max_payload in busignal.configure()"
    )


def _mac_parts(
    fields: Mapping[bytes, bytes], namespace: str, stream: str, sent_at: bytes
) -> tuple[bytes, ...]:
    return (
        _EVENT_MAC,
        namespace.encode(),
        stream.encode(),
        fields.get(_FIELD_TARGET, b""),
        fields.get(_FIELD_VERSION, b""),
        sent_at,
        fields.get(_FIELD_BODY, b""),
    )


def sign_fields(
    fields: dict[bytes, bytes],
    signer: Signer,
    namespace: str,
    stream: str,
    sent_at: float | None = None,
) -> None:
    """Sign ``fields`` (in place) for ``stream`` of ``namespace`` at ``sent_at``.

    The target service (``s``) must be set before: it is signed too. A
    dead-letter replay uses this to re-sign a letter for its service, now.
    """
    stamp = str(int((time.time() if sent_at is None else sent_at) * 1000)).encode()
    fields[_FIELD_SENT_AT] = stamp
    fields[_FIELD_MAC] = signer.sign(*_mac_parts(fields, namespace, stream, stamp))


def verify_fields(
    fields: Mapping[bytes, bytes], signer: Signer, namespace: str, stream: str
) -> bool:
    """Whether ``fields`` were signed for ``stream`` of ``namespace`` by any of
    ``signer``'s secrets (their age is not looked at)."""
    mac = fields.get(_FIELD_MAC)
    stamp = fields.get(_FIELD_SENT_AT)
    if mac is None or stamp is None:
        return False
    return signer.verify(mac, *_mac_parts(fields, namespace, stream, stamp))


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
    signal: str,
    signer: Signer | None,
    max_size: int,
    stream: str,
    namespace: str,
    max_age: float = DEFAULT_MAX_AGE,
    now: float | None = None,
) -> Envelope:
    """Check and decode stream fields read from ``stream`` (of ``signal``).

    The signature is checked before anything is unpacked. Raises BadEntry
    with the reason for anything malformed, forged, unsigned (when a secret
    is set), signed for another place, older than ``max_age`` seconds,
    sitting on another signal's stream, or asking for its reply anywhere
    but its own reply key. A worker passes the arguments by position: a
    call with six keywords costs three times one without.
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
        body = _trusted_body(
            fields, signer, max_size, (namespace, stream, max_age, now)
        )
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
            own = reply_of(stream, mid) if mode else ""
            if reply_to != own:
                raise BadEntry(
                    f"reply key {reply_to[:200]!r} is not this event's own "
                    f"({own!r}); a worker writes replies only to that key"
                )
            mode = _MODES[mode]
            deadline = float(deadline)
            return Envelope(mid, name, sender, mode, reply_to, deadline, trace, kwargs)
    _explain_bad_body(data)


def _trusted_body(
    fields: Mapping[bytes, bytes],
    signer: Signer | None,
    max_size: int,
    place: tuple[str, str, float, float | None],
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
        namespace, stream, max_age, now = place
        if not verify_fields(fields, signer, namespace, stream):
            raise BadEntry(
                "bad signature (forged, or signed for another namespace, stream, "
                "partition or service)"
            )
        _check_age(fields[_FIELD_SENT_AT], max_age, time.time() if now is None else now)
    return body


def _check_age(stamp: bytes, max_age: float, now: float) -> None:
    """BadEntry unless a (verified) sent-at is within ``max_age`` of ``now``."""
    try:
        age = now - int(stamp) / 1000
    except ValueError:
        raise BadEntry(f"sent-at {stamp[:40]!r} is not a number") from None
    if age > max_age:
        raise BadEntry(
            f"signed event sent {age:.0f}s ago, older than max_age={max_age:g}s: "
            f"a late replay, or a backlog older than the limit; if it must "
            f"still run, `busignal dead replay` re-signs it"
        )
    if -age > MAX_CLOCK_SKEW:
        raise BadEntry(
            f"signed event sent {-age:.0f}s in the future (more than "
            f"{MAX_CLOCK_SKEW:g}s ahead): check the clocks of senders and workers"
        )
