"""The worker's fast lane: quick sync batches run in its reader thread."""

from __future__ import annotations

import threading
import time

import pytest

from busignal.bus import Bus
from busignal.signal import Signal
from busignal.testing import running_worker
from busignal.worker import Worker

from .bus_helpers import Recorder


def test_lane_runs_quick_sync_receivers_in_its_own_thread(bus: Bus, name: str) -> None:
    threads: Recorder[str] = Recorder()
    sig = Signal(name)
    sig.connect(
        lambda **kwargs: threads.add(threading.current_thread().name), weak=False
    )

    with running_worker(bus, "svc", signals=[name]):
        for n in range(5):
            sig.send(sender=None, n=n)

    # The first batch measures the receivers in the pool; then the lane runs them.
    assert threads.items[0].startswith("busignal-receiver")
    assert set(threads.items[1:]) == {"busignal-lane"}


def test_lane_hands_slow_receivers_back_to_the_pool(bus: Bus, name: str) -> None:
    threads: Recorder[str] = Recorder()
    sig = Signal(name)

    def slow(**kwargs: object) -> None:
        threads.add(threading.current_thread().name)
        time.sleep(0.01)

    sig.connect(slow, weak=False)

    with running_worker(bus, "svc", signals=[name]):
        for n in range(4):
            sig.send(sender=None, n=n)

    assert all(t.startswith("busignal-receiver") for t in threads.items)


def test_lane_failure_stops_the_worker_and_is_raised(
    bus: Bus, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sig = Signal(name)
    sig.connect(lambda **kwargs: None, weak=False)

    def broken(self: Worker, entries: object) -> object:
        raise RuntimeError("broken reader")

    monkeypatch.setattr(Worker, "_prepare", broken)

    def serve_until_the_lane_fails() -> None:
        with running_worker(bus, "svc", signals=[name]) as worker:
            sig.publish(sender=None)
            deadline = time.monotonic() + 10
            while not worker.stopping and time.monotonic() < deadline:
                time.sleep(0.01)

    with pytest.raises(RuntimeError, match="broken reader"):
        serve_until_the_lane_fails()
