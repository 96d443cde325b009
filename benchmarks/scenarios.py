"""The scenarios, each measured for busignal and for the baseline loop.

Every scenario is a pair of functions run back to back in each round, the
order alternating between rounds, so drift on a shared machine hits both
sides. Workers come from the ``Fleet`` and stay up across rounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from benchmarks import baseline, receivers
from benchmarks.fleet import Fleet, drain_rate
from benchmarks.procs import rss_kib
from benchmarks.stats import Figures
from busignal import Bus

__all__ = ["SCENARIOS", "Plan", "Run"]

BUSIGNAL, BASELINE = "busignal", "baseline"
FAN_SERVICES = 4

#: Every scenario the harness prints a row for, in order.
SCENARIOS = (
    "send_rtt_1svc",
    "send_rtt_4svc",
    "publish_one",
    "publish_many",
    "publish_delayed",
    "publish_durable_fsync",
    "publish_durable_replica",
    "drain_sync_1w",
    "drain_async_1w",
    "drain_sync_2w",
    "drain_sync_4w",
    "rss_idle",
    "rss_load",
)


@dataclass(frozen=True, slots=True)
class Plan:
    """How much work each round does."""

    rounds: int = 5
    sends: int = 2000
    fan_sends: int = 1000
    publishes: int = 5000
    batch: int = 100
    drain: int = 20000

    @classmethod
    def smoke(cls) -> Plan:
        return cls(rounds=1, sends=200, fan_sends=100, publishes=300, drain=300)


@dataclass
class Run:
    """One benchmark run: the bus, the fleet of workers and what was measured."""

    bus: Bus
    client: redis.Redis
    fleet: Fleet
    plan: Plan
    figures: Figures

    def round(self, index: int) -> None:
        """Measure every scenario once, both sides, order flipped on odd rounds."""
        for pair in (
            (self._send_1, self._send_1_base),
            (self._send_4, self._send_4_base),
            (self._publish_one, self._publish_one_base),
            (self._publish_many, self._publish_many_base),
            (self._drains, self._drains_base),
        ):
            for measure in pair if index % 2 == 0 else reversed(pair):
                measure()

    def start_workers(self) -> None:
        """Start every worker up front, then record idle memory."""
        fleet = self.fleet
        fleet.busignal("bench.ping", "ping")
        for i in range(FAN_SERVICES):
            fleet.busignal("bench.fan", f"fan{i}")
        sync1 = fleet.busignal("bench.drain", "drain")
        fleet.busignal("bench.adrain", "adrain")
        fleet.busignal("bench.drain2", "drain2", processes=2)
        fleet.busignal("bench.drain4", "drain4", processes=4)
        fleet.baseline("bl.ping", "ping")
        for i in range(FAN_SERVICES):
            fleet.baseline("bl.fan", f"fan{i}")
        base1 = fleet.baseline("bl.drain", "drain")
        fleet.baseline("bl.drain2", "drain2", processes=2)
        fleet.baseline("bl.drain4", "drain4", processes=4)
        time.sleep(1.0)  # let start-up allocations settle
        self.figures.add("rss_idle", BUSIGNAL, rss_kib(sync1[0].pid) / 1024)
        self.figures.add("rss_idle", BASELINE, rss_kib(base1[0].pid) / 1024)

    def record_peak_memory(self) -> None:
        """Peak RSS (VmHWM) of the one-worker drain processes, after the drains."""
        sync1 = self.fleet.busignal("bench.drain", "drain")
        base1 = self.fleet.baseline("bl.drain", "drain")
        self.figures.add("rss_load", BUSIGNAL, rss_kib(sync1[0].pid, "VmHWM") / 1024)
        self.figures.add("rss_load", BASELINE, rss_kib(base1[0].pid, "VmHWM") / 1024)

    # -- send round trips --------------------------------------------------

    def _timed_sends(self, send: Callable[[int], object], count: int) -> list[float]:
        for x in range(10):  # warm the connection and the group cache
            send(x)
        out = []
        for x in range(count):
            started = time.perf_counter()
            send(x)
            out.append(time.perf_counter() - started)
        return out

    def _send_1(self) -> None:
        view = receivers.ping.using(bus=self.bus)
        check = view.send(None, x=1)
        if [r for _, r in check] != [2]:
            raise RuntimeError(f"unexpected send result {check!r}")
        seconds = self._timed_sends(lambda x: view.send(None, x=x), self.plan.sends)
        self.figures.add_latencies("send_rtt_1svc", BUSIGNAL, seconds)

    def _send_1_base(self) -> None:
        baseline.roundtrips(self.client, "bl.ping", 10)
        seconds = baseline.roundtrips(self.client, "bl.ping", self.plan.sends)
        self.figures.add_latencies("send_rtt_1svc", BASELINE, seconds)

    def _send_4(self) -> None:
        view = receivers.fan.using(bus=self.bus)
        check = view.send(None, x=1)
        if [r for _, r in check] != [2] * FAN_SERVICES:
            raise RuntimeError(f"unexpected fan-out result {check!r}")
        seconds = self._timed_sends(lambda x: view.send(None, x=x), self.plan.fan_sends)
        self.figures.add_latencies("send_rtt_4svc", BUSIGNAL, seconds)

    def _send_4_base(self) -> None:
        baseline.roundtrips(self.client, "bl.fan", 10, FAN_SERVICES)
        seconds = baseline.roundtrips(
            self.client, "bl.fan", self.plan.fan_sends, FAN_SERVICES
        )
        self.figures.add_latencies("send_rtt_4svc", BASELINE, seconds)

    # -- publishing ----------------------------------------------------------

    def _publish_one(self) -> None:
        view = receivers.sink.using(bus=self.bus)
        count = self.plan.publishes
        started = time.perf_counter()
        for x in range(count):
            view.publish(None, x=x)
        self.figures.add("publish_one", BUSIGNAL, count / _since(started))
        self.client.delete(self.bus.keys.events("bench.sink"))

    def _publish_one_base(self) -> None:
        count = self.plan.publishes
        seconds = baseline.publish_loop(self.client, "bl.sink", count)
        self.figures.add("publish_one", BASELINE, count / seconds)
        self.client.delete("bl.sink")

    def _publish_many(self) -> None:
        view = receivers.sink.using(bus=self.bus)
        count, batch = self.plan.publishes, self.plan.batch
        started = time.perf_counter()
        for first in range(0, count, batch):
            view.publish_many(
                None, [{"x": x} for x in range(first, min(first + batch, count))]
            )
        self.figures.add("publish_many", BUSIGNAL, count / _since(started))
        self.client.delete(self.bus.keys.events("bench.sink"))

    def _publish_many_base(self) -> None:
        count = self.plan.publishes
        seconds = baseline.publish_pipelined(
            self.client, "bl.sink", count, self.plan.batch
        )
        self.figures.add("publish_many", BASELINE, count / seconds)
        self.client.delete("bl.sink")

    # -- drains -----------------------------------------------------------------

    def _fill(self, signal: str) -> Callable[[], int]:
        view = {
            "bench.drain": receivers.drain,
            "bench.adrain": receivers.adrain,
            "bench.drain2": receivers.drain2,
            "bench.drain4": receivers.drain4,
        }[signal].using(bus=self.bus)
        count = self.plan.drain

        def fill() -> int:
            for first in range(0, count, 1000):
                view.publish_many(
                    None, [{"x": x} for x in range(first, min(first + 1000, count))]
                )
            return count

        return fill

    def _drains(self) -> None:
        for scenario, signal, service, processes in (
            ("drain_sync_1w", "bench.drain", "drain", 1),
            ("drain_async_1w", "bench.adrain", "adrain", 1),
            ("drain_sync_2w", "bench.drain2", "drain2", 2),
            ("drain_sync_4w", "bench.drain4", "drain4", 4),
        ):
            workers = self.fleet.busignal(signal, service, processes)
            stream = self.bus.keys.events(signal)
            rate = drain_rate(self.client, stream, service, workers, self._fill(signal))
            self.figures.add(scenario, BUSIGNAL, rate)

    def _drains_base(self) -> None:
        count = self.plan.drain

        def fill(stream: str) -> Callable[[], int]:
            def run() -> int:
                baseline.publish_pipelined(self.client, stream, count, 1000)
                return count

            return run

        for stream, processes, scenarios in (
            ("bl.drain", 1, ("drain_sync_1w", "drain_async_1w")),
            ("bl.drain2", 2, ("drain_sync_2w",)),
            ("bl.drain4", 4, ("drain_sync_4w",)),
        ):
            group = stream.removeprefix("bl.")
            workers = self.fleet.baseline(stream, group, processes)
            rate = drain_rate(self.client, stream, group, workers, fill(stream))
            for scenario in scenarios:
                self.figures.add(scenario, BASELINE, rate)


def _since(started: float) -> float:
    return time.perf_counter() - started
