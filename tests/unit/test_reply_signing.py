"""Replies are signed for their send, and a caller drops any other.

A process that can write to Redis reads the reply key from an event and
can push a reply of its own; with a secret, the caller only takes a reply
signed for its send's message id. Without a secret, a malformed reply
still never raises anything but a ``busignal.InvalidReply`` response.
"""

from __future__ import annotations

import logging

import pytest

from busignal.bus.collector import Collector
from busignal.errors import DecodeError, RemoteError, SerializationError
from busignal.wire import codec
from busignal.wire.reply import Outcome, encode_reply, open_reply
from busignal.wire.signing import Signer

SIGNER = Signer(["s" * 32])


def _collector(signer: Signer | None = SIGNER, fail_fast: bool = False) -> Collector:
    return Collector(
        signal="pay",
        services=["billing"],
        timeout=1.0,
        fail_fast=fail_fast,
        find_receiver=lambda rid: None,
        message_id="m1",
        signer=signer,
        max_size=1000,
    )


def _reply(
    value: object, *, message_id: str = "m1", signer: Signer | None = SIGNER
) -> bytes:
    outcomes = [Outcome("billing.charge", value)]
    return encode_reply(
        "billing", "w1", outcomes, message_id=message_id, signer=signer, max_size=1000
    )


def test_reply_signed_for_its_send_opens() -> None:
    service, worker, items = open_reply(
        _reply("ok"), message_id="m1", signer=SIGNER, max_size=1000
    )

    assert (service, worker, items) == (
        "billing",
        "w1",
        [["billing.charge", True, "ok"]],
    )


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (_reply("ok", message_id="m2"), "signed for another send"),
        (_reply("ok", signer=None), "unsigned reply"),
        (_reply("ok", signer=Signer(["x" * 32])), "signed with another secret"),
    ],
)
def test_reply_not_signed_for_its_send_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match="unsigned reply, or signed"):
        open_reply(data, message_id="m1", signer=SIGNER, max_size=1000)


def test_collector_drops_a_forged_reply_and_keeps_the_real_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    collector = _collector()

    with caplog.at_level(logging.WARNING, logger="busignal.bus.collector"):
        collector.add(_reply("forged", signer=None))
        collector.add(_reply("forged", message_id="m0"))
        collector.add(_reply("real"))

    [(_, response)] = collector.results()
    assert response == "real"
    dropped = [r for r in caplog.records if "dropped a reply" in r.getMessage()]
    assert len(dropped) == 2


@pytest.mark.parametrize(
    "reply",
    [
        ["billing", "w1", [["billing.charge"]]],
        ["billing", "w1", [7]],
        ["billing", "w1", [[1, True, 2]]],
    ],
)
def test_collector_malformed_item_is_an_invalid_reply_error(reply: object) -> None:
    collector = _collector(signer=None)

    collector.add(codec.dumps(reply))

    [(_, response)] = collector.results()
    assert isinstance(response, RemoteError)
    assert response.type_name == "busignal.InvalidReply"


@pytest.mark.parametrize("reply", [b"\xc1", codec.dumps([1, 2, 3]), codec.dumps("x")])
def test_collector_undecodable_reply_is_dropped(reply: bytes) -> None:
    collector = _collector(signer=None)

    collector.add(reply)

    assert collector.missing() == ["billing"]


def test_collector_refuses_a_reply_over_max_payload() -> None:
    collector = _collector(signer=None)

    collector.add(codec.dumps(["billing", "w1", [["r", True, "x" * 2000]]]))

    assert collector.missing() == ["billing"]


def test_reply_over_max_size_carries_an_error_instead() -> None:
    data = _reply("x" * 5000)

    [(rid, ok, error)] = open_reply(
        data, message_id="m1", signer=SIGNER, max_size=1000
    )[2]

    assert (rid, ok) == ("billing.charge", False)
    assert error[0] == f"{SerializationError.__module__}.SerializationError"
    assert "over the 1000-byte limit" in error[1]
