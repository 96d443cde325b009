"""Dead-letter replay re-signs signed letters, and only those it can verify.

A signature binds an entry to its target service and sent-at time, so a
replay (aimed at one service, possibly days later) must sign it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from busignal.admin.dead import list_dead, replay
from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.errors import UnverifiedLetter
from busignal.testing import drain
from busignal.wire import envelope
from busignal.wire.envelope import Mode
from busignal.wire.signing import Signer

NEW = "the-new-secret-of-at-least-32-bytes!!"
OLD = "the-old-secret-of-at-least-32-bytes!!"


_KEPT: list[Signal] = []  # a worker finds receivers through live signals


def _recording(name: str, bus: Bus) -> list[object]:
    ran: list[object] = []
    sig = Signal(name, bus=bus)
    _KEPT.append(sig)
    sig.connect(lambda **kw: ran.append(kw["n"]), dispatch_uid=f"{name}.r", weak=False)
    return ran


def _add_old_event(bus: Bus, name: str, secret: str, age: float) -> None:
    stream = bus.keys.events(name)
    _, fields = envelope.encode(
        signal=name,
        sender="",
        kwargs={"n": 1},
        mode=Mode.PUBLISH,
        signer=Signer([secret]),
        max_size=bus.config.max_payload,
        namespace=bus.keys.namespace,
        stream=stream,
        sent_at=time.time() - age,
    )
    bus.client.xadd(stream, fields)  # type: ignore[arg-type]  # bytes fields


def _dead_of_age(make_bus: Callable[..., Bus], name: str, secret: str) -> Bus:
    """A letter that died of old age, signed with ``secret``."""
    worker_bus = make_bus(secret=[NEW, OLD], max_age=60)
    _recording(name, worker_bus)
    drain(worker_bus, "billing", signals=[name])
    _add_old_event(worker_bus, name, secret, age=120)
    drain(worker_bus, "billing", signals=[name])
    [letter] = list_dead(worker_bus, name)
    assert "older than max_age=60s" in letter.reason
    return worker_bus


def test_dead_replay_re_signs_a_letter_that_died_of_age(
    make_bus: Callable[..., Bus], name: str
) -> None:
    worker_bus = _dead_of_age(make_bus, name, NEW)
    ran = _recording(name, worker_bus)

    replay(make_bus(secret=NEW), name)
    drain(worker_bus, "billing", signals=[name])

    assert ran == [1]
    assert list_dead(worker_bus, name) == []


def test_dead_replay_re_signs_a_letter_of_a_retired_secret_still_listed(
    make_bus: Callable[..., Bus], name: str
) -> None:
    worker_bus = _dead_of_age(make_bus, name, OLD)
    ran = _recording(name, worker_bus)

    replay(make_bus(secret=[NEW, OLD]), name)
    drain(worker_bus, "billing", signals=[name])

    assert ran == [1]


@pytest.mark.parametrize(
    ("secret", "why"),
    [(NEW, "none of the configured secrets"), (None, "has no secret")],
)
def test_dead_replay_refuses_what_it_cannot_verify_and_replays_nothing(
    make_bus: Callable[..., Bus], name: str, secret: Any, why: str
) -> None:
    worker_bus = _dead_of_age(make_bus, name, OLD)

    with pytest.raises(UnverifiedLetter, match=why):
        replay(make_bus(secret=secret), name)

    assert len(list_dead(worker_bus, name)) == 1
    assert worker_bus.client.xlen(worker_bus.keys.events(name)) == 1


def test_dead_replay_of_unsigned_letters_needs_no_secret(
    make_bus: Callable[..., Bus], name: str
) -> None:
    bus = make_bus()
    sig = Signal(name, bus=bus)
    sig.connect(lambda **kw: 1 / 0, dispatch_uid=f"{name}.boom", weak=False)
    drain(bus, "billing", signals=[name])
    sig.publish(None)
    drain(bus, "billing", signals=[name], max_deliveries=1)

    assert len(replay(bus, name)) == 1
