"""Other task queues on the same Redis with the same handler, when installed.

Celery runs with its defaults (JSON, a result backend on the same Redis,
database 1) and the solo pool: one process, like the busignal worker it
is compared with.

taskiq runs as ``taskiq worker benchmarks.taskiq_app:broker --workers 1``
on database 2 with taskiq-redis's stream broker and Redis result backend,
defaults otherwise but for ``--log-level WARNING`` (its default INFO logs
a line per task; Celery runs at WARNING too). ``--workers 1`` is a process
manager and one forked worker process: that child runs the tasks, so it is
the one paused for drains and whose memory is reported (the manager is a
second, idle process). Its client is async: one event loop
(``asyncio.Runner``) serves the whole runner, because taskiq-redis's
redis-py asyncio connections belong to the loop that opened them. A
round trip is ``kiq`` then ``wait_result``, which polls the result
backend; it polls back to back (``check_interval=0``), as taskiq's default
of 0.2 s would make every round trip about 200 ms. Drains stop when XINFO
GROUPS shows the stream read and acknowledged, as busignal's do. A
backlog is at most 5000 tasks (about a second of ``kiq``) so that the
paused worker's blocked XREADGROUP does not outlast redis-py 8's default
5 s socket timeout: past it the worker process can die on resume (the
manager forks a new one, and the runner reports a failure).

Both run after busignal's rounds rather than interleaved, because their
workers hold other Redis databases and start up slowly; the figures are
medians of as many rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from benchmarks.fleet import drain_rate
from benchmarks.procs import (
    Proc,
    RedisServer,
    children,
    python_module,
    rss_kib,
    wait_for,
)
from benchmarks.stats import Figures

__all__ = ["run_all", "sides", "skipped"]

CELERY, TASKIQ, FASTSTREAM = "celery", "taskiq", "faststream"
#: Every other library's column, in table order; the modules each needs.
PEERS = {
    CELERY: ("celery",),
    TASKIQ: ("taskiq", "taskiq_redis"),
    FASTSTREAM: ("faststream.redis", "typer"),
}
_INSTALL = {
    CELERY: "pip install 'celery[redis]'",
    TASKIQ: "pip install taskiq taskiq-redis",
    FASTSTREAM: "pip install 'faststream[redis,cli]'",
}
#: Per round, at most: more round trips or a longer backlog add little.
SENDS, BACKLOG = 500, 5000
_skipped: dict[str, str] = {}


def run_all(server: RedisServer, plan: Any, logs: Path, figures: Figures) -> None:
    """Measure every installed library; note the others as not installed."""
    from benchmarks import faststream_peer

    _skipped.clear()
    runners = {CELERY: _celery, TASKIQ: _taskiq, FASTSTREAM: faststream_peer.run}
    for side, modules in PEERS.items():
        reason = _missing(modules)
        if reason is not None:
            _skipped[side] = f"{side}: not installed ({reason}; {_INSTALL[side]})"
            continue
        print(f"{side}: measuring", flush=True)
        runners[side](server, plan, logs, figures)


def _missing(modules: tuple[str, ...]) -> str | None:
    """Why one of ``modules`` cannot be imported, or None if all can.

    Imported, not just looked up: a package that is there but broken
    (a missing dependency) is as good as not installed.
    """
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            return str(exc) or f"cannot import {name}"
    return None


def sides() -> list[str]:
    """The other libraries' table columns, measured or not, in a fixed order."""
    return list(PEERS)


def absent() -> set[str]:
    """The sides whose library is not installed (their cells say so)."""
    return set(_skipped)


def skipped() -> list[str]:
    return list(_skipped.values())


def _celery(server: RedisServer, plan: Any, logs: Path, figures: Figures) -> None:
    url = f"redis://127.0.0.1:{server.port}/1"
    command = python_module(
        "celery", "-A", "benchmarks.celery_app", "worker", "-P", "solo",
        "-Q", "bench.celery", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "--loglevel", "WARNING",
    )  # fmt: skip
    worker = Proc("celery", command, logs / "celery.log", {"BENCH_REDIS_URL": url})
    os.environ["BENCH_REDIS_URL"] = url  # read when the app module is imported
    from benchmarks import celery_app

    worker.start()
    try:
        wait_for(lambda: _answers(worker, celery_app), timeout=60, what="celery")
        figures.add("rss_idle", CELERY, rss_kib(worker.pid) / 1024)
        client = redis.Redis.from_url(url)
        for _ in range(plan.rounds):
            _celery_round(celery_app, client, worker, plan, figures)
        figures.add("rss_load", CELERY, rss_kib(worker.pid, "VmHWM") / 1024)
    finally:
        worker.stop()


def _answers(worker: Proc, app_module: Any) -> bool:
    worker.check_alive()
    try:
        return app_module.plus_one.delay(1).get(timeout=1) == 2  # type: ignore[no-any-return]
    except Exception:
        return False


def _celery_round(
    app_module: Any, client: redis.Redis, worker: Proc, plan: Any, figures: Figures
) -> None:
    seconds = []
    for x in range(min(plan.sends, SENDS)):
        started = time.perf_counter()
        app_module.plus_one.delay(x).get(timeout=10)
        seconds.append(time.perf_counter() - started)
    figures.add_latencies("send_rtt_1svc", CELERY, seconds)
    count = min(plan.drain, BACKLOG)
    worker.pause()
    try:
        started = time.perf_counter()
        for x in range(count):
            app_module.plus_one_quiet.delay(x)
        figures.add("publish_one", CELERY, count / (time.perf_counter() - started))
    finally:
        started = time.perf_counter()
        worker.resume()

    def drained() -> bool:
        return not client.llen("bench.celery") and not client.hlen("unacked")

    wait_for(drained, timeout=300, what="celery to drain")
    figures.add("drain_sync_1w", CELERY, count / (time.perf_counter() - started))


def _taskiq(server: RedisServer, plan: Any, logs: Path, figures: Figures) -> None:
    url = f"redis://127.0.0.1:{server.port}/2"
    command = python_module(
        "taskiq", "worker", "benchmarks.taskiq_app:broker", "--workers", "1",
        "--log-level", "WARNING",
    )  # fmt: skip
    manager = Proc("taskiq", command, logs / "taskiq.log", {"BENCH_TASKIQ_URL": url})
    os.environ["BENCH_TASKIQ_URL"] = url  # read when the broker module is imported
    from benchmarks import taskiq_app

    manager.start()
    worker: _Forked | None = None
    try:
        worker = _Forked.of(manager)
        with asyncio.Runner() as loop:
            loop.run(taskiq_app.broker.startup())
            try:
                _taskiq_rounds(loop, taskiq_app, worker, url, plan, figures)
            finally:
                loop.run(taskiq_app.broker.shutdown())
    finally:
        if worker is not None:
            worker.resume()  # a stopped process would not act on the manager's TERM
        manager.stop()
        if worker is not None:
            worker.kill_if_left(command)


def _taskiq_rounds(
    loop: asyncio.Runner,
    app_module: Any,
    worker: _Forked,
    url: str,
    plan: Any,
    figures: Figures,
) -> None:
    def answers() -> bool:
        worker.check_alive()
        return loop.run(_taskiq_answers(app_module))

    wait_for(answers, timeout=60, what="taskiq")
    figures.add("rss_idle", TASKIQ, rss_kib(worker.pid) / 1024)
    client = redis.Redis.from_url(url)
    try:
        for _ in range(plan.rounds):
            _taskiq_round(loop, app_module, client, worker, plan, figures)
            worker.check_alive()  # the manager replaces a child that died
        figures.add("rss_load", TASKIQ, rss_kib(worker.pid, "VmHWM") / 1024)
    finally:
        client.close()


async def _taskiq_answers(app_module: Any) -> bool:
    try:
        task = await app_module.plus_one.kiq(1)
        result = await task.wait_result(check_interval=0.01, timeout=1)
    except Exception:
        return False
    return result.return_value == 2  # type: ignore[no-any-return]


def _taskiq_round(
    loop: asyncio.Runner,
    app_module: Any,
    client: redis.Redis,
    worker: _Forked,
    plan: Any,
    figures: Figures,
) -> None:
    seconds = loop.run(_taskiq_round_trips(app_module, min(plan.sends, SENDS)))
    figures.add_latencies("send_rtt_1svc", TASKIQ, seconds)
    count: int = min(plan.drain, BACKLOG)

    def fill(task: Any, publish: bool) -> Callable[[], int]:
        def run() -> int:
            started = time.perf_counter()
            loop.run(_kick(task, count))
            if publish:
                figures.add("publish_one", TASKIQ, count / _since(started))
            return count

        return run

    for scenario, task, publish in (
        ("drain_sync_1w", app_module.plus_one_quiet, True),
        ("drain_async_1w", app_module.aplus_one_quiet, False),
    ):
        rate = drain_rate(
            client, app_module.QUEUE, app_module.GROUP, [worker], fill(task, publish)
        )
        figures.add(scenario, TASKIQ, rate)


async def _taskiq_round_trips(app_module: Any, count: int) -> list[float]:
    """``kiq`` then ``wait_result`` polled back to back, after ten to warm up."""
    seconds = []
    for x in range(-10, count):
        started = time.perf_counter()
        task = await app_module.plus_one.kiq(x)
        result = await task.wait_result(check_interval=0, timeout=10)
        if x >= 0:
            seconds.append(_since(started))
        if result.is_err or result.return_value != x + 1:
            raise RuntimeError(f"unexpected taskiq result {result!r}")
    return seconds


async def _kick(task: Any, count: int) -> None:
    """``kiq`` one at a time without waiting for results, as ``publish`` does."""
    for x in range(count):
        await task.kiq(x)


def _since(started: float) -> float:
    return time.perf_counter() - started


class _Forked:
    """The worker process ``taskiq worker --workers 1`` forks to run tasks.

    Its manager process only watches it (and forks a new one if it dies),
    so this is the process to pause for a drain and to measure.
    """

    def __init__(self, manager: Proc, pid: int) -> None:
        self.manager, self.pid = manager, pid

    @classmethod
    def of(cls, manager: Proc) -> _Forked:
        """Waits for the manager's one child; RuntimeError if it has more."""
        found: list[int] = []

        def forked() -> bool:
            manager.check_alive()
            found[:] = children(manager.pid)
            return bool(found)

        wait_for(forked, timeout=60, what="the taskiq worker process")
        if len(found) != 1:
            raise RuntimeError(f"taskiq worker: expected 1 child process, {found}")
        return cls(manager, found[0])

    def check_alive(self) -> None:
        """RuntimeError (with the log tail) unless the child is still the one."""
        self.manager.check_alive()
        if self.pid not in children(self.manager.pid):
            tail = self.manager.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"taskiq worker process {self.pid} exited:\n{tail}")

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGCONT)

    def kill_if_left(self, command: list[str]) -> None:
        """SIGKILL the child if it outlived its manager (still running ``command``)."""
        try:
            argv = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            return  # gone, as it should be
        if [a.decode(errors="replace") for a in argv] == command:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
