"""Distributed delivery against a real redis-server and real worker processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis

import busignal
from busignal import BusUnavailable, RemoteReceiver, SignalTimeout
from busignal.bus.bus import Bus

from .servers import APPS, RedisServer, WorkerProcess, free_port, wait_for

sys.path.insert(0, str(APPS))

from signals_shared import Order, cache_cleared, event, order_paid

StartWorker = Callable[..., WorkerProcess]


def handled(server: RedisServer, tag: str) -> list[tuple[str, str]]:
    """(message id, pid) pairs the workers recorded under ``tag``."""
    raw: list[bytes] = server.client().lrange(f"test:handled:{tag}", 0, -1)  # type: ignore[assignment]  # sync client
    pairs = [item.decode().split("|", 1) for item in raw]
    return [(message, pid) for message, pid in pairs]


def by_service(results: list[tuple[object, object]]) -> dict[str, dict[str, Any]]:
    """Responses by service, then by receiver id (keeping receiver order)."""
    grouped: dict[str, dict[str, Any]] = {}
    for receiver, response in results:
        assert isinstance(receiver, RemoteReceiver)
        grouped.setdefault(receiver.service, {})[receiver.id] = response
    return grouped


def test_send_fans_out_to_every_service_once(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    for _ in range(2):
        worker_factory("billing", "billing")
        worker_factory("notifications", "notifications")
    sends = 20

    for amount in range(sends):
        results = by_service(order_paid.send(sender=None, amount=amount))
        assert sorted(results) == ["billing", "notifications"]
        billing = results["billing"]
        assert list(billing) == ["billing.charge", "billing.receipt"]
        assert billing["billing.charge"]["charged"] == amount
        assert billing["billing.receipt"] == f"receipt for {amount}"
        assert "billing.only_orders" not in billing
        assert results["notifications"] == {
            "notifications.email": f"emailed about {amount}"
        }

    for tag in ("billing.charge", "billing.receipt", "notifications.email"):
        messages = [m for m, _ in handled(redis_server, tag)]
        assert len(messages) == sends, tag
        assert len(set(messages)) == sends, tag


def test_publish_balances_load_over_a_services_workers(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    first, second = (
        worker_factory("billing", "billing"),
        worker_factory("billing", "billing"),
    )
    total = 1000

    ids = event.publish_many(None, [{"n": n} for n in range(total)])

    wait_for(lambda: len(handled(redis_server, "billing.event")) >= total, 30, "1000")
    time.sleep(0.3)  # would reveal duplicates arriving late
    records = handled(redis_server, "billing.event")
    per_message = Counter(m for m, _ in records)
    per_pid = Counter(p for _, p in records)
    print(
        f"\nsent={total} handled={len(per_message)} lost={total - len(per_message)} "
        f"duplicated={sum(c - 1 for c in per_message.values())} by pid={dict(per_pid)}"
    )
    assert len(ids) == total
    assert len(per_message) == total
    assert max(per_message.values()) == 1
    assert set(per_pid) == {str(first.pid), str(second.pid)}


def test_send_raises_first_remote_error_and_send_robust_returns_it(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker_factory("billing", "billing")
    worker_factory("notifications", "notifications")

    with pytest.raises(ValueError, match="negative amount -1") as raised:
        order_paid.send(sender=None, amount=-1)
    robust = by_service(order_paid.send_robust(sender=None, amount=-2))

    assert any(
        "Raised by a receiver of service 'billing'" in n for n in raised.value.__notes__
    )
    billing = robust["billing"]
    assert isinstance(billing["billing.charge"], ValueError)
    assert billing["billing.receipt"] == "receipt for -2"  # robust runs the rest
    assert robust["notifications"] == {"notifications.email": "emailed about -2"}
    # fail-fast stopped billing's chain at the raising receiver
    assert len(handled(redis_server, "billing.receipt")) == 1


def test_sender_filter_applies_across_processes(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker_factory("billing", "billing")

    results = by_service(order_paid.send(sender=Order, amount=3))["billing"]

    assert results["billing.only_orders"] == "sender is <class 'signals_shared.Order'>"
    assert len(handled(redis_server, "billing.only_orders")) == 1


def test_broadcast_receiver_runs_in_every_worker_process(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    workers = [worker_factory("notifications", "notifications") for _ in range(2)]
    time.sleep(0.3)  # broadcast readers start from the stream's end at startup

    cache_cleared.publish(None, key="users")

    wait_for(lambda: len(handled(redis_server, "notifications.cache.users")) == 2)
    pids = {p for _, p in handled(redis_server, "notifications.cache.users")}
    assert pids == {str(w.pid) for w in workers}


def test_events_published_while_workers_are_down_are_handled_later(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = worker_factory("billing", "billing")  # registers the service
    worker.stop()

    event.publish_many(None, [{"n": n} for n in range(10)])
    with pytest.raises(SignalTimeout, match="'billing'"):
        event.using(timeout=0.5).send(None, n=99)
    assert handled(redis_server, "billing.event") == []
    worker_factory("billing", "billing")

    wait_for(lambda: len(handled(redis_server, "billing.event")) == 11)


def test_send_robust_reports_timeout_for_a_service_without_workers(
    bus: Bus, worker_factory: StartWorker
) -> None:
    worker_factory("notifications", "notifications").stop()
    worker_factory("billing", "billing")

    results = order_paid.using(timeout=0.5).send_robust(None, amount=1)

    timeouts = [(r, e) for r, e in results if isinstance(e, SignalTimeout)]
    assert [r.service for r, _ in timeouts] == ["notifications"]  # type: ignore[attr-defined]
    assert any(getattr(r, "service", "") == "billing" for r, _ in results)


def test_send_raises_bus_unavailable_with_password_redacted() -> None:
    url = f"redis://user:hunter2@127.0.0.1:{free_port()}/0"
    unreachable = Bus(url, connect_timeout=1)

    started = time.monotonic()
    with pytest.raises(BusUnavailable) as raised:
        order_paid.using(bus=unreachable).send(None, amount=1)
    with pytest.raises(BusUnavailable):
        order_paid.using(bus=unreachable).publish(None, amount=1)

    assert time.monotonic() - started < 5
    assert "hunter2" not in str(raised.value)
    assert "***" in str(raised.value)


def test_malformed_entries_are_dead_lettered_and_the_worker_keeps_serving(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker_factory("billing", "billing")
    stream, dead = bus.keys.events("event"), bus.keys.dead("event")
    cli = ["redis-cli", "-p", str(redis_server.port)]
    for fields in (
        ["x", "1"],
        ["v", "1", "b", "\xff\xfe garbage"],
        ["v", "9", "b", "x"],
    ):
        subprocess.run(
            [*cli, "XADD", stream, "*", *fields], check=True, capture_output=True
        )

    event.publish(None, n=1)

    wait_for(lambda: len(handled(redis_server, "billing.event")) == 1)
    entries: list[Any] = redis_server.client().xrange(dead)  # type: ignore[assignment]  # sync client
    reasons = [fields[b"reason"].decode() for _, fields in entries]
    assert len(reasons) == 3
    assert "missing field 'b'" in reasons[0] or "wire version" in reasons[0]
    assert any("undecodable" in r for r in reasons)
    assert any("unknown wire version b'9'" in r for r in reasons)


@pytest.mark.parametrize(
    ("module", "message"),
    [("broken", "cannot import module 'broken'"), ("empty", "register no receivers")],
)
def test_worker_cli_refuses_bad_modules(
    redis_server: RedisServer, module: str, message: str
) -> None:
    import os

    env = {**os.environ, "PYTHONPATH": str(APPS), "TEST_REDIS_URL": redis_server.url}
    done = subprocess.run(
        [sys.executable, "-m", "busignal", "worker", module, "--service", "x",
         "--url", redis_server.url],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip

    assert done.returncode == 2
    assert message in done.stderr


def test_worker_exits_zero_on_sigterm(bus: Bus, worker_factory: StartWorker) -> None:
    import signal

    worker = worker_factory("billing", "billing")

    worker.send_signal(signal.SIGTERM)

    assert worker.wait(15) == 0


def test_redis_client_sees_no_leftover_reply_keys(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker_factory("billing", "billing")
    order_paid.send(None, amount=1)

    keys = redis_server.client().keys(bus.keys.reply_pattern())
    ttls = [redis_server.client().ttl(k) for k in keys]

    assert all(0 < t <= 60 for t in ttls)


def test_asend_works_against_real_workers(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    import asyncio

    worker_factory("billing", "billing")

    results = asyncio.run(order_paid.asend(None, amount=4))
    entry_id = asyncio.run(event.apublish(None, n=4))

    assert by_service(results)["billing"]["billing.receipt"] == "receipt for 4"
    assert entry_id.count("-") == 1
    wait_for(lambda: len(handled(redis_server, "billing.event")) == 1)
    assert isinstance(redis_server.client(), redis.Redis)
    assert busignal.get_bus() is bus
