"""Fault injection: workers killed, and stopped by SIGTERM, mid-receiver.

Takeover bound: a SIGKILLed worker's last heartbeat is at most one
interval old; it lapses after LAPSE_INTERVALS (3) intervals; a live worker
of the service reclaims on its next pass (every interval), after at most
one blocking read (block_ms = 1 s). With --heartbeat 0.5 that is
1.5 + 0.5 + 1.0 = 3.0 s, plus 1 s of slack for a loaded 2-core machine.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable

from busignal.bus.bus import Bus

from .faults_support import (
    SERVICE,
    elapsed_since,
    ledger,
    pending,
    pending_for_pid,
    tally,
    wait_handled,
)
from .servers import APPS, RedisServer, WorkerProcess, wait_for

sys.path.insert(0, str(APPS))

from faults_receivers import gated, slow, tick

StartWorker = Callable[..., WorkerProcess]

HEARTBEAT = 0.5
TAKEOVER_BOUND = 3 * HEARTBEAT + HEARTBEAT + 1.0 + 1.0


def _done_by(server: RedisServer, entry: str) -> list[int]:
    raw: list[bytes] = server.client().lrange(f"faults:done:{entry}", 0, -1)  # type: ignore[assignment]  # sync client
    return [int(pid) for pid in raw]


def _started_by(server: RedisServer, entry: str) -> int | None:
    raw = server.client().get(f"faults:started:{entry}")
    return int(raw) if raw is not None else None


def test_faults_kill9_mid_receiver_is_taken_over_within_bound(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    workers = [worker_factory(SERVICE, "faults_receivers") for _ in range(2)]
    entry = gated.publish(None)
    wait_for(lambda: _started_by(redis_server, entry), 10, "the receiver to start")
    victim = next(w for w in workers if w.pid == _started_by(redis_server, entry))
    survivor = next(w for w in workers if w is not victim)

    victim.kill()
    killed_at = time.monotonic()
    redis_server.client().rpush(f"faults:gate:{entry}", "open")
    wait_for(lambda: _done_by(redis_server, entry), 15, "the takeover")
    took = elapsed_since(killed_at)

    print(f"faults[kill9-takeover]: handled {took:.2f}s after kill -9")
    assert _done_by(redis_server, entry) == [survivor.pid]
    assert took < TAKEOVER_BOUND
    wait_for(lambda: pending(redis_server, "faults_gated") == 0, 5, "the ack")
    assert tally("kill9-one", [entry], ledger(redis_server)).lost == 0


def test_faults_kill9_during_1000_events_loses_none(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    first = worker_factory(SERVICE, "faults_receivers")
    second = worker_factory(SERVICE, "faults_receivers")
    ids = tick.publish_many(None, [{"delay": 0.02}] * 1000)
    wait_for(lambda: len(ledger(redis_server)) >= 200, 20, "200 events handled")
    wait_for(
        lambda: pending_for_pid(redis_server, "faults_tick", first.pid) > 0,
        20,
        "the first worker to hold entries",
    )

    first.kill()
    third = worker_factory(SERVICE, "faults_receivers")
    wait_handled(redis_server, ids, timeout=40)

    result = tally("kill9-1000", ids, ledger(redis_server))
    assert result.lost == 0
    assert "took over" in second.output() + third.output()
    wait_for(lambda: pending(redis_server, "faults_tick") == 0, 10, "every ack")


def test_faults_sigterm_finishes_and_acks_the_receiver_in_hand(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = worker_factory(SERVICE, "faults_receivers", extra=["--grace", "10"])
    entry = slow.publish(None, seconds=2.0)
    wait_for(lambda: _started_by(redis_server, entry), 10, "the receiver to start")

    worker.send_signal(signal.SIGTERM)
    code = worker.wait(timeout=10)

    assert code == 0, worker.output()
    assert _done_by(redis_server, entry) == [worker.pid]
    assert pending(redis_server, "faults_slow") == 0
    tally("sigterm-graceful", [entry], ledger(redis_server))


def test_faults_second_sigterm_exits_at_once_leaving_the_entry_pending(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = worker_factory(SERVICE, "faults_receivers", extra=["--grace", "30"])
    entry = slow.publish(None, seconds=4.0)
    wait_for(lambda: _started_by(redis_server, entry), 10, "the receiver to start")

    worker.send_signal(signal.SIGTERM)
    time.sleep(0.2)  # let the first signal be handled before the second
    worker.send_signal(signal.SIGTERM)
    code = worker.wait(timeout=2)

    assert code != 0
    assert _done_by(redis_server, entry) == []
    assert pending(redis_server, "faults_slow") == 1
    other = worker_factory(SERVICE, "faults_receivers")
    wait_for(
        lambda: _done_by(redis_server, entry),
        TAKEOVER_BOUND + 4.0 + 2.0,
        "another worker to handle the entry",
    )
    assert _done_by(redis_server, entry) == [other.pid]
    assert tally("sigterm-twice", [entry], ledger(redis_server)).lost == 0
