"""busignal on a real local Redis Cluster: delivery, partitions, failover.

One three-master cluster serves the module (each test in its own
namespace); the failover test starts its own cluster with replicas. The
receivers write what they did to a separate plain redis-server (the
``TEST_REDIS_URL`` store), since their plain clients cannot talk to a
cluster.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster

import busignal
from busignal import ConfigurationError, RemoteReceiver
from busignal.admin.scheduled import cancel, list_scheduled
from busignal.bus.bus import Bus
from busignal.bus.default import reset_default

from .cluster_servers import LocalCluster
from .servers import APPS, RedisServer, WorkerProcess, free_port, wait_for

sys.path.insert(0, str(APPS))

from faults_common import tick
from partitioned import order_event

from signals_shared import event, order_paid

StartWorker = Callable[..., WorkerProcess]
_namespaces = itertools.count()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A plain redis-server where the receivers write down what they did."""
    server = RedisServer(free_port(), tmp_path_factory.mktemp("store"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def namespace() -> str:
    return f"cl{next(_namespaces)}"


@pytest.fixture
def cluster_bus(
    cluster: LocalCluster, namespace: str, store: RedisServer
) -> Iterator[Bus]:
    store.client().flushdb()  # the store is this module's own server
    configured = busignal.configure(url=cluster.url, namespace=namespace, timeout=10)
    assert configured is not None
    yield configured
    busignal.configure(None)
    reset_default()


def _workers_hash(url: str, namespace: str) -> set[Any]:
    client: Any = Bus(url, namespace=namespace).client
    return set(client.hkeys(f"{namespace}:workers"))


@pytest.fixture
def cluster_workers(
    tmp_path: Path, cluster: LocalCluster, namespace: str, store: RedisServer
) -> Iterator[StartWorker]:
    started: list[WorkerProcess] = []

    def start(
        service: str, *modules: str, url: str | None = None, extra: Sequence[str] = ()
    ) -> WorkerProcess:
        url = url or cluster.url
        worker = WorkerProcess(
            service,
            modules,
            url,
            tmp_path / f"worker-{service}-{len(started)}.log",
            ["--namespace", namespace, *extra],
            {"TEST_REDIS_URL": store.url},
        )
        before = _workers_hash(url, namespace)
        worker.start()
        started.append(worker)

        def joined() -> bool:
            if worker.process is not None and worker.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{worker.output()}")
            return bool(_workers_hash(url, namespace) - before)

        wait_for(joined, 20, f"worker of {service}:\n{worker.output()}")
        return worker

    yield start
    for worker in started:
        worker.stop()


def _handled(store: RedisServer, tag: str) -> list[str]:
    raw: list[bytes] = store.client().lrange(f"test:handled:{tag}", 0, -1)  # type: ignore[assignment]  # sync client
    return [item.decode() for item in raw]


def _ledger(store: RedisServer) -> dict[str, int]:
    raw: dict[bytes, bytes] = store.client().hgetall("faults:ledger:faults")  # type: ignore[assignment]  # sync client
    return {k.decode(): int(v) for k, v in raw.items()}


def test_cluster_send_fans_out_to_every_service(
    cluster_bus: Bus, store: RedisServer, cluster_workers: StartWorker
) -> None:
    cluster_workers("billing", "billing")
    cluster_workers("notifications", "notifications")

    results = [order_paid.send(None, amount=n) for n in range(10)]

    for n, result in enumerate(results):
        services = {r.service for r, _ in result if isinstance(r, RemoteReceiver)}
        assert services == {"billing", "notifications"}
        by_id = {getattr(r, "id", r): v for r, v in result}
        assert by_id["billing.receipt"] == f"receipt for {n}"
    assert len(set(_handled(store, "notifications.email"))) == 10


def test_cluster_publish_balances_load_over_workers(
    cluster_bus: Bus, store: RedisServer, cluster_workers: StartWorker
) -> None:
    first = cluster_workers("billing", "billing")
    second = cluster_workers("billing", "billing")

    event.publish_many(None, [{"n": n} for n in range(300)])

    wait_for(lambda: len(_handled(store, "billing.event")) >= 300, 30, "300 handled")
    time.sleep(0.3)  # would reveal late duplicates
    records = [r.split("|") for r in _handled(store, "billing.event")]
    assert len(records) == 300
    assert len({m for m, _ in records}) == 300
    assert {p for _, p in records} == {str(first.pid), str(second.pid)}


def test_cluster_events_published_while_workers_are_down_are_handled_later(
    cluster_bus: Bus, store: RedisServer, cluster_workers: StartWorker
) -> None:
    cluster_workers("billing", "billing").stop()

    event.publish_many(None, [{"n": n} for n in range(20)])
    cluster_workers("billing", "billing")

    wait_for(lambda: len(_handled(store, "billing.event")) == 20, 20, "the backlog")


def test_cluster_kill9_mid_stream_loses_nothing(
    cluster_bus: Bus, store: RedisServer, cluster_workers: StartWorker
) -> None:
    first = cluster_workers("faults", "faults_receivers")
    cluster_workers("faults", "faults_receivers")
    ids = tick.publish_many(None, [{"delay": 0.01}] * 300)
    wait_for(lambda: len(_ledger(store)) >= 50, 20, "50 handled")

    first.kill()

    wait_for(lambda: set(ids) <= _ledger(store).keys(), 30, "every event handled")


def test_cluster_partitions_land_on_different_nodes_and_keep_key_order(
    cluster: LocalCluster,
    cluster_bus: Bus,
    store: RedisServer,
    cluster_workers: StartWorker,
) -> None:
    cluster_workers("orders", "partitioned", extra=["--concurrency", "1"])
    cluster_workers("orders", "partitioned", extra=["--concurrency", "1"])
    streams = [cluster_bus.keys.events("order_updated", p) for p in range(3)]

    order_event.publish_many(None, [{"order_id": n % 30, "n": n} for n in range(600)])

    wait_for(lambda: len(_handled(store, "orders.event")) >= 600, 30, "600 handled")
    time.sleep(0.3)
    records = [r.split("|") for r in _handled(store, "orders.event")]
    per_event = Counter((order, n) for order, n, _, _ in records)
    assert len(per_event) == 600
    assert max(per_event.values()) == 1
    assert len({cluster.node_of(s) for s in streams}) == 3
    # Per key, the events sit in one partition's stream in send order: their
    # entry ids (recorded by the receiver; the workers may have trimmed the
    # streams since) rise with n.
    by_key: dict[str, list[tuple[tuple[int, int], int]]] = {}
    for order, n, _, entry in records:
        millis, _, seq = entry.partition("-")
        by_key.setdefault(order, []).append(((int(millis), int(seq)), int(n)))
    assert len(by_key) == 30
    for events in by_key.values():
        ns = [n for _, n in sorted(events)]
        assert ns == sorted(ns)


def test_cluster_delayed_events_are_handed_over_on_every_partitions_node(
    cluster_bus: Bus, store: RedisServer, cluster_workers: StartWorker
) -> None:
    cluster_workers("orders", "partitioned")
    cluster_workers("orders", "partitioned")  # both move due entries
    due = time.time() + 1.0

    order_event.using(delay=1.0).publish_many(
        None, [{"order_id": n % 30, "n": n} for n in range(90)]
    )

    wait_for(lambda: len(_handled(store, "orders.event")) >= 90, 20, "90 handled")
    handled_at = time.time()
    order_event.publish(None, order_id=0, n=-1)  # a marker, after the rest
    wait_for(lambda: len(_handled(store, "orders.event")) >= 91, 20, "the marker")
    records = [r.split("|") for r in _handled(store, "orders.event")]
    assert Counter(int(n) for _, n, _, _ in records) == dict.fromkeys(range(-1, 90), 1)
    assert handled_at >= due


def test_cluster_scheduled_events_are_listed_and_cancelled_on_every_node(
    cluster_bus: Bus,
) -> None:
    ids = order_event.using(delay=600).publish_many(
        None, [{"order_id": n, "n": n} for n in range(12)]
    )

    listed = list_scheduled(cluster_bus, "order_updated")
    cancelled = cancel(cluster_bus, "order_updated", ids[:4])

    assert sorted(s.id for s in listed) == sorted(ids)
    assert {s.partition for s in listed} == {0, 1, 2}
    assert sorted(cancelled) == sorted(ids[:4])
    left = list_scheduled(cluster_bus, "order_updated")
    assert sorted(s.id for s in left) == sorted(ids[4:])


def test_cluster_send_waits_for_a_partitions_services(
    cluster_bus: Bus, cluster_workers: StartWorker
) -> None:
    cluster_workers("orders", "partitioned")

    results = [order_event.send(None, order_id=i, n=i) for i in range(6)]

    assert [r[0][1] for r in results] == list(range(6))


def test_cluster_url_on_a_plain_server_raises_configuration_error(
    redis_server: RedisServer,
) -> None:
    bus = Bus(f"redis+cluster://127.0.0.1:{redis_server.port}/0")

    with pytest.raises(ConfigurationError, match="not a Redis Cluster"):
        event.using(bus=bus).publish(None, n=1)


def test_cluster_plain_url_on_a_cluster_raises_configuration_error(
    cluster: LocalCluster,
) -> None:
    port = cluster.servers[0].port
    bus = Bus(f"redis://127.0.0.1:{port}/0")
    # of 20 signals, some live on the other nodes: MOVED

    def publish_all() -> None:
        for i in range(20):
            bus.publish(f"probe{i}", None, {"n": 1})

    with pytest.raises(ConfigurationError, match="is a node of a Redis Cluster"):
        publish_all()


def test_cluster_option_with_a_plain_url_uses_the_cluster(
    cluster: LocalCluster, namespace: str
) -> None:
    bus = Bus(
        f"redis://127.0.0.1:{cluster.servers[0].port}/0",
        cluster=True,
        namespace=namespace,
    )

    ids = [bus.publish(f"s{i}", None, {"n": i}) for i in range(10)]

    assert len(ids) == 10
    client: object = bus.client  # typed as redis.Redis; a RedisCluster really
    assert isinstance(client, redis.cluster.RedisCluster)


def test_cluster_failover_is_survived_by_senders_and_workers(
    tmp_path: Path, store: RedisServer, namespace: str
) -> None:
    replicated = LocalCluster(tmp_path / "replicated", replicas=1)
    replicated.start()
    started: list[WorkerProcess] = []
    try:
        bus = busignal.configure(url=replicated.url, namespace=namespace, timeout=10)
        assert bus is not None
        worker = WorkerProcess(
            "billing",
            ["billing"],
            replicated.url,
            tmp_path / "worker.log",
            ["--namespace", namespace],
            {"TEST_REDIS_URL": store.url},
        )
        worker.start()
        started.append(worker)
        store.client().delete("test:handled:billing.event")
        wait_for(lambda: _workers_hash(replicated.url, namespace), 20, "the worker")
        first = event.publish_many(None, [{"n": n} for n in range(50)])
        wait_for(lambda: len(_handled(store, "billing.event")) >= 50, 20, "batch 1")
        master = replicated.node_of(bus.keys.events("event"))
        replica = replicated.replica_of(master)

        replicated.kill(master)
        replicated.wait_promoted(replica)
        second = [event.publish(None, n=n) for n in range(50, 100)]
        results = event.send(None, n=100)

        wait_for(lambda: len(_handled(store, "billing.event")) >= 101, 30, "batch 2")
        assert len(first) + len(second) == 100
        assert results[0][1] == 100
        assert worker.process is not None
        assert worker.process.poll() is None, worker.output()
    finally:
        busignal.configure(None)
        reset_default()
        for w in started:
            w.stop()
        replicated.stop()
