"""Attacks on signing and replies, against real workers on a real redis-server.

The attacker can write to Redis but does not hold the secret. Each test
is one attack from the security review: it must not run a receiver that
should not run, must not reach the caller, and must not stop the worker.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack

from busignal.admin.dead import list_dead
from busignal.bus.bus import Bus
from busignal.wire import codec
from busignal.wire.keys import Keys

from .faults_support import (
    SERVICE,
    alive,
    dead_key,
    events_key,
    ledger,
    pending,
    wait_handled,
)
from .servers import APPS, RedisServer, WorkerProcess, wait_for

sys.path.insert(0, str(APPS))

from faults_receivers import slow, tick

StartWorker = Callable[..., WorkerProcess]

SECRET = "an-integration-secret-of-32-bytes-at-least"


def _signed_worker(
    redis_server: RedisServer, worker_factory: StartWorker, *extra: str
) -> WorkerProcess:
    env = {"TEST_REDIS_URL": redis_server.url, "BUSIGNAL_SECRET": SECRET}
    return worker_factory(SERVICE, "faults_receivers", env=env, extra=list(extra))


def _entry(client: Any, stream: str, entry_id: str) -> dict[bytes, bytes]:
    [(_, fields)] = client.xrange(stream, entry_id, entry_id)
    return dict(fields)


def _dead_reasons(server: RedisServer, key: str) -> list[str]:
    client: Any = server.client()
    return [f[b"reason"].decode() for _, f in client.xrange(key)]


def test_attack_replayed_signed_entry_does_not_run_again(
    redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = _signed_worker(redis_server, worker_factory)
    signed = Bus(redis_server.url, secret=SECRET)
    original = tick.using(bus=signed).publish(None)
    wait_handled(redis_server, [original], timeout=10)
    client: Any = redis_server.client()  # sync client, replies untyped
    captured = _entry(client, events_key("faults_tick"), original)

    replays = [
        client.xadd(events_key("faults_tick"), captured).decode() for _ in range(3)
    ]
    after = tick.using(bus=signed).publish(None)
    wait_handled(redis_server, [after], timeout=10)

    wait_for(lambda: pending(redis_server, "faults_tick") == 0, 10, "replays acked")
    counts = ledger(redis_server)
    assert counts[original] == 1
    assert not set(replays) & counts.keys()
    assert _dead_reasons(redis_server, dead_key("faults_tick")) == []
    assert "already handled" in worker.output()
    assert alive(worker)
    signed.close()


def test_attack_copy_into_another_namespace_is_refused(
    redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    other = Keys("tenant2")
    env = {"TEST_REDIS_URL": redis_server.url, "BUSIGNAL_SECRET": SECRET}
    worker = worker_factory(
        SERVICE,
        "faults_receivers",
        env=env,
        extra=["--namespace", "tenant2"],
        ready=False,
    )
    client: Any = redis_server.client()  # sync client, replies untyped
    wait_for(
        lambda: client.exists(other.events("faults_tick")),
        15,
        f"the tenant2 worker to join:\n{worker.output()}",
    )
    signed = Bus(redis_server.url, secret=SECRET)
    original = tick.using(bus=signed).publish(None)
    captured = _entry(client, events_key("faults_tick"), original)

    copied = client.xadd(other.events("faults_tick"), captured).decode()

    wait_for(lambda: client.xlen(other.dead("faults_tick")) == 1, 10, "a dead letter")
    [reason] = _dead_reasons(redis_server, other.dead("faults_tick"))
    assert reason.startswith("bad signature")
    assert copied not in ledger(redis_server)
    assert alive(worker)
    signed.close()


def test_attack_forged_reply_is_dropped_and_the_real_one_returned(
    redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    _signed_worker(redis_server, worker_factory)
    signed = Bus(redis_server.url, secret=SECRET, timeout=15)
    client: Any = redis_server.client()  # sync client, replies untyped
    stream = events_key("faults_slow")
    start = client.xinfo_stream(stream)["last-generated-id"]
    result: list[Any] = []
    sender = threading.Thread(
        target=lambda: result.append(slow.using(bus=signed).send(None, seconds=1.0))
    )
    sender.start()
    wait_for(lambda: client.xrange(stream, f"({start.decode()}", "+"), 10, "the send")
    [(_, fields)] = client.xrange(stream, f"({start.decode()}", "+")
    reply_to = msgpack.unpackb(fields[b"b"], raw=False)[4]
    forged = codec.dumps(
        [SERVICE, "attacker", [["faults_receivers.on_slow", True, "forged"]]]
    )
    client.rpush(reply_to, forged, b"\x00" * 32 + forged)

    sender.join(timeout=20)

    [[(_, response)]] = result
    assert response == 1.0
    signed.close()


def test_attack_hostile_reply_to_is_dead_lettered_and_the_worker_lives(
    redis_server: RedisServer, worker_factory: StartWorker, bus: Bus
) -> None:
    worker = worker_factory(SERVICE, "faults_receivers")  # no secret: the worst case
    client: Any = redis_server.client()  # sync client, replies untyped
    client.hset("victim", "field", "value")
    hostile = _send_entry("faults_tick", reply_to="victim")
    client.xadd(events_key("faults_tick"), hostile)

    after = tick.publish(None)

    wait_handled(redis_server, [after], timeout=10)
    wait_for(lambda: client.xlen(dead_key("faults_tick")) == 1, 10, "a dead letter")
    [letter] = list_dead(bus, "faults_tick")
    assert "is not this event's own" in letter.reason
    assert client.type("victim") == b"hash"
    assert client.ttl("victim") == -1
    assert alive(worker)


def test_attack_reply_key_of_another_type_fails_that_entry_only(
    redis_server: RedisServer, worker_factory: StartWorker, bus: Bus
) -> None:
    worker = worker_factory(SERVICE, "faults_receivers")
    client: Any = redis_server.client()  # sync client, replies untyped
    own = Keys().reply("m-wrongtype", "faults_tick")
    client.set(own, "not a list")
    entry = _send_entry("faults_tick", reply_to=own, message_id="m-wrongtype")
    blocked = client.xadd(events_key("faults_tick"), entry).decode()

    after = tick.publish(None)

    wait_handled(redis_server, [blocked, after], timeout=10)
    wait_for(lambda: "WRONGTYPE" in worker.output(), 10, "the error logged")
    assert pending(redis_server, "faults_tick") == 0
    assert alive(worker)


def test_attack_hash_collision_payload_costs_milliseconds(
    redis_server: RedisServer, worker_factory: StartWorker, bus: Bus
) -> None:
    worker = worker_factory(SERVICE, "faults_receivers")
    client: Any = redis_server.client()  # sync client, replies untyped
    body = _collision_body("faults_tick", size=1024 * 1024 - 200)
    started = time.process_time()
    with contextlib.suppress(codec.DecodeError):
        codec.loads(body[body.index(b"\x81\xa4blob") :])
    cpu = time.process_time() - started

    client.xadd(events_key("faults_tick"), {b"v": b"1", b"b": body})
    after = tick.publish(None)

    wait_handled(redis_server, [after], timeout=10)
    [letter] = list_dead(bus, "faults_tick")
    assert "int beyond 64 bits" in letter.reason
    assert cpu < 0.25, f"decoding a 1 MiB collision payload took {cpu:.3f}s of CPU"
    assert alive(worker)


# -- hostile entries, built by hand ------------------------------------------


def _head(signal: str, mode: int, reply_to: str, message_id: str) -> bytes:
    head: bytes = msgpack.packb([message_id, signal, "", mode, reply_to, 0.0, ""])
    return b"\x98" + head[1:]


def _send_entry(
    signal: str, *, reply_to: str, message_id: str = "m-hostile"
) -> dict[bytes, bytes]:
    """An unsigned send-mode entry asking for its reply at ``reply_to``."""
    body = _head(signal, 2, reply_to, message_id) + codec.dumps({})
    return {b"v": b"1", b"b": body}


def _collision_body(signal: str, size: int) -> bytes:
    """A publish whose kwargs hold a map of big-int keys that all hash alike.

    Ints ``k * (2**61 - 1)`` have the same hash, so before keys were
    checked, building this map took time quadratic in its size.
    """
    prime = 2**61 - 1
    head = _head(signal, 0, "", "m-collide") + b"\x81\xa4blob"
    pairs: list[bytes] = []
    total = len(head) + 3
    k = 1
    while total < size - 40 and k < 65535:
        key = msgpack.packb(msgpack.ExtType(73, (k * prime).to_bytes(16, "big")))
        pairs.append(key + b"\xc0")
        total += len(key) + 1
        k += 1
    return head + b"\xde" + len(pairs).to_bytes(2, "big") + b"".join(pairs)
