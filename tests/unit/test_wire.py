"""Raw commands sent now and answered later, and raw stream reads."""

from __future__ import annotations

import fakeredis
import pytest
import redis

from busignal.transport.raw import PipelinedConnection
from busignal.wire.records import text
from busignal.worker.reading import raw_entries
from busignal.worker.settle import Batch


def test_raw_entries_reads_every_shape_of_entry_and_counts_trimmed_ids() -> None:
    response = [
        [
            b"ns:{sig:a}:events",
            [
                [b"1-0", [b"v", b"1", b"b", b"body"]],
                [b"1-1", None],  # trimmed away after it was delivered
                [b"1-2", [b"v", b"1", b"b", b"body", b"h", b"mac"]],
                [b"1-3", [b"v", b"1", b"b", b"body", b"h", b"mac", b"s", b"svc"]],
            ],
        ],
        [b"ns:{sig:b}:events", [[b"2-0", [b"b", b"other"]]]],
    ]

    entries, count = raw_entries(response)

    assert count == 5
    assert entries == [
        ("ns:{sig:a}:events", "1-0", {b"v": b"1", b"b": b"body"}, 1),
        ("ns:{sig:a}:events", "1-2", {b"v": b"1", b"b": b"body", b"h": b"mac"}, 1),
        (
            "ns:{sig:a}:events",
            "1-3",
            {b"v": b"1", b"b": b"body", b"h": b"mac", b"s": b"svc"},
            1,
        ),
        ("ns:{sig:b}:events", "2-0", {b"b": b"other"}, 1),
    ]


def test_raw_entries_reads_resp3_maps_and_nothing() -> None:
    resp3 = {b"s": [[b"1-0", [b"v", b"1", b"b", b"x"]]]}
    assert raw_entries(resp3) == ([("s", "1-0", {b"v": b"1", b"b": b"x"}, 1)], 1)
    assert raw_entries(None) == ([], 0)
    assert raw_entries([]) == ([], 0)


def test_wire_returns_each_commands_reply_and_errors_in_place() -> None:
    client = fakeredis.FakeRedis()
    client.set("text", "not a list")
    wire = PipelinedConnection(client)
    wire.send(
        [
            ("RPUSH", "list", b"a"),
            ("RPUSH", "text", b"b"),  # WRONGTYPE
            ("LRANGE", "list", 0, -1),
        ]
    )

    first, wrong, values = wire.receive()

    assert first == 1
    assert isinstance(wrong, redis.ResponseError)
    assert "WRONGTYPE" in str(wrong)
    assert values == [b"a"]
    wire.close()


def test_wire_refuses_a_second_send_before_the_replies_are_read() -> None:
    wire = PipelinedConnection(fakeredis.FakeRedis())
    wire.send([("PING",)])
    with pytest.raises(RuntimeError, match="receive"):
        wire.send([("PING",)])
    assert wire.receive() == [b"PONG"]  # raw: no response callbacks
    wire.reset()


def test_a_batch_spelled_for_the_wire_does_what_its_pipeline_would() -> None:
    client = fakeredis.FakeRedis()
    client.xgroup_create("s", "g", id="0", mkstream=True)
    ids = [text(client.xadd("s", {b"n": b"1"})) for _ in range(3)]
    client.xreadgroup("g", "c", {"s": ">"})
    batch = Batch()
    batch.rpush("reply", b"r")
    batch.expire("reply", 60)
    batch.xadd("dead", {b"b": b"x"}, maxlen=10)  # spelled by redis-py
    for entry_id in ids[:2]:
        batch.xack("s", "g", entry_id)
    wire = PipelinedConnection(client)

    wire.send(batch.raw(wire.builder()))
    replies = wire.receive()

    assert replies[:2] == [1, 1]
    assert replies[3] == 2  # both acks in one XACK
    assert client.lrange("reply", 0, -1) == [b"r"]
    assert 0 < client.ttl("reply") <= 60
    assert client.xlen("dead") == 1
    assert client.xpending("s", "g")["pending"] == 1
