"""Delayed events on memory://: what is stored, when it moves, bad input."""

from __future__ import annotations

import asyncio
import math
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from busignal.admin.inspection import inspect_bus
from busignal.admin.scheduled import cancel, list_scheduled, next_due
from busignal.bus.bus import Bus
from busignal.bus.delayed import CLOCK_SKEW, due_time, publish_later
from busignal.dispatch.signal import Signal
from busignal.errors import ConfigurationError, UnknownId
from busignal.testing import drain
from busignal.wire.schedule import MOVE_DUE, pack_fields, unpack_fields

from .bus_helpers import Recorder

# -- bad input, before any I/O ---------------------------------------------------


@pytest.mark.parametrize("delay", [-1, -0.001, "5", True, math.nan, math.inf])
def test_using_refuses_a_bad_delay_naming_it(delay: Any) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(repr(delay))):
        Signal("no_io").using(delay=delay)


def test_using_refuses_a_naive_eta() -> None:
    naive = datetime(2030, 1, 1, 12, 0)

    with pytest.raises(ConfigurationError, match="naive"):
        Signal("no_io").using(eta=naive)


def test_using_refuses_an_eta_in_the_past_beyond_the_clock_skew() -> None:
    past = datetime.now(UTC) - timedelta(seconds=CLOCK_SKEW + 60)

    with pytest.raises(ConfigurationError, match="in the past"):
        Signal("no_io").using(eta=past)


def test_an_eta_slightly_in_the_past_means_now() -> None:
    now = time.time()
    slightly = datetime.fromtimestamp(now - 1, UTC)

    assert due_time(eta=slightly, now=now) is None


def test_due_time_refuses_both_delay_and_eta() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        due_time(delay=1, eta=datetime.now(UTC))


def test_due_time_takes_a_timedelta() -> None:
    assert due_time(delay=timedelta(minutes=1), now=100.0) == 160.0


def test_send_with_a_delay_is_refused_saying_use_publish(bus: Bus, name: str) -> None:
    with pytest.raises(ConfigurationError, match=r"publish"):
        Signal(name).using(delay=5).send(sender=None)


def test_asend_robust_with_an_eta_is_refused(bus: Bus, name: str) -> None:
    eta = datetime.now(UTC) + timedelta(minutes=1)
    view = Signal(name).using(eta=eta)

    with pytest.raises(ConfigurationError, match=r"cannot delay a send"):
        asyncio.run(view.asend_robust(sender=None))


# -- scheduling and handing over ---------------------------------------------------


def test_delayed_publish_waits_aside_not_on_the_stream(bus: Bus, name: str) -> None:
    sig = Signal(name)

    event_id = sig.using(delay=60).publish(sender=None, n=1)

    client: Any = bus.client
    assert client.xlen(bus.keys.events(name)) == 0
    assert [s.id for s in list_scheduled(bus, name)] == [event_id]


def test_delayed_event_is_not_run_before_it_is_due(bus: Bus, name: str) -> None:
    sig = Signal(name)
    seen: Recorder[int] = Recorder()
    sig.connect(lambda n, **kw: seen.add(n), weak=False)
    drain(bus, "svc", signals=[name])
    sig.using(delay=60).publish(sender=None, n=1)

    assert drain(bus, "svc", signals=[name]) == 0
    assert seen.items == []


def test_due_event_goes_to_every_service_once(bus: Bus, name: str) -> None:
    sig = Signal(name)
    seen: Recorder[int] = Recorder()
    sig.connect(lambda n, **kw: seen.add(n), weak=False)
    drain(bus, "alpha", signals=[name])
    drain(bus, "beta", signals=[name])
    publish_later(bus, name, None, [{"n": 7}], due=time.time() - 0.5)

    handled = [drain(bus, s, signals=[name]) for s in ("alpha", "beta", "alpha")]

    assert (handled, seen.items) == ([1, 1, 0], [7, 7])


def test_moving_twice_hands_each_entry_over_once(bus: Bus, name: str) -> None:
    publish_later(bus, name, None, [{"n": n} for n in range(5)], time.time() - 1)
    zset, data = bus.keys.scheduled_of(bus.keys.events(name))
    stream = bus.keys.events(name)
    now = int(time.time() * 1000)

    moved = [bus.client.eval(MOVE_DUE, 3, zset, data, stream, now, 100)]
    moved.append(bus.client.eval(MOVE_DUE, 3, zset, data, stream, now, 100))

    client: Any = bus.client
    assert (moved, client.xlen(stream)) == ([5, 0], 5)


def test_publish_many_with_a_delay_schedules_each_partition(
    bus: Bus, name: str
) -> None:
    sig = Signal(name, partitions=3, partition_key="k")

    batch = [{"k": k} for k in range(12)]

    ids = sig.using(delay=30).publish_many(None, batch)

    listed = list_scheduled(bus, name)
    assert sorted(s.id for s in listed) == sorted(ids)
    chosen = {sig.partitioning.choose(kwargs) for kwargs in batch}
    assert {s.partition for s in listed} == chosen
    assert len(chosen) > 1


def test_apublish_with_a_delay_schedules_the_event(bus: Bus, name: str) -> None:
    sig = Signal(name)

    event_id = asyncio.run(sig.using(delay=30).apublish(sender="shop", order=3))

    [item] = list_scheduled(bus, name)
    assert (item.id, item.sender, item.kwargs) == (event_id, "shop", ("order",))
    assert item.due == pytest.approx(time.time() + 30, abs=2)


def test_delay_zero_is_a_plain_publish(bus: Bus, name: str) -> None:
    entry_id = Signal(name).using(delay=0).publish(sender=None)

    client: Any = bus.client
    assert [e.decode() for e, _ in client.xrange(bus.keys.events(name))] == [entry_id]


# -- operator view ----------------------------------------------------------------


def test_cancel_removes_only_the_named_event(bus: Bus, name: str) -> None:
    sig = Signal(name)
    first = sig.using(delay=60).publish(sender=None, n=1)
    second = sig.using(delay=60).publish(sender=None, n=2)

    assert cancel(bus, name, [first]) == [first]
    assert [s.id for s in list_scheduled(bus, name)] == [second]


def test_cancel_of_an_unknown_id_cancels_nothing(bus: Bus, name: str) -> None:
    first = Signal(name).using(delay=60).publish(sender=None)

    with pytest.raises(UnknownId, match="scheduled event"):
        cancel(bus, name, [first, "nope"])
    assert len(list_scheduled(bus, name)) == 1


def test_inspect_counts_scheduled_events_and_the_next_due(bus: Bus, name: str) -> None:
    sig = Signal(name)
    sig.using(delay=120).publish(sender=None)
    sig.using(delay=60).publish(sender=None)

    [info] = [s for s in inspect_bus(bus).signals if s.name == name]

    assert info.scheduled == 2
    assert info.next_due == pytest.approx(time.time() + 60, abs=2)
    assert next_due(bus, name)[0] == 2


def test_packed_fields_round_trip_with_colons_and_binary() -> None:
    fields = {b"v": b"1", b"b": b"a:b\x00:\xff" * 3, b"h": b""}

    assert unpack_fields(pack_fields(fields)) == fields


SECRET = "a-delayed-events-signing-secret-32b"


@pytest.mark.parametrize("partitions", [1, 3])
def test_signed_delayed_event_runs_when_due_even_past_max_age(
    make_bus: Any, name: str, partitions: int
) -> None:
    """A delayed entry is signed for its partition's stream as sent at its due
    time: a delay longer than max_age must not make it 'too old' once due."""
    signed = make_bus(secret=SECRET, max_age=1.0)
    sig = (
        Signal(name, partitions=partitions, bus=signed)
        if partitions > 1
        else (Signal(name, bus=signed))
    )
    seen: Recorder[int] = Recorder()
    sig.connect(lambda n, **kw: seen.add(n), weak=False)
    drain(signed, "svc", signals=[name])
    batch = [{"n": n} for n in range(6)]
    due = time.time() + 1.5  # longer than max_age from now
    publish_later(signed, name, None, batch, due, sig.partitioning)

    while time.time() < due:
        time.sleep(0.05)
    drain(signed, "svc", signals=[name])

    assert sorted(seen.items) == list(range(6))
    assert all(
        signed.client.xlen(signed.keys.dead(name, p)) == 0 for p in range(partitions)
    )
