"""The codec's type table: which encoder each Python type gets, and the encoders.

Shared by ``busignal.wire.codec`` (which packs with these tables and lets
:func:`~busignal.wire.codec.register` add to them) and
``busignal.wire.codec_explain`` (which walks a value that failed to pack
and must choose the same encoder for every value as packing did). Kept
apart so that both read one table and neither imports the other back.

Internal to ``busignal.wire``: the format itself is described in
``busignal.wire.codec``'s docstring.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple
from uuid import UUID

import msgpack

from busignal.errors import DecodeError, SerializationError

__all__: list[str] = []  # nothing here is for other subpackages

MAX_DEPTH = 100
"""How deeply tuples, sets, frozensets and codec values may nest."""

TUPLE, SET, FROZENSET = 64, 65, 66
DATETIME, DATE, TIME, TIMEDELTA = 67, 68, 69, 70
DECIMAL, UUID_CODE, BIGINT = 71, 72, 73

_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1

MAX_DECIMAL_EXPONENT = 6144
"""The largest adjusted exponent (either sign) of a Decimal: decimal128's Emax."""

_KEY_HINT = (
    "map keys and set members must be str, bytes or ints within 64 bits "
    "(other types can be made to hash alike, which makes decoding slow); "
    "send a list (of pairs, for a map) instead"
)


def check_members(items: Iterable[Any], what: str) -> None:
    """Raise DecodeError unless every item may be a map key or set member."""
    for item in items:
        kind = type(item)
        if kind is str or kind is bytes:
            continue
        if (kind is int or kind is bool) and _INT64_MIN <= item <= _UINT64_MAX:
            continue
        problem = f"a {type_name(kind)}" if kind is not int else "an int beyond 64 bits"
        raise DecodeError(f"a {what} is {problem}; {_KEY_HINT}")


class Codec(NamedTuple):
    """A registered codec: ``cls`` travels as extension type ``code``."""

    cls: type[Any]
    code: int
    encode: Callable[[Any], object]
    decode: Callable[[Any], Any]


Encoder = Callable[[Any, int], object]


def type_name(cls: type[Any]) -> str:
    """A class's name in messages: ``module.QualName``, bare for builtins."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def pack(value: object, depth: int) -> bytes:
    """Pack the payload of an extension value whose content sits at depth."""
    if depth > MAX_DEPTH:
        # Only ever seen by codec.dumps, which explains it with the value's path.
        raise SerializationError(f"extension values nested more than {MAX_DEPTH} deep")
    data: bytes = msgpack.packb(value, default=DEFAULTS[depth], strict_types=True)
    return data


def default(depth: int, obj: object) -> object:
    """msgpack's hook for values it cannot pack natively (strict_types)."""
    encode = ENCODERS.get(type(obj)) or lookup(type(obj))
    if encode is None:
        raise TypeError(f"cannot encode {type_name(type(obj))}")
    return encode(obj, depth)


def lookup(cls: type[Any]) -> Encoder | None:
    """Find the encoder of cls's nearest base that has one."""
    for base in cls.__mro__[1:]:
        encode = ENCODERS.get(base)
        if encode is not None:
            return encode
    return None


def encode_int(obj: int, depth: int) -> object:
    value = int.__int__(obj)
    if _INT64_MIN <= value <= _UINT64_MAX:
        return value
    size = (value.bit_length() + 8) // 8
    return msgpack.ExtType(BIGINT, value.to_bytes(size, "big", signed=True))


def encode_items(code: int, obj: Any, depth: int) -> object:
    return msgpack.ExtType(code, pack(list(obj), depth + 1))


def encode_members(code: int, obj: Any, depth: int) -> object:
    """A set or frozenset: only members the decoder accepts (check_members)."""
    members = list(obj)
    try:
        check_members(members, "set member")
    except DecodeError as exc:
        raise TypeError(str(exc)) from None  # explained with its path by dumps
    return msgpack.ExtType(code, pack(members, depth + 1))


def encode_decimal(obj: Decimal, depth: int) -> object:
    if obj.is_finite() and abs(obj.adjusted()) > MAX_DECIMAL_EXPONENT:
        raise TypeError(
            f"Decimal exponent {obj.adjusted()} is outside "
            f"-{MAX_DECIMAL_EXPONENT}..{MAX_DECIMAL_EXPONENT}"
        )
    return msgpack.ExtType(DECIMAL, str(obj).encode("ascii"))


def encode_iso(code: int, obj: date | time, depth: int) -> object:
    if not isinstance(obj, datetime | time) or obj.utcoffset() is None:
        return msgpack.ExtType(code, obj.isoformat().encode("ascii"))
    # isoformat() can write a sub-second UTC offset that Python 3.11's
    # fromisoformat() silently drops, so the offset travels apart, exactly.
    offset = obj.utcoffset()
    assert offset is not None
    naive = obj.replace(tzinfo=None).isoformat()
    offset_us = offset // timedelta(microseconds=1)
    return msgpack.ExtType(code, f"{naive}@{offset_us}".encode("ascii"))


def encode_timedelta(obj: timedelta, depth: int) -> object:
    payload = [obj.days, obj.seconds, obj.microseconds]
    return msgpack.ExtType(TIMEDELTA, msgpack.packb(payload))


def encode_uuid(obj: UUID, depth: int) -> object:
    return msgpack.ExtType(UUID_CODE, obj.bytes)


def encode_list(obj: list[Any], depth: int) -> object:
    return list(obj)


def encode_dict(obj: dict[Any, Any], depth: int) -> object:
    return dict(obj)


def encode_codec(codec: Codec, obj: object, depth: int) -> object:
    return msgpack.ExtType(codec.code, pack(codec.encode(obj), depth + 1))


BUILTIN_ENCODERS: dict[type[Any], Encoder] = {
    # Subclasses of native types reach the hook because of strict_types.
    int: encode_int,
    float: lambda obj, depth: float.__float__(obj),
    str: lambda obj, depth: str.__str__(obj),
    bytes: lambda obj, depth: bytes(obj),
    list: encode_list,
    dict: encode_dict,
    tuple: partial(encode_items, TUPLE),
    set: partial(encode_members, SET),
    frozenset: partial(encode_members, FROZENSET),
    datetime: partial(encode_iso, DATETIME),
    date: partial(encode_iso, DATE),
    time: partial(encode_iso, TIME),
    timedelta: encode_timedelta,
    Decimal: encode_decimal,
    UUID: encode_uuid,
}
ENCODERS: dict[type[Any], Encoder] = dict(BUILTIN_ENCODERS)
"""Every type's encoder: the builtin ones plus registered codecs."""

DEFAULTS = tuple(partial(default, depth) for depth in range(MAX_DEPTH + 1))
"""msgpack's ``default`` hook for each depth, made once."""

NATIVE = frozenset({type(None), bool, bytearray, memoryview, msgpack.ExtType})
"""Types msgpack packs itself: they never reach the hook."""
