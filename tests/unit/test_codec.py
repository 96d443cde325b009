from __future__ import annotations

import contextlib
import enum
import math
import struct
from collections import OrderedDict, namedtuple
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from busignal.errors import SerializationError
from busignal.wire import codec
from busignal.wire.codec import (
    MAX_DEPTH,
    MAX_ITEMS,
    DecodeError,
    dumps,
    dumps_kwargs,
    loads,
    register,
    unregister,
)

ORDER = f"{__name__}.Order"
HINT = (
    "pass a plain value (such as its primary key) or register a codec with "
    "busignal.wire.codec.register()"
)


class Order:
    """A type with no codec."""


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str


@pytest.fixture
def money_codec() -> Iterator[None]:
    register(
        Money,
        7,
        lambda m: (m.amount, m.currency),
        lambda v: Money(*v),
    )
    yield
    unregister(Money)


# --- comparing for equal values of the same types ----------------------------


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same type all the way down (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, Decimal):
        return str(a) == str(b)
    if isinstance(a, datetime | time):
        return bool(a == b and a.utcoffset() == b.utcoffset() and a.tzinfo == b.tzinfo)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        pairs = zip(a.items(), b.items(), strict=False)
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb) for (ka, va), (kb, vb) in pairs
        )
    if isinstance(a, set | frozenset):
        return a == b and all(any(same(x, y) for y in b) for x in a)
    return bool(a == b)


def roundtrip(value: object) -> Any:
    return loads(dumps(value))


# --- strategies ---------------------------------------------------------------

offsets = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=-59),
    max_value=timedelta(hours=23, minutes=59),
)
tzinfos = st.none() | st.just(UTC) | st.builds(timezone, offsets)

hashable_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**64, max_value=2**300)
    | st.integers(min_value=-(2**300), max_value=-(2**63) - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.datetimes(timezones=tzinfos)
    | st.dates()
    | st.times(timezones=tzinfos)
    | st.timedeltas()
    | st.decimals(allow_nan=False, allow_infinity=True)
    | st.uuids()
)
scalars = (
    hashable_scalars
    | st.floats(allow_nan=True)
    | st.decimals(allow_nan=True, allow_infinity=True)
)
# What may be a map key or a set member: types whose hashes cannot be made
# to collide in bulk.
hashables = (
    st.text()
    | st.binary()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(hashables, inner, max_size=4)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=4)
    ),
    max_leaves=20,
)


# --- round trips --------------------------------------------------------------


@settings(deadline=None)
@given(values)
def test_codec_roundtrip_keeps_values_and_types(value: object) -> None:
    assert same(roundtrip(value), value)


@settings(deadline=None)
@given(st.dictionaries(st.text(), values, max_size=4))
def test_codec_dumps_kwargs_roundtrips(kwargs: dict[str, object]) -> None:
    assert same(loads(dumps_kwargs(kwargs)), kwargs)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 1, 2, 3, 4, 5, 6),
        datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(9999, 12, 31, 23, 59, 59, 999999),
        date(2024, 2, 29),
        time(23, 59, 59, 999999),
        time(1, 2, tzinfo=timezone(timedelta(hours=2))),
        timedelta(days=-3, seconds=7, microseconds=11),
        timedelta(microseconds=-1),
        Decimal("NaN"),
        Decimal("-Infinity"),
        Decimal("-0"),
        Decimal("1.500"),
        UUID("12345678-1234-5678-1234-567812345678"),
        (),
        (1, (2, [3])),
        [1, (2,)],
        set(),
        {1, 2},
        frozenset({"a", b"b", 3, 2**64 - 1, -(2**63)}),
        b"\x00\xff",
        2**64,
        2**64 - 1,
        -(2**63),
        -(2**63) - 1,
        pytest.param(10**5000, id="10**5000"),
        {"str key": 1, b"bytes key": 2, 3: "int key", 2**64 - 1: "big int key"},
    ],
)
def test_codec_roundtrip_examples(value: object) -> None:
    assert same(roundtrip(value), value)


def test_codec_utc_comes_back_as_timezone_utc() -> None:
    value = roundtrip(datetime(2024, 1, 1, tzinfo=UTC))

    assert value.tzinfo is UTC


def test_codec_zoneinfo_comes_back_as_fixed_offset() -> None:
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        paris = zoneinfo.ZoneInfo("Europe/Paris")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no time zone data")
    value = datetime(2024, 7, 1, 12, tzinfo=paris)

    back = roundtrip(value)

    assert back == value
    assert back.tzinfo == timezone(timedelta(hours=2))


def test_codec_decimal_nan_keeps_its_sign_and_kind() -> None:
    assert str(roundtrip(Decimal("-NaN"))) == "-NaN"
    assert roundtrip(Decimal("sNaN")).is_snan()


def test_codec_float_nan_roundtrips() -> None:
    assert math.isnan(roundtrip(float("nan")))


def test_codec_int_enum_encodes_as_plain_int() -> None:
    class Size(enum.IntEnum):
        BIG = 3

    value = roundtrip([Size.BIG])

    assert same(value, [3])


def test_codec_str_enum_encodes_as_plain_str() -> None:
    class Color(str, enum.Enum):  # noqa: UP042 - the mixin Django's TextChoices use
        RED = "red"

    assert same(roundtrip(Color.RED), "red")


def test_codec_strenum_encodes_as_plain_str() -> None:
    class Color(enum.StrEnum):
        RED = "red"

    assert same(roundtrip({"c": Color.RED}), {"c": "red"})


def test_codec_big_int_enum_encodes_as_big_int() -> None:
    class Huge(enum.IntEnum):
        N = 2**70

    assert same(roundtrip(Huge.N), 2**70)


def test_codec_namedtuple_encodes_as_tuple() -> None:
    Point = namedtuple("Point", "x y")

    assert same(roundtrip(Point(1, 2)), (1, 2))


def test_codec_dict_subclass_encodes_as_dict() -> None:
    assert same(roundtrip(OrderedDict(a=1)), {"a": 1})


def test_codec_bytearray_encodes_as_bytes() -> None:
    assert same(roundtrip(bytearray(b"ab")), b"ab")


def test_codec_msgpack_timestamp_decodes_as_utc_datetime() -> None:
    data = msgpack.packb(msgpack.Timestamp(seconds=1))

    assert same(loads(data), datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))


def test_codec_dumps_works_when_a_codec_calls_dumps() -> None:
    register(Order, 9, lambda o: dumps((1, 2)), lambda v: loads(v))
    try:
        assert same(roundtrip([Order(), "after"]), [(1, 2), "after"])
        assert same(roundtrip({"next": (3,)}), {"next": (3,)})
    finally:
        unregister(Order)


def test_codec_dumps_works_after_a_failed_dumps() -> None:
    with pytest.raises(SerializationError):
        dumps({"a": [1, 2, Order()]})

    assert same(roundtrip({"b": [3]}), {"b": [3]})


def test_codec_dumps_is_thread_safe() -> None:
    values = [
        {"n": i, "t": (i, str(i)), "l": [Decimal(i)] * (i % 7)} for i in range(200)
    ]
    expected = [dumps(v) for v in values]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(dumps, values * 5))

    assert results == expected * 5
    assert all(same(loads(r), v) for r, v in zip(results, values * 5, strict=True))


def test_codec_dumps_is_plain_msgpack_for_native_values() -> None:
    value = {"a": 1, "b": [True, None, 1.5, "x", b"y"]}

    assert dumps(value) == msgpack.packb(value)


# --- encoding errors ----------------------------------------------------------


def message(value: object, where: str = "value") -> str:
    with pytest.raises(SerializationError) as info:
        dumps(value, where=where)
    return str(info.value)


def test_codec_error_unsupported_at_top() -> None:
    assert message(Order()) == (
        f"cannot encode value: {ORDER} is not serializable; {HINT}"
    )


def test_codec_error_unsupported_kwarg() -> None:
    with pytest.raises(SerializationError) as info:
        dumps_kwargs({"ok": 1, "order": Order()})

    assert str(info.value) == (
        f"cannot encode kwargs['order']: {ORDER} is not serializable; {HINT}"
    )


def test_codec_error_names_nested_dict_and_list_path() -> None:
    value = {"order": {"items": [1, 2, Order()]}}

    assert message(value, where="kwargs").startswith(
        f"cannot encode kwargs['order']['items'][2]: {ORDER} "
    )


def test_codec_error_names_tuple_index() -> None:
    assert message((1, (2, Order()))).startswith("cannot encode value[1][1]: ")


def test_codec_error_names_set_member() -> None:
    assert message({"tags": frozenset({1, Order()})}).startswith(
        f"cannot encode value['tags']{{...}}: {ORDER} "
    )


def test_codec_error_names_mapping_key() -> None:
    assert message({Order(): 1}).startswith("cannot encode value<key>: ")


def test_codec_error_names_builtin_type_without_module() -> None:
    assert (
        message([1j]) == f"cannot encode value[0]: complex is not serializable; {HINT}"
    )


def test_codec_error_names_local_class_by_qualname() -> None:
    class Local:
        pass

    assert "test_codec_error_names_local_class_by_qualname.<locals>.Local" in message(
        Local()
    )


def test_codec_error_for_plain_enum() -> None:
    class Flavour(enum.Enum):
        SWEET = 1

    assert "Flavour is not serializable" in message(Flavour.SWEET)


def test_codec_error_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        dumps(object())


def test_codec_error_for_reference_cycle() -> None:
    loop: list[object] = [1]
    loop.append({"again": loop})

    assert message(loop) == (
        "cannot encode value[1]['again']: refers back to a container enclosing it "
        "(a reference cycle)"
    )


def test_codec_error_for_too_many_nested_tuples() -> None:
    value: object = 1
    for _ in range(MAX_DEPTH + 1):
        value = (value,)

    assert message(value).endswith(
        f"nests tuples, sets and codec values more than {MAX_DEPTH} deep"
    )


def test_codec_max_depth_nested_tuples_roundtrip() -> None:
    value: object = 1
    for _ in range(MAX_DEPTH):
        value = (value,)

    assert same(roundtrip(value), value)


def test_codec_error_for_too_deeply_nested_lists() -> None:
    value: object = 1
    for _ in range(1100):
        value = [value]

    assert message(value) == (
        "cannot encode value: is nested too deeply (recursion limit exceeded.)"
    )


# --- registered codecs --------------------------------------------------------


@pytest.mark.usefixtures("money_codec")
def test_codec_registered_type_roundtrips() -> None:
    value = Money(Decimal("9.99"), "EUR")

    assert same(roundtrip(value), value)


@pytest.mark.usefixtures("money_codec")
def test_codec_registered_type_nested_in_containers() -> None:
    value = {"prices": [Money(Decimal("1"), "EUR"), (Money(Decimal("2"), "USD"),)]}

    assert same(roundtrip(value), value)


@pytest.mark.usefixtures("money_codec")
def test_codec_registered_codec_covers_subclasses() -> None:
    class Cash(Money):
        pass

    assert same(roundtrip(Cash(Decimal("1"), "EUR")), Money(Decimal("1"), "EUR"))


def test_codec_registered_codec_for_str_subclass() -> None:
    class Slug(str):
        pass

    register(Slug, 8, str, Slug)
    try:
        assert same(roundtrip(Slug("a-b")), Slug("a-b"))
    finally:
        unregister(Slug)


@pytest.mark.usefixtures("money_codec")
def test_codec_register_same_codec_twice_is_a_noop() -> None:
    codec_ = codec._USER_CLASSES[Money]

    register(Money, 7, codec_.encode, codec_.decode)


@pytest.mark.usefixtures("money_codec")
def test_codec_register_refuses_taken_code() -> None:
    with pytest.raises(ValueError, match="Money is registered as code 7"):
        register(Order, 7, lambda o: 0, lambda v: Order())


@pytest.mark.usefixtures("money_codec")
def test_codec_register_refuses_second_codec_for_class() -> None:
    with pytest.raises(ValueError, match="cannot register"):
        register(Money, 9, lambda m: 0, lambda v: Money(Decimal(0), ""))


@pytest.mark.parametrize("code", [-1, 64, 127, True, 1.0])
def test_codec_register_refuses_code_outside_user_range(code: Any) -> None:
    with pytest.raises(ValueError, match=r"0\.\.63"):
        register(Order, code, lambda o: 0, lambda v: Order())


@pytest.mark.parametrize("cls", [int, bool, str, tuple, datetime, Decimal, type(None)])
def test_codec_register_refuses_builtin_types(cls: type[Any]) -> None:
    with pytest.raises(ValueError, match="cannot register a codec"):
        register(cls, 1, lambda o: 0, lambda v: v)


def test_codec_unregister_reports_whether_removed() -> None:
    register(Order, 9, lambda o: None, lambda v: Order())

    assert unregister(Order) is True
    assert unregister(Order) is False
    assert "Order is not serializable" in message(Order())


@pytest.mark.usefixtures("money_codec")
def test_codec_error_inside_codec_output() -> None:
    value = {"m": Money(Order(), "EUR")}  # type: ignore[arg-type]  # on purpose

    assert message(value).startswith("cannot encode value['m']<encoded>[0]: ")


def test_codec_error_when_codec_encode_raises() -> None:
    def fail(order: Order) -> object:
        raise RuntimeError("no pk")

    register(Order, 9, fail, lambda v: Order())
    try:
        assert message([Order()]) == (
            f"cannot encode value[0]: the codec for {ORDER} raised RuntimeError: no pk"
        )
    finally:
        unregister(Order)


def test_codec_decode_of_unregistered_code_fails() -> None:
    register(Order, 9, lambda o: 1, lambda v: Order())
    data = dumps(Order())
    unregister(Order)

    with pytest.raises(DecodeError, match="unknown extension type code 9"):
        loads(data)


def test_codec_decode_error_when_codec_decode_raises() -> None:
    def fail(value: object) -> Order:
        raise ValueError("bad")

    register(Order, 9, lambda o: 1, fail)
    try:
        with pytest.raises(DecodeError, match=r"Order \(code 9\) could not decode"):
            loads(dumps(Order()))
    finally:
        unregister(Order)


# --- hostile input ------------------------------------------------------------


def ext(code: int, payload: bytes) -> bytes:
    data: bytes = msgpack.packb(msgpack.ExtType(code, payload))
    return data


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xc1", "not valid msgpack"),
        (b"\x92\x01", "incomplete input"),
        (b"", "incomplete input"),
        (b"\x01\x02", "extra bytes after the value"),
        (b"\xdd\xff\xff\xff\xff", "exceeds max_array_len"),
        (b"\xdf\xff\xff\xff\xff", "exceeds max_map_len"),
        (b"\xdb\xff\xff\xff\xff", "incomplete input"),
        (b"\x91" * 2000 + b"\xc0", "nested too deeply"),
        (b"\xa2\xff\xfe", "UnicodeDecodeError"),
        (b"\x81\x90\x01", "a map key is a list"),
        (b"\x81\xc0\x01", "a map key is a NoneType"),
        (b"\x81\xcb" + bytes(8) + b"\x01", "a map key is a float"),
        (b"\x81" + ext(64, b"\x90") + b"\x01", "a map key is a tuple"),
        (b"\x81" + ext(73, b"\x01" + bytes(8)) + b"\x01", "int beyond 64 bits"),
        (ext(65, b"\x91" + ext(71, b"1")), "a set member is a decimal.Decimal"),
        (ext(66, b"\x91\xcb" + bytes(8)), "a frozenset member is a float"),
        (ext(71, b"1E+999999999999999999"), "Decimal exponent"),
        (ext(71, b"1E-7000"), "Decimal exponent"),
        (b"\xdd\x00\x01\x86\xa1" + b"\xc0" * 100_001, "exceeds max_array_len"),
        (ext(5, b""), "unknown extension type code 5"),
        (ext(100, b""), "unknown extension type code 100"),
        (ext(64, b"\x01"), "tuple payload is int, not an array"),
        (ext(65, b"\x91\x90"), "a set member is a list"),
        (ext(66, b"\xc1"), "not valid msgpack"),
        (ext(67, b"yesterday"), "bad datetime payload"),
        (ext(67, b"\xff"), "bad datetime payload"),
        (ext(68, b"2024-13-01"), "bad date payload"),
        (ext(69, b"25:00"), "bad time payload"),
        (ext(70, b"\x92\x01\x02"), "timedelta payload is not"),
        (ext(70, b"\x93\xa1x\x00\x00"), "timedelta payload is not"),
        (ext(70, msgpack.packb([10**9, 0, 0])), "bad timedelta payload"),
        (ext(71, b"one"), "bad Decimal payload"),
        (ext(72, b"short"), "bad UUID payload"),
    ],
)
def test_codec_loads_rejects_hostile_input(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match="cannot decode payload") as info:
        loads(data)

    assert reason in str(info.value)


def test_codec_loads_accepts_max_items() -> None:
    assert len(loads(dumps([0] * MAX_ITEMS))) == MAX_ITEMS


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({(1, 2)}, "a set member is a tuple"),
        (frozenset({1.5}), "a set member is a float"),
        ({2**64}, "int beyond 64 bits"),
        (Decimal("1E+999999999"), "Decimal exponent 999999999 is outside"),
    ],
)
def test_codec_dumps_refuses_what_loads_would(value: object, reason: str) -> None:
    with pytest.raises(SerializationError, match=reason):
        dumps({"x": value})


def test_codec_loads_colliding_big_int_keys_fail_fast() -> None:
    # Ints that differ by a multiple of 2**61 - 1 hash alike: as map keys
    # they would make building the dict quadratic.
    keys = [
        ext(73, ((2**61 - 1) * k).to_bytes(16, "big", signed=True))
        for k in range(1, 5000)
    ]
    data = b"\xde" + len(keys).to_bytes(2, "big") + b"".join(k + b"\xc0" for k in keys)

    with pytest.raises(DecodeError, match="int beyond 64 bits"):
        loads(data)


def test_codec_loads_rejects_deeply_nested_extensions() -> None:
    data = msgpack.packb(None)
    for _ in range(MAX_DEPTH + 1):
        data = ext(64, b"\x91" + data)

    with pytest.raises(DecodeError, match=f"nested more than {MAX_DEPTH} deep"):
        loads(data)


def test_codec_loads_rejects_payload_over_max_size() -> None:
    with pytest.raises(DecodeError, match="over the 10 limit"):
        loads(dumps("x" * 20), max_size=10)


def test_codec_loads_rejects_truncated_data() -> None:
    data = dumps({"when": datetime(2024, 1, 1), "ids": (1, 2, 3)})

    for end in range(len(data)):
        with pytest.raises(DecodeError):
            loads(data[:end])


def test_codec_decode_error_is_a_serialization_and_value_error() -> None:
    assert issubclass(DecodeError, SerializationError)
    assert issubclass(DecodeError, ValueError)


@settings(deadline=None)
@given(st.binary(max_size=64))
def test_codec_loads_never_raises_anything_but_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        loads(data)


# --- the public API -------------------------------------------------------------


def test_codec_all_is_what_busignal_codec_offers() -> None:
    # busignal.codec is the codec's public home; the wire module's __all__
    # names the same calls and nothing of its internals.
    import busignal.codec as public_codec

    assert codec.__all__ == sorted(codec.__all__)
    assert codec.__all__ == public_codec.__all__
    assert all(getattr(public_codec, n) is getattr(codec, n) for n in codec.__all__)
