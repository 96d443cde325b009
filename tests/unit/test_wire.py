"""busignal.wire: commands sent now and answered later, and raw stream reads."""

from __future__ import annotations

import fakeredis
import pytest
import redis

from busignal.wire import Wire, raw_entries


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
    wire = Wire(client)
    pipe = wire.builder()
    pipe.rpush("list", b"a")
    pipe.rpush("text", b"b")  # WRONGTYPE
    pipe.lrange("list", 0, -1)
    wire.send(pipe)

    first, wrong, values = wire.receive()

    assert first == 1
    assert isinstance(wrong, redis.ResponseError)
    assert "WRONGTYPE" in str(wrong)
    assert values == [b"a"]
    wire.close()


def test_wire_refuses_a_second_send_before_the_replies_are_read() -> None:
    wire = Wire(fakeredis.FakeRedis())
    pipe = wire.builder()
    pipe.ping()
    wire.send(pipe)
    again = wire.builder()
    again.ping()
    with pytest.raises(RuntimeError, match="receive"):
        wire.send(again)
    assert wire.receive() == [b"PONG"]  # raw: no response callbacks
    wire.reset()
