"""Bad entries, forged signatures and poison events end in the dead letters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from busignal import ConfigurationError
from busignal.admin import dead
from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.testing import drain
from busignal.wire.envelope import Mode, encode
from busignal.wire.signing import Signer

from .bus_helpers import Recorder, Served, delivery


def _fields(signal: str, signer: Signer | None = None) -> dict[Any, Any]:
    """A well-formed entry for ``signal`` (signed when a signer is given)."""
    _, fields = encode(
        signal=signal,
        sender="",
        kwargs={"n": -1},
        mode=Mode.PUBLISH,
        signer=signer,
        max_size=1_000_000,
    )
    return dict(fields)


def _body(data: object) -> bytes:
    packed: bytes = msgpack.packb(data)
    return packed


MALFORMED: dict[str, tuple[Callable[[str], dict[Any, Any]], str]] = {
    "no fields we know": (lambda name: {b"x": b"1"}, "unknown wire version"),
    "missing body": (lambda name: {b"v": b"1"}, "missing field 'b'"),
    "garbage body": (
        lambda name: {b"v": b"1", b"b": b"\xc1\xff\x00garbage"},
        "undecodable body",
    ),
    "unknown wire version": (
        lambda name: {**_fields(name), b"v": b"99"},
        "unknown wire version b'99'",
    ),
    "body of the wrong shape": (
        lambda name: {b"v": b"1", b"b": _body([1, 2, 3])},
        "body is not an array",
    ),
    "body item of the wrong type": (
        lambda name: {b"v": b"1", b"b": _body(["id", name, "", 0, "", 0, "", []])},
        "body item 7",
    ),
    "entry naming another signal": (
        lambda name: _fields("another_signal"),
        "names signal 'another_signal'",
    ),
}


@pytest.fixture
def handled(bus: Bus, name: str) -> Served[int]:
    """A receiver on ``name`` recording ``n``; the service 'svc' is registered."""
    seen: Recorder[int] = Recorder()
    sig = Signal(name)

    def handler(n: int, **kwargs: object) -> None:
        seen.add(n)

    sig.connect(handler, weak=False)
    drain(bus, "svc", signals=[name])
    return Served(sig, seen)


# -- malformed entries --------------------------------------------------------------


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_worker_dead_letters_malformed_entry_with_reason(
    bus: Bus, name: str, handled: Served[int], kind: str
) -> None:
    make, reason = MALFORMED[kind]
    bus.client.xadd(bus.keys.events(name), make(name))

    drain(bus, "svc", signals=[name])

    [letter] = dead.list_dead(bus, name)
    assert reason in letter.reason
    assert letter.service == "svc"


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_worker_keeps_serving_after_malformed_entry(
    bus: Bus, name: str, handled: Served[int], kind: str
) -> None:
    make, _ = MALFORMED[kind]
    bus.client.xadd(bus.keys.events(name), make(name))
    handled.signal.publish(sender=None, n=1)

    count = drain(bus, "svc", signals=[name])

    assert (count, handled.seen.items) == (1, [1])


def test_worker_acknowledges_malformed_entry(
    bus: Bus, name: str, handled: Served[int]
) -> None:
    bus.client.xadd(bus.keys.events(name), {b"v": b"1"})

    drain(bus, "svc", signals=[name])

    assert bus.client.xpending(bus.keys.events(name), "svc")["pending"] == 0


def test_dead_letter_keeps_the_original_fields(
    bus: Bus, name: str, handled: Served[int]
) -> None:
    fields = {**_fields(name), b"v": b"99"}
    bus.client.xadd(bus.keys.events(name), fields)

    drain(bus, "svc", signals=[name])

    [letter] = dead.list_dead(bus, name)
    assert {k: letter.fields[k] for k in fields} == fields


# -- signatures ---------------------------------------------------------------------


@pytest.fixture
def signed_bus(make_bus: Callable[..., Bus], name: str) -> tuple[Bus, Served[int]]:
    """A bus with secret 's1', and a registered service 'svc' recording ``n``."""
    signed = make_bus(secret="s3cret-s3cret-s3cret-s3cret-s3cret")
    seen: Recorder[int] = Recorder()
    sig = Signal(name, bus=signed)

    def handler(n: int, **kwargs: object) -> None:
        seen.add(n)

    sig.connect(handler, weak=False)
    drain(signed, "svc", signals=[name])
    return signed, Served(sig, seen)


def test_signed_bus_dead_letters_unsigned_entry(
    signed_bus: tuple[Bus, Served[int]], name: str
) -> None:
    signed, served = signed_bus
    signed.client.xadd(signed.keys.events(name), _fields(name))

    drain(signed, "svc", signals=[name])

    [letter] = dead.list_dead(signed, name)
    assert "unsigned" in letter.reason
    assert served.seen.items == []


def test_signed_bus_dead_letters_entry_signed_with_wrong_key(
    signed_bus: tuple[Bus, Served[int]], name: str
) -> None:
    signed, served = signed_bus
    forged = _fields(name, Signer(["not-the-secret"]))
    signed.client.xadd(signed.keys.events(name), forged)

    drain(signed, "svc", signals=[name])

    [letter] = dead.list_dead(signed, name)
    assert "bad signature" in letter.reason
    assert served.seen.items == []


def test_signed_bus_runs_entry_signed_with_its_secret(
    signed_bus: tuple[Bus, Served[int]], name: str
) -> None:
    signed, served = signed_bus

    served.signal.publish(sender=None, n=3)
    drain(signed, "svc", signals=[name])

    assert served.seen.items == [3]


def test_rotated_secrets_accept_events_signed_with_the_old_one(
    make_bus: Callable[..., Bus], name: str
) -> None:
    old = make_bus(secret="old-secret-0123456789abcdefghijkl")
    rotated = make_bus(
        secret=[
            "new-secret-0123456789abcdefghijkl",
            "old-secret-0123456789abcdefghijkl",
        ]
    )
    seen: Recorder[int] = Recorder()
    sig = Signal(name, bus=rotated)

    def handler(n: int, **kwargs: object) -> None:
        seen.add(n)

    sig.connect(handler)
    drain(rotated, "svc", signals=[name])

    sig.using(bus=old).publish(sender=None, n=9)
    drain(rotated, "svc", signals=[name])

    assert seen.items == [9]
    assert dead.list_dead(rotated, name) == []


# -- poison events, retries, replay ------------------------------------------------


@pytest.fixture
def poison(bus: Bus, name: str) -> Served[tuple[str, int]]:
    """A receiver that always raises; records (message id, attempt) per call.

    One event is published to the registered service 'svc'.
    """
    calls: Recorder[tuple[str, int]] = Recorder()
    sig = Signal(name)

    def always_fails(**kwargs: object) -> None:
        current = delivery()
        calls.add((current.message_id, current.attempt))
        raise RuntimeError(f"poison attempt {current.attempt}")

    sig.connect(always_fails, weak=False)
    drain(bus, "svc", signals=[name])
    sig.publish(sender=None)
    return Served(sig, calls)


def test_poison_receiver_is_called_max_deliveries_times(
    bus: Bus, name: str, poison: Served[tuple[str, int]]
) -> None:
    drain(bus, "svc", signals=[name], max_deliveries=3)

    assert [attempt for _, attempt in poison.seen.items] == [1, 2, 3]


def test_poison_event_keeps_its_message_id_on_retry(
    bus: Bus, name: str, poison: Served[tuple[str, int]]
) -> None:
    drain(bus, "svc", signals=[name], max_deliveries=3)

    assert len({message_id for message_id, _ in poison.seen.items}) == 1


def test_poison_event_lands_in_dead_letters_with_attempts_and_last_error(
    bus: Bus, name: str, poison: Served[tuple[str, int]]
) -> None:
    drain(bus, "svc", signals=[name], max_deliveries=3)

    [letter] = dead.list_dead(bus, name)
    assert (letter.service, letter.attempts) == ("svc", 3)
    assert "poison attempt 3" in letter.reason


def test_poison_event_is_acknowledged_once_dead(
    bus: Bus, name: str, poison: Served[tuple[str, int]]
) -> None:
    drain(bus, "svc", signals=[name], max_deliveries=3)

    assert bus.client.xpending(bus.keys.events(name), "svc")["pending"] == 0


def test_dead_replay_runs_the_event_again(
    bus: Bus, name: str, poison: Served[tuple[str, int]]
) -> None:
    drain(bus, "svc", signals=[name], max_deliveries=3)
    [message_id] = {message_id for message_id, _ in poison.seen.items}

    new_ids = dead.replay(bus, name)
    drain(bus, "svc", signals=[name], max_deliveries=1)

    assert len(new_ids) == 1
    assert poison.seen.items[3:] == [(message_id, 1)]


def test_dead_replay_removes_the_dead_letter(
    bus: Bus, name: str, poison: Served[tuple[str, int]]
) -> None:
    drain(bus, "svc", signals=[name], max_deliveries=3)

    dead.replay(bus, name)

    assert dead.list_dead(bus, name) == []


def test_dead_replay_goes_to_the_failed_service_only(
    bus: Bus, name: str, poison: Served[tuple[str, int]]
) -> None:
    drain(bus, "other", signals=[name])  # joins after the event: never sees it
    drain(bus, "svc", signals=[name], max_deliveries=3)
    calls = len(poison.seen)

    dead.replay(bus, name)
    drain(bus, "other", signals=[name])

    assert len(poison.seen) == calls


def test_dead_replay_of_given_ids_leaves_the_others(
    bus: Bus, name: str, poison: Served[tuple[str, int]]
) -> None:
    poison.signal.publish(sender=None)
    drain(bus, "svc", signals=[name], max_deliveries=1)
    first, second = dead.list_dead(bus, name)

    dead.replay(bus, name, [first.id])

    assert [d.id for d in dead.list_dead(bus, name)] == [second.id]


def test_dead_purge_deletes_every_dead_letter_and_counts_them(
    bus: Bus, name: str, poison: Served[tuple[str, int]]
) -> None:
    poison.signal.publish(sender=None)
    drain(bus, "svc", signals=[name], max_deliveries=1)

    assert dead.purge(bus, name) == 2
    assert dead.list_dead(bus, name) == []


def test_receiver_failing_once_runs_again_with_the_same_message_id(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)
    calls: Recorder[tuple[str, int]] = Recorder()

    def flaky(**kwargs: object) -> None:
        current = delivery()
        calls.add((current.message_id, current.attempt))
        if current.attempt == 1:
            raise RuntimeError("first attempt fails")

    sig.connect(flaky)
    drain(bus, "svc", signals=[name])
    sig.publish(sender=None)

    drain(bus, "svc", signals=[name])

    [(first_id, first), (second_id, second)] = calls.items
    assert (first, second) == (1, 2)
    assert first_id == second_id
    assert dead.list_dead(bus, name) == []


def test_signal_max_deliveries_overrides_the_workers(bus: Bus, name: str) -> None:
    attempts: Recorder[int] = Recorder()
    sig = Signal(name, max_deliveries=2)

    def always_fails(**kwargs: object) -> None:
        attempts.add(delivery().attempt)
        raise RuntimeError("poison")

    sig.connect(always_fails, weak=False)
    drain(bus, "svc", signals=[name])
    sig.publish(sender=None)

    drain(bus, "svc", signals=[name], max_deliveries=5)

    assert attempts.items == [1, 2]
    assert [d.attempts for d in dead.list_dead(bus, name)] == [2]


def test_signal_max_deliveries_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="max_deliveries must be at least 1"):
        Signal("bad-limit", max_deliveries=0)
