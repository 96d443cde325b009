"""The taskiq broker for the comparison rows: the same ``x + 1`` on the same Redis.

taskiq-redis's ``RedisStreamBroker``: tasks go to a Redis stream read by a
consumer group (XREADGROUP, XACK after the result is saved), as busignal's
events do, so the two are compared on the same Redis structure. Results
go to ``RedisAsyncResultBackend`` on the same database. Configured from
``BENCH_TASKIQ_URL`` because ``taskiq worker`` imports the broker by module
path; defaults otherwise, as a taskiq user would run it.

The handler is a plain (sync) function, like busignal's sync receivers and
Celery's task, so its drain sits in the ``drain_sync_1w`` row: taskiq runs
sync tasks in a thread pool. ``aplus_one_quiet`` is the same handler as a
coroutine, taskiq's own idiom, for the ``drain_async_1w`` row.

taskiq stores every task's result; it has no per-task switch like Celery's
``ignore_result``. The drain tasks carry the label ``keep_result=False``
and a middleware drops their result the way taskiq's retry middlewares
do (``NoResultError`` as the result's error), so a drain is fire-and-forget
like ``publish``. taskiq is optional, so it is imported as plain module
objects (mypy strict stays clean whether or not it is installed).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

_taskiq: Any = importlib.import_module("taskiq")
_taskiq_redis: Any = importlib.import_module("taskiq_redis")
_url = os.environ.get("BENCH_TASKIQ_URL", "redis://127.0.0.1:6379/2")

#: The stream tasks are written to, and its consumer group.
QUEUE, GROUP = "bench.taskiq", "taskiq"


class _DropResults(_taskiq.TaskiqMiddleware):  # type: ignore[misc]
    """Skips storing the result of tasks labelled ``keep_result=False``."""

    def post_execute(self, message: Any, result: Any) -> None:
        if message.labels.get("keep_result") is False:
            result.error = _taskiq.NoResultError()


broker: Any = (
    _taskiq_redis.RedisStreamBroker(_url, queue_name=QUEUE, consumer_group_name=GROUP)
    .with_result_backend(_taskiq_redis.RedisAsyncResultBackend(_url))
    .with_middlewares(_DropResults())
)


def _plus_one(x: int) -> int:
    """The trivial handler."""
    return x + 1


async def _aplus_one(x: int) -> int:
    """The trivial handler, as a coroutine."""
    return x + 1


#: Result stored, for round trips.
plus_one: Any = broker.task(task_name="bench.plus_one")(_plus_one)
#: Result dropped, for drains (fire-and-forget, like publish).
plus_one_quiet: Any = broker.task(task_name="bench.plus_one_quiet", keep_result=False)(
    _plus_one
)
#: Result dropped, async handler.
aplus_one_quiet: Any = broker.task(
    task_name="bench.aplus_one_quiet", keep_result=False
)(_aplus_one)
