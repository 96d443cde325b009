"""Fuzzing the decoder and the envelope check: bad input is refused, quickly.

Hypothesis builds msgpack that is valid at the byte level but hostile in
shape (extension values anywhere, maps with any keys, nesting), plus raw
bytes and stream fields. Whatever comes in, ``loads`` raises only
DecodeError, ``envelope.decode`` only BadEntry and ``open_reply`` only
DecodeError, and none of them spends more than a few milliseconds of CPU
on an input of a few KB. The example counts keep the whole file to a few
seconds; ``python -m benchmarks.hostile`` measures the worst inputs up
to 1 MiB.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from busignal.errors import BadEntry, DecodeError
from busignal.wire import codec, envelope
from busignal.wire.keys import Keys
from busignal.wire.reply import open_reply
from busignal.wire.signing import Signer

CPU_LIMIT = 0.05  # seconds for one input of a few KB: ample, even on a busy CI
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
KEYS = Keys("ns")
STREAM = KEYS.events("orders")
SIGNER = Signer(["f" * 32])

# Extension payloads: well-formed msgpack of anything, or arbitrary bytes.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20)
)


class _Pairs(list[tuple[Any, Any]]):
    """A map as pairs, so that unhashable or equal keys can be packed."""


def _as_map(pairs: list[tuple[Any, Any]]) -> _Pairs:
    return _Pairs(pairs)


def _ext(code: int, payload: bytes) -> Any:
    return msgpack.ExtType(code, payload)


extension = st.builds(
    _ext,
    st.integers(min_value=60, max_value=80),
    st.binary(max_size=40)
    | st.sampled_from([b"1E+999999999", b"NaN", b"2024-01-01", b"\x91\x90"])
    | st.builds(
        codec.dumps,
        st.lists(scalars | st.integers(min_value=2**64, max_value=2**80), max_size=8),
    ),
)
hostile = st.recursive(
    scalars | extension,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.lists(st.tuples(inner, inner), max_size=6).map(_as_map)
    ),
    max_leaves=30,
)


def _pack(value: Any) -> bytes:
    packer = msgpack.Packer(autoreset=False)
    _pack_into(packer, value)
    data: bytes = packer.bytes()
    return data


def _pack_into(packer: msgpack.Packer, value: Any) -> None:
    if isinstance(value, _Pairs):
        packer.pack_map_header(len(value))
        for key, item in value:
            _pack_into(packer, key)
            _pack_into(packer, item)
    elif isinstance(value, list):
        packer.pack_array_header(len(value))
        for item in value:
            _pack_into(packer, item)
    else:
        packer.pack(value)


def _cpu(action: Any) -> float:
    started = time.process_time()
    action()
    return time.process_time() - started


@FUZZ
@given(hostile.map(_pack))
def test_fuzz_loads_hostile_shapes_raise_only_decode_error_quickly(data: bytes) -> None:
    def decode() -> None:
        with contextlib.suppress(DecodeError):
            codec.loads(data)

    assert _cpu(decode) < CPU_LIMIT


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_loads_random_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        codec.loads(data)


fields = st.dictionaries(
    st.sampled_from([b"v", b"b", b"h", b"t", b"s", b"x"]),
    st.binary(max_size=64) | hostile.map(_pack),
    max_size=6,
)


@FUZZ
@given(fields, st.booleans())
def test_fuzz_envelope_decode_raises_only_bad_entry(
    entry: dict[bytes, bytes], signed: bool
) -> None:
    entry.setdefault(b"v", b"1")
    with contextlib.suppress(BadEntry):
        envelope.decode(
            entry,
            signal="orders",
            signer=SIGNER if signed else None,
            max_size=1 << 20,
            stream=STREAM,
            namespace="ns",
        )


@FUZZ
@given(
    st.builds(
        lambda head, body: head + body,
        st.sampled_from([b"\x98", b"\x98\xa1m\xa6orders\xa0\x02\xa0\x00\xa0"]),
        hostile.map(_pack),
    )
)
def test_fuzz_envelope_decode_of_hostile_bodies_raises_only_bad_entry(
    body: bytes,
) -> None:
    with contextlib.suppress(BadEntry):
        envelope.decode(
            {b"v": b"1", b"b": body},
            signal="orders",
            signer=None,
            max_size=1 << 20,
            stream=STREAM,
            namespace="ns",
        )


@FUZZ
@given(hostile.map(_pack) | st.binary(max_size=256), st.booleans())
def test_fuzz_open_reply_raises_only_decode_error(data: bytes, signed: bool) -> None:
    with contextlib.suppress(DecodeError):
        open_reply(
            data, message_id="m1", signer=SIGNER if signed else None, max_size=1 << 20
        )
