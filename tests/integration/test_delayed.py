"""Delayed events with real workers and a real redis-server.

No service runs an event before its time; every service runs it once,
within a second after; the event survives a worker's kill -9 and a Redis
restart with AOF; two workers moving at once never hand one over twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from busignal.admin.scheduled import list_scheduled
from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal

from .servers import RedisServer, WorkerProcess, wait_for

pytestmark = pytest.mark.timeout(120)

#: How late a due event may run, under normal load (the issue's promise).
WITHIN = 1.0

NAME = "delayed_reminder"
reminder = Signal(NAME)  # the apps' delayed.py connects its receiver to it


@pytest.fixture
def redis_server(redis_factory: Callable[..., RedisServer]) -> RedisServer:
    """This module's server: every write fsynced before it is answered."""
    return redis_factory("--appendonly", "yes", "--appendfsync", "always")


def runs(server: RedisServer) -> list[tuple[str, int, float]]:
    """(service, n, when) of every receiver run so far."""
    raw: Any = server.client().lrange("delayed:runs", 0, -1)
    found = []
    for item in raw:
        service, n, when, _ = item.decode().split("|")
        found.append((service, int(n), float(when)))
    return found


def settled(server: RedisServer, services: list[str], marker: int) -> bool:
    """True once every service ran ``marker``: what was due before it is done."""
    return {s for s, n, _ in runs(server) if n == marker} >= set(services)


def test_delayed_event_runs_in_every_service_once_within_a_second_after(
    bus: Bus,
    redis_server: RedisServer,
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    for service in ("alpha", "beta"):
        worker_factory(service, "delayed")
    due: dict[int, float] = {}
    for n, delay in enumerate((1.0, 2.0, 2.5)):
        due[n] = time.time() + delay
        reminder.using(delay=delay).publish(sender=None, n=n)

    wait_for(lambda: len(runs(redis_server)) >= 6, timeout=15, what="six runs")
    reminder.publish(sender=None, n=99)  # a marker: runs after what came before
    wait_for(lambda: settled(redis_server, ["alpha", "beta"], 99), what="marker")

    done = [(s, n, when) for s, n, when in runs(redis_server) if n != 99]
    assert Counter((s, n) for s, n, _ in done) == {
        (s, n): 1 for s in ("alpha", "beta") for n in due
    }
    late = {(s, n): when - due[n] for s, n, when in done}
    assert all(0 <= lateness <= WITHIN for lateness in late.values()), late


def test_delayed_event_survives_a_worker_kill_and_a_redis_restart_with_aof(
    bus: Bus,
    redis_server: RedisServer,
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    worker = worker_factory("alpha", "delayed")
    due = time.time() + 4.0
    reminder.using(delay=4.0).publish(sender=None, n=1)

    worker.kill()  # kill -9 during the delay
    assert redis_server.process is not None
    redis_server.process.kill()  # and Redis too; it comes back from its AOF
    redis_server.process.wait()
    redis_server.start()
    bus.close()
    [kept] = list_scheduled(bus, NAME)
    assert kept.due == pytest.approx(due, abs=0.01)
    worker_factory("alpha", "delayed")

    wait_for(lambda: runs(redis_server), timeout=15, what="the delayed event to run")
    reminder.publish(sender=None, n=99)
    wait_for(lambda: settled(redis_server, ["alpha"], 99), what="marker")
    [(service, n, when)] = [r for r in runs(redis_server) if r[1] != 99]
    assert (service, n) == ("alpha", 1)
    assert due <= when <= due + WITHIN


def test_two_workers_never_hand_over_one_of_500_delayed_events_twice(
    bus: Bus,
    redis_server: RedisServer,
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    worker_factory("alpha", "delayed")
    worker_factory("alpha", "delayed")  # both move due entries, at once
    batch = [{"n": n} for n in range(500)]
    ids = reminder.using(delay=1.5).publish_many(None, batch)
    assert len(set(ids)) == 500

    wait_for(lambda: len(runs(redis_server)) >= 500, timeout=30, what="500 runs")
    reminder.publish(sender=None, n=-1)
    wait_for(lambda: settled(redis_server, ["alpha"], -1), what="marker")

    counts = Counter(n for _, n, _ in runs(redis_server) if n != -1)
    assert counts == dict.fromkeys(range(500), 1)
    assert list_scheduled(bus, NAME) == []
