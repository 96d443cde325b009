"""Services declared ahead, and consumer groups recreated where they stood."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from busignal.admin.acl import acl_rules
from busignal.admin.services import create_service
from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.errors import GroupLost, UsageError
from busignal.worker.worker import Worker, WorkerConfig


def _drain(bus: Bus, service: str, name: str) -> None:
    """Run a worker of ``service`` until it has handled what is queued."""
    worker = Worker(bus, WorkerConfig(service, block_ms=10), signals_to_serve=[name])
    asyncio.run(worker.serve(burst=True))


def _served(name: str) -> tuple[Signal, list[Any]]:
    seen: list[Any] = []
    signal = Signal(name)
    signal.connect(lambda n, **kw: seen.append(n), weak=False)
    return signal, seen


def test_declared_service_gets_events_sent_before_its_first_worker(
    bus: Bus, name: str
) -> None:
    signal, seen = _served(name)
    [declared] = create_service(bus, name, "billing")
    for n in range(3):
        signal.publish(None, n=n)

    _drain(bus, "billing", name)

    assert declared.result.kind == "created"
    assert seen == [0, 1, 2]


def test_undeclared_service_starts_at_its_first_worker(bus: Bus, name: str) -> None:
    signal, seen = _served(name)
    signal.publish(None, n=0)  # before the service exists: not for it

    _drain(bus, "billing", name)
    signal.publish(None, n=1)
    _drain(bus, "billing", name)

    assert seen == [1]


def test_destroyed_group_is_recreated_where_it_stood(bus: Bus, name: str) -> None:
    signal, seen = _served(name)
    create_service(bus, name, "billing")
    for n in range(3):
        signal.publish(None, n=n)
    _drain(bus, "billing", name)
    bus.client.xgroup_destroy(bus.keys.events(name), "billing")
    for n in range(3, 5):
        signal.publish(None, n=n)

    _drain(bus, "billing", name)

    assert seen == [0, 1, 2, 3, 4]


def test_service_create_from_start_runs_what_is_in_the_stream(
    bus: Bus, name: str
) -> None:
    signal, seen = _served(name)
    signal.publish(None, n=0)

    [declared] = create_service(bus, name, "billing", start="start")
    _drain(bus, "billing", name)

    assert (declared.result.kind, seen) == ("created", [0])


def test_service_create_leaves_an_existing_group_alone(bus: Bus, name: str) -> None:
    create_service(bus, name, "billing")

    [again] = create_service(bus, name, "billing", start="start")

    assert again.result.kind == "exists"


def test_service_create_refuses_a_bad_service_name(bus: Bus, name: str) -> None:
    with pytest.raises(UsageError, match="invalid service name"):
        create_service(bus, name, "two words")


def test_worker_refuses_a_vanished_group_with_no_record(bus: Bus, name: str) -> None:
    signal, _ = _served(name)  # kept: named signals are registered weakly
    stream = bus.keys.events(name)
    bus.client.xgroup_create(stream, "billing", id="$", mkstream=True)
    worker = Worker(bus, WorkerConfig("billing"), signals_to_serve=[name])

    async def recreate() -> None:
        worker._client = bus.transport.async_client()
        try:
            bus.client.xgroup_destroy(stream, "billing")
            await worker.join_groups(start="")
        finally:
            await worker._client.aclose()

    with pytest.raises(GroupLost, match="--from-start"):
        asyncio.run(recreate())
    assert signal.name == name


@pytest.mark.parametrize("role", ["sender", "worker", "admin"])
def test_acl_rules_confine_every_role_to_its_namespace(role: str) -> None:
    rules = acl_rules(role, "shop")

    patterns = [r for r in rules if r.startswith("~")]
    assert patterns
    assert all(p.startswith("~shop:") for p in patterns)
    assert "-@all" in rules
    assert not {"+flushall", "+config", "+keys", "+@all"} & set(rules)
