"""Other task queues on the same Redis with the same handler, when installed.

Celery runs with its defaults (JSON, a result backend on the same Redis,
database 1) and the solo pool: one process, like the busignal worker it
is compared with. Its rounds run after busignal's rather than interleaved,
because its worker holds a different Redis database and start-up is slow;
the figures are medians of as many rounds. taskiq is reported as skipped.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from typing import Any

import redis

from benchmarks.procs import Proc, RedisServer, python_module, rss_kib, wait_for
from benchmarks.stats import Figures

__all__ = ["run_all", "sides", "skipped"]

CELERY = "celery"
_skipped: list[str] = []


def run_all(server: RedisServer, plan: Any, logs: Path, figures: Figures) -> None:
    """Measure every installed library; note the others as skipped."""
    _skipped.clear()
    if importlib.util.find_spec("celery") is None:
        _skipped.append("celery: skipped (not installed; pip install celery)")
    else:
        _celery(server, plan, logs, figures)
    if importlib.util.find_spec("taskiq") is None:
        _skipped.append("taskiq: skipped (not installed)")
    else:
        _skipped.append("taskiq: skipped (installed, but no runner for it here yet)")


def sides(figures: Figures) -> list[str]:
    """The extra table columns that have figures."""
    return [CELERY] if any(side == CELERY for _, side in figures.rounds) else []


def skipped() -> list[str]:
    return list(_skipped)


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
    for x in range(min(plan.sends, 500)):
        started = time.perf_counter()
        app_module.plus_one.delay(x).get(timeout=10)
        seconds.append(time.perf_counter() - started)
    figures.add_latencies("send_rtt_1svc", CELERY, seconds)
    count = min(plan.drain, 5000)
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
