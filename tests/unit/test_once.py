"""A signed event runs at most once per service within its age limit.

The attack: a signed entry read off a stream is added to it again, as it
was. Its signature still holds (same place, same sent-at, young enough),
so only the worker's record of handled message ids stops it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.testing import drain
from busignal.wire.keys import handled_of

SECRET = "a-test-secret-of-at-least-32-bytes!"


def _counting_signal(name: str, bus: Bus) -> tuple[Signal, list[object]]:
    sig = Signal(name, bus=bus)
    ran: list[object] = []

    def receiver(**kwargs: object) -> str:
        ran.append(kwargs["n"])
        return "ok"

    sig.connect(receiver, dispatch_uid=f"{name}.count", weak=False)
    return sig, ran


def _replay_last(bus: Bus, name: str, times: int) -> None:
    stream = bus.keys.events(name)
    entries: Any = bus.client.xrange(stream)
    _, fields = entries[-1]
    for _ in range(times):
        bus.client.xadd(stream, fields)


def test_once_replayed_signed_entry_does_not_run_again(
    make_bus: Callable[..., Bus], name: str
) -> None:
    bus = make_bus(secret=SECRET)
    sig, ran = _counting_signal(name, bus)
    drain(bus, "billing", signals=[name])
    sig.publish(None, n=1)
    drain(bus, "billing", signals=[name])

    _replay_last(bus, name, times=3)
    drain(bus, "billing", signals=[name])

    assert ran == [1]
    assert bus.client.xpending(bus.keys.events(name), "billing")["pending"] == 0


def test_once_record_is_per_service(make_bus: Callable[..., Bus], name: str) -> None:
    bus = make_bus(secret=SECRET)
    sig, ran = _counting_signal(name, bus)
    drain(bus, "billing", signals=[name])
    drain(bus, "audit", signals=[name])
    sig.publish(None, n=1)

    drain(bus, "billing", signals=[name])
    drain(bus, "audit", signals=[name])

    assert ran == [1, 1]


def test_once_record_lives_as_long_as_a_signature(
    make_bus: Callable[..., Bus], name: str
) -> None:
    bus = make_bus(secret=SECRET, max_age=600)
    sig, _ = _counting_signal(name, bus)
    drain(bus, "billing", signals=[name])
    sig.publish(None, n=1)
    drain(bus, "billing", signals=[name])

    [key] = bus.client.keys(handled_of(bus.keys.events(name), "billing", "*"))
    assert 600 < bus.client.ttl(key) <= 600 + 300


def test_once_duplicate_is_reported_to_observers(
    make_bus: Callable[..., Bus], name: str
) -> None:
    from busignal.worker.worker import Worker, WorkerConfig

    bus = make_bus(secret=SECRET)
    sig, _ = _counting_signal(name, bus)
    drain(bus, "billing", signals=[name])
    sig.publish(None, n=1)
    drain(bus, "billing", signals=[name])
    _replay_last(bus, name, times=2)
    seen: list[tuple[str, str, str]] = []

    class Counting:
        def handled(self, job: object, seconds: float) -> None:
            pass

        def dead_lettered(self, signal: str, service: str, reason: str) -> None:
            pass

        def skipped_duplicate(self, signal: str, service: str, envelope: Any) -> None:
            seen.append((signal, service, envelope.message_id))

    import asyncio

    worker = Worker(
        bus, WorkerConfig("billing"), signals_to_serve=[name], observers=[Counting()]
    )
    asyncio.run(worker.serve(burst=True))

    assert len(seen) == 2
    assert {(s, svc) for s, svc, _ in seen} == {(name, "billing")}


def test_once_without_a_secret_records_nothing(bus: Bus, name: str) -> None:
    sig, ran = _counting_signal(name, bus)
    drain(bus, "billing", signals=[name])
    sig.publish(None, n=1)

    drain(bus, "billing", signals=[name])

    assert ran == [1]
    assert bus.client.keys(handled_of(bus.keys.events(name), "*", "*")) == []


def test_once_failed_entry_is_not_recorded_so_its_retry_runs(
    make_bus: Callable[..., Bus], name: str
) -> None:
    bus = make_bus(secret=SECRET)
    sig = Signal(name, bus=bus)
    ran: list[int] = []

    def flaky(**kwargs: object) -> None:
        ran.append(1)
        if len(ran) == 1:
            raise RuntimeError("first time fails")

    sig.connect(flaky, dispatch_uid=f"{name}.flaky", weak=False)
    drain(bus, "billing", signals=[name])
    sig.publish(None)

    drain(bus, "billing", signals=[name], retry_backoff=0)

    assert len(ran) == 2
