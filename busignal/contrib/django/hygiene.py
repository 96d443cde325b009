"""Database connections in a long-running worker, looked after as Django's
request cycle does.

Django closes a connection that is broken or past ``CONN_MAX_AGE`` when a
request starts and when it finishes (``close_old_connections`` on
``request_started`` and ``request_finished``). A worker has no requests:
without the same care, a receiver thread keeps a connection the database
server killed or restarted, and every event after that fails, or keeps
one connection per thread open for ever when ``CONN_MAX_AGE`` is 0. So,
as Celery's Django fixup does around each task, the worker calls
``close_old_connections()`` before and after the receivers of each event,
in the thread that runs them (Django's connections are per thread).

``CONN_HEALTH_CHECKS`` is honoured: after each event Django marks the
connection for a health check, so a persistent connection killed between
two events is replaced before the next event's first query, which then
succeeds on its first attempt.

``busignal worker`` with Django settings and ``manage.py busignal_worker``
install this; a worker built by hand calls ``install(worker)`` after
``django.setup()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING

from django.db import close_old_connections

if TYPE_CHECKING:
    from busignal.worker.delivery import Job, Receiving
    from busignal.worker.worker import Worker

__all__ = ["ConnectionHygiene", "install"]


class ConnectionHygiene:
    """A worker's ``receiving`` hook: old connections closed around each event.

    It wraps the hook that was there before (an OpenTelemetry span), which
    runs inside it, so the span covers the receivers and not the closing.
    """

    def __init__(self, inner: Receiving | None = None) -> None:
        self.inner = inner

    def __call__(self, job: Job) -> AbstractContextManager[object]:
        return self._around(job)

    @contextmanager
    def _around(self, job: Job) -> Iterator[object]:
        inner = nullcontext() if self.inner is None else self.inner(job)
        if _on_event_loop():
            # The async receivers' part: the ORM is not used on the loop's
            # thread (Django forbids it), and closing here would do blocking
            # I/O on the loop; sync_to_async runs ORM calls in a thread.
            with inner as value:
                yield value
            return
        close_old_connections()
        try:
            with inner as value:
                yield value
        finally:
            close_old_connections()


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def install(worker: Worker) -> ConnectionHygiene:
    """Close old database connections around each event ``worker`` runs.

    Call it after any other ``receiving`` hook is set (``otel.instrument``),
    since it wraps the hook in place: a hook set later replaces it.
    Installing twice is harmless (the second call returns the first hook).
    """
    if isinstance(worker.receiving, ConnectionHygiene):
        return worker.receiving
    hygiene = ConnectionHygiene(worker.receiving)
    worker.receiving = hygiene
    return hygiene
