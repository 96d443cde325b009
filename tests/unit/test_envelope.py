"""The envelope wire format, and bad input refused before any I/O."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import pytest

from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.errors import ConfigurationError, SerializationError
from busignal.wire.envelope import (
    WIRE_VERSION,
    BadEntry,
    Envelope,
    Mode,
    PublishBatch,
    decode,
    encode,
)
from busignal.wire.keys import Keys
from busignal.wire.signing import Signer

LIMIT = 1_000_000
KEYS = Keys("ns")
STREAM = KEYS.events("orders")
NOW = 1_700_000_000.0


def _encode(signal: str = "orders", **changes: object) -> dict[bytes, bytes]:
    options: dict[str, object] = {
        "signal": signal,
        "sender": "app.Order",
        "kwargs": {"order_id": 7},
        "mode": Mode.SEND,
        "reply_to": KEYS.reply("m1", signal),
        "deadline": 12.5,
        "trace": "00-trace-01",
        "message_id": "m1",
        "max_size": LIMIT,
        "namespace": "ns",
        "stream": KEYS.events(signal),
        "sent_at": NOW,
    }
    options.update(changes)
    _, fields = encode(**options)  # type: ignore[arg-type]  # checked by the tests
    return fields


def _decode(fields: dict[bytes, bytes], **changes: Any) -> Envelope:
    options: dict[str, Any] = {
        "signal": "orders",
        "signer": None,
        "max_size": LIMIT,
        "stream": STREAM,
        "namespace": "ns",
        "now": NOW + 1,
    }
    options.update(changes)
    return decode(fields, **options)


# -- the envelope ----------------------------------------------------------------


def test_envelope_decode_returns_what_was_encoded() -> None:
    env = _decode(_encode())

    assert (env.message_id, env.signal, env.sender, env.mode) == (
        "m1",
        "orders",
        "app.Order",
        Mode.SEND,
    )
    assert (env.reply_to, env.deadline, env.trace, env.kwargs) == (
        KEYS.reply("m1", "orders"),
        12.5,
        "00-trace-01",
        {"order_id": 7},
    )


def test_envelope_fields_carry_the_wire_version() -> None:
    assert _encode()[b"v"] == WIRE_VERSION


def test_envelope_encode_makes_a_fresh_message_id_when_none_given() -> None:
    first = _encode(message_id=None, mode=Mode.PUBLISH, reply_to="")
    again = _encode(message_id=None, mode=Mode.PUBLISH, reply_to="")

    assert _decode(first).message_id != _decode(again).message_id


def test_envelope_signed_decodes_with_the_same_secret() -> None:
    signer = Signer(["s1"])

    env = _decode(_encode(signer=signer), signer=signer)

    assert env.message_id == "m1"


def test_envelope_signature_covers_the_signal_name() -> None:
    signer = Signer(["s1"])
    fields = _encode(signer=signer)
    moved = {**fields, b"b": _encode("refunds")[b"b"]}

    with pytest.raises(BadEntry, match="bad signature"):
        _decode(moved, signal="refunds", signer=signer, stream=KEYS.events("refunds"))


@pytest.mark.parametrize(
    ("place", "value"),
    [
        ("namespace", "other"),
        ("stream", Keys("other").events("orders")),
        ("stream", KEYS.events("orders", 1)),
    ],
)
def test_envelope_signature_binds_namespace_and_stream(place: str, value: str) -> None:
    signer = Signer(["s1"])

    with pytest.raises(BadEntry, match="bad signature"):
        _decode(_encode(signer=signer), signer=signer, **{place: value})


def test_envelope_signature_binds_the_target_service() -> None:
    signer = Signer(["s1"])
    aimed = {**_encode(signer=signer), b"s": b"billing"}

    with pytest.raises(BadEntry, match="bad signature"):
        _decode(aimed, signer=signer)


def test_envelope_signature_binds_the_sent_at_time() -> None:
    signer = Signer(["s1"])
    fields = _encode(signer=signer)
    younger = {**fields, b"t": str(int((NOW + 3600) * 1000)).encode()}

    with pytest.raises(BadEntry, match="bad signature"):
        _decode(younger, signer=signer, now=NOW + 3600)


def test_envelope_signed_event_older_than_max_age_is_refused() -> None:
    signer = Signer(["s1"])

    with pytest.raises(BadEntry, match="older than max_age=60s"):
        _decode(_encode(signer=signer), signer=signer, max_age=60, now=NOW + 61)


def test_envelope_signed_event_within_max_age_decodes() -> None:
    signer = Signer(["s1"])

    env = _decode(_encode(signer=signer), signer=signer, max_age=60, now=NOW + 59)

    assert env.message_id == "m1"


def test_envelope_signed_event_from_the_future_is_refused() -> None:
    signer = Signer(["s1"])

    with pytest.raises(BadEntry, match="in the future"):
        _decode(_encode(signer=signer), signer=signer, now=NOW - 3600)


def test_envelope_verifies_with_a_retired_secret() -> None:
    fields = _encode(signer=Signer(["old-secret"]))

    env = _decode(fields, signer=Signer(["new-secret", "old-secret"]))

    assert env.message_id == "m1"


@pytest.mark.parametrize(
    "reply_to",
    ["victim:key", KEYS.reply("m2", "orders"), KEYS.reply("m1", "refunds"), ""],
)
def test_envelope_reply_key_must_be_the_events_own(reply_to: str) -> None:
    with pytest.raises(BadEntry, match="is not this event's own"):
        _decode(_encode(reply_to=reply_to))


def test_envelope_publish_must_not_name_a_reply_key() -> None:
    with pytest.raises(BadEntry, match="is not this event's own"):
        _decode(_encode(mode=Mode.PUBLISH, reply_to=KEYS.reply("m1", "orders")))


def test_envelope_decode_refuses_body_over_the_limit() -> None:
    fields = _encode(kwargs={"blob": "x" * 500})

    with pytest.raises(BadEntry, match="over the 100-byte limit"):
        _decode(fields, max_size=100)


def test_envelope_expired_only_after_its_deadline() -> None:
    env = _decode(_encode())

    assert (env.expired(now=12.0), env.expired(now=13.0)) == (False, True)


def test_envelope_without_deadline_never_expires() -> None:
    env = _decode(_encode(deadline=0.0))

    assert env.expired(now=1e12) is False


# -- bad input, refused before any I/O -------------------------------------------


def test_send_unserializable_kwarg_names_it(bus: Bus, name: str) -> None:
    with pytest.raises(SerializationError, match=r"kwargs\['x'\]"):
        Signal(name).send(sender=None, x=object())


def test_send_unserializable_kwarg_writes_nothing(bus: Bus, name: str) -> None:
    with pytest.raises(SerializationError):
        Signal(name).send(sender=None, x=object())

    assert bus.client.exists(bus.keys.events(name)) == 0


def test_publish_unserializable_kwarg_writes_nothing(bus: Bus, name: str) -> None:
    with pytest.raises(SerializationError, match=r"kwargs\['lock'\]"):
        Signal(name).publish(sender=None, lock=threading.Lock())

    assert bus.client.exists(bus.keys.events(name)) == 0


def test_publish_over_max_payload_names_size_and_limit(
    make_bus: Callable[..., Bus], name: str
) -> None:
    small = make_bus(max_payload=1000)

    with pytest.raises(SerializationError, match="1000-byte limit") as info:
        Signal(name, bus=small).publish(sender=None, blob="x" * 2000)

    size = re.search(r"is (\d+) bytes", str(info.value))
    assert size is not None
    assert int(size.group(1)) > 2000
    assert small.client.exists(small.keys.events(name)) == 0


def test_send_over_max_payload_raises_before_any_io(
    make_bus: Callable[..., Bus], name: str
) -> None:
    small = make_bus(max_payload=1000)

    with pytest.raises(SerializationError, match="1000-byte limit"):
        Signal(name, bus=small).send(sender=None, blob="x" * 2000)

    assert small.client.exists(small.keys.events(name)) == 0


def test_publish_many_bad_item_names_its_index(bus: Bus, name: str) -> None:
    batch: list[dict[str, object]] = [{"n": 0}, {"n": 1}, {"n": object()}]

    with pytest.raises(SerializationError, match=r"batch item 2: .*kwargs\['n'\]"):
        Signal(name).publish_many(None, batch)


def test_publish_many_bad_item_writes_nothing(bus: Bus, name: str) -> None:
    batch: list[dict[str, object]] = [{"n": 0}, {"n": object()}, {"n": 2}]

    with pytest.raises(SerializationError):
        Signal(name).publish_many(None, batch)

    assert bus.client.exists(bus.keys.events(name)) == 0


def test_unnamed_signal_with_explicit_bus_is_configuration_error(bus: Bus) -> None:
    with pytest.raises(ConfigurationError, match="name"):
        Signal(bus=bus)


def test_unnamed_signal_using_a_bus_is_configuration_error(bus: Bus) -> None:
    with pytest.raises(ConfigurationError, match="no name"):
        Signal().using(bus=bus)


@pytest.mark.usefixtures("no_bus")
def test_publish_without_bus_is_configuration_error(name: str) -> None:
    with pytest.raises(ConfigurationError, match="configure"):
        Signal(name).publish(sender=None, n=1)


@pytest.mark.usefixtures("no_bus")
def test_publish_of_unnamed_signal_is_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="named signal"):
        Signal().publish(sender=None)


@pytest.mark.usefixtures("no_bus")
def test_send_without_bus_stays_in_process(name: str) -> None:
    sig = Signal(name)

    def handler(**kwargs: object) -> str:
        return "local"

    sig.connect(handler)

    assert sig.send(sender=None) == [(handler, "local")]


def test_using_non_positive_timeout_is_configuration_error(name: str) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        Signal(name).using(timeout=0)


# -- a publish_many batch -------------------------------------------------------


def test_publish_batch_events_decode_as_single_publishes_do() -> None:
    batch = PublishBatch("orders", "shop.Order", "00-trace-01", 3, max_size=LIMIT)
    decoded = [_decode(batch.fields(i, {"n": i, "tags": ["a", i]})) for i in range(3)]
    single = _decode(
        _encode(mode=Mode.PUBLISH, reply_to="", deadline=0.0, sender="shop.Order")
    )

    assert [e.kwargs for e in decoded] == [{"n": i, "tags": ["a", i]} for i in range(3)]
    for event in decoded:
        assert (event.signal, event.sender, event.mode, event.reply_to) == (
            single.signal,
            single.sender,
            Mode.PUBLISH,
            "",
        )
        assert (event.deadline, event.trace) == (0.0, single.trace)
    ids = [e.message_id for e in decoded]
    assert len(set(ids)) == 3
    assert all(re.fullmatch("[0-9a-f]{32}", i) for i in ids)


def test_publish_batch_refuses_an_event_over_the_size_limit_naming_it() -> None:
    batch = PublishBatch("orders", "", "", 1, max_size=200)
    with pytest.raises(SerializationError, match=r"'orders'.*over the 200-byte limit"):
        batch.fields(0, {"blob": "x" * 500})
