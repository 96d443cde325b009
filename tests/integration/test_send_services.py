"""Whom a send waits for, with real worker processes: no time window.

The tests send the moment a worker is ready (it has announced itself), as
users' own tests and deploy scripts do, and the moment a group is gone.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from busignal import RemoteReceiver
from busignal.bus.bus import Bus

from .servers import APPS, RedisServer, WorkerProcess

sys.path.insert(0, str(APPS))

from signals_shared import order_paid

StartWorker = Callable[..., WorkerProcess]


def services(results: list[tuple[object, object]]) -> list[str]:
    out = []
    for receiver, _ in results:
        assert isinstance(receiver, RemoteReceiver)
        out.append(receiver.service)
    return sorted(set(out))


def test_send_right_after_a_worker_is_ready_gets_its_reply(
    bus: Bus, worker_factory: StartWorker
) -> None:
    assert order_paid.send(sender=None, amount=1) == []  # nobody yet

    worker_factory("billing", "billing")
    results = order_paid.using(timeout=5).send(sender=None, amount=2)

    assert services(results) == ["billing"]


def test_send_right_after_a_second_service_is_ready_waits_for_both(
    bus: Bus, worker_factory: StartWorker
) -> None:
    worker_factory("billing", "billing")
    assert services(order_paid.send(sender=None, amount=1)) == ["billing"]

    worker_factory("notifications", "notifications")
    results = order_paid.using(timeout=5).send(sender=None, amount=2)

    assert services(results) == ["billing", "notifications"]


def test_send_right_after_a_group_is_destroyed_does_not_wait_for_it(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = worker_factory("billing", "billing")
    assert services(order_paid.send(sender=None, amount=1)) == ["billing"]
    worker.stop()
    redis_server.client().xgroup_destroy(bus.keys.events("order_paid"), "billing")

    started = time.monotonic()
    results = order_paid.using(timeout=5).send(sender=None, amount=2)

    assert results == []
    assert time.monotonic() - started < 1.0


def test_send_whose_stream_is_deleted_mid_send_returns_at_its_timeout(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = worker_factory("billing", "billing")
    worker.stop()  # its group stays: the send waits for billing
    client = redis_server.client()
    started = time.monotonic()

    deleter = threading.Timer(0.3, lambda: client.delete(bus.keys.events("order_paid")))
    deleter.start()
    results = order_paid.using(timeout=1.5).send_robust(sender=None, amount=3)
    deleter.join()

    elapsed = time.monotonic() - started
    assert 1.4 < elapsed < 3.0
    [(receiver, response)] = results
    assert isinstance(receiver, RemoteReceiver)
    assert receiver.service == "billing"
    assert type(response).__name__ == "SignalTimeout"
