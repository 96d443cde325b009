"""Key slots, cluster URLs and partition choice, without a server."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from busignal import Signal
from busignal.bus.partitions import Partitioning, stable_hash
from busignal.errors import ConfigurationError
from busignal.transport.clients import Transport, cluster_nodes, redact
from busignal.wire.keys import Keys
from busignal.worker.reading import slot_groups


def _slot(key: str) -> int:
    return key_slot(key.encode())


@pytest.mark.parametrize("partition", [0, 1, 5])
def test_keys_of_one_partition_share_a_slot(partition: int) -> None:
    keys = Keys("ns")

    slots = {
        _slot(keys.events("order_paid", partition)),
        _slot(keys.dead("order_paid", partition)),
        _slot(keys.reply("abc123", "order_paid", partition)),
        _slot(keys.dead_of(keys.events("order_paid", partition))),
    }

    assert len(slots) == 1


def test_keys_partitions_set_is_in_partition_zeros_slot() -> None:
    keys = Keys()

    assert _slot(keys.partitions("x")) == _slot(keys.events("x"))


def test_keys_partitions_give_different_slots() -> None:
    keys = Keys()

    slots = {_slot(keys.events("order_paid", p)) for p in range(8)}

    assert len(slots) == 8


def test_keys_partition_of_inverts_events() -> None:
    keys = Keys("ns")

    assert keys.partition_of(keys.events("a.b", 3)) == ("a.b", 3)
    assert keys.partition_of(keys.events("a.b")) == ("a.b", 0)
    assert keys.signal_of(keys.events("a.b", 2)) == "a.b"


def test_partitioning_by_key_is_stable_and_spread() -> None:
    parts = Partitioning(4, "order_id")

    chosen = [parts.choose({"order_id": n}) for n in range(100)]

    assert chosen == [
        Partitioning(4, "order_id").choose({"order_id": n}) for n in range(100)
    ]
    assert set(chosen) == {0, 1, 2, 3}
    assert stable_hash("7") == stable_hash(7)


def test_partitioning_without_key_goes_round_robin() -> None:
    parts = Partitioning(3)

    assert [parts.choose({}) for _ in range(6)] == [0, 1, 2, 0, 1, 2]


def test_partitioning_missing_key_kwarg_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="partitioned by 'order_id'"):
        Partitioning(2, "order_id").choose({"amount": 1})


@pytest.mark.parametrize("count", [0, -1, 5000])
def test_signal_bad_partitions_raises_configuration_error(count: int) -> None:
    with pytest.raises(ConfigurationError, match="partitions must be"):
        Signal("p", partitions=count)


def test_signal_unnamed_with_partitions_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="needs a name"):
        Signal(partitions=2)


def test_cluster_nodes_parses_a_multi_host_url() -> None:
    url, nodes = cluster_nodes("rediss+cluster://u:pw@a:7000,b:7001/0?x=1")

    assert url == "rediss://u:pw@a:7000/0?x=1"
    assert nodes == [("a", 7000), ("b", 7001)]
    assert redact("redis+cluster://u:pw@a:1,b:2/0") == "redis+cluster://u:***@a:1,b:2/0"


def test_transport_cluster_url_without_port_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="host:port"):
        Transport("redis+cluster://a:1,b/0")


def test_transport_memory_cluster_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="cannot be a Redis Cluster"):
        Transport("memory://", cluster=True)


def test_slot_groups_split_by_slot_only_on_a_cluster() -> None:
    keys = Keys()
    streams = [keys.events("a"), keys.events("a", 1), keys.events("b")]

    assert slot_groups(streams, cluster=False) == [tuple(streams)]
    assert sorted(slot_groups(streams, cluster=True)) == sorted((s,) for s in streams)
