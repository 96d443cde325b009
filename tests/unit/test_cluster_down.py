"""A Redis Cluster failing over answers CLUSTERDOWN / TRYAGAIN for a while.

Those, a slot no node serves yet, and redis-py's cluster retries running
out all mean "ask again shortly", like a lost connection: a worker backs
off and goes on, and a sender gets BusUnavailable, never a crash.
"""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    SlotNotCoveredError,
    TryAgainError,
)

from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.errors import BusUnavailable
from busignal.testing import drain
from busignal.transport import raw as wire
from busignal.worker.worker import Worker

from .bus_helpers import Recorder


@pytest.mark.parametrize(
    "error",
    [
        ClusterDownError("The cluster is down"),
        TryAgainError("TRYAGAIN"),
        SlotNotCoveredError("Slot 866 is not covered by the cluster"),
        ClusterError("TTL exhausted."),
    ],
)
def test_worker_backs_off_and_goes_on_when_the_cluster_is_down(
    bus: Bus, name: str, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    handled: Recorder[int] = Recorder()
    sig = Signal(name)
    sig.connect(lambda n, **kwargs: handled.add(n), weak=False)
    drain(bus, "svc", signals=[name])  # the service joins
    sig.using(bus=bus).publish(None, n=1)
    real_read = Worker._read_group
    failures = [error]

    async def flaky_read(self: Worker, *args: Any) -> Any:
        if failures:
            raise failures.pop()
        return await real_read(self, *args)

    monkeypatch.setattr(Worker, "_read_group", flaky_read)
    drain(bus, "svc", signals=[name])

    assert handled.items == [1]
    assert not failures


def test_send_on_a_cluster_that_is_down_raises_bus_unavailable(
    bus: Bus, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: Any, **kwargs: Any) -> Any:
        raise ClusterDownError("The cluster is down")

    monkeypatch.setattr(wire, "_exchange", down)
    with pytest.raises(BusUnavailable, match="cluster is down"):
        Signal(name).using(bus=bus).send(None, n=1)
