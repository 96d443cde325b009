"""The Celery app for the comparison rows: the same ``x + 1`` on the same Redis.

Configured from ``BENCH_REDIS_URL`` because Celery's worker command imports
the app by module path; defaults otherwise, as a Celery user would run it.
Celery is optional and untyped, so it is imported as a plain module object
and the tasks are wrapped without decorators (mypy strict stays clean
whether or not Celery is installed).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

_celery: Any = importlib.import_module("celery")
_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1")

app: Any = _celery.Celery("bench", broker=_url, backend=_url)
app.conf.update(
    task_default_queue="bench.celery",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


def _plus_one(x: int) -> int:
    """The trivial handler."""
    return x + 1


#: Result stored, for round trips.
plus_one: Any = app.task(name="bench.plus_one")(_plus_one)
#: Result dropped, for drains (fire-and-forget, like publish).
plus_one_quiet: Any = app.task(name="bench.plus_one_quiet", ignore_result=True)(
    _plus_one
)
