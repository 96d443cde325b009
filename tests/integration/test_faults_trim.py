"""Fault injection: a slow service on a stream the workers keep trimming.

Workers trim the streams their service reads every 10 heartbeats (5 s at
--heartbeat 0.5) with XTRIM MINID below what every group has read and
acknowledged. A service that lags, or is stopped outright, must still find
every entry it has not acknowledged. A stream no service reads is bounded
by its senders, and no worker touches it.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

from busignal.bus.bus import Bus

from .faults_support import (
    SERVICE,
    events_key,
    ledger,
    pending,
    tally,
    wait_handled,
    xtrim_calls,
)
from .servers import APPS, RedisServer, WorkerProcess, wait_for

sys.path.insert(0, str(APPS))

from faults_receivers import tick

StartWorker = Callable[..., WorkerProcess]


def test_faults_trimming_never_removes_what_a_slow_service_has_not_acked(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker_factory(SERVICE, "faults_receivers")
    laggard = worker_factory("laggard", "faults_laggard", extra=["--concurrency", "1"])
    stream = events_key("faults_tick")
    client = redis_server.client()
    os.kill(laggard.pid, signal.SIGSTOP)
    try:
        ids = tick.publish_many(None, [{"delay": 0.0}] * 200)
        wait_handled(redis_server, ids, timeout=10)
        trims = xtrim_calls(redis_server)
        wait_for(lambda: xtrim_calls(redis_server) >= trims + 2, 15, "two trims")
        assert client.xlen(stream) == len(ids)  # the laggard read none of them
    finally:
        os.kill(laggard.pid, signal.SIGCONT)

    # The laggard now holds a batch pending while trims go on around it.
    wait_handled(redis_server, ids, timeout=30, service="laggard")
    wait_for(lambda: client.xlen(stream) == 0, 15, "the stream to be trimmed")

    result = tally("trim-laggard", ids, ledger(redis_server, "laggard"))
    assert result.lost == 0
    assert tally("trim-fast", ids, ledger(redis_server)).lost == 0
    assert pending(redis_server, "faults_tick", "laggard") == 0


def test_faults_stream_without_groups_is_bounded_by_its_senders(bus: Bus) -> None:
    maxlen = bus.config.stream_maxlen
    batch = [{"n": n} for n in range(1000)]
    for _ in range(maxlen // len(batch) + 2):
        bus.publish_many("faults_orphan", None, batch)  # no service reads it

    length = bus.client.xlen(events_key("faults_orphan"))

    # MAXLEN ~ trims whole stream nodes (100 entries each by default).
    assert maxlen <= length <= maxlen + 100


def test_faults_worker_trims_only_the_streams_its_service_reads(
    redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    other = events_key("faults_orphan")  # read by no service of this worker
    pipe = redis_server.client().pipeline(transaction=False)
    for n in range(300):
        pipe.xadd(other, {"n": n})
    pipe.execute()
    before = xtrim_calls(redis_server)
    worker_factory(SERVICE, "faults_receivers")

    wait_for(lambda: xtrim_calls(redis_server) > before, 20, "the worker's trim")

    assert redis_server.client().xlen(other) == 300
