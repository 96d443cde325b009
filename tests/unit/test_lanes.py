"""A cluster lane's link: only its slot's commands go on its connection."""

from __future__ import annotations

from typing import Any

from busignal.wire.keys import Keys, groups_of
from busignal.worker.lanes import SlotNode


class _Cluster:
    """Stands in for redis-py's RedisCluster: records what it is sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def execute_command(self, *args: Any) -> None:
        self.sent.append(args)


def test_slot_node_sends_another_slots_command_through_the_cluster_client() -> None:
    keys = Keys("ns")
    stream = keys.events("orders", 1)
    cluster = _Cluster()
    link = SlotNode(cluster, (stream,))
    ack = ("EVAL", "script", 2, stream, groups_of(stream), "svc", "1-0")
    reply = ("RPUSH", keys.reply("m1", "orders", 1), b"reply")
    elsewhere = ("RPUSH", keys.reply("m2", "invoices"), b"reply")

    kept = link.in_slot([reply, elsewhere, ack])

    assert kept == [reply, ack]
    assert cluster.sent == [elsewhere]
