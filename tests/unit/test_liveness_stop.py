"""A worker stops promptly even if a cancellation is swallowed under it."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.testing import running_worker
from busignal.worker import liveness


def test_worker_stops_when_trim_swallows_its_cancellation(
    bus: Bus, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trims: list[float] = []

    async def swallowing_trim(self: liveness.Liveness) -> int:
        trims.append(time.monotonic())
        # What a library that turns a cancellation into an error ends up doing.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.05)
        return 0

    monkeypatch.setattr(liveness, "TRIM_BEATS", 0.1)
    monkeypatch.setattr(liveness.Liveness, "trim", swallowing_trim)
    sig = Signal(name)
    sig.connect(lambda **kwargs: None, weak=False)

    with running_worker(bus, "svc", signals=[name], heartbeat_interval=0.2):
        deadline = time.monotonic() + 5
        while len(trims) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        stopping = time.monotonic()

    assert len(trims) >= 3
    assert time.monotonic() - stopping < 2
