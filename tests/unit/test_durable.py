"""Durable writes: the option's values, memory://, and what a refusal says."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from busignal.bus import durable
from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.errors import BusUnavailable, ConfigurationError


@pytest.mark.parametrize(
    ("value", "mode"),
    [(True, "fsync"), ("fsync", "fsync"), ("replica", "replica"), (False, None)],
)
def test_durability_names_the_wait(value: object, mode: str | None) -> None:
    assert durable.durability(value) == mode


def test_signal_refuses_a_bogus_durability_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="'bogus'"):
        Signal("no_io", durable="bogus")


def test_using_refuses_a_bogus_durability_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="'sometimes'"):
        Signal("no_io").using(durable="sometimes")


def test_using_durable_false_overrides_the_signal() -> None:
    view = Signal("no_io", durable=True).using(durable=False)

    assert view.durable is None


def test_durable_publish_on_memory_confirms_at_once(bus: Bus, name: str) -> None:
    sig = Signal(name, durable=True)

    entry_id = sig.publish(sender=None, n=1)
    many = sig.using(durable="replica").publish_many(None, [{"n": 2}, {"n": 3}])
    later = asyncio.run(sig.apublish(sender=None, n=4))

    client: Any = bus.client
    stored = [e.decode() for e, _ in client.xrange(bus.keys.events(name))]
    assert stored == [entry_id, *many, later]


def test_durable_send_on_memory_returns_without_services(bus: Bus, name: str) -> None:
    assert Signal(name, durable=True).using(timeout=1).send(sender=None) == []


def test_an_unconfirmed_fsync_says_the_entry_may_or_may_not_be_written() -> None:
    with pytest.raises(BusUnavailable, match="may or may not have been written"):
        durable._confirm("fsync", [0, 0], 1.0, "127.0.0.1:7000")


def test_an_unconfirmed_replica_wait_says_so() -> None:
    with pytest.raises(BusUnavailable, match="replica within 2s"):
        durable._confirm("replica", 0, 2.0, "Redis")


def test_a_server_without_waitaof_is_named_too_old() -> None:
    refused = redis.ResponseError("unknown command 'WAITAOF', with args beginning")

    error = durable._refused("fsync", refused, "Redis")

    assert isinstance(error, ConfigurationError)
    assert "too old" in str(error)
    assert "7.2" in str(error)


def test_a_server_without_aof_says_turn_it_on() -> None:
    refused = redis.ResponseError(
        "WAITAOF cannot be used when numlocal is set but appendonly is disabled."
    )

    error = durable._refused("fsync", refused, "Redis")

    assert "appendonly yes" in str(error)


def test_a_slot_moved_mid_write_says_publish_again(
    bus: Bus, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def moved(*args: object) -> list[object]:
        raise redis.exceptions.MovedError("3999 127.0.0.1:7001")

    client = bus.client
    monkeypatch.setattr(bus, "blocking_client", lambda timeout: client)
    monkeypatch.setattr(bus.transport, "is_memory", False)  # as a real server
    monkeypatch.setattr(durable, "round_trip", moved)

    with pytest.raises(BusUnavailable, match=r"slot moved.*publish again"):
        Signal(name, durable="replica").publish(sender=None)
