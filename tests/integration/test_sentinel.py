"""busignal through Redis Sentinel: real master, replica, Sentinels and workers."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import busignal
from busignal import Bus, BusUnavailable
from busignal.bus.default import reset_default

from .sentinel_servers import LocalSentinel
from .servers import APPS, RedisServer, WorkerProcess, free_port, wait_for

sys.path.insert(0, str(APPS))

from signals_shared import event, order_paid


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSentinel]:
    """One Sentinel setup for the tests that leave the master alive."""
    local = LocalSentinel(tmp_path_factory.mktemp("sentinel"))
    try:
        local.start()
        yield local
    finally:
        local.stop()


def _handled(store: RedisServer, tag: str) -> set[str]:
    """The distinct message ids a receiver wrote down (redeliveries count once)."""
    raw: list[bytes] = store.client().lrange(f"test:handled:{tag}", 0, -1)  # type: ignore[assignment]  # sync client
    return {item.decode().split("|")[0] for item in raw}


def _worker(
    tmp_path: Path, url: str, store: RedisServer, namespace: str
) -> WorkerProcess:
    worker = WorkerProcess(
        "billing",
        ["billing"],
        url,
        tmp_path / "worker.log",
        ["--namespace", namespace],
        {"TEST_REDIS_URL": store.url},
    )
    worker.start()
    return worker


def test_sentinel_send_reaches_a_worker_through_the_master(
    tmp_path: Path,
    sentinel: LocalSentinel,
    redis_factory: Callable[..., RedisServer],
) -> None:
    store = redis_factory()
    bus = Bus(sentinel.url, namespace="sn1", timeout=10)
    worker = _worker(tmp_path, sentinel.url, store, "sn1")
    try:
        wait_for(lambda: bus.client.hlen("sn1:workers"), 20, "the worker")

        results = order_paid.using(bus=bus).send(None, amount=5)

        assert "receipt for 5" in [r for _, r in results]
        assert sentinel.master is not None
        assert sentinel.master.client().exists(bus.keys.events("order_paid"))
    finally:
        worker.stop()
        bus.close()


def test_sentinel_failover_loses_nothing_acknowledged(
    tmp_path: Path, redis_factory: Callable[..., RedisServer]
) -> None:
    store = redis_factory()
    local = LocalSentinel(tmp_path / "sentinel")
    worker: WorkerProcess | None = None
    try:
        local.start()
        bus = busignal.configure(url=local.url, namespace="sn2", timeout=10)
        assert bus is not None
        worker = _worker(tmp_path, local.url, store, "sn2")
        wait_for(lambda: bus.client.hlen("sn2:workers"), 20, "the worker")
        first = event.publish_many(None, [{"n": n} for n in range(50)])
        wait_for(lambda: len(_handled(store, "billing.event")) >= 50, 20, "batch 1")
        # Replication is asynchronous: what the master acknowledged is on
        # the replica once WAIT says so (docs/sentinel.md).
        assert local.master is not None
        replicas = local.master.client().execute_command("WAIT", 1, 5000)  # type: ignore[no-untyped-call]  # untyped in redis-py
        assert replicas == 1

        local.kill_master()
        local.wait_promoted()
        second = [event.publish(None, n=n) for n in range(50, 100)]
        results = event.send(None, n=100)

        wait_for(lambda: len(_handled(store, "billing.event")) >= 101, 30, "batch 2")
        assert len(first) + len(second) == 100
        assert results[0][1] == 100
        assert len(_handled(store, "billing.event")) == 101
        assert worker.process is not None
        assert worker.process.poll() is None, worker.output()
    finally:
        busignal.configure(None)
        reset_default()
        if worker is not None:
            worker.stop()
        local.stop()


@pytest.mark.parametrize(
    "where", ["unknown master", "no Sentinel answers"], ids=["unknown", "refused"]
)
def test_sentinel_bad_target_is_bus_unavailable_naming_it(
    sentinel: LocalSentinel, where: str
) -> None:
    hosts = ",".join(f"127.0.0.1:{p}" for p in sentinel.sentinel_ports)
    if where == "no Sentinel answers":
        hosts = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    name = "nosuchmaster" if where == "unknown master" else "mymaster"
    url = f"redis+sentinel://{hosts}/{name}/0?password=hunter2"
    bus = Bus(url, connect_timeout=1.0, timeout=5)
    started = time.monotonic()

    with pytest.raises(BusUnavailable) as caught:
        event.using(bus=bus).publish(None, n=1)

    assert time.monotonic() - started < 1.0 + 0.5
    message = str(caught.value)
    assert repr(name) in message
    assert all(h in message for h in hosts.split(","))
    assert "hunter2" not in message
    bus.close()


def test_sentinel_worker_on_bad_target_logs_it_and_keeps_trying(
    tmp_path: Path, redis_factory: Callable[..., RedisServer]
) -> None:
    store = redis_factory()
    hosts = f"127.0.0.1:{free_port()}"
    url = f"redis+sentinel://:hunter2@{hosts}/mymaster/0"
    worker = _worker(tmp_path, url, store, "sn3")
    try:
        wait_for(lambda: "retrying" in worker.output(), 20, "the worker's warning")
        assert worker.process is not None
        assert worker.process.poll() is None  # waits for Redis, as on redis://
    finally:
        worker.stop()

    output = worker.output()
    assert f"master 'mymaster' through the Sentinels {hosts}" in output
    assert "hunter2" not in output
