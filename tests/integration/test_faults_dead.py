"""Fault injection: poison events, forged and unsigned entries, oversize bodies.

Each bad entry must end in the signal's dead-letter stream with a reason,
never run a receiver, and never stop the worker.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from busignal import SerializationError
from busignal.admin.dead import list_dead
from busignal.bus.bus import Bus
from busignal.wire import envelope
from busignal.wire.envelope import Mode
from busignal.wire.signing import Signer

from .faults_support import (
    SERVICE,
    alive,
    cli,
    dead_key,
    events_key,
    ledger,
    pending,
    tally,
    wait_handled,
)
from .servers import APPS, RedisServer, WorkerProcess, wait_for

sys.path.insert(0, str(APPS))

from faults_receivers import poison, tick

StartWorker = Callable[..., WorkerProcess]

MiB = 1024 * 1024
NEW = "new-secret-0123456789abcdefghijkl"
OLD = "old-secret-0123456789abcdefghijkl"


def _dead_count(server: RedisServer, signal: str) -> int:
    return int(server.client().xlen(dead_key(signal)))


def _raw_entry(
    signer: Signer | None, *, kwargs: dict[str, object]
) -> dict[bytes, bytes]:
    _, fields = envelope.encode(
        signal="faults_tick",
        sender="",
        kwargs=kwargs,
        mode=Mode.PUBLISH,
        signer=signer,
        max_size=64 * MiB,
    )
    return fields


def test_faults_poison_is_dead_lettered_after_max_deliveries_then_replayed(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = worker_factory(
        SERVICE, "faults_receivers", extra=["--max-deliveries", "3"]
    )
    poison.publish(None)
    wait_for(
        lambda: _dead_count(redis_server, "faults_poison") == 1, 20, "a dead letter"
    )

    [letter] = list_dead(bus, "faults_poison")
    env = envelope.decode(
        letter.fields,
        signal="faults_poison",
        signer=None,
        max_size=MiB,
        stream=bus.keys.events("faults_poison"),
        namespace=bus.keys.namespace,
    )
    tries: list[bytes] = redis_server.client().lrange(
        f"faults:tries:{env.message_id}", 0, -1
    )  # type: ignore[assignment]  # sync client
    assert [t.split(b"|")[0] for t in tries] == [b"1", b"2", b"3"]
    assert letter.attempts == 3
    assert "poisoned on purpose" in letter.reason
    assert pending(redis_server, "faults_poison") == 0
    listed = cli("dead", "list", "faults_poison", "--url", redis_server.url)
    assert letter.id in listed.stdout

    redis_server.client().set("faults:poison:fixed", "1")
    replayed = cli(
        "dead", "replay", "faults_poison", "--all", "--url", redis_server.url
    )

    assert replayed.returncode == 0, replayed.stderr
    assert _dead_count(redis_server, "faults_poison") == 0
    wait_for(lambda: ledger(redis_server), 10, "the replayed event to be handled")
    assert alive(worker)
    tally("poison-replay", ledger(redis_server), ledger(redis_server))


def test_faults_forged_and_unsigned_entries_are_dead_lettered_never_run(
    redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    env = {
        "TEST_REDIS_URL": redis_server.url,
        "BUSIGNAL_SECRET": f"{NEW},{OLD}",
    }
    worker = worker_factory(SERVICE, "faults_receivers", env=env)
    current = Bus(redis_server.url, secret=NEW)
    rotated_out = Bus(redis_server.url, secret=OLD)
    tampered = _raw_entry(Signer([NEW]), kwargs={"delay": 0.0})
    tampered[b"b"] = tampered[b"b"][:-1] + b"\x01"
    bad = [
        _raw_entry(None, kwargs={}),
        _raw_entry(Signer(["wrong"]), kwargs={}),
        tampered,
    ]

    good = [
        tick.using(bus=current).publish(None),
        tick.using(bus=rotated_out).publish(None),
    ]
    client = redis_server.client()
    forged = [client.xadd(events_key("faults_tick"), f).decode() for f in bad]  # type: ignore[arg-type, union-attr]  # sync client: bytes
    wait_handled(redis_server, good, timeout=10)
    wait_for(
        lambda: _dead_count(redis_server, "faults_tick") == 3, 10, "3 dead letters"
    )

    reasons = sorted(d.reason.split(" (")[0] for d in list_dead(current, "faults_tick"))
    assert reasons == ["bad signature", "bad signature", "unsigned entry"]
    assert not set(forged) & ledger(redis_server).keys()
    assert tally("signing", good, ledger(redis_server)).lost == 0
    assert alive(worker)
    current.close()
    rotated_out.close()


def test_faults_oversize_payloads_are_refused_and_dead_lettered(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = worker_factory(SERVICE, "faults_receivers")
    big = b"x" * (MiB + 1)

    with pytest.raises(SerializationError, match="limit"):
        tick.publish(None, blob=big)
    injected = redis_server.client().xadd(
        events_key("faults_tick"),
        _raw_entry(None, kwargs={"blob": big}),  # type: ignore[arg-type]  # bytes fields are fine
    )
    after = tick.publish(None)

    wait_handled(redis_server, [after], timeout=10)
    wait_for(lambda: _dead_count(redis_server, "faults_tick") == 1, 10, "a dead letter")
    [letter] = list_dead(bus, "faults_tick")
    assert letter.entry == injected.decode()  # type: ignore[union-attr]  # sync client: bytes
    assert "limit" in letter.reason
    assert injected.decode() not in ledger(redis_server)  # type: ignore[union-attr]  # sync client: bytes
    assert alive(worker)
    tally("oversize", [after], ledger(redis_server))


def test_faults_dead_cli_purges_lists_and_refuses_by_id(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker_factory(SERVICE, "faults_receivers", extra=["--max-deliveries", "1"])
    for _ in range(3):
        poison.publish(None)
    wait_for(
        lambda: _dead_count(redis_server, "faults_poison") == 3, 20, "3 dead letters"
    )
    first, second, third = (d.id for d in list_dead(bus, "faults_poison"))
    url = ["--url", redis_server.url]

    purged = cli("dead", "purge", "faults_poison", "--id", second, *url)
    unknown = cli("dead", "purge", "faults_poison", "--id", first, "--id", "1-1", *url)
    listed = cli("dead", "list", "faults_poison", "--id", third, *url)

    assert purged.returncode == 0, purged.stderr
    assert "purged 1 dead letter(s)" in purged.stdout
    assert unknown.returncode == 1
    assert "'1-1'" in unknown.stderr
    assert unknown.stdout == ""
    assert [d.id for d in list_dead(bus, "faults_poison")] == [first, third]
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert line.startswith(f"{third}  service={SERVICE}")
