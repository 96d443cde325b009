"""A Redis that restarts with no data (no persistence) must not kill its workers.

Everything a worker stands on is gone at once: its consumer groups, the
records of where they stood, the streams. Nothing that was in them can be
re-run or skipped any more, so the worker recreates its groups and goes on;
a send made after the restart is answered.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import msgpack
import redis

from busignal.bus.bus import Bus

from .servers import APPS, RedisServer, WorkerProcess, wait_for

sys.path.insert(0, str(APPS))

from signals_shared import order_paid

StartWorker = Callable[..., WorkerProcess]

EVENTS = "busignal:{sig:order_paid}:events"


def _exited(worker: WorkerProcess) -> None:
    assert worker.process is not None
    if worker.process.poll() is not None:
        raise AssertionError(f"worker exited:\n{worker.output()}")


def _has_group(server: RedisServer, worker: WorkerProcess) -> bool:
    _exited(worker)
    try:
        groups = server.client().xinfo_groups(EVENTS)
    except redis.ResponseError:  # no such key: the stream is not there yet
        return False
    return any(g["name"] in (worker.service, worker.service.encode()) for g in groups)


def _last_beat(server: RedisServer, worker: WorkerProcess) -> float:
    """When the worker last wrote its heartbeat; fails the test if it exited."""
    _exited(worker)
    beats: dict[bytes, bytes] = server.client().hgetall("busignal:workers")  # type: ignore[assignment]  # sync client
    seen = [
        float(msgpack.unpackb(raw)["seen"])
        for name, raw in beats.items()
        if f":{worker.pid}:" in name.decode()
    ]
    return max(seen, default=0.0)


def _answers(service: str) -> int:
    results = order_paid.using(timeout=5).send_robust(None, amount=7)
    return sum(getattr(r, "service", None) == service for r, _ in results)


def test_redis_restarted_empty_worker_recreates_its_groups_and_answers(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = worker_factory("billing", "billing")
    assert _answers("billing") == 2

    redis_server.restart()  # the default server keeps nothing on disk
    wait_for(lambda: _has_group(redis_server, worker), 15, "the group back")
    # Two heartbeats later, the worker has also been through a reclaim pass
    # (every heartbeat) and a beat on the emptied server.
    back = time.time()
    wait_for(lambda: _last_beat(redis_server, worker) > back + 1.0, 10, "beats")

    assert _answers("billing") == 2
    output = worker.output()
    assert "Traceback" not in output, output
    assert "Recreated the group at the start" in output, output
