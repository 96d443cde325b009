"""FastStream's rows: round trips, publishing and drains against its own workers.

Its workers run as its users run them, ``faststream run
benchmarks.faststream_app:app --workers N`` (``benchmarks/faststream_app.py``),
on database 3 of the same Redis. Its broker has no logger
(``RedisBroker(url, logger=None)``): FastStream logs two lines a message at
any ``--log-level``, which would measure its logging.
``--workers 1`` runs the app in the process started; ``--workers 2`` is a
supervisor and two spawned processes, which are the ones paused for the
two-worker drain.

The caller is a second ``RedisBroker`` in this process, connected but not
started (it publishes; it has no handlers), on one event loop
(``asyncio.Runner``) for the whole run, since redis-py's asyncio
connections belong to the loop that opened them:

- a round trip is ``await broker.request(x, stream=...)``. Per call,
  FastStream opens a pub/sub connection (redis-py's ``PubSub`` closes its
  connection when it is closed, so each request connects anew),
  SUBSCRIBEs to a fresh reply channel, XADDs the request with that
  channel as ``reply_to``, waits for the handler's PUBLISH of the reply,
  then UNSUBSCRIBEs and closes;
- ``publish_one`` is ``await broker.publish(x, stream=...)``, one XADD a
  call;
- ``publish_many`` is ``broker.publish(x, stream=..., pipeline=pipe)`` on
  one ``pipeline(transaction=False)`` of the broker's client, executed
  every 100 messages (FastStream's ``Pipeline`` dependency opens
  ``pipeline()``, a MULTI/EXEC transaction; without it is the faster of
  the two, the one busignal's ``publish_many`` is compared with).

Drains stop when XINFO GROUPS shows the stream read and acknowledged, as
busignal's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import redis

from benchmarks.fleet import consumers, drain_rate, drained
from benchmarks.procs import (
    Proc,
    RedisServer,
    children,
    python_module,
    rss_kib,
    wait_for,
)
from benchmarks.stats import Figures

__all__ = ["FASTSTREAM", "run"]

FASTSTREAM = "faststream"
#: Per round, at most (as for Celery and taskiq).
SENDS, BACKLOG = 500, 5000
_PIPELINE_BATCH = 100


def run(server: RedisServer, plan: Any, logs: Path, figures: Figures) -> None:
    """Start FastStream's workers, measure every round, stop what was started."""
    url = f"redis://127.0.0.1:{server.port}/3"
    os.environ["BENCH_FASTSTREAM_URL"] = url  # read when the app module is imported
    app_module: Any = importlib.import_module("benchmarks.faststream_app")
    one = _worker(url, logs, "one", 1)
    two = _worker(url, logs, "two", 2)
    client = redis.Redis.from_url(url)
    try:
        one.start()
        two.start()
        with asyncio.Runner() as loop:
            caller = _Caller(loop, url)
            try:
                for proc, stream, processes in (
                    (one, app_module.DRAIN, 1),
                    (one, app_module.ADRAIN, 1),
                    (two, app_module.DRAIN2, 2),
                ):
                    _wait_ready(caller, client, proc, stream, processes)
                pair = _Spawned(two)
                figures.add("rss_idle", FASTSTREAM, rss_kib(one.pid) / 1024)
                for _ in range(plan.rounds):
                    _round(caller, app_module, client, one, pair, plan, figures)
            finally:
                caller.close()
        figures.add("rss_load", FASTSTREAM, rss_kib(one.pid, "VmHWM") / 1024)
    finally:
        client.close()
        one.stop()
        two.stop()


def _worker(url: str, logs: Path, role: str, processes: int) -> Proc:
    command = python_module(
        "faststream", "run", "benchmarks.faststream_app:app",
        "--workers", str(processes),
    )  # fmt: skip
    env = {"BENCH_FASTSTREAM_URL": url, "BENCH_FASTSTREAM_ROLE": role}
    return Proc(f"faststream-{role}", command, logs / f"faststream-{role}.log", env)


def _wait_ready(
    caller: _Caller, client: redis.Redis, proc: Proc, stream: str, processes: int
) -> None:
    """Until ``processes`` consumers have each handled a message of ``stream``.

    Redis lists a consumer in the group once it has been handed an entry,
    not while it waits; so one message at a time is published until every
    process has taken one and the group has nothing pending.
    """
    from benchmarks import faststream_app

    def ready() -> bool:
        proc.check_alive()
        if drained(client, stream, faststream_app.GROUP):
            if consumers(client, stream, faststream_app.GROUP) >= processes:
                return True
            caller.publish_one(stream, 1)
        return False

    wait_for(ready, timeout=60, what=f"{processes} faststream worker(s) on {stream}")


class _Caller:
    """FastStream's publishing side: a broker that is connected, never started."""

    def __init__(self, loop: asyncio.Runner, url: str) -> None:
        from faststream.redis import RedisBroker

        self.loop = loop
        self.broker: Any = RedisBroker(url)
        loop.run(self.broker.connect())

    def close(self) -> None:
        self.loop.run(self.broker.stop())

    def round_trips(self, stream: str, count: int) -> list[float]:
        return self.loop.run(self._round_trips(stream, count))

    async def _round_trips(self, stream: str, count: int) -> list[float]:
        seconds = []
        for x in range(-10, count):  # ten to warm up
            started = time.perf_counter()
            reply = await self.broker.request(x, stream=stream, timeout=10)
            if x >= 0:
                seconds.append(time.perf_counter() - started)
            value = await reply.decode()
            if value != x + 1:
                raise RuntimeError(f"unexpected faststream reply {value!r}")
        return seconds

    def publish_one(self, stream: str, count: int) -> float:
        return self.loop.run(self._publish_one(stream, count))

    async def _publish_one(self, stream: str, count: int) -> float:
        started = time.perf_counter()
        for x in range(count):
            await self.broker.publish(x, stream=stream)
        return count / (time.perf_counter() - started)

    def publish_many(self, stream: str, count: int) -> float:
        return self.loop.run(self._publish_many(stream, count))

    async def _publish_many(self, stream: str, count: int) -> float:
        client = self.broker._connection  # the client FastStream's Pipeline uses
        started = time.perf_counter()
        for first in range(0, count, _PIPELINE_BATCH):
            async with client.pipeline(transaction=False) as pipe:
                for x in range(first, min(first + _PIPELINE_BATCH, count)):
                    await self.broker.publish(x, stream=stream, pipeline=pipe)
                await pipe.execute()
        return count / (time.perf_counter() - started)


def _round(
    caller: _Caller,
    app_module: Any,
    client: redis.Redis,
    one: Proc,
    pair: _Spawned,
    plan: Any,
    figures: Figures,
) -> None:
    seconds = caller.round_trips(app_module.PING, min(plan.sends, SENDS))
    figures.add_latencies("send_rtt_1svc", FASTSTREAM, seconds)
    sink = "fs.sink"  # no group reads it
    count = min(plan.publishes, BACKLOG)
    figures.add("publish_one", FASTSTREAM, caller.publish_one(sink, count))
    client.delete(sink)
    figures.add("publish_many", FASTSTREAM, caller.publish_many(sink, count))
    client.delete(sink)
    backlog: int = min(plan.drain, BACKLOG)

    def fill(stream: str) -> Any:
        def run() -> int:
            caller.publish_many(stream, backlog)
            return backlog

        return run

    for scenario, stream, workers in (
        ("drain_sync_1w", app_module.DRAIN, [one]),
        ("drain_async_1w", app_module.ADRAIN, [one]),
        ("drain_sync_2w", app_module.DRAIN2, [pair]),
    ):
        rate = drain_rate(client, stream, app_module.GROUP, workers, fill(stream))
        figures.add(scenario, FASTSTREAM, rate)
        one.check_alive()
        pair.check_alive()


class _Spawned:
    """The processes ``faststream run --workers N`` spawns, paused as one."""

    def __init__(self, supervisor: Proc) -> None:
        self.supervisor = supervisor
        self.pids = children(supervisor.pid)

    def check_alive(self) -> None:
        self.supervisor.check_alive()
        if set(self.pids) - set(children(self.supervisor.pid)):
            tail = self.supervisor.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"a faststream worker process exited:\n{tail}")

    def pause(self) -> None:
        for pid in self.pids:
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
