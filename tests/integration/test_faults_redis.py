"""Fault injection on the Redis side: restarts, killed connections, stalls.

The server runs with ``appendonly yes`` and ``appendfsync always`` so that
an XADD that returned an id is on disk before the reply: a kill -9 and
restart then loses nothing a sender was told had been published.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import pytest

import busignal
from busignal import BusUnavailable, Signal
from busignal.bus.bus import Bus

from .faults_support import (
    SERVICE,
    alive,
    kill_redis,
    ledger,
    pending,
    tally,
    wait_handled,
)
from .servers import APPS, RedisServer, WorkerProcess, free_port, wait_for

sys.path.insert(0, str(APPS))

from faults_receivers import slow, tick

StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def redis_server(redis_factory: Callable[..., RedisServer]) -> RedisServer:
    """This module's server: every write fsynced before it is answered."""
    return redis_factory("--appendonly", "yes", "--appendfsync", "always")


class Publisher(threading.Thread):
    """Publishes ticks until stopped; keeps the ids and the failures."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.ids: list[str] = []
        self.failures: list[BusUnavailable] = []
        self.slowest_failure = 0.0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            started = time.monotonic()
            try:
                self.ids.append(tick.publish(None, delay=0.0))
            except BusUnavailable as exc:
                self.failures.append(exc)
                took = time.monotonic() - started
                self.slowest_failure = max(self.slowest_failure, took)
            time.sleep(0.01)


def test_faults_redis_restart_loses_no_published_event(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    workers = [worker_factory(SERVICE, "faults_receivers") for _ in range(2)]
    publisher = Publisher()
    publisher.start()
    wait_for(lambda: len(publisher.ids) >= 100, 10, "100 publishes")

    kill_redis(redis_server)
    wait_for(lambda: len(publisher.failures) >= 3, 10, "publishes to fail")
    time.sleep(1.0)
    redis_server.start()
    count = len(publisher.ids)
    wait_for(lambda: len(publisher.ids) >= count + 100, 15, "publishes to resume")
    publisher.halt.set()
    publisher.join(10)

    wait_handled(redis_server, publisher.ids, timeout=30)
    result = tally("redis-restart", publisher.ids, ledger(redis_server))
    print(
        f"faults[redis-restart]: {len(publisher.failures)} publishes raised "
        f"BusUnavailable, slowest in {publisher.slowest_failure:.2f}s"
    )
    assert result.lost == 0
    assert publisher.slowest_failure < bus.config.connect_timeout + 1.5
    assert all(alive(w) for w in workers)
    wait_for(lambda: pending(redis_server, "faults_tick") == 0, 10, "every ack")


def test_faults_client_kill_of_worker_connections_loses_nothing(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = worker_factory(SERVICE, "faults_receivers")
    before = tick.publish_many(None, [{"delay": 0.01}] * 200)
    admin = redis_server.client()
    wait_for(lambda: len(ledger(redis_server)) >= 20, 10, "some events handled")

    killed = admin.client_kill_filter(_type="normal", skipme=True)
    after = tick.publish_many(None, [{"delay": 0.0}] * 50)

    wait_handled(redis_server, before + after, timeout=20)
    result = tally("client-kill", before + after, ledger(redis_server))
    assert int(killed) > 0
    assert result.lost == 0
    assert alive(worker)
    wait_for(lambda: pending(redis_server, "faults_tick") == 0, 10, "every ack")


def test_faults_client_pause_longer_than_read_timeout_loses_nothing(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = worker_factory(SERVICE, "faults_receivers")
    in_hand = slow.publish(None, seconds=1.0)
    before = tick.publish_many(None, [{"delay": 0.0}] * 50)
    wait_handled(redis_server, before, timeout=10)
    # The worker's read timeout is block (1 s) + socket_timeout (5 s).
    pause_ms = 6500

    redis_server.client().client_pause(pause_ms, all=True)
    paused_at = time.monotonic()
    wait_for(lambda: time.monotonic() - paused_at > pause_ms / 1000, 10, "the pause")
    after = tick.publish_many(None, [{"delay": 0.0}] * 50)

    sent = [in_hand, *before, *after]
    wait_handled(redis_server, sent, timeout=20)
    result = tally("client-pause", sent, ledger(redis_server))
    assert result.lost == 0
    assert alive(worker)


def test_faults_send_with_redis_down_raises_bus_unavailable_quickly() -> None:
    url = f"redis://app:s3cret@127.0.0.1:{free_port()}/0"
    down = Bus(url, connect_timeout=1.0, timeout=30)
    signal = Signal("faults_down", bus=down)
    started = time.monotonic()

    with pytest.raises(BusUnavailable) as caught:
        signal.send(sender=None, n=1)
    took = time.monotonic() - started

    print(f"faults[redis-down]: send raised BusUnavailable in {took:.2f}s")
    message = str(caught.value)
    assert took < down.config.connect_timeout + 1.5
    assert "127.0.0.1" in message
    assert "s3cret" not in message
    assert "***" in message
    with pytest.raises(BusUnavailable):
        signal.publish(sender=None, n=1)
    busignal.configure(None)


def test_faults_send_during_a_stall_raises_within_its_timeout(
    bus: Bus, redis_server: RedisServer
) -> None:
    stalled = Signal("faults_stalled", bus=bus)
    redis_server.client().client_pause(8000, all=True)
    started = time.monotonic()

    with pytest.raises(BusUnavailable):
        stalled.using(timeout=1.0).send(sender=None, n=1)
    took = time.monotonic() - started

    print(f"faults[stall]: send(timeout=1) gave up after {took:.2f}s")
    assert took < 1.0 + bus.config.socket_timeout + 1.0
