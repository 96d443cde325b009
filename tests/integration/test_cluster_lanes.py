"""Cluster workers read through lanes: one per slot group, on the slot's node.

In-process workers (``running_worker``) on a real local Redis Cluster, so
that the tests can look at the worker's lanes and at every round trip a
lane sends: each must name keys of one slot only.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.crc import key_slot

from busignal.bus.bus import Bus
from busignal.dispatch.retry import Retry
from busignal.dispatch.signal import Signal
from busignal.testing import running_worker
from busignal.transport import raw
from busignal.transport.raw import PipelinedConnection
from busignal.worker import once
from busignal.worker.lanes import Lanes
from busignal.worker.worker import Worker

from .cluster_servers import LocalCluster
from .servers import wait_for

SECRET = "cluster-lanes-test-secret-0123456789abcdef"
_names = itertools.count()


class Tally:
    """How often each value was seen, across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[Any] = Counter()

    def add(self, value: Any) -> None:
        with self._lock:
            self.counts[value] += 1

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())


@pytest.fixture
def make_bus(cluster: LocalCluster) -> Iterator[Callable[[str | None], Bus]]:
    """Buses on the cluster, each in a namespace of its own; closed after."""
    made: list[Bus] = []

    def make(secret: str | None) -> Bus:
        namespace = f"lanes{next(_names)}"
        made.append(Bus(cluster.url, namespace=namespace, secret=secret, timeout=10))
        return made[-1]

    yield make
    for bus in made:
        bus.close()


@pytest.fixture
def signed_bus(make_bus: Callable[[str | None], Bus]) -> Bus:
    return make_bus(SECRET)


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[set[int]]:
    """The slots each lane round trip (and handled-id MGET) named."""
    seen: list[set[int]] = []
    real_send = PipelinedConnection.send
    real_round_trip = raw.round_trip

    def slots(commands: list[tuple[Any, ...]]) -> set[int]:
        return {
            key_slot(arg.encode())
            for command in commands
            for arg in command
            if isinstance(arg, str) and "{sig:" in arg
        }

    def send(self: PipelinedConnection, commands: list[tuple[Any, ...]]) -> None:
        seen.append(slots(commands))
        real_send(self, commands)

    def round_trip(client: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
        seen.append(slots(commands))
        return real_round_trip(client, commands)

    monkeypatch.setattr(PipelinedConnection, "send", send)
    monkeypatch.setattr(once, "round_trip", round_trip)
    return seen


def _lanes(worker: Worker, count: int) -> Lanes:
    wait_for(
        lambda: worker.lanes is not None and len(worker.lanes) >= count,
        20,
        f"{count} lanes",
    )
    assert worker.lanes is not None
    return worker.lanes


def _port(lane: Any) -> int:
    """The port of the node a lane's connection went to last."""
    return int(lane.link.address[1])


def _pending(bus: Bus, streams: list[str], service: str) -> int:
    client: Any = bus.client
    return sum(int(client.xpending(s, service)["pending"]) for s in streams)


def test_cluster_worker_drains_partitions_through_a_lane_per_slot(
    cluster: LocalCluster, signed_bus: Bus, trips: list[set[int]]
) -> None:
    name = f"drained{next(_names)}"
    signal = Signal(name, partitions=3, partition_key="key", bus=signed_bus)
    seen = Tally()

    def on(key: int, **kwargs: object) -> int:
        if key % 100 == 7:  # not a ValueError: dead-lettered by the lane
            raise KeyError(key)
        seen.add(key)
        return key

    signal.connect(on, weak=False, retry=Retry(on=(ValueError,)))
    streams = [signed_bus.keys.events(name, p) for p in range(3)]
    client: Any = signed_bus.client

    with running_worker(signed_bus, "svc", signals=[name]) as worker:
        signal.send(None, key=-1)  # records the partition count
        lanes = _lanes(worker, 3)  # partitions found at run time get lanes
        signal.publish_many(None, [{"key": n} for n in range(900)])
        replies = [signal.send(None, key=1000 + n) for n in range(6)]
        for stream in streams:  # unsigned: dead-lettered
            client.xadd(stream, {b"forged": b"entry"})
        wait_for(lambda: seen.total() >= 898, 30, "every event handled")
        wait_for(lambda: _pending(signed_bus, streams, "svc") == 0, 10, "acks")

    assert [r[0][1] for r in replies] == [1000 + n for n in range(6)]
    assert set(seen.counts) == {-1, *range(1000, 1006)} | {
        n for n in range(900) if n % 100 != 7
    }
    assert max(seen.counts.values()) == 1
    assert len(lanes) == 3
    assert sorted(len(lane.streams) for lane in lanes) == [1, 1, 1]
    for lane in lanes:  # each on the node serving its slot
        assert _port(lane) == cluster.node_of(lane.streams[0])
    # The lanes read everything but the first send (read by the loop, before
    # the lanes of partitions 1 and 2 started, or by partition 0's lane).
    assert lanes.read >= 900 + 6 + 3
    dead = [signed_bus.keys.dead_of(s) for s in streams]
    assert sum(client.xlen(d) for d in dead) == 3 + 9
    assert trips
    assert [t for t in trips if len(t) > 1] == []
    signed_bus.close()


@pytest.mark.parametrize("secret", [SECRET, None], ids=["signed", "unsigned"])
def test_cluster_lane_follows_its_slot_moved_mid_drain(
    cluster: LocalCluster,
    make_bus: Callable[[str | None], Bus],
    secret: str | None,
    trips: list[set[int]],
) -> None:
    # Unsigned, nothing stops a batch whose acks were refused (MOVED) from
    # running again once reclaimed: only the lane sending them again does.
    # Signed, the handled-id check meets the move first, most of the time.
    name = f"moving{next(_names)}"
    bus = make_bus(secret)
    signal = Signal(name, bus=bus)
    seen = Tally()

    def on(n: int, **kwargs: object) -> None:
        seen.add(n)
        time.sleep(0.0003)

    signal.connect(on, weak=False)
    stream = bus.keys.events(name)
    slot = key_slot(stream.encode())
    events = 4000

    with running_worker(bus, "svc", signals=[name], batch=20) as worker:
        lanes = _lanes(worker, 1)
        source = cluster.node_of(stream)
        target = next(s.port for s in cluster.servers if s.port != source)
        signal.publish_many(None, [{"n": n} for n in range(events)])
        wait_for(lambda: seen.total() >= 500, 20, "500 handled")

        cluster.move_slot(slot, target)
        moved_at = seen.total()

        wait_for(lambda: seen.total() >= events, 60, "every event handled")
        wait_for(lambda: _pending(bus, [stream], "svc") == 0, 10, "acks")

    assert moved_at < events  # the slot moved mid-drain
    assert cluster.node_of(stream) == target
    assert [_port(lane) for lane in lanes] == [target]
    assert sorted(seen.counts) == list(range(events))
    assert max(seen.counts.values()) == 1
    # A read ahead whose reply a redirection dropped leaves its entries
    # pending; the loop takes them back (a batch at most per redirection).
    assert lanes.read >= events - 5 * 20
    assert [t for t in trips if len(t) > 1] == []
