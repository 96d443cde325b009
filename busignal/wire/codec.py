"""msgpack with extension types: how signal kwargs travel on the wire.

Never pickle. Decoding only ever builds the builtin types listed here and the
types of codecs registered *in the decoding process*, so a message can never
name code to import or run.

Native msgpack: ``None``, ``bool``, ``int`` (64-bit), ``float``, ``str``,
``bytes``, ``list``, ``dict`` (keys may be any encodable hashable value).
Extension types (code: type, payload):

====  =============  ==================================================
code  type           payload
====  =============  ==================================================
64    tuple          msgpack array of the items
65    set            msgpack array of the members
66    frozenset      msgpack array of the members
67    datetime       ASCII ``isoformat()``
68    date           ASCII ``isoformat()``
69    time           ASCII ``isoformat()``
70    timedelta      msgpack array ``[days, seconds, microseconds]``
71    Decimal        ASCII ``str()`` (keeps NaN, Infinity and -0)
72    UUID           the 16 raw bytes
73    int            two's-complement big-endian bytes, for ints beyond
                     64 bits (no 4300-digit ``str`` limit)
====  =============  ==================================================

Codes 0..63 (``USER_CODES``) are for :func:`register`; 74..127 are reserved
for busignal. msgpack's own timestamp (-1) decodes to an aware UTC datetime.

Decisions worth knowing:

* Aware datetimes and times keep their ``utcoffset()``, not their tzinfo
  object: a ``zoneinfo`` time zone comes back as a fixed-offset
  ``datetime.timezone`` (equal instant, equal offset). ``timezone.utc`` comes
  back as ``timezone.utc``. ``fold`` is not kept.
* Subclasses encode as their nearest supported base and decode as that base:
  ``IntEnum``/``StrEnum`` members and Django ``TextChoices`` become their
  plain value, ``namedtuple`` a tuple, ``OrderedDict``/``defaultdict`` a
  dict. A codec registered for a class also covers its subclasses.
  ``bytearray`` and ``memoryview`` become ``bytes``.
* Attributes are never walked. Error paths are mapping keys and sequence
  indexes from ``where``: ``kwargs['order']['items'][2]``; a set member is
  ``{...}`` (sets have no order), a mapping key is ``<key>`` and the value a
  codec's encode function returned is ``<encoded>``.
* Decoding cannot be made slow. Map keys and set members must be ``str``,
  ``bytes`` or ``int`` within 64 bits (``bool`` included): those are the
  types whose hashes a sender cannot make collide in bulk (a set of big
  ints, tuples or Decimals that all hash alike costs quadratic time to
  build). Arrays, maps and sets hold at most ``MAX_ITEMS`` items, and a
  Decimal's exponent is within ``MAX_DECIMAL_EXPONENT`` (decimal128's
  range), so that ``int()`` of a decoded value is quick. Sets with other
  members are refused when encoded; maps with other keys when decoded.
* ``MAX_DEPTH`` bounds how deeply extension values (tuples, sets, frozensets
  and codec values) nest inside each other: they are the only recursion in
  decoding. Plain lists and dicts are bounded by msgpack itself (1024 levels
  to pack and to unpack; deeper input fails with ``DecodeError``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC as _UTC
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

import msgpack

from busignal.errors import CodecError, DecodeError
from busignal.wire.codec_explain import explain
from busignal.wire.codec_types import (
    BIGINT,
    BUILTIN_ENCODERS,
    DATE,
    DATETIME,
    DECIMAL,
    DEFAULTS,
    ENCODERS,
    FROZENSET,
    NATIVE,
    SET,
    TIME,
    TIMEDELTA,
    TUPLE,
    UUID_CODE,
    Codec,
    check_members,
    encode_codec,
    type_name,
)
from busignal.wire.codec_types import MAX_DECIMAL_EXPONENT as MAX_DECIMAL_EXPONENT
from busignal.wire.codec_types import MAX_DEPTH as MAX_DEPTH  # part of this API

__all__ = ["DecodeError", "dumps", "loads", "register"]

T = TypeVar("T")

MAX_SIZE = 16 * 1024 * 1024
"""The default largest payload :func:`loads` accepts, in bytes."""

MAX_ITEMS = 100_000
"""The most items one decoded array, map, set, frozenset or tuple may hold."""

USER_CODES = range(64)
"""Extension type codes :func:`register` accepts."""

# --- encoding (the encoders are in busignal.wire.codec_types) ----------------


class _PackerSlot(threading.local):
    """This thread's idle top-level Packer (None while one is in use)."""

    packer: Any = None


_SLOT = _PackerSlot()


def dumps(value: object, *, where: str = "value") -> bytes:
    """Encode value as msgpack with busignal's extension types.

    Raises SerializationError naming the path below ``where`` of the first
    value that cannot be encoded, its type, and what to do. The value is only
    walked to build that message when packing has already failed, so the
    happy path costs no more than ``msgpack.packb`` (less: each thread reuses
    one Packer, taken out of its slot while in use so that a codec calling
    dumps() gets a fresh one instead of corrupting the buffer).
    """
    packer = _SLOT.packer or msgpack.Packer(default=DEFAULTS[0], strict_types=True)
    _SLOT.packer = None
    try:
        data: bytes = packer.pack(value)
    except Exception as exc:
        raise explain(value, where, exc) from exc  # the packer is dropped
    _SLOT.packer = packer
    return data


def dumps_kwargs(kwargs: Mapping[str, object]) -> bytes:
    """Encode a signal's kwargs; errors name the kwarg, e.g. ``kwargs['order']``."""
    return dumps(kwargs if type(kwargs) is dict else dict(kwargs), where="kwargs")


# --- decoding ---------------------------------------------------------------

_Decoder = Callable[[bytes, int], object]


def _unpack(data: bytes, depth: int) -> Any:
    """Unpack the payload of an extension value whose content sits at depth."""
    if depth > MAX_DEPTH:
        raise DecodeError(f"extension values nested more than {MAX_DEPTH} deep")
    hook = _EXT_HOOKS[depth]
    try:
        # Keys that are all str or bytes (nearly every payload) are checked
        # by msgpack itself, in C; anything else is looked at again below.
        # The options are spelled out, not passed as ``**options``: merging
        # a dict of them into the call doubled its cost (a worker makes it
        # for every event).
        return msgpack.unpackb(
            data,
            ext_hook=hook,
            strict_map_key=True,
            raw=False,
            use_list=True,
            timestamp=3,
            max_array_len=MAX_ITEMS,
            max_map_len=MAX_ITEMS,
        )
    except ValueError as exc:
        if type(exc) is not ValueError or "for map key" not in str(exc):
            raise
    return msgpack.unpackb(
        data,
        ext_hook=hook,
        strict_map_key=False,
        object_pairs_hook=_checked_map,
        raw=False,
        use_list=True,
        timestamp=3,
        max_array_len=MAX_ITEMS,
        max_map_len=MAX_ITEMS,
    )


def _checked_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """A map whose keys were checked before any was hashed (see the docstring)."""
    check_members((key for key, _ in pairs), "map key")
    return dict(pairs)


def _ext_hook(depth: int, code: int, data: bytes) -> object:
    decode = _DECODERS.get(code)
    if decode is None:
        raise DecodeError(
            f"unknown extension type code {code}; the sender registered a codec "
            f"this process has not (busignal.wire.codec.register())"
        )
    try:
        return decode(data, depth)
    except DecodeError:
        raise
    except Exception as exc:
        name = _CODE_NAMES.get(code, "codec")
        raise DecodeError(
            f"bad {name} payload (extension type code {code}): {_reason(exc)}"
        ) from exc


def _unpack_list(data: bytes, depth: int, what: str) -> list[Any]:
    items = _unpack(data, depth + 1)
    if type(items) is not list:
        raise DecodeError(f"{what} payload is {type(items).__name__}, not an array")
    return items


def _members(data: bytes, depth: int, what: str) -> list[Any]:
    """A set's members, checked before any is hashed."""
    items = _unpack_list(data, depth, what)
    check_members(items, f"{what} member")
    return items


def _decode_decimal(data: bytes, depth: int) -> Decimal:
    value = Decimal(data.decode("ascii"))
    if value.is_finite() and abs(value.adjusted()) > MAX_DECIMAL_EXPONENT:
        raise DecodeError(
            f"Decimal exponent {value.adjusted()} is outside "
            f"-{MAX_DECIMAL_EXPONENT}..{MAX_DECIMAL_EXPONENT}"
        )
    return value


def _decode_clock(cls: type[datetime] | type[time], data: bytes) -> datetime | time:
    text, _, offset = data.decode("ascii").partition("@")
    value = cls.fromisoformat(text)
    if not offset:
        return value
    offset_us = int(offset)
    zone = _UTC if offset_us == 0 else timezone(timedelta(microseconds=offset_us))
    return value.replace(tzinfo=zone)


def _decode_timedelta(data: bytes, depth: int) -> timedelta:
    parts = _unpack_list(data, depth, "timedelta")
    if len(parts) != 3 or any(type(part) is not int for part in parts):
        raise DecodeError("timedelta payload is not [days, seconds, microseconds]")
    return timedelta(days=parts[0], seconds=parts[1], microseconds=parts[2])


def _decode_codec(codec: Codec, data: bytes, depth: int) -> object:
    value = _unpack(data, depth + 1)
    try:
        return codec.decode(value)
    except Exception as exc:
        raise DecodeError(
            f"the codec for {type_name(codec.cls)} (code {codec.code}) could not "
            f"decode its payload: {type(exc).__name__}: {exc}"
        ) from exc


_BUILTIN_DECODERS: dict[int, _Decoder] = {
    TUPLE: lambda data, depth: tuple(_unpack_list(data, depth, "tuple")),
    SET: lambda data, depth: set(_members(data, depth, "set")),
    FROZENSET: lambda data, depth: frozenset(_members(data, depth, "frozenset")),
    DATETIME: lambda data, depth: _decode_clock(datetime, data),
    DATE: lambda data, depth: date.fromisoformat(data.decode("ascii")),
    TIME: lambda data, depth: _decode_clock(time, data),
    TIMEDELTA: _decode_timedelta,
    DECIMAL: _decode_decimal,
    UUID_CODE: lambda data, depth: UUID(bytes=data),
    BIGINT: lambda data, depth: int.from_bytes(data, "big", signed=True),
}
_DECODERS: dict[int, _Decoder] = dict(_BUILTIN_DECODERS)
_CODE_NAMES = {
    TUPLE: "tuple",
    SET: "set",
    FROZENSET: "frozenset",
    DATETIME: "datetime",
    DATE: "date",
    TIME: "time",
    TIMEDELTA: "timedelta",
    DECIMAL: "Decimal",
    UUID_CODE: "UUID",
    BIGINT: "big int",
}
_EXT_HOOKS = tuple(partial(_ext_hook, depth) for depth in range(MAX_DEPTH + 1))

_REASONS: dict[type[Exception], str] = {
    msgpack.ExtraData: "extra bytes after the value",
    msgpack.FormatError: "not valid msgpack",
    msgpack.StackError: "arrays or maps nested too deeply",
    RecursionError: "nested too deeply",
}


def _reason(exc: Exception) -> str:
    return _REASONS.get(type(exc)) or f"{type(exc).__name__}: {exc}"


def loads(data: bytes, *, max_size: int = MAX_SIZE) -> Any:
    """Decode a payload made by :func:`dumps`.

    Raises DecodeError, with the reason in its message, for anything that is
    not such a payload: garbage, truncation, a payload over max_size bytes,
    lengths larger than the payload, unknown extension codes, a bad extension
    payload, or nesting past the limits. Nothing is allocated for a length a
    payload claims but does not contain.
    """
    if len(data) > max_size:
        raise DecodeError(f"payload is {len(data)} bytes, over the {max_size} limit")
    try:
        # ``_unpack(data, 0)``'s first try, inline: a worker decodes every
        # event here, and a call costs a quarter of a small event's unpacking.
        return msgpack.unpackb(
            data,
            ext_hook=_EXT_HOOKS[0],
            strict_map_key=True,
            raw=False,
            use_list=True,
            timestamp=3,
            max_array_len=MAX_ITEMS,
            max_map_len=MAX_ITEMS,
        )
    except DecodeError as exc:
        raise DecodeError(f"cannot decode payload: {exc}") from exc
    except ValueError as exc:
        if type(exc) is not ValueError or "for map key" not in str(exc):
            raise DecodeError(f"cannot decode payload: {_reason(exc)}") from exc
    except Exception as exc:
        raise DecodeError(f"cannot decode payload: {_reason(exc)}") from exc
    try:
        return _unpack(data, 0)  # keys other than str and bytes: checked
    except DecodeError as exc:
        raise DecodeError(f"cannot decode payload: {exc}") from exc
    except Exception as exc:
        raise DecodeError(f"cannot decode payload: {_reason(exc)}") from exc


# --- registered codecs ------------------------------------------------------

_USER_CLASSES: dict[type[Any], Codec] = {}
_USER_CODES: dict[int, Codec] = {}


def register(
    cls: type[T],
    code: int,
    encode: Callable[[T], object],
    decode: Callable[[Any], T],
) -> None:
    """Let cls (and its subclasses) travel as extension type ``code``.

    ``encode`` returns any encodable value (itself encoded with this codec,
    so nested registered types work); ``decode`` gets that value back and
    rebuilds the object. Every process that decodes must register the same
    codec. ``code`` is one of USER_CODES. Registering the same codec again
    is a no-op; reusing a code or class for another codec raises CodecError
    (a ``ValueError``).
    """
    if not _is_user_code(code):
        raise CodecError(f"codec code must be an int in 0..63, got {code!r}")
    if not _is_registrable(cls):
        raise CodecError(f"cannot register a codec for {cls!r}; pass a class")
    codec = Codec(cls, code, encode, decode)
    for existing in (_USER_CLASSES.get(cls), _USER_CODES.get(code)):
        if existing is not None and existing != codec:
            raise CodecError(
                f"cannot register {type_name(cls)} as code {code}: "
                f"{type_name(existing.cls)} is registered as code {existing.code}"
            )
    _USER_CLASSES[cls] = _USER_CODES[code] = codec
    ENCODERS[cls] = partial(encode_codec, codec)
    _DECODERS[code] = partial(_decode_codec, codec)


def _is_registrable(cls: object) -> bool:
    """A class whose values would reach the default hook, so a codec applies."""
    builtin = cls in BUILTIN_ENCODERS or cls in NATIVE
    return isinstance(cls, type) and not builtin


def _is_user_code(code: object) -> bool:
    return type(code) is int and code in USER_CODES


def unregister(cls: type[Any]) -> bool:
    """Remove cls's codec; return whether it had one. Meant for tests."""
    codec = _USER_CLASSES.pop(cls, None)
    if codec is None:
        return False
    del _USER_CODES[codec.code], ENCODERS[cls], _DECODERS[codec.code]
    return True
