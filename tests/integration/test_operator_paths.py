"""Operator paths that must neither lose nor double events, with real workers.

* Two ``dead replay`` runs at once add each letter once.
* A consumer group destroyed and recreated neither re-runs nor skips; when
  entries after its position were trimmed, the worker refuses and says how.
* Take-over never claims back an entry another live worker holds.
"""

from __future__ import annotations

import signal as signals
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from busignal.admin import dead
from busignal.bus.bus import Bus

from .faults_support import (
    SERVICE,
    alive,
    cli,
    dead_key,
    events_key,
    ledger,
    wait_handled,
)
from .servers import APPS, RedisServer, WorkerProcess, wait_for

sys.path.insert(0, str(APPS))

from faults_receivers import poison, tick
from takeover_receivers import flaky

StartWorker = Callable[..., WorkerProcess]


def _all_once(server: RedisServer, ids: list[str]) -> None:
    counts = ledger(server)
    assert {i: counts.get(i, 0) for i in ids} == dict.fromkeys(ids, 1)


def test_dead_replay_twice_at_once_adds_each_letter_once(
    bus: Bus,
    redis_server: RedisServer,
    worker_factory: StartWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker_factory(SERVICE, "faults_receivers", extra=["--max-deliveries", "1"])
    letters = 30
    for _ in range(letters):
        poison.publish(None)
    client = redis_server.client()
    wait_for(lambda: client.xlen(dead_key("faults_poison")) == letters, 20, "letters")
    client.set("faults:poison:fixed", 1)
    # Both runs list every letter before either moves one: the race that
    # made two replays add each letter twice.
    listed = threading.Barrier(2, timeout=10)
    list_dead = dead.list_dead

    def list_then_wait(*args: Any, **kwargs: Any) -> list[dead.DeadLetter]:
        found = list_dead(*args, **kwargs)
        listed.wait()
        return found

    monkeypatch.setattr(dead, "list_dead", list_then_wait)
    replayed: list[list[str]] = []

    def replay() -> None:
        own = Bus(redis_server.url)
        try:
            replayed.append(dead.replay(own, "faults_poison"))
        finally:
            own.close()

    runs = [threading.Thread(target=replay) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(30)

    new_ids = [i for ids in replayed for i in ids]
    assert len(new_ids) == letters
    assert client.xlen(dead_key("faults_poison")) == 0
    wait_handled(redis_server, new_ids, 20)
    _all_once(redis_server, new_ids)


def _published(count: int) -> list[str]:
    return [tick.publish(None) for _ in range(count)]


def _stop(worker: WorkerProcess) -> None:
    worker.send_signal(signals.SIGTERM)
    assert worker.wait(30) == 0


def test_destroyed_group_recreated_on_restart_neither_reruns_nor_skips(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    first = _published(5)  # before the service: not for it
    declared = cli(
        "service", "create", "faults_tick", SERVICE, "--url", redis_server.url
    )  # fmt: skip
    assert declared.returncode == 0, declared.stderr
    worker = worker_factory(SERVICE, "faults_receivers")
    handled = _published(10)
    wait_handled(redis_server, handled, 20)
    _stop(worker)
    redis_server.client().xgroup_destroy(events_key("faults_tick"), SERVICE)
    while_gone = _published(10)

    worker = worker_factory(SERVICE, "faults_receivers")
    after = _published(5)
    wait_handled(redis_server, while_gone + after, 20)

    _all_once(redis_server, handled + while_gone + after)
    assert not set(first) & ledger(redis_server).keys()
    assert "recreated it where it stood" in worker.output()


def test_destroyed_group_while_the_worker_runs_neither_reruns_nor_skips(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = worker_factory(SERVICE, "faults_receivers")
    handled = _published(10)
    wait_handled(redis_server, handled, 20)

    redis_server.client().xgroup_destroy(events_key("faults_tick"), SERVICE)
    while_gone = _published(10)
    wait_handled(redis_server, while_gone, 30)

    _all_once(redis_server, handled + while_gone)
    assert alive(worker)


def test_destroyed_group_past_trimmed_entries_is_refused_with_the_command(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = worker_factory(SERVICE, "faults_receivers")
    wait_handled(redis_server, _published(3), 20)
    _stop(worker)
    client = redis_server.client()
    client.xgroup_destroy(events_key("faults_tick"), SERVICE)
    lost = _published(3)
    left = _published(2)
    client.xtrim(
        events_key("faults_tick"), minid=left[0], approximate=False
    )  # another service did

    refused = worker_factory(SERVICE, "faults_receivers", ready=False)
    code = refused.wait(30)

    assert code == 2
    output = refused.output()
    assert "were trimmed while it was gone" in output
    command = f"busignal service create faults_tick {SERVICE} --from-start"
    assert command in output
    created = cli(
        "service", "create", "faults_tick", SERVICE, "--from-start",
        "--url", redis_server.url,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    worker_factory(SERVICE, "faults_receivers")
    wait_handled(redis_server, left, 20)
    assert not set(lost) & ledger(redis_server).keys()


def _tries(server: RedisServer, message_id: str) -> list[str]:
    key = f"faults:tries:{message_id}"
    raw: list[bytes] = server.client().lrange(key, 0, -1)  # type: ignore[assignment]  # sync client
    return [t.decode() for t in raw]


def _heartbeat_of(server: RedisServer, pid: int) -> float:
    """When the worker process ``pid`` last wrote its heartbeat (0: never)."""
    beats: dict[bytes, bytes] = server.client().hgetall("busignal:workers")  # type: ignore[assignment]  # sync client
    for name, raw in beats.items():
        if f":{pid}:" in name.decode():
            return float(msgpack.unpackb(raw)["seen"])
    return 0.0


def test_takeover_is_never_claimed_back_by_the_stalled_worker(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    stalled = worker_factory(SERVICE, "takeover_receivers")
    entry_id = flaky.publish(None)
    wait_for(
        lambda: _tries(redis_server, _only_message(redis_server))[:1],
        20,
        "the first, failing attempt",
    )
    message = _only_message(redis_server)
    stalled.send_signal(signals.SIGSTOP)  # its retry is now scheduled
    try:
        taker = worker_factory(SERVICE, "takeover_receivers")
        wait_for(
            lambda: f"2|{taker.pid}" in _tries(redis_server, message),
            20,
            "the take-over",
        )
    finally:
        resumed = time.time()
        stalled.send_signal(signals.SIGCONT)
    # The stalled worker's retry came due long ago: once it has beaten
    # again well after it resumed, its loop has looked at its retries.
    wait_for(
        lambda: _heartbeat_of(redis_server, stalled.pid) > resumed + 1.0,
        20,
        "the resumed worker's heartbeat",
    )
    redis_server.client().rpush(f"faults:gate:{entry_id}", 1)
    wait_handled(redis_server, [entry_id], 20)

    assert _tries(redis_server, message) == [f"1|{stalled.pid}", f"2|{taker.pid}"]
    assert ledger(redis_server)[entry_id] == 1


def _only_message(server: RedisServer) -> str:
    """The message id of the one flaky entry (its receivers' key)."""
    keys = [k.decode() for k in server.client().keys("faults:tries:*")]  # type: ignore[union-attr]  # sync client
    return keys[0].removeprefix("faults:tries:") if keys else ""
