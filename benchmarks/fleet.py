"""The worker processes of a run, started once and reused by every round.

Starting Python processes costs far more than a round, so each scenario's
workers are started on first use and kept. Drains pause them (SIGSTOP)
while the backlog is written, so the drain measures handling only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from benchmarks.procs import Pausable, Proc, python_module, wait_for

__all__ = ["Fleet"]


@dataclass
class Fleet:
    """Starts and owns busignal and baseline workers on one Redis URL."""

    url: str
    client: redis.Redis
    logs: Path
    procs: dict[str, list[Proc]] = field(default_factory=dict)

    def busignal(self, signal: str, service: str, processes: int = 1) -> list[Proc]:
        """``python -m busignal worker benchmarks.receivers`` for one signal."""
        stream = f"busignal:{{sig:{signal}}}:events"
        command = python_module(
            "busignal", "worker", "benchmarks.receivers",
            "--service", service, "--url", self.url, "--signal", signal,
        )  # fmt: skip
        return self._start(f"busignal-{service}", command, stream, service, processes)

    def baseline(self, stream: str, group: str, processes: int = 1) -> list[Proc]:
        """``python -m benchmarks.baseline``: the hand-written loop."""
        command = python_module(
            "benchmarks.baseline", "--url", self.url, "--stream", stream,
            "--group", group,
        )  # fmt: skip
        return self._start(f"baseline-{group}", command, stream, group, processes)

    def _start(
        self,
        name: str,
        command: Sequence[str],
        stream: str,
        group: str,
        processes: int,
    ) -> list[Proc]:
        key = f"{name}@{stream}"
        if key in self.procs:
            return self.procs[key]
        procs = [
            Proc(f"{name}-{i}", command, self.logs / f"{name}-{i}.log")
            for i in range(processes)
        ]
        for proc in procs:
            proc.start()
        self.procs[key] = procs

        def ready() -> bool:
            for proc in procs:
                proc.check_alive()
            return consumers(self.client, stream, group) >= processes

        wait_for(ready, timeout=60, what=f"{processes} {name} worker(s) on {stream}")
        return procs

    def stop(self) -> None:
        for procs in self.procs.values():
            for proc in procs:
                proc.stop()
        self.procs.clear()


def _group(client: redis.Redis, stream: str, group: str) -> dict[str, Any] | None:
    try:
        groups: Any = client.xinfo_groups(stream)
    except redis.ResponseError:
        return None  # no stream yet
    for info in groups:
        name = info["name"]
        if (name.decode() if isinstance(name, bytes) else name) == group:
            found: dict[str, Any] = info
            return found
    return None


def consumers(client: redis.Redis, stream: str, group: str) -> int:
    """How many consumers have read from ``group`` (0 before it exists)."""
    info = _group(client, stream, group)
    return 0 if info is None else int(info["consumers"])


def drained(client: redis.Redis, stream: str, group: str) -> bool:
    """True once ``group`` has read ``stream`` to its end and acknowledged all."""
    info = _group(client, stream, group)
    if info is None:
        return False
    try:
        last: Any = client.xinfo_stream(stream)["last-generated-id"]
    except redis.ResponseError:
        return False
    return bool(info["last-delivered-id"] == last and int(info["pending"]) == 0)


def drain_rate(
    client: redis.Redis,
    stream: str,
    group: str,
    workers: Sequence[Pausable],
    fill: Callable[[], int],
) -> float:
    """Events per second ``workers`` handle of a backlog that ``fill`` writes.

    The workers are paused while ``fill`` runs, then resumed; the clock
    runs from the resume until the group has read up to the last entry and
    has nothing pending (XINFO GROUPS, so nothing extra is written).
    """
    for proc in workers:
        proc.pause()
    try:
        count = fill()
        last: Any = client.xinfo_stream(stream)["last-generated-id"]
    finally:
        started = time.perf_counter()
        for proc in workers:
            proc.resume()

    def done() -> bool:
        info = _group(client, stream, group)
        return (
            info is not None
            and info["last-delivered-id"] == last
            and int(info["pending"]) == 0
        )

    deadline = started + 300
    while not done():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{group} did not drain {stream} within 300s")
        time.sleep(0.001)
    return count / (time.perf_counter() - started)
