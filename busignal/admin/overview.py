"""What ``busignal dashboard`` shows, as data: one look at a namespace.

It is the inspection report (:func:`busignal.admin.inspection.inspect_bus`)
with, for each signal, its newest dead letters and, for each of its
services, a rate in events/s and the live and lost workers serving it.

A rate is the change of a consumer group's ``entries-read`` (Redis 7)
between two looks, so it needs a :class:`RateMeter` that outlives one
look; the first look, and a server that does not report ``entries-read``,
give ``None``. The newest dead letters are read only from the partitions
the report found dead letters in, in the same round trip for every
signal: no SCAN beyond the report's own.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from typing import Any

from busignal.admin.dead import DeadLetter, dead_letter
from busignal.admin.inspection import Report, SignalInfo, WorkerInfo, inspect_bus
from busignal.bus.bus import Bus
from busignal.worker import heartbeat

__all__ = ["RateMeter", "newest_dead", "overview"]

DEAD_SHOWN = 5


class RateMeter:
    """Events/s per (signal, service), from ``entries_read`` between looks.

    Looks closer together than ``min_interval`` (several pages open at
    once) keep the last rate instead of measuring over a sliver of time.
    Safe to share between the threads that serve requests.
    """

    def __init__(self, min_interval: float = 0.5) -> None:
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}
        self._rates: dict[tuple[str, str], float] = {}

    def observe(
        self, signal: str, service: str, read: int | None, now: float
    ) -> float | None:
        """Record ``read`` entries at ``now``; the rate since the previous look."""
        key = (signal, service)
        with self._lock:
            if read is None:
                return None
            before = self._seen.get(key)
            if before is None or read < before[1]:  # first look, or group reset
                self._seen[key] = (now, read)
                self._rates.pop(key, None)
                return None
            elapsed = now - before[0]
            if elapsed >= self.min_interval:
                self._rates[key] = (read - before[1]) / elapsed
                self._seen[key] = (now, read)
            return self._rates.get(key)


def _newest(letters: list[DeadLetter], count: int) -> list[DeadLetter]:
    def stream_id(letter: DeadLetter) -> tuple[int, int]:
        ms, _, seq = letter.id.partition("-")
        return (int(ms), int(seq or 0)) if ms.isdigit() and seq.isdigit() else (0, 0)

    return sorted(letters, key=stream_id, reverse=True)[:count]


def newest_dead(
    bus: Bus, signals: tuple[SignalInfo, ...], count: int = DEAD_SHOWN
) -> dict[str, list[DeadLetter]]:
    """The ``count`` newest dead letters of each signal, newest first.

    Only the partitions whose dead streams ``signals`` (an inspection
    report's) counted letters in are read, all in one pipeline.
    """
    wanted = [
        (sig.name, part.partition)
        for sig in signals
        for part in sig.by_partition
        if part.dead
    ]
    if not wanted:
        return {}
    with bus.transport.errors():
        pipe: Any = bus.client.pipeline(transaction=False)
        for name, partition in wanted:
            pipe.xrevrange(bus.keys.dead(name, partition), count=count)
        answers: list[Any] = pipe.execute()
    found: dict[str, list[DeadLetter]] = {}
    for (name, partition), entries in zip(wanted, answers, strict=True):
        letters = found.setdefault(name, [])
        letters.extend(dead_letter(i, fields, partition) for i, fields in entries)
    return {name: _newest(letters, count) for name, letters in found.items()}


def _worker(worker: WorkerInfo, bus: Bus) -> dict[str, Any]:
    signals: set[str] = set()
    for stream in worker.streams:
        try:
            signals.add(bus.keys.partition_of(stream)[0])
        except ValueError:
            continue  # a broadcast stream, or a key of another kind
    return {**asdict(worker), "signals": sorted(signals)}


def _services(
    sig: SignalInfo,
    workers: list[dict[str, Any]],
    lost: list[dict[str, Any]],
    meter: RateMeter,
    now: float,
) -> list[dict[str, Any]]:
    rows = []
    for service in sig.services:
        serving = [w for w in workers if w["service"] == service.name]
        gone = [w for w in lost if w["service"] == service.name]
        rows.append(
            {
                **asdict(service),
                "rate": meter.observe(
                    sig.name, service.name, service.entries_read, now
                ),
                "live_workers": sum(sig.name in w["signals"] for w in serving),
                "lost_workers": sum(sig.name in w["signals"] for w in gone),
            }
        )
    return rows


def overview(
    bus: Bus, meter: RateMeter, *, dead_shown: int = DEAD_SHOWN
) -> dict[str, Any]:
    """One look at the namespace of ``bus``, ready for JSON.

    BusUnavailable if Redis cannot be reached.
    """
    report: Report = inspect_bus(bus)
    now = time.monotonic()
    dead = newest_dead(bus, report.signals, dead_shown)
    workers = [_worker(w, bus) for w in report.workers]
    lost = [_worker(w, bus) for w in report.lost]
    return {
        "url": report.url,
        "namespace": report.namespace,
        "at": time.time(),
        "lapse_intervals": heartbeat.LAPSE_INTERVALS,
        "signals": [
            {
                "name": sig.name,
                "length": sig.length,
                "dead": sig.dead,
                "partitions": sig.partitions,
                "services": _services(sig, workers, lost, meter, now),
                "dead_letters": [
                    {**d.as_dict(), "ref": d.ref} for d in dead.get(sig.name, [])
                ],
            }
            for sig in report.signals
        ],
        "workers": workers,
        "lost": lost,
    }
