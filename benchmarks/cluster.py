"""Cluster benchmark: one worker's drain rate against one Redis; partitions.

Run by ``python -m benchmarks --cluster``, or alone. Starts a local
three-master Redis Cluster and a single redis-server from redis-server
binaries, then:

1. One ``busignal worker`` subprocess per target drains a backlog of a
   1-partition signal (paused while the backlog is written, as the main
   harness's drains are), on the cluster and on the single Redis, in turn,
   ROUNDS times; the medians' ratio is checked against ``TARGET``.
2. One in-process worker per run handles EVENTS events of a signal
   partitioned 1, 2 or 3 ways, published in batches; it prints events/s
   and over how many masters the partitions spread.

    python -m benchmarks --cluster [--smoke]
    python benchmarks/cluster.py [EVENTS]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from benchmarks import receivers
from benchmarks.fleet import Fleet, drain_rate
from benchmarks.procs import RedisServer
from busignal import Signal, receiver
from busignal.bus.bus import Bus
from busignal.worker.worker import Worker, WorkerConfig
from tests.integration.cluster_servers import LocalCluster

BATCH = 100
#: A cluster worker's drain rate of one partition, as a share of one Redis's.
TARGET = 0.8
ROUNDS = 3


def _drain_once(fleet: Fleet, bus: Bus, client: Any, events: int) -> float:
    """Events/s one ``busignal worker`` process drains of a backlog of ``events``."""
    workers = fleet.busignal("bench.drain", "drain")
    view = receivers.drain.using(bus=bus)

    def fill() -> int:
        for first in range(0, events, 1000):
            view.publish_many(
                None, [{"x": x} for x in range(first, min(first + 1000, events))]
            )
        return events

    return drain_rate(client, bus.keys.events("bench.drain"), "drain", workers, fill)


def drain_ratio(
    cluster: LocalCluster, directory: Path, events: int, rounds: int
) -> None:
    """Print one worker's drain rate on the cluster and on one Redis, and the ratio."""
    single = RedisServer(directory / "single")
    single.directory.mkdir()
    single.start()
    try:
        rates = _drains(cluster, single, directory, events, rounds)
    finally:
        single.stop()
    on_cluster = statistics.median(rates["cluster"])
    on_single = statistics.median(rates["single"])
    ratio = on_cluster / on_single
    verdict = "PASS" if ratio >= TARGET else "MISS"
    print(
        f"cluster drain ratio: {ratio:.2f}x of one Redis "
        f"({on_cluster:,.0f} / {on_single:,.0f} events/s, medians of {rounds}); "
        f"target >= {TARGET}x: {verdict}"
    )


def _drains(
    cluster: LocalCluster,
    single: RedisServer,
    directory: Path,
    events: int,
    rounds: int,
) -> dict[str, list[float]]:
    """Each target's drain rates, round after round, the targets in turn."""
    # The harness watches the drain (every millisecond) on a plain client
    # to the stream's node: a cluster client's Python would take a share of
    # the two cores from the worker it measures.
    stream = Bus(cluster.url).keys.events("bench.drain")
    cluster_client = redis.Redis(port=cluster.node_of(stream), socket_timeout=30)
    targets = {
        "cluster": (Bus(cluster.url), cluster_client, cluster.url),
        "single": (Bus(single.url), single.client(), single.url),
    }
    fleets: dict[str, Fleet] = {}
    for name, (_, client, url) in targets.items():
        logs = directory / f"workers-{name}"
        logs.mkdir()
        fleets[name] = Fleet(url, client, logs)
    rates: dict[str, list[float]] = {name: [] for name in targets}
    try:
        for index in range(rounds):
            for name, (bus, client, _) in targets.items():
                rate = _drain_once(fleets[name], bus, client, events)
                rates[name].append(rate)
                print(
                    f"drain 1 partition round {index + 1}/{rounds} {name}: "
                    f"events={events} events/s={rate:,.0f}",
                    flush=True,
                )
    finally:
        for fleet in fleets.values():
            fleet.stop()
        for bus, client, _ in targets.values():
            bus.close()
            client.close()
    return rates


def run(url: str, partitions: int, events: int) -> tuple[float, int]:
    """Seconds to publish ``events`` and have one worker handle them all, and
    over how many masters the signal's partitions are."""
    bus = Bus(url, namespace=f"bench{partitions}")
    name = "orders" if partitions == 3 else f"bench_p{partitions}"
    signal = Signal(name, partitions=partitions, partition_key="key", bus=bus)
    done = threading.Event()
    count = [0]

    @receiver(signal)
    def on(sender: Any, **kwargs: Any) -> None:
        count[0] += 1
        if count[0] >= events:
            done.set()

    config = WorkerConfig(service="bench", concurrency=4, batch=200)
    worker = Worker(bus, config, signals_to_serve=[name])
    thread = threading.Thread(target=lambda: asyncio.run(worker.serve()), daemon=True)
    thread.start()
    worker.ready.wait(10)
    started = time.perf_counter()
    for first in range(0, events, BATCH):
        signal.publish_many(
            None, [{"key": n} for n in range(first, min(first + BATCH, events))]
        )
    done.wait(120)
    took = time.perf_counter() - started
    worker.stop()
    thread.join(10)
    client: Any = bus.client
    masters = {
        client.get_node_from_key(bus.keys.events(name, p)).name
        for p in range(partitions)
    }
    bus.close()
    return took, len(masters)


def main(events: int | None = None, *, smoke: bool = False) -> None:
    """Print the drain ratio, then throughput for 1, 2 and 3 partitions."""
    if events is None:
        events = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as directory:
        # No persistence, as on the single redis-server it is compared with.
        cluster = LocalCluster(Path(directory) / "cluster", appendonly=False)
        cluster.start()
        try:
            drain_ratio(
                cluster,
                Path(directory),
                events if smoke else 5 * events,
                1 if smoke else ROUNDS,
            )
            for partitions in (1, 2, 3):
                took, masters = run(cluster.url, partitions, events)
                print(
                    f"cluster partitions={partitions} events={events} "
                    f"seconds={took:.2f} events/s={events / took:,.0f} "
                    f"masters={masters}"
                )
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
