"""``busignal inspect`` and ``busignal dead`` on a partitioned signal, real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from busignal.admin import dead
from busignal.admin.inspection import inspect_bus
from busignal.bus.bus import Bus
from busignal.bus.partitions import stable_hash

from .cluster_servers import LocalCluster
from .servers import APPS, RedisServer, WorkerProcess, wait_for

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(APPS))

from partitioned import order_event  # noqa: E402

NAME = "order_updated"  # 3 partitions


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUSIGNAL_")}
    return subprocess.run(
        [sys.executable, "-m", "busignal", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _handled(server: RedisServer) -> int:
    return int(server.client().llen("test:handled:orders.event"))


@pytest.fixture
def traffic(
    bus: Bus,
    redis_server: RedisServer,
    worker_factory: Callable[..., WorkerProcess],
) -> RedisServer:
    """An 'orders' worker handled 9 events and dead-lettered one bad entry on
    partitions 1 and 2; then it stopped and 6 more events wait (lag 6)."""
    # A long heartbeat keeps the worker from trimming (every 10 beats) the
    # streams whose lengths the tests read back.
    worker = worker_factory("orders", "partitioned", extra=["--heartbeat", "30"])
    order_event.publish_many(None, [{"order_id": n, "n": n} for n in range(9)])
    client: Any = redis_server.client()
    for partition in (1, 2):
        client.xadd(bus.keys.events(NAME, partition), {"x": "1"})
    wait_for(lambda: _handled(redis_server) == 9, what="9 events handled")
    dead_streams = [bus.keys.dead(NAME, p) for p in (1, 2)]
    wait_for(
        lambda: all(client.xlen(d) == 1 for d in dead_streams), what="2 dead letters"
    )
    worker.stop()
    order_event.publish_many(None, [{"order_id": o, "n": o} for o in _two_each()])
    return redis_server


def _two_each() -> list[int]:
    """Six order ids, two hashing to each of the three partitions."""
    ids: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for order_id in range(100):
        ids[stable_hash(order_id) % 3].append(order_id)
    return [o for part in ids.values() for o in part[:2]]


def test_inspect_json_shows_a_partitioned_signal_once_with_summed_counts(
    bus: Bus, traffic: RedisServer
) -> None:
    client: Any = traffic.client()
    lengths = [int(client.xlen(bus.keys.events(NAME, p))) for p in range(3)]

    result = _cli("inspect", "--url", traffic.url, "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    [signal] = [s for s in report["signals"] if s["name"] == NAME]
    assert [s["name"] for s in report["signals"]].count(NAME) == 1
    assert signal["partitions"] == 3
    assert signal["length"] == sum(lengths) == 9 + 2 + 6
    assert signal["dead"] == 2
    [service] = signal["services"]
    assert service["name"] == "orders"
    assert (service["consumers"], service["pending"], service["lag"]) == (1, 0, 6)
    parts = signal["by_partition"]
    assert [p["partition"] for p in parts] == [0, 1, 2]
    assert [p["length"] for p in parts] == lengths
    assert [p["dead"] for p in parts] == [0, 1, 1]
    assert [p["services"][0]["lag"] for p in parts] == [2, 2, 2]


def test_inspect_table_shows_the_partitions_column(traffic: RedisServer) -> None:
    result = _cli("inspect", "--url", traffic.url, "--plain")

    assert result.returncode == 0, result.stderr
    assert "partitions" in result.stdout
    [line] = [x for x in result.stdout.splitlines() if x.startswith(NAME)]
    assert line.split()[:4] == [NAME, "17", "2", "orders"]
    assert line.split()[-1] == "3"


def test_dead_commands_cover_every_partition(bus: Bus, traffic: RedisServer) -> None:
    listed = _cli("dead", "list", NAME, "--url", traffic.url, "--json")
    assert listed.returncode == 0, listed.stderr
    letters = json.loads(listed.stdout)
    assert sorted(d["partition"] for d in letters) == [1, 2]
    assert all(d["service"] == "orders" for d in letters)

    ref = f"{letters[0]['partition']}:{letters[0]['id']}"
    replayed = _cli("dead", "replay", NAME, "--id", ref, "--url", traffic.url)
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 dead letter(s)" in replayed.stdout

    purged = _cli("dead", "purge", NAME, "--all", "--url", traffic.url)
    assert purged.returncode == 0, purged.stderr
    assert "purged 1 dead letter(s)" in purged.stdout
    client: Any = traffic.client()
    assert not any(client.exists(bus.keys.dead(NAME, p)) for p in range(3))


def test_dead_letters_and_inspect_of_partitions_on_three_cluster_nodes(
    cluster: LocalCluster,
) -> None:
    bus = Bus(cluster.url, namespace="dead-parts")
    client: Any = bus.client
    try:
        for partition in range(3):
            events = bus.keys.events(NAME, partition)
            client.xgroup_create(events, "svc", id="0", mkstream=True)
        letter = {"v": "1", "b": "x", "service": "svc", "reason": "r", "attempts": "1"}
        for partition in (1, 2):
            client.xadd(bus.keys.dead(NAME, partition), letter, id="5-1")
        assert len({cluster.node_of(bus.keys.dead(NAME, p)) for p in range(3)}) == 3

        # no partitions set: found by a SCAN of every node
        assert [d.ref for d in dead.list_dead(bus, NAME)] == ["1:5-1", "2:5-1"]
        assert len(dead.replay(bus, NAME, ["2:5-1"])) == 1  # MULTI in one slot
        assert client.xlen(bus.keys.events(NAME, 2)) == 1
        [signal] = [s for s in inspect_bus(bus).signals if s.name == NAME]
        assert (signal.partitions, signal.length, signal.dead) == (3, 1, 1)
        assert [s.lag for s in signal.services] == [1]
        assert dead.purge(bus, NAME) == 1
    finally:
        bus.close()
