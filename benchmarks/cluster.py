"""Cluster benchmark: publish throughput with 1, 2 and 3 partitions.

Run by ``python -m benchmarks --cluster``, or alone. Starts a local
three-master Redis Cluster from redis-server binaries, one ``busignal
worker`` per run, publishes EVENTS events of a signal partitioned 1, 2 or
3 ways in batches, and prints events/s until the worker has handled all.

    python -m benchmarks --cluster [--smoke]
    python benchmarks/cluster.py [EVENTS]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from busignal import Signal, receiver
from busignal.bus.bus import Bus
from busignal.worker.worker import Worker, WorkerConfig
from tests.integration.cluster_servers import LocalCluster

BATCH = 100


def run(url: str, partitions: int, events: int) -> float:
    """Seconds to publish ``events`` and have one worker handle them all."""
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
    bus.close()
    return took


def main(events: int | None = None) -> None:
    """Print publish-and-handle throughput for 1, 2 and 3 partitions."""
    if events is None:
        events = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as directory:
        cluster = LocalCluster(Path(directory))
        cluster.start()
        try:
            for partitions in (1, 2, 3):
                took = run(cluster.url, partitions, events)
                print(
                    f"cluster partitions={partitions} events={events} "
                    f"seconds={took:.2f} events/s={events / took:,.0f}"
                )
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
