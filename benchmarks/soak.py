"""``python -m benchmarks --soak N``: one worker handles N events; memory is watched.

One ``busignal worker`` serves ``bench.soak`` (``benchmarks.receivers``)
with ``--max-deliveries 1``. The harness publishes in batches of 1000,
keeping at most ``AHEAD`` events unread so the stream never holds the
whole run, and every ``SEND_EVERY`` events it makes a ``send`` (a reply
key). The receiver raises for one event in ``FAIL_EVERY``, and each such
event is dead-lettered at once (the first delivery is the last), so the
run writes N / FAIL_EVERY dead letters, more than the worker's dead-letter
cap (``dead_maxlen``, 100,000) at the default N.

Every ``SAMPLE`` events handled it records the worker's VmRSS, the events
stream's length, the dead-letter stream's length and the number of keys
in the database (reply keys, which expire, are most of them). The verdict
lines say whether the worker's memory grew by more than ``GROWTH_MB``
after the first ``WARMUP`` events, and whether the stream, the dead
letters and the keys stayed bounded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from benchmarks import receivers
from benchmarks.fleet import consumers
from benchmarks.procs import Proc, RedisServer, python_module, rss_kib, wait_for
from busignal import Bus

__all__ = ["Soak", "run", "write_plot"]

HERE = Path(__file__).resolve().parent

SIGNAL, SERVICE = "bench.soak", "soak"
BATCH, AHEAD, SAMPLE = 1000, 20_000, 10_000
SEND_EVERY, FAIL_EVERY = 1000, receivers.FAIL_EVERY
WARMUP, GROWTH_MB = 100_000, 10.0


@dataclass
class Soak:
    """The samples of one soak run: (events handled, value) per measure."""

    events: int
    handled: list[int] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    stream_len: list[int] = field(default_factory=list)
    dead_len: list[int] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def growth_mb(self) -> float | None:
        """Peak RSS after the warm-up, less RSS at the end of the warm-up."""
        after = [
            r for h, r in zip(self.handled, self.rss_mb, strict=True) if h >= WARMUP
        ]
        if len(after) < 2:
            return None
        return max(after) - after[0]

    def verdicts(self, dead_cap: int) -> list[str]:
        growth = self.growth_mb()
        lines = [
            f"soak: {self.events:,} events in {self.seconds:.0f}s "
            f"({self.events / max(self.seconds, 1e-9):,.0f}/s), worker RSS "
            f"{self.rss_mb[0]:.1f} MB at first sample, {max(self.rss_mb):.1f} MB peak",
            _verdict(
                None if growth is None else growth <= GROWTH_MB,
                "worker RSS growth after the first "
                f"{WARMUP:,} events: "
                + ("-" if growth is None else f"{growth:.1f} MB")
                + f" (limit {GROWTH_MB:.0f} MB)",
            ),
            _verdict(
                _trimmed_back(self.stream_len, 2 * AHEAD),
                f"events stream length: peak {max(self.stream_len):,}, back to "
                f"{min(self.stream_len[len(self.stream_len) // 2 :], default=0):,} "
                f"in the second half (trimmed behind the group every few "
                f"heartbeats; at most {AHEAD:,} unread)",
            ),
            _verdict(
                max(self.dead_len) <= dead_cap * 1.1,
                f"dead letters: peak {max(self.dead_len):,} of "
                f"{self.events // FAIL_EVERY:,} written "
                f"(cap {dead_cap:,}, trimmed approximately)",
            ),
            _verdict(
                _bounded(self.keys, 100),
                f"keys in the database: peak {max(self.keys):,} "
                f"({self.events // SEND_EVERY:,} sends, each with a reply key)",
            ),
        ]
        if growth is None:
            lines.append(
                f"  (N={self.events:,} is too small to judge growth after the warm-up)"
            )
        return lines


def _verdict(ok: bool | None, text: str) -> str:
    return f"{ {True: 'PASS', False: 'MISS', None: 'N/A '}[ok] }  {text}"


def _trimmed_back(values: list[int], low: int) -> bool | None:
    """True if a sawtooth (a stream trimmed now and then) still falls to
    ``low`` or below in the run's second half: trimming keeps up, whatever
    the phase of its peaks. Comparing peaks of the two halves told a climb
    from a tooth that happened to peak late. None with too few samples."""
    if len(values) < 4:
        return None
    return min(values[len(values) // 2 :]) <= low


def _bounded(values: list[int], slack: int) -> bool | None:
    """True if the second half of a run's samples stays within what the
    first half reached (plus ``slack``): a level, not a climb. None when
    there are too few samples to tell."""
    if len(values) < 4:
        return None
    half = len(values) // 2
    return max(values[half:]) <= max(values[:half]) + slack


def run(server: RedisServer, events: int, logs: Path) -> Soak:
    """Start one worker, push ``events`` through it, sample as it goes."""
    bus = Bus(server.url, timeout=30)
    client = server.client()
    stream = bus.keys.events(SIGNAL)
    command = python_module(
        "busignal", "worker", "benchmarks.receivers", "--service", SERVICE,
        "--url", server.url, "--signal", SIGNAL, "--max-deliveries", "1",
        "--log-level", "ERROR",
    )  # fmt: skip
    worker = Proc("busignal-soak", command, logs / "soak.log")
    worker.start()
    soak = Soak(events)
    try:
        view = receivers.soak.using(bus=bus)

        def ready() -> bool:
            worker.check_alive()
            return consumers(client, stream, SERVICE) >= 1

        wait_for(ready, timeout=60, what="the soak worker")
        started = time.perf_counter()
        _push(view, client, stream, worker, soak)
        soak.seconds = time.perf_counter() - started
    finally:
        worker.stop()
        bus.close()
    return soak


def _push(
    view: Any, client: redis.Redis, stream: str, worker: Proc, soak: Soak
) -> None:
    sent = 0
    next_sample = 0
    while True:
        handled, lag = _progress(client, stream)
        if handled >= next_sample:
            _sample(client, stream, worker, soak, handled)
            next_sample = handled + SAMPLE
        if handled >= soak.events:
            return
        if sent < soak.events and lag < AHEAD:
            count = min(BATCH, soak.events - sent)
            view.publish_many(None, [{"x": x} for x in range(sent, sent + count)])
            sent += count
            if sent % SEND_EVERY == 0:
                view.send(None, x=0)  # a reply key, like any caller's
        else:
            worker.check_alive()
            time.sleep(0.005)


def _progress(client: redis.Redis, stream: str) -> tuple[int, int]:
    """(entries the group has read and acknowledged, entries not yet read)."""
    groups: Any = client.xinfo_groups(stream)
    info = next(g for g in groups if g["name"] in (SERVICE, SERVICE.encode()))
    read = int(info["entries-read"] or 0)
    return read - int(info["pending"]), int(info["lag"] or 0)


def _sample(
    client: redis.Redis, stream: str, worker: Proc, soak: Soak, handled: int
) -> None:
    soak.handled.append(handled)
    soak.rss_mb.append(rss_kib(worker.pid) / 1024)
    soak.stream_len.append(int(client.xlen(stream)))
    dead = stream.removesuffix(":events") + ":dead"
    soak.dead_len.append(int(client.xlen(dead)))
    soak.keys.append(int(client.dbsize()))


def write_plot(soak: Soak) -> str:
    """Draw soak.png next to this module; a line saying what was done."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install -e .[bench])"
    thousands = [h / 1000 for h in soak.handled]
    fig, (mem, sizes) = plt.subplots(1, 2, figsize=(13, 4.5))
    mem.plot(thousands, soak.rss_mb, label="worker VmRSS")
    mem.axvline(WARMUP / 1000, color="grey", linestyle=":", label="end of warm-up")
    mem.set_xlabel("events handled (thousands)")
    mem.set_ylabel("MB")
    mem.set_ylim(bottom=0)
    mem.set_title("worker memory")
    mem.legend()
    for values, label in (
        (soak.stream_len, "events stream length"),
        (soak.dead_len, "dead letters"),
        (soak.keys, "keys in the database"),
    ):
        sizes.plot(thousands, values, label=label)
    sizes.set_xlabel("events handled (thousands)")
    sizes.set_ylabel("entries / keys")
    sizes.set_title("what Redis holds")
    sizes.legend()
    fig.suptitle(f"soak: one worker, {soak.events:,} events")
    fig.tight_layout()
    path = HERE / "soak.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"wrote {path}"
