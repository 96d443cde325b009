"""The worker runtime: reads a service's streams, runs receivers, replies.

``Worker`` and ``WorkerConfig`` are the entry points; the parts (lane,
liveness, settle, broadcast, delivery, routes, trim) each own one job.
"""

from __future__ import annotations

from busignal.worker.worker import Worker, WorkerConfig

__all__ = ["Worker", "WorkerConfig"]
